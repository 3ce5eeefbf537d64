//! `one-hot`: one-hot encode string columns, like scikit-learn's
//! `OneHotEncoder(sparse_output=False)`.
//!
//! Fit learns the vocabulary of each listed `Utf8` column (nulls are not a
//! category); categories are sorted by their UTF-8 bytes. Transform replaces
//! the column, at its position, by one `Float64` column per category named
//! `<column>_<category>` (scikit-learn's `get_feature_names_out`), holding
//! 1.0 where the row has that category and 0.0 elsewhere. A null row is all
//! zeros. An unseen category is all zeros with `handle_unknown: "ignore"`
//! (the default) or an error naming the column, row and value with
//! `"error"`.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use kiln_sdk::arrow_array::{Array, ArrayRef, Float64Array, RecordBatch};
use kiln_sdk::arrow_schema::{DataType, Field, Schema};
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

/// Vocabulary of one column.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Vocabulary {
    /// Column name.
    pub column: String,
    /// Sorted categories.
    pub categories: Vec<String>,
}

/// The configured encoder.
pub struct OneHot {
    params: Params,
    vocab: Vec<Vocabulary>,
}

fn check_params(p: &Params) -> Result<()> {
    if p.columns.is_empty() {
        return Err(Error::InvalidParams(
            "`columns` lists no column to encode".into(),
        ));
    }
    Ok(())
}

impl FittedTransform for OneHot {
    type Params = Params;
    type Partial = Vec<BTreeSet<String>>;
    type State = Vec<Vocabulary>;

    fn info() -> PluginInfo {
        PluginInfo::new(
            "one-hot",
            env!("CARGO_PKG_VERSION"),
            "One-hot encode Utf8 columns into Float64 columns <column>_<category>, categories sorted and learned at fit time; unknown categories are all zeros (handle_unknown=ignore) or an error.",
        )
        .with_params_schema(
            r#"{"type":"object","required":["columns"],"additionalProperties":false,"properties":{"columns":{"type":"array","items":{"type":"string"},"description":"Utf8 columns to encode"},"handle_unknown":{"enum":["ignore","error"],"default":"ignore"}}}"#,
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

    fn merge(_: &Params, a: Self::Partial, b: Self::Partial) -> Result<Self::Partial> {
        if a.len() != b.len() {
            return Err(Error::InvalidState(
                "partial states of different column counts".into(),
            ));
        }
        Ok(a.into_iter()
            .zip(b)
            .map(|(mut x, y)| {
                x.extend(y);
                x
            })
            .collect())
    }

    fn finish(params: &Params, partial: Self::Partial) -> Result<Self::State> {
        params
            .columns
            .iter()
            .zip(partial)
            .map(|(c, set)| {
                if set.is_empty() {
                    return Err(Error::column(
                        c,
                        "no non-null values to learn categories from",
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
        if fitted
            != params
                .columns
                .iter()
                .map(String::as_str)
                .collect::<Vec<_>>()
        {
            return Err(Error::InvalidState(format!(
                "state was fitted on columns {fitted:?} but the parameters list {:?}",
                params.columns
            )));
        }
        Ok(OneHot { params, vocab })
    }

    fn output_schema(&self, input: &Schema) -> Result<Schema> {
        let mut schema = input.clone();
        for v in &self.vocab {
            let f = columns::field(&schema, &v.column)?;
            if f.data_type() != &DataType::Utf8 {
                return Err(columns::wrong_type(&v.column, "Utf8", f.data_type()));
            }
            schema = columns::splice_schema(&schema, &v.column, new_fields(v), false)?;
        }
        Ok(schema)
    }

    fn transform(&self, batch: &RecordBatch) -> Result<RecordBatch> {
        let mut batch = batch.clone();
        for v in &self.vocab {
            let strings = columns::utf8(&batch, &v.column)?;
            let index: BTreeMap<&str, usize> = v
                .categories
                .iter()
                .enumerate()
                .map(|(i, c)| (c.as_str(), i))
                .collect();
            let n = strings.len();
            let mut outs: Vec<Vec<f64>> = vec![vec![0.0; n]; v.categories.len()];
            for (row, s) in strings.iter().enumerate() {
                let Some(s) = s else { continue };
                match index.get(s) {
                    Some(&k) => outs[k][row] = 1.0,
                    None if self.params.handle_unknown == HandleUnknown::Error => {
                        return Err(Error::value(
                            &v.column,
                            row,
                            format!("unknown category '{s}' (not seen at fit time); refit, or use handle_unknown=ignore"),
                        ))
                    }
                    None => {}
                }
            }
            let new: Vec<(Field, ArrayRef)> = new_fields(v)
                .into_iter()
                .zip(outs)
                .map(|(f, o)| (f, Arc::new(Float64Array::from(o)) as ArrayRef))
                .collect();
            batch = columns::splice(&batch, &v.column, new, false)?;
        }
        Ok(batch)
    }
}

fn new_fields(v: &Vocabulary) -> Vec<Field> {
    v.categories
        .iter()
        .map(|c| Field::new(format!("{}_{c}", v.column), DataType::Float64, false))
        .collect()
}

kiln_sdk::export!(OneHot);

#[cfg(test)]
mod tests {
    use super::*;
    use kiln_sdk::arrow_array::StringArray;
    use kiln_sdk::testing;

    fn strs(v: Vec<Option<&str>>) -> ArrayRef {
        Arc::new(StringArray::from(v))
    }

    fn col(b: &RecordBatch, name: &str) -> Vec<f64> {
        b.column_by_name(name)
            .unwrap()
            .as_any()
            .downcast_ref::<Float64Array>()
            .unwrap()
            .values()
            .to_vec()
    }

    #[test]
    fn encodes_sorted_categories_in_place() {
        // sklearn OneHotEncoder().fit([["b"],["a"],["c"],["a"]]).get_feature_names_out(["x"])
        // -> ['x_a', 'x_b', 'x_c']
        let train = testing::batch(vec![
            (
                "k",
                Arc::new(kiln_sdk::arrow_array::Int32Array::from(vec![1, 2, 3, 4])) as ArrayRef,
            ),
            ("x", strs(vec![Some("b"), Some("a"), Some("c"), Some("a")])),
        ]);
        let state = testing::fit::<OneHot>(r#"{"columns":["x"]}"#, &[train]).unwrap();
        let live = testing::batch(vec![
            (
                "k",
                Arc::new(kiln_sdk::arrow_array::Int32Array::from(vec![1, 2, 3])) as ArrayRef,
            ),
            ("x", strs(vec![Some("c"), None, Some("zzz")])),
        ]);
        let out = testing::apply::<OneHot>(r#"{"columns":["x"]}"#, Some(&state), &live).unwrap();
        let names: Vec<_> = out
            .schema()
            .fields()
            .iter()
            .map(|f| f.name().clone())
            .collect();
        assert_eq!(names, ["k", "x_a", "x_b", "x_c"]);
        assert_eq!(col(&out, "x_a"), [0.0, 0.0, 0.0]);
        assert_eq!(col(&out, "x_b"), [0.0, 0.0, 0.0]);
        assert_eq!(col(&out, "x_c"), [1.0, 0.0, 0.0]);
    }

    #[test]
    fn unknown_categories_can_be_errors_naming_row_and_value() {
        let train = testing::batch(vec![("x", strs(vec![Some("a")]))]);
        let state = testing::fit::<OneHot>(r#"{"columns":["x"]}"#, &[train]).unwrap();
        let live = testing::batch(vec![("x", strs(vec![Some("a"), Some("b")]))]);
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
                1,
                "unknown category 'b' (not seen at fit time); refit, or use handle_unknown=ignore"
            )
        );
    }

    #[test]
    fn batches_merge_into_one_vocabulary() {
        let a = testing::batch(vec![("x", strs(vec![Some("z"), Some("m")]))]);
        let b = testing::batch(vec![("x", strs(vec![Some("a"), None, Some("m")]))]);
        let state: Vec<Vocabulary> = serde_json::from_slice(
            &testing::fit::<OneHot>(r#"{"columns":["x"]}"#, &[a, b]).unwrap(),
        )
        .unwrap();
        assert_eq!(state[0].categories, ["a", "m", "z"]);
    }

    #[test]
    fn wrong_type_and_bad_params_are_reported() {
        let b = testing::batch(vec![(
            "n",
            Arc::new(Float64Array::from(vec![1.0])) as ArrayRef,
        )]);
        let e =
            testing::fit::<OneHot>(r#"{"columns":["n"]}"#, std::slice::from_ref(&b)).unwrap_err();
        assert!(
            e.to_string().contains("'n'") && e.to_string().contains("Utf8"),
            "{e}"
        );
        let e = testing::fit::<OneHot>(r#"{"columns":["n"],"handle_unknown":"explode"}"#, &[b])
            .unwrap_err();
        assert!(matches!(e, Error::InvalidParams(_)), "{e}");
    }
}
