//! `one-hot`: one-hot encode string columns, like scikit-learn's
//! `OneHotEncoder(sparse_output=False)`.
//!
//! Fit learns the vocabulary of each listed `Utf8` column; categories are
//! sorted by their UTF-8 bytes (the order of Python's `sorted` on `str`,
//! which scikit-learn uses for `categories_`). Transform replaces the
//! column, at its position, by one non-nullable `Float64` column per
//! category, in category order, named `<column>_<category>` (scikit-learn's
//! `get_feature_names_out`), holding 1.0 where the row has that category and
//! 0.0 elsewhere.
//!
//! Nulls: a null is **not** a category (scikit-learn would learn a `None`
//! or `nan` category); a null row encodes as all zeros, at fit time nulls
//! are skipped, and a column with no non-null value to learn from is an
//! error naming it.
//!
//! Unknown categories (not seen at fit time) encode as all zeros with
//! `handle_unknown: "ignore"` (the default), or fail with an error naming
//! the column, the row and the value with `"error"`.
//!
//! The partial state is the set of categories seen per column; merging is
//! set union, so any split of the data into batches gives the same state.

use std::collections::BTreeSet;
use std::sync::Arc;

use kiln_sdk::arrow_array::{Array, ArrayRef, Float64Array, RecordBatch};
use kiln_sdk::arrow_schema::{DataType, Field, FieldRef, Schema};
use kiln_sdk::{columns, Error, FittedTransform, PluginInfo, Result};
use serde::{Deserialize, Serialize};

/// What to do with a category not seen at fit time.
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum HandleUnknown {
    /// Encode as all zeros.
    #[default]
    Ignore,
    /// Fail, naming the column, row and value.
    Error,
}

/// Parameters of `one-hot`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Params {
    /// `Utf8` columns to encode.
    pub columns: Vec<String>,
    /// `ignore` (default) or `error`.
    #[serde(default)]
    pub handle_unknown: HandleUnknown,
}

/// Vocabulary of one column: the state is one per listed column, in the
/// order of `columns`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Vocabulary {
    /// Column name.
    pub column: String,
    /// Categories, sorted by bytes, without duplicates.
    pub categories: Vec<String>,
}

/// The configured encoder.
pub struct OneHot {
    params: Params,
    vocab: Vec<Vocabulary>,
    /// The output fields of each vocabulary ([`new_fields`]), built once at
    /// configure time: a batch shares them instead of formatting names.
    fields: Vec<Vec<FieldRef>>,
}

fn check_params(p: &Params) -> Result<()> {
    if p.columns.is_empty() {
        return Err(Error::InvalidParams(
            "`columns` lists no column to encode".into(),
        ));
    }
    let mut seen = BTreeSet::new();
    for c in &p.columns {
        if !seen.insert(c) {
            return Err(Error::InvalidParams(format!("`columns` lists '{c}' twice")));
        }
    }
    Ok(())
}

/// The output fields replacing one column.
fn new_fields(v: &Vocabulary) -> Vec<FieldRef> {
    v.categories
        .iter()
        .map(|c| {
            Arc::new(Field::new(
                feature_name(&v.column, c),
                DataType::Float64,
                false,
            ))
        })
        .collect()
}

/// `<column>_<category>`, joined by hand: every instance builds these at
/// configure time, and `format!` goes through `fmt`'s trait objects, whose
/// first call in a fresh instance is a host libcall each (three per
/// configure, measured with a uprobe on wasmtime's lazy table init).
fn feature_name(column: &str, category: &str) -> String {
    let mut name = String::with_capacity(column.len() + 1 + category.len());
    name.push_str(column);
    name.push('_');
    name.push_str(category);
    name
}

impl FittedTransform for OneHot {
    type Params = Params;
    type Partial = Vec<BTreeSet<String>>;
    type State = Vec<Vocabulary>;

    fn info() -> PluginInfo {
        PluginInfo::new(
            "one-hot",
            env!("CARGO_PKG_VERSION"),
            "One-hot encode Utf8 columns into non-nullable Float64 columns <column>_<category>, categories learned at fit time and sorted by bytes, like scikit-learn's OneHotEncoder; nulls and (with handle_unknown=ignore) unknown categories encode as all zeros.",
        )
        .with_params_schema(
            r#"{"type":"object","required":["columns"],"additionalProperties":false,"properties":{"columns":{"type":"array","items":{"type":"string"},"minItems":1,"uniqueItems":true,"description":"Utf8 columns to encode; each is replaced at its position by one Float64 column per category"},"handle_unknown":{"enum":["ignore","error"],"default":"ignore","description":"a category not seen at fit time: all zeros (ignore) or an error naming column, row and value (error)"}}}"#,
        )
    }

    fn fit_partial(params: &Params, batch: &RecordBatch) -> Result<Self::Partial> {
        check_params(params)?;
        params
            .columns
            .iter()
            .map(|c| {
                Ok(columns::utf8(batch, c)?
                    .iter()
                    .flatten()
                    .map(str::to_owned)
                    .collect())
            })
            .collect()
    }

    fn merge(params: &Params, a: Self::Partial, b: Self::Partial) -> Result<Self::Partial> {
        if a.len() != params.columns.len() || b.len() != params.columns.len() {
            return Err(Error::InvalidState(format!(
                "partial states for {} and {} columns, but the parameters list {}",
                a.len(),
                b.len(),
                params.columns.len()
            )));
        }
        Ok(a.into_iter()
            .zip(b)
            .map(|(mut x, mut y)| {
                x.append(&mut y);
                x
            })
            .collect())
    }

    fn finish(params: &Params, partial: Self::Partial) -> Result<Self::State> {
        if partial.len() != params.columns.len() {
            return Err(Error::InvalidState(format!(
                "partial state for {} columns, but the parameters list {}",
                partial.len(),
                params.columns.len()
            )));
        }
        params
            .columns
            .iter()
            .zip(partial)
            .map(|(c, set)| {
                if set.is_empty() {
                    return Err(Error::column(
                        c,
                        "no non-null values to learn categories from; impute the column first or drop it",
                    ));
                }
                Ok(Vocabulary {
                    column: c.clone(),
                    categories: set.into_iter().collect(),
                })
            })
            .collect()
    }

    fn new(params: Params, state: Option<Self::State>) -> Result<Self> {
        check_params(&params)?;
        let vocab =
            state.ok_or_else(|| Error::InvalidState("one-hot needs a fitted state".into()))?;
        let fitted: Vec<&str> = vocab.iter().map(|v| v.column.as_str()).collect();
        if fitted != params.columns {
            return Err(Error::InvalidState(format!(
                "state was fitted on columns {fitted:?} but the parameters list {:?}",
                params.columns
            )));
        }
        for v in &vocab {
            let sorted = v.categories.windows(2).all(|w| w[0] < w[1]);
            if v.categories.is_empty() || !sorted {
                return Err(Error::InvalidState(format!(
                    "the categories of column '{}' are empty, unsorted or repeated; refit",
                    v.column
                )));
            }
        }
        let fields = vocab.iter().map(new_fields).collect();
        Ok(OneHot {
            params,
            vocab,
            fields,
        })
    }

    fn output_schema(&self, input: &Schema) -> Result<Schema> {
        let mut schema = input.clone();
        for (v, new) in self.vocab.iter().zip(&self.fields) {
            let f = columns::field(&schema, &v.column)?;
            if f.data_type() != &DataType::Utf8 {
                return Err(columns::wrong_type(&v.column, "Utf8", f.data_type()));
            }
            // A name must not clash with another column, whether it came
            // with the input or from encoding an earlier column.
            // (`<column>_<category>` is never the column's own name.)
            if let Some(clash) = new
                .iter()
                .find(|n| schema.field_with_name(n.name()).is_ok())
            {
                return Err(Error::column(
                    &v.column,
                    format!(
                        "output column '{}' would clash with an existing column of that name; rename one of them",
                        clash.name()
                    ),
                ));
            }
            schema = columns::splice_schema(&schema, &v.column, new.clone(), false)?;
        }
        Ok(schema)
    }

    fn transform(&self, batch: &RecordBatch) -> Result<RecordBatch> {
        let mut batch = batch.clone();
        for (v, fields) in self.vocab.iter().zip(&self.fields) {
            let strings = columns::utf8(&batch, &v.column)?;
            let n = strings.len();
            let mut outs: Vec<Vec<f64>> = vec![vec![0.0; n]; v.categories.len()];
            for (row, s) in strings.iter().enumerate() {
                // A null row is all zeros.
                let Some(s) = s else { continue };
                // `str` orders by bytes, as the categories are sorted.
                match v.categories.binary_search_by(|c| c.as_str().cmp(s)) {
                    Ok(k) => outs[k][row] = 1.0,
                    Err(_) if self.params.handle_unknown == HandleUnknown::Error => {
                        return Err(Error::value(
                            &v.column,
                            row,
                            format!("unknown category '{s}' (not seen at fit time); refit, or use handle_unknown=ignore"),
                        ));
                    }
                    Err(_) => {}
                }
            }
            let new: Vec<(FieldRef, ArrayRef)> = fields
                .iter()
                .cloned()
                .zip(outs)
                .map(|(f, o)| (f, Arc::new(Float64Array::from(o)) as ArrayRef))
                .collect();
            batch = columns::splice(&batch, &v.column, new, false)?;
        }
        Ok(batch)
    }
}

kiln_sdk::export!(OneHot);

#[cfg(test)]
mod tests {
    use super::*;
    use kiln_sdk::arrow_array::{Int32Array, LargeStringArray, StringArray};
    use kiln_sdk::testing;

    fn strs(v: &[Option<&str>]) -> ArrayRef {
        Arc::new(StringArray::from(v.to_vec()))
    }

    fn some<'a>(v: &[&'a str]) -> Vec<Option<&'a str>> {
        v.iter().map(|s| Some(*s)).collect()
    }

    fn names(b: &RecordBatch) -> Vec<String> {
        b.schema()
            .fields()
            .iter()
            .map(|f| f.name().clone())
            .collect()
    }

    /// The output as rows over the columns `cols`.
    fn rows(b: &RecordBatch, cols: &[&str]) -> Vec<Vec<f64>> {
        let cols: Vec<&Float64Array> = cols
            .iter()
            .map(|c| {
                b.column_by_name(c)
                    .unwrap_or_else(|| panic!("no column {c}"))
                    .as_any()
                    .downcast_ref::<Float64Array>()
                    .expect("Float64 output")
            })
            .collect();
        (0..b.num_rows())
            .map(|r| cols.iter().map(|c| c.value(r)).collect())
            .collect()
    }

    fn vocab(params: &str, batches: &[RecordBatch]) -> Vec<Vocabulary> {
        serde_json::from_slice(&testing::fit::<OneHot>(params, batches).unwrap()).unwrap()
    }

    #[test]
    fn matches_scikit_learn_literals() {
        // Printed by scikit-learn 1.9.1:
        //   enc = OneHotEncoder(sparse_output=False, handle_unknown="ignore")
        //   enc.fit([["b"],["a"],["c"],["a"]]).get_feature_names_out(["x"])
        //   -> ['x_a', 'x_b', 'x_c']
        //   enc.transform([["c"],["a"],["zzz"],["b"]]).tolist()
        //   -> [[0,0,1], [1,0,0], [0,0,0], [0,1,0]]
        let train = testing::batch(vec![("x", strs(&some(&["b", "a", "c", "a"])))]);
        let live = testing::batch(vec![("x", strs(&some(&["c", "a", "zzz", "b"])))]);
        let state = testing::fit::<OneHot>(r#"{"columns":["x"]}"#, &[train]).unwrap();
        let out = testing::apply::<OneHot>(r#"{"columns":["x"]}"#, Some(&state), &live).unwrap();
        assert_eq!(names(&out), ["x_a", "x_b", "x_c"]);
        assert_eq!(
            rows(&out, &["x_a", "x_b", "x_c"]),
            [
                [0.0, 0.0, 1.0],
                [1.0, 0.0, 0.0],
                [0.0, 0.0, 0.0],
                [0.0, 1.0, 0.0]
            ]
        );

        // Two columns, scikit-learn 1.9.1:
        //   OneHotEncoder(sparse_output=False).fit([["red","s"],["blue","m"],["red","l"]])
        //   get_feature_names_out(["color","size"])
        //   -> ['color_blue', 'color_red', 'size_l', 'size_m', 'size_s']
        //   transform([["blue","l"],["red","m"]]) -> [[1,0,1,0,0], [0,1,0,1,0]]
        let train = testing::batch(vec![
            ("color", strs(&some(&["red", "blue", "red"]))),
            ("size", strs(&some(&["s", "m", "l"]))),
        ]);
        let live = testing::batch(vec![
            ("color", strs(&some(&["blue", "red"]))),
            ("size", strs(&some(&["l", "m"]))),
        ]);
        let p = r#"{"columns":["color","size"]}"#;
        let state = testing::fit::<OneHot>(p, &[train]).unwrap();
        let out = testing::apply::<OneHot>(p, Some(&state), &live).unwrap();
        let want_names = ["color_blue", "color_red", "size_l", "size_m", "size_s"];
        assert_eq!(names(&out), want_names);
        assert_eq!(
            rows(&out, &want_names),
            [[1.0, 0.0, 1.0, 0.0, 0.0], [0.0, 1.0, 0.0, 1.0, 0.0]]
        );
    }

    #[test]
    fn categories_sort_by_bytes_like_scikit_learn() {
        // scikit-learn 1.9.1 OneHotEncoder().fit(cats).categories_[0] for
        // these strings -> ['', '10', '9', 'B', 'Z', 'a', 'a b', 'b', 'z', 'ä', 'é']
        let cats = ["b", "B", "a", "é", "Z", "10", "9", "", "a b", "ä", "z"];
        let v = vocab(
            r#"{"columns":["col"]}"#,
            &[testing::batch(vec![("col", strs(&some(&cats)))])],
        );
        assert_eq!(
            v[0].categories,
            ["", "10", "9", "B", "Z", "a", "a b", "b", "z", "ä", "é"]
        );
        // Every category still finds its own column after sorting.
        let out = testing::fit_apply::<OneHot>(
            r#"{"columns":["col"]}"#,
            &[testing::batch(vec![("col", strs(&some(&cats)))])],
        )
        .unwrap();
        for (row, c) in cats.iter().enumerate() {
            let hot: Vec<String> = names(&out[0])
                .into_iter()
                .filter(|n| rows(&out[0], &[n.as_str()])[row][0] == 1.0)
                .collect();
            assert_eq!(hot, [format!("col_{c}")], "row {row}");
        }
    }

    #[test]
    fn replaced_in_place_with_nulls_all_zeros_and_non_nullable_output() {
        let train = testing::batch(vec![
            ("k", Arc::new(Int32Array::from(vec![1, 2, 3])) as ArrayRef),
            ("x", strs(&[Some("n"), None, Some("m")])),
            ("z", Arc::new(Int32Array::from(vec![4, 5, 6])) as ArrayRef),
        ]);
        let out = testing::fit_apply::<OneHot>(r#"{"columns":["x"]}"#, &[train]).unwrap();
        let out = &out[0];
        assert_eq!(names(out), ["k", "x_m", "x_n", "z"]);
        // By hand: row 0 is "n", row 1 null (all zeros), row 2 "m".
        assert_eq!(
            rows(out, &["x_m", "x_n"]),
            [[0.0, 1.0], [0.0, 0.0], [1.0, 0.0]]
        );
        for f in &out.schema().fields()[1..3] {
            assert_eq!(f.data_type(), &DataType::Float64);
            assert!(!f.is_nullable(), "{f:?}");
        }
        assert_eq!(out.column(1).null_count(), 0);
    }

    #[test]
    fn fitting_in_batches_gives_the_state_of_one_batch() {
        let all = [
            Some("z"),
            Some("m"),
            None,
            Some("a"),
            Some("m"),
            None,
            Some("q"),
        ];
        let whole = vocab(
            r#"{"columns":["x"]}"#,
            &[testing::batch(vec![("x", strs(&all))])],
        );
        for cuts in [
            vec![0, 2, 7],
            vec![0, 1, 2, 3, 4, 5, 6, 7],
            vec![0, 5, 6, 7],
        ] {
            let parts: Vec<RecordBatch> = cuts
                .windows(2)
                .map(|w| testing::batch(vec![("x", strs(&all[w[0]..w[1]]))]))
                .collect();
            assert_eq!(vocab(r#"{"columns":["x"]}"#, &parts), whole, "{cuts:?}");
        }
        assert_eq!(whole[0].categories, ["a", "m", "q", "z"]);
    }

    #[test]
    fn unknown_categories_ignore_or_error() {
        let train = testing::batch(vec![("x", strs(&some(&["a", "b"])))]);
        let state = testing::fit::<OneHot>(r#"{"columns":["x"]}"#, &[train]).unwrap();
        let live = testing::batch(vec![("x", strs(&[Some("a"), None, Some("c")]))]);
        for params in [
            r#"{"columns":["x"]}"#,
            r#"{"columns":["x"],"handle_unknown":"ignore"}"#,
        ] {
            let out = testing::apply::<OneHot>(params, Some(&state), &live).unwrap();
            assert_eq!(
                rows(&out, &["x_a", "x_b"]),
                [[1.0, 0.0], [0.0, 0.0], [0.0, 0.0]],
                "{params}"
            );
        }
        let e = testing::apply::<OneHot>(
            r#"{"columns":["x"],"handle_unknown":"error"}"#,
            Some(&state),
            &live,
        )
        .unwrap_err();
        assert_eq!(
            e,
            Error::value(
                "x",
                2,
                "unknown category 'c' (not seen at fit time); refit, or use handle_unknown=ignore"
            )
        );
        // Nulls are not unknown categories.
        let nulls = testing::batch(vec![("x", strs(&[None, Some("b")]))]);
        testing::apply::<OneHot>(
            r#"{"columns":["x"],"handle_unknown":"error"}"#,
            Some(&state),
            &nulls,
        )
        .unwrap();
    }

    #[test]
    fn errors_name_the_column() {
        let b = testing::batch(vec![
            (
                "n",
                Arc::new(Float64Array::from(vec![1.0, 2.0])) as ArrayRef,
            ),
            ("s", strs(&[None, None])),
            (
                "l",
                Arc::new(LargeStringArray::from(vec!["a", "b"])) as ArrayRef,
            ),
        ]);
        let fit_err = |params: &str| testing::fit::<OneHot>(params, std::slice::from_ref(&b));
        let cases: Vec<(&str, Error)> = vec![
            (
                r#"{"columns":["n"]}"#,
                columns::wrong_type("n", "Utf8", &DataType::Float64),
            ),
            (
                r#"{"columns":["l"]}"#,
                columns::wrong_type("l", "Utf8", &DataType::LargeUtf8),
            ),
            (
                r#"{"columns":["nope"]}"#,
                Error::column("nope", "no such column; the input has: n, s, l"),
            ),
            (
                r#"{"columns":["s"]}"#,
                Error::column(
                    "s",
                    "no non-null values to learn categories from; impute the column first or drop it",
                ),
            ),
        ];
        for (params, want) in cases {
            assert_eq!(fit_err(params).unwrap_err(), want, "{params}");
        }
        for params in [
            r#"{"columns":["s"],"handle_unknown":"explode"}"#,
            r#"{"columns":[]}"#,
            r#"{"columns":["s","s"]}"#,
            r#"{"columns":["s"],"max_categories":3}"#,
        ] {
            assert!(
                matches!(fit_err(params).unwrap_err(), Error::InvalidParams(_)),
                "{params}"
            );
        }

        // At apply time: missing or retyped column, a state for other
        // columns, no state, and output names that clash.
        let train = testing::batch(vec![
            ("a", strs(&some(&["b_c", "x"]))),
            ("a_b", strs(&some(&["c"]).repeat(2))),
        ]);
        let state =
            testing::fit::<OneHot>(r#"{"columns":["a","a_b"]}"#, std::slice::from_ref(&train))
                .unwrap();
        let apply = |params: &str, batch: &RecordBatch| {
            testing::apply::<OneHot>(params, Some(&state), batch).unwrap_err()
        };
        // "a" with category "b_c" and "a_b" with category "c" both make "a_b_c".
        assert_eq!(
            apply(r#"{"columns":["a","a_b"]}"#, &train),
            Error::column(
                "a_b",
                "output column 'a_b_c' would clash with an existing column of that name; rename one of them"
            )
        );
        let a_only =
            testing::fit::<OneHot>(r#"{"columns":["a"]}"#, std::slice::from_ref(&train)).unwrap();
        let clash = testing::batch(vec![
            ("a", strs(&some(&["x"]))),
            ("a_x", strs(&some(&["q"]))),
        ]);
        assert_eq!(
            testing::apply::<OneHot>(r#"{"columns":["a"]}"#, Some(&a_only), &clash).unwrap_err(),
            Error::column(
                "a",
                "output column 'a_x' would clash with an existing column of that name; rename one of them"
            )
        );
        let other = testing::batch(vec![("y", strs(&some(&["x"])))]);
        assert_eq!(
            testing::apply::<OneHot>(r#"{"columns":["a"]}"#, Some(&a_only), &other).unwrap_err(),
            Error::column("a", "no such column; the input has: y")
        );
        let retyped = testing::batch(vec![("a", Arc::new(Int32Array::from(vec![1])) as ArrayRef)]);
        assert_eq!(
            testing::apply::<OneHot>(r#"{"columns":["a"]}"#, Some(&a_only), &retyped).unwrap_err(),
            columns::wrong_type("a", "Utf8", &DataType::Int32)
        );
        assert!(matches!(
            apply(r#"{"columns":["a"]}"#, &train),
            Error::InvalidState(_)
        ));
        assert!(matches!(
            testing::apply::<OneHot>(r#"{"columns":["a"]}"#, None, &train).unwrap_err(),
            Error::InvalidState(_)
        ));
        let unsorted = br#"[{"column":"a","categories":["x","b"]}]"#;
        assert!(matches!(
            testing::apply::<OneHot>(r#"{"columns":["a"]}"#, Some(unsorted), &train).unwrap_err(),
            Error::InvalidState(_)
        ));
    }
}
