//! `impute`: fill nulls, like scikit-learn's `SimpleImputer`.
//!
//! Strategies:
//! - `mean`, `median`: numeric columns; the output is `Float64`. The median
//!   is exact (the average of the two middle values for an even count, as
//!   `numpy.median`), so the partial state keeps each column's distinct
//!   values with their counts: memory grows with the number of distinct
//!   values, which is the price of an exact, mergeable median.
//! - `most_frequent`: numeric or `Utf8` columns; keeps the column's type;
//!   ties go to the smallest value (as scikit-learn).
//! - `constant`: fills with `fill_value` (a number for numeric columns, a
//!   string for `Utf8`), keeps the type, and needs no fit.
//!
//! NaN counts as missing in numeric columns (as scikit-learn's default
//! `missing_values=np.nan`) and is filled too. A column with no value to
//! learn from is an error naming it (scikit-learn drops such a column; Kiln
//! refuses, so a feature never silently disappears).

use std::collections::BTreeMap;
use std::sync::Arc;

use kiln_sdk::arrow_array::cast::AsArray;
use kiln_sdk::arrow_array::types::*;
use kiln_sdk::arrow_array::{
    Array, ArrayRef, ArrowPrimitiveType, Float64Array, PrimitiveArray, RecordBatch, StringArray,
};
use kiln_sdk::arrow_schema::{DataType, Field, Schema};
use kiln_sdk::{columns, Error, FittedTransform, PluginInfo, PluginKind, Result};
use serde::{Deserialize, Serialize};

/// How to compute the fill value.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Strategy {
    /// Mean of the present values (numeric).
    Mean,
    /// Median of the present values (numeric).
    Median,
    /// Most frequent value, smallest on ties (numeric or Utf8).
    MostFrequent,
    /// `fill_value`.
    Constant,
}

/// Parameters of `impute`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Params {
    /// Columns to impute.
    pub columns: Vec<String>,
    /// The strategy.
    pub strategy: Strategy,
    /// The value for `constant`.
    #[serde(default)]
    pub fill_value: Option<serde_json::Value>,
}

/// What to fill one column with.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "snake_case")]
pub enum Fill {
    /// A number.
    Number(f64),
    /// A string.
    Text(String),
}

/// Partial statistics of one column (only the strategy's fields are used).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Partial {
    /// Present values.
    pub count: u64,
    /// Their sum.
    pub sum: f64,
    /// Distinct numeric values with counts, sorted.
    pub values: Vec<(f64, u64)>,
    /// Distinct strings with counts.
    pub text: BTreeMap<String, u64>,
}

/// The configured imputer.
pub struct Impute {
    params: Params,
    fills: Vec<Fill>,
}

fn check_params(p: &Params) -> Result<()> {
    if p.columns.is_empty() {
        return Err(Error::InvalidParams(
            "`columns` lists no column to impute".into(),
        ));
    }
    match (&p.strategy, &p.fill_value) {
        (Strategy::Constant, None) => Err(Error::InvalidParams(
            "strategy `constant` needs `fill_value`".into(),
        )),
        (Strategy::Constant, Some(v)) if !(v.is_number() || v.is_string()) => {
            Err(Error::InvalidParams(format!(
                "`fill_value` must be a number or a string, got {v}"
            )))
        }
        (s, Some(_)) if *s != Strategy::Constant => Err(Error::InvalidParams(
            "`fill_value` is only used with strategy `constant`".into(),
        )),
        _ => Ok(()),
    }
}

fn merge_sorted(a: Vec<(f64, u64)>, b: Vec<(f64, u64)>) -> Vec<(f64, u64)> {
    let mut out = Vec::with_capacity(a.len() + b.len());
    let (mut i, mut j) = (0, 0);
    while i < a.len() || j < b.len() {
        if j == b.len() || (i < a.len() && a[i].0 < b[j].0) {
            out.push(a[i]);
            i += 1;
        } else if i == a.len() || b[j].0 < a[i].0 {
            out.push(b[j]);
            j += 1;
        } else {
            out.push((a[i].0, a[i].1 + b[j].1));
            i += 1;
            j += 1;
        }
    }
    out
}

fn numeric_partial(strategy: Strategy, column: &str, x: &Float64Array) -> Result<Partial> {
    let mut p = Partial::default();
    let mut seen: BTreeMap<u64, (f64, u64)> = BTreeMap::new();
    for (row, v) in x.iter().enumerate() {
        let Some(v) = v.filter(|v| !v.is_nan()) else {
            continue;
        };
        if v.is_infinite() {
            return Err(Error::value(
                column,
                row,
                "infinite value; replace or drop it before imputing",
            ));
        }
        p.count += 1;
        p.sum += v;
        if strategy != Strategy::Mean {
            // Order-preserving key (+0.0 and -0.0 are one value).
            let v = if v == 0.0 { 0.0 } else { v };
            let bits = v.to_bits();
            let key = if bits >> 63 == 1 {
                !bits
            } else {
                bits | (1 << 63)
            };
            seen.entry(key).or_insert((v, 0)).1 += 1;
        }
    }
    p.values = seen.into_values().collect();
    Ok(p)
}

fn fill_of(strategy: Strategy, column: &str, p: Partial) -> Result<Fill> {
    let empty = || {
        Error::column(
            column,
            "no non-null values to learn a fill value from; use strategy `constant`",
        )
    };
    Ok(match strategy {
        Strategy::Mean if p.count == 0 => return Err(empty()),
        Strategy::Mean => Fill::Number(p.sum / p.count as f64),
        Strategy::Median => {
            let n: u64 = p.values.iter().map(|(_, c)| c).sum();
            if n == 0 {
                return Err(empty());
            }
            // Value at 0-based rank r in the sorted multiset.
            let at = |r: u64| {
                let mut acc = 0;
                for (v, c) in &p.values {
                    acc += c;
                    if r < acc {
                        return *v;
                    }
                }
                p.values.last().map(|(v, _)| *v).unwrap_or(f64::NAN)
            };
            Fill::Number(if n % 2 == 1 {
                at(n / 2)
            } else {
                (at(n / 2 - 1) + at(n / 2)) / 2.0
            })
        }
        Strategy::MostFrequent => {
            if !p.text.is_empty() {
                // BTreeMap order: the first maximum is the smallest string.
                let (s, _) =
                    p.text.iter().fold(
                        (None, 0),
                        |(best, bc), (s, c)| if *c > bc { (Some(s), *c) } else { (best, bc) },
                    );
                Fill::Text(s.cloned().ok_or_else(empty)?)
            } else {
                let (v, _) = p.values.iter().fold((None, 0), |(best, bc), (v, c)| {
                    if *c > bc {
                        (Some(*v), *c)
                    } else {
                        (best, bc)
                    }
                });
                Fill::Number(v.ok_or_else(empty)?)
            }
        }
        Strategy::Constant => return Err(Error::Internal("constant needs no fit".into())),
    })
}

impl Impute {
    fn constant_fill(&self) -> Option<Fill> {
        match &self.params.fill_value {
            Some(serde_json::Value::String(s)) => Some(Fill::Text(s.clone())),
            Some(v) => v.as_f64().map(Fill::Number),
            None => None,
        }
    }

    /// Output type of a column of type `t`.
    fn out_type(&self, column: &str, t: &DataType, fill: Option<&Fill>) -> Result<DataType> {
        match self.params.strategy {
            Strategy::Mean | Strategy::Median => {
                if columns::is_numeric(t) {
                    Ok(DataType::Float64)
                } else {
                    Err(columns::wrong_type(
                        column,
                        "a numeric type for mean/median",
                        t,
                    ))
                }
            }
            Strategy::MostFrequent | Strategy::Constant => match (t, fill) {
                (DataType::Utf8, None | Some(Fill::Text(_))) => Ok(DataType::Utf8),
                (t, None | Some(Fill::Number(_))) if columns::is_numeric(t) => Ok(t.clone()),
                (DataType::Utf8, Some(Fill::Number(_))) => Err(Error::InvalidParams(format!(
                    "column '{column}' is Utf8 but the fill value is a number; quote it"
                ))),
                (t, Some(Fill::Text(_))) if columns::is_numeric(t) => Err(Error::InvalidParams(
                    format!("column '{column}' is {t} but the fill value is a string"),
                )),
                (t, _) => Err(columns::wrong_type(column, "a numeric or Utf8 type", t)),
            },
        }
    }
}

fn fill_primitive<T: ArrowPrimitiveType>(a: &dyn Array, fill: T::Native) -> ArrayRef {
    let a = a.as_primitive::<T>();
    let filled = PrimitiveArray::<T>::from_iter_values((0..a.len()).map(|i| {
        if a.is_null(i) {
            fill
        } else {
            a.value(i)
        }
    }));
    Arc::new(filled.with_data_type(a.data_type().clone()))
}

fn fill_number(column: &str, a: &dyn Array, v: f64) -> Result<ArrayRef> {
    let int = |lo: f64, hi: f64| -> Result<f64> {
        if v.fract() != 0.0 || v < lo || v > hi {
            Err(Error::InvalidParams(format!(
                "fill value {v} does not fit column '{column}' of type {}",
                a.data_type()
            )))
        } else {
            Ok(v)
        }
    };
    Ok(match a.data_type() {
        DataType::Float64 => {
            // NaN is missing too.
            let x = a.as_primitive::<Float64Type>();
            Arc::new(Float64Array::from_iter_values(
                x.iter().map(|o| o.filter(|f| !f.is_nan()).unwrap_or(v)),
            ))
        }
        DataType::Float32 => {
            let x = a.as_primitive::<Float32Type>();
            Arc::new(PrimitiveArray::<Float32Type>::from_iter_values(
                x.iter()
                    .map(|o| o.filter(|f| !f.is_nan()).unwrap_or(v as f32)),
            ))
        }
        DataType::Int8 => fill_primitive::<Int8Type>(a, int(i8::MIN as f64, i8::MAX as f64)? as i8),
        DataType::Int16 => {
            fill_primitive::<Int16Type>(a, int(i16::MIN as f64, i16::MAX as f64)? as i16)
        }
        DataType::Int32 => {
            fill_primitive::<Int32Type>(a, int(i32::MIN as f64, i32::MAX as f64)? as i32)
        }
        DataType::Int64 => {
            fill_primitive::<Int64Type>(a, int(i64::MIN as f64, i64::MAX as f64)? as i64)
        }
        DataType::UInt8 => fill_primitive::<UInt8Type>(a, int(0.0, u8::MAX as f64)? as u8),
        DataType::UInt16 => fill_primitive::<UInt16Type>(a, int(0.0, u16::MAX as f64)? as u16),
        DataType::UInt32 => fill_primitive::<UInt32Type>(a, int(0.0, u32::MAX as f64)? as u32),
        DataType::UInt64 => fill_primitive::<UInt64Type>(a, int(0.0, u64::MAX as f64)? as u64),
        other => return Err(columns::wrong_type(column, "a numeric type", other)),
    })
}

impl FittedTransform for Impute {
    type Params = Params;
    type Partial = Vec<Partial>;
    type State = Vec<Fill>;

    fn info() -> PluginInfo {
        PluginInfo::new(
            "impute",
            env!("CARGO_PKG_VERSION"),
            "Fill nulls (and NaN) with the mean, exact median, most frequent value or a constant, like scikit-learn's SimpleImputer. mean/median output Float64; most_frequent/constant keep the type.",
        )
        .with_kind(PluginKind::OptionallyFitted)
        .with_params_schema(
            r#"{"type":"object","required":["columns","strategy"],"additionalProperties":false,"properties":{"columns":{"type":"array","items":{"type":"string"}},"strategy":{"enum":["mean","median","most_frequent","constant"]},"fill_value":{"type":["number","string"],"description":"required for strategy constant"}}}"#,
        )
    }

    fn needs_fit(params: &Params) -> bool {
        params.strategy != Strategy::Constant
    }

    fn fit_partial(params: &Params, batch: &RecordBatch) -> Result<Vec<Partial>> {
        check_params(params)?;
        if params.strategy == Strategy::Constant {
            return Err(Error::InvalidParams(
                "strategy `constant` needs no fit; run it directly".into(),
            ));
        }
        params
            .columns
            .iter()
            .map(|c| {
                let col = columns::column(batch, c)?;
                if col.data_type() == &DataType::Utf8 && params.strategy == Strategy::MostFrequent {
                    let mut p = Partial::default();
                    for s in col.as_string::<i32>().iter().flatten() {
                        *p.text.entry(s.to_owned()).or_default() += 1;
                    }
                    return Ok(p);
                }
                let x = columns::numeric_as_f64(batch, c)?;
                numeric_partial(params.strategy, c, &x)
            })
            .collect()
    }

    fn merge(_: &Params, a: Vec<Partial>, b: Vec<Partial>) -> Result<Vec<Partial>> {
        if a.len() != b.len() {
            return Err(Error::InvalidState(
                "partial states of different column counts".into(),
            ));
        }
        Ok(a.into_iter()
            .zip(b)
            .map(|(mut x, y)| {
                x.count += y.count;
                x.sum += y.sum;
                x.values = merge_sorted(std::mem::take(&mut x.values), y.values);
                for (k, v) in y.text {
                    *x.text.entry(k).or_default() += v;
                }
                x
            })
            .collect())
    }

    fn finish(params: &Params, partial: Vec<Partial>) -> Result<Vec<Fill>> {
        params
            .columns
            .iter()
            .zip(partial)
            .map(|(c, p)| fill_of(params.strategy, c, p))
            .collect()
    }

    fn new(params: Params, state: Option<Vec<Fill>>) -> Result<Self> {
        check_params(&params)?;
        let mut imp = Impute {
            params,
            fills: Vec::new(),
        };
        imp.fills = match (imp.params.strategy, state) {
            (Strategy::Constant, _) => {
                let f = imp
                    .constant_fill()
                    .ok_or_else(|| Error::InvalidParams("bad fill_value".into()))?;
                vec![f; imp.params.columns.len()]
            }
            (_, None) => {
                return Err(Error::InvalidState(
                    "this strategy needs a fitted state".into(),
                ))
            }
            (_, Some(s)) if s.len() != imp.params.columns.len() => {
                return Err(Error::InvalidState(
                    "state and parameters list different columns".into(),
                ))
            }
            (_, Some(s)) => s,
        };
        Ok(imp)
    }

    fn output_schema(&self, input: &Schema) -> Result<Schema> {
        let mut schema = input.clone();
        for (c, fill) in self.params.columns.iter().zip(&self.fills) {
            let f = columns::field(&schema, c)?;
            let t = self.out_type(c, f.data_type(), Some(fill))?;
            schema = columns::splice_schema(&schema, c, vec![Field::new(c, t, false)], false)?;
        }
        Ok(schema)
    }

    fn transform(&self, batch: &RecordBatch) -> Result<RecordBatch> {
        let mut batch = batch.clone();
        for (c, fill) in self.params.columns.iter().zip(&self.fills) {
            let col = columns::column(&batch, c)?.clone();
            let t = self.out_type(c, col.data_type(), Some(fill))?;
            let out: ArrayRef = match (fill, &t) {
                (Fill::Text(s), _) => {
                    let a = col.as_string::<i32>();
                    Arc::new(StringArray::from_iter_values(
                        a.iter().map(|o| o.unwrap_or(s)),
                    ))
                }
                (Fill::Number(v), DataType::Float64) => {
                    fill_number(c, &columns::numeric_as_f64(&batch, c)?, *v)?
                }
                (Fill::Number(v), _) => fill_number(c, col.as_ref(), *v)?,
            };
            batch = columns::splice(&batch, c, vec![(Field::new(c, t, false), out)], false)?;
        }
        Ok(batch)
    }
}

kiln_sdk::export!(Impute);

#[cfg(test)]
mod tests {
    use super::*;
    use kiln_sdk::arrow_array::Int64Array;
    use kiln_sdk::testing;

    fn f64s(v: Vec<Option<f64>>) -> ArrayRef {
        Arc::new(Float64Array::from(v))
    }

    fn out_f64(b: &RecordBatch, c: &str) -> Vec<f64> {
        b.column_by_name(c)
            .unwrap()
            .as_primitive::<Float64Type>()
            .values()
            .to_vec()
    }

    #[test]
    fn strategies_match_simple_imputer() {
        // SimpleImputer(strategy=s).fit_transform([[1],[nan],[2],[2],[10],[nan]]) gives
        // mean 3.75, median 2.0, most_frequent 2.0 in the missing rows (scikit-learn 1.x).
        let x = f64s(vec![
            Some(1.0),
            None,
            Some(2.0),
            Some(2.0),
            Some(10.0),
            Some(f64::NAN),
        ]);
        let b = testing::batch(vec![("x", x)]);
        for (strategy, want) in [("mean", 3.75), ("median", 2.0), ("most_frequent", 2.0)] {
            let out = testing::fit_apply::<Impute>(
                &format!(r#"{{"columns":["x"],"strategy":"{strategy}"}}"#),
                std::slice::from_ref(&b),
            )
            .unwrap();
            assert_eq!(
                out_f64(&out[0], "x"),
                [1.0, want, 2.0, 2.0, 10.0, want],
                "{strategy}"
            );
        }
    }

    #[test]
    fn even_count_median_averages_the_middle_and_merges_across_batches() {
        // numpy.median([4, 1, 3, 2, 8, 7]) == 3.5
        let a = testing::batch(vec![("x", f64s(vec![Some(4.0), Some(1.0), None]))]);
        let b = testing::batch(vec![(
            "x",
            f64s(vec![Some(3.0), Some(2.0), Some(8.0), Some(7.0)]),
        )]);
        let state: Vec<Fill> = serde_json::from_slice(
            &testing::fit::<Impute>(r#"{"columns":["x"],"strategy":"median"}"#, &[a, b]).unwrap(),
        )
        .unwrap();
        assert_eq!(state, [Fill::Number(3.5)]);
    }

    #[test]
    fn most_frequent_strings_ties_go_to_the_smallest() {
        let s = Arc::new(StringArray::from(vec![
            Some("b"),
            Some("a"),
            None,
            Some("b"),
            Some("a"),
        ])) as ArrayRef;
        let b = testing::batch(vec![("s", s)]);
        let out =
            testing::fit_apply::<Impute>(r#"{"columns":["s"],"strategy":"most_frequent"}"#, &[b])
                .unwrap();
        let got: Vec<&str> = out[0]
            .column(0)
            .as_string::<i32>()
            .iter()
            .map(|o| o.unwrap())
            .collect();
        assert_eq!(got, ["b", "a", "a", "b", "a"]);
    }

    #[test]
    fn constant_keeps_the_type_and_needs_no_fit() {
        let b = testing::batch(vec![(
            "n",
            Arc::new(Int64Array::from(vec![Some(5), None])) as ArrayRef,
        )]);
        let out = testing::apply::<Impute>(
            r#"{"columns":["n"],"strategy":"constant","fill_value":-1}"#,
            None,
            &b,
        )
        .unwrap();
        assert_eq!(
            out.column(0).as_primitive::<Int64Type>().values().to_vec(),
            [5, -1]
        );
        assert_eq!(out.schema().field(0).data_type(), &DataType::Int64);
        let e = testing::apply::<Impute>(
            r#"{"columns":["n"],"strategy":"constant","fill_value":0.5}"#,
            None,
            &b,
        )
        .unwrap_err();
        assert!(matches!(e, Error::InvalidParams(_)), "{e}");
        let e = testing::apply::<Impute>(r#"{"columns":["n"],"strategy":"constant"}"#, None, &b)
            .unwrap_err();
        assert!(e.to_string().contains("fill_value"), "{e}");
    }

    #[test]
    fn all_null_columns_and_wrong_types_are_errors_naming_the_column() {
        let b = testing::batch(vec![
            ("x", f64s(vec![None, None])),
            ("s", Arc::new(StringArray::from(vec!["a", "b"])) as ArrayRef),
        ]);
        let e = testing::fit::<Impute>(
            r#"{"columns":["x"],"strategy":"mean"}"#,
            std::slice::from_ref(&b),
        )
        .unwrap_err();
        assert!(e.to_string().contains("'x'"), "{e}");
        let e =
            testing::fit::<Impute>(r#"{"columns":["s"],"strategy":"median"}"#, &[b]).unwrap_err();
        assert!(e.to_string().contains("'s'"), "{e}");
    }
}
