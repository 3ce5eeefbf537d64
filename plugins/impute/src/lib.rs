//! `impute`: fill missing values, like scikit-learn's `SimpleImputer`.
//!
//! Missing means null, and also NaN in float columns (scikit-learn's
//! default `missing_values=np.nan`). Strategies:
//! - `mean`, `median`: numeric columns (any integer or float type); the
//!   output is `Float64`, as scikit-learn computes in floats.
//! - `most_frequent`: numeric or `Utf8` columns; the output keeps the
//!   column's type. Ties go to the smallest value (numbers by value,
//!   strings by bytes), as scikit-learn does.
//! - `constant`: fills with `fill_value`, which must fit the column's type
//!   (a number for numeric columns, and an integer in range for integer
//!   columns; a string for `Utf8`), else the parameters are invalid. It
//!   keeps the column's type and needs no fit.
//!
//! Every imputed column is declared non-nullable.
//!
//! Exactness: the median is exact (the average of the two middle values
//! for an even count, as `numpy.median`) and mergeable, so the partial
//! state of `median` and `most_frequent` keeps every distinct value of the
//! column with its count. Memory grows with the number of distinct values;
//! that is the price of an exact result in any batch split. Integer columns
//! are counted as integers, so a most frequent `Int64` or `UInt64` beyond
//! 2^53 is filled exactly, and the mean of an integer column is an exact
//! integer sum divided once. The mean of a float column is a sum of
//! per-batch sums, equal across batch splits up to rounding.
//!
//! A column with no present value at fit time is an error naming it
//! (scikit-learn drops such a column with a warning; Kiln refuses, so a
//! feature never silently disappears). An infinite value at fit time is an
//! error naming the column and row, as scikit-learn refuses infinity.

use std::collections::{BTreeMap, BTreeSet};
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
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Strategy {
    /// Mean of the present values (numeric columns; output `Float64`).
    Mean,
    /// Exact median of the present values (numeric columns; output `Float64`).
    Median,
    /// Most frequent value, smallest on ties (numeric or `Utf8`; keeps the type).
    MostFrequent,
    /// `fill_value` (keeps the type; no fit).
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
    /// The value for `constant` (a JSON number or string); only for `constant`.
    #[serde(default)]
    pub fill_value: Option<serde_json::Value>,
}

/// Partial statistics of one column, by strategy and column type.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "snake_case")]
pub enum Partial {
    /// `mean` of a float column: present values and their sum.
    FloatSum {
        /// Present values.
        count: u64,
        /// Their sum.
        sum: f64,
    },
    /// `mean` of an integer column: present values and their exact sum.
    IntSum {
        /// Present values.
        count: u64,
        /// Their sum.
        sum: i128,
    },
    /// Distinct float values with their counts, ascending (`-0.0` is `0.0`).
    Floats(Vec<(f64, u64)>),
    /// Distinct integer values with their counts, ascending.
    Ints(Vec<(i128, u64)>),
    /// Distinct strings with their counts.
    Strings(BTreeMap<String, u64>),
}

/// A fill value.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "snake_case")]
pub enum Fill {
    /// A float.
    Float(f64),
    /// An integer (exact for every Arrow integer type).
    Int(i128),
    /// A string.
    Text(String),
}

/// The fill value of one column.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ColumnFill {
    /// Column name.
    pub column: String,
    /// What its missing values become.
    pub fill: Fill,
}

/// Fitted state: the strategy it was fitted with and one fill per column,
/// in the order of `columns`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct State {
    /// Strategy used at fit time.
    pub strategy: Strategy,
    /// Fill values.
    pub fills: Vec<ColumnFill>,
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
    let mut seen = BTreeSet::new();
    for c in &p.columns {
        if !seen.insert(c) {
            return Err(Error::InvalidParams(format!("`columns` lists '{c}' twice")));
        }
    }
    match (p.strategy, &p.fill_value) {
        (Strategy::Constant, None) => Err(Error::InvalidParams(
            "strategy `constant` needs `fill_value`".into(),
        )),
        (Strategy::Constant, Some(v)) if !(v.is_number() || v.is_string()) => {
            Err(Error::InvalidParams(format!(
                "`fill_value` must be a number or a string, got {v}"
            )))
        }
        (Strategy::Constant, Some(_)) => Ok(()),
        (_, Some(_)) => Err(Error::InvalidParams(
            "`fill_value` is only used with strategy `constant`".into(),
        )),
        (_, None) => Ok(()),
    }
}

/// The fill value of `constant`, from its JSON form.
fn constant_fill(v: &serde_json::Value) -> Result<Fill> {
    match v {
        serde_json::Value::String(s) => Ok(Fill::Text(s.clone())),
        serde_json::Value::Number(n) => Ok(if let Some(i) = n.as_i64() {
            Fill::Int(i.into())
        } else if let Some(u) = n.as_u64() {
            Fill::Int(u.into())
        } else {
            Fill::Float(n.as_f64().unwrap_or(f64::NAN))
        }),
        other => Err(Error::InvalidParams(format!(
            "`fill_value` must be a number or a string, got {other}"
        ))),
    }
}

/// Inclusive range of an integer type.
fn int_range(t: &DataType) -> Option<(i128, i128)> {
    Some(match t {
        DataType::Int8 => (i8::MIN.into(), i8::MAX.into()),
        DataType::Int16 => (i16::MIN.into(), i16::MAX.into()),
        DataType::Int32 => (i32::MIN.into(), i32::MAX.into()),
        DataType::Int64 => (i64::MIN.into(), i64::MAX.into()),
        DataType::UInt8 => (0, u8::MAX.into()),
        DataType::UInt16 => (0, u16::MAX.into()),
        DataType::UInt32 => (0, u32::MAX.into()),
        DataType::UInt64 => (0, u64::MAX.into()),
        _ => return None,
    })
}

/// The values of an integer array as `i128` (exact); `None` for other types.
fn int_values(a: &dyn Array) -> Option<Vec<Option<i128>>> {
    macro_rules! ints {
        ($t:ty) => {
            a.as_primitive::<$t>()
                .iter()
                .map(|o| o.map(i128::from))
                .collect()
        };
    }
    Some(match a.data_type() {
        DataType::Int8 => ints!(Int8Type),
        DataType::Int16 => ints!(Int16Type),
        DataType::Int32 => ints!(Int32Type),
        DataType::Int64 => ints!(Int64Type),
        DataType::UInt8 => ints!(UInt8Type),
        DataType::UInt16 => ints!(UInt16Type),
        DataType::UInt32 => ints!(UInt32Type),
        DataType::UInt64 => ints!(UInt64Type),
        _ => return None,
    })
}

/// Sorted distinct values with counts.
fn counts<K: Copy>(mut v: Vec<K>, cmp: impl Fn(&K, &K) -> std::cmp::Ordering) -> Vec<(K, u64)> {
    v.sort_by(&cmp);
    let mut out: Vec<(K, u64)> = Vec::new();
    for k in v {
        match out.last_mut() {
            Some((last, c)) if cmp(last, &k).is_eq() => *c += 1,
            _ => out.push((k, 1)),
        }
    }
    out
}

/// Merge two ascending `(value, count)` lists.
fn merge_sorted<K: Copy>(
    a: Vec<(K, u64)>,
    b: Vec<(K, u64)>,
    cmp: impl Fn(&K, &K) -> std::cmp::Ordering,
) -> Vec<(K, u64)> {
    let mut out: Vec<(K, u64)> = Vec::with_capacity(a.len() + b.len());
    let (mut a, mut b) = (a.into_iter().peekable(), b.into_iter().peekable());
    loop {
        let next = match (a.peek(), b.peek()) {
            (Some(x), Some(y)) if cmp(&x.0, &y.0).is_le() => a.next(),
            (Some(_), Some(_)) => b.next(),
            (Some(_), None) => a.next(),
            (None, Some(_)) => b.next(),
            (None, None) => break,
        };
        let Some((k, c)) = next else { break };
        match out.last_mut() {
            Some((last, n)) if cmp(last, &k).is_eq() => *n += c,
            _ => out.push((k, c)),
        }
    }
    out
}

fn float_cmp(a: &f64, b: &f64) -> std::cmp::Ordering {
    a.total_cmp(b)
}

impl Partial {
    /// Partial statistics of one batch's column.
    fn of(strategy: Strategy, column: &str, a: &dyn Array) -> Result<Partial> {
        let t = a.data_type();
        if t == &DataType::Utf8 {
            if strategy != Strategy::MostFrequent {
                return Err(columns::wrong_type(
                    column,
                    "a numeric type (integer or float) for strategy mean or median",
                    t,
                ));
            }
            let mut m = BTreeMap::new();
            for s in a.as_string::<i32>().iter().flatten() {
                *m.entry(s.to_owned()).or_default() += 1;
            }
            return Ok(Partial::Strings(m));
        }
        if let Some(ints) = int_values(a) {
            let present: Vec<i128> = ints.into_iter().flatten().collect();
            return Ok(if strategy == Strategy::Mean {
                Partial::IntSum {
                    count: present.len() as u64,
                    sum: present.iter().sum(),
                }
            } else {
                Partial::Ints(counts(present, i128::cmp))
            });
        }
        let floats = t
            .is_floating()
            .then(|| columns::array_as_f64(a))
            .flatten()
            .ok_or_else(|| {
                let want = if strategy == Strategy::MostFrequent {
                    "a numeric (integer or float) or Utf8 type"
                } else {
                    "a numeric type (integer or float) for strategy mean or median"
                };
                columns::wrong_type(column, want, t)
            })?;
        let mut present = Vec::with_capacity(floats.len());
        for (row, v) in floats.iter().enumerate() {
            let Some(v) = v.filter(|v| !v.is_nan()) else {
                continue;
            };
            if v.is_infinite() {
                return Err(Error::value(
                    column,
                    row,
                    format!("infinite value ({v}); replace or drop it before imputing"),
                ));
            }
            // +0.0 and -0.0 are one value.
            present.push(if v == 0.0 { 0.0 } else { v });
        }
        Ok(if strategy == Strategy::Mean {
            Partial::FloatSum {
                count: present.len() as u64,
                sum: present.iter().sum(),
            }
        } else {
            Partial::Floats(counts(present, float_cmp))
        })
    }

    /// Whether no value was seen.
    fn is_empty(&self) -> bool {
        match self {
            Partial::FloatSum { count, .. } | Partial::IntSum { count, .. } => *count == 0,
            Partial::Floats(v) => v.is_empty(),
            Partial::Ints(v) => v.is_empty(),
            Partial::Strings(m) => m.is_empty(),
        }
    }

    /// Merge two partials of one column. An integer column in some batches
    /// and a float column in others (CSV type inference per file) merge as
    /// floats.
    fn merge(column: &str, a: Partial, b: Partial) -> Result<Partial> {
        use Partial::*;
        if a.is_empty() {
            return Ok(b);
        }
        if b.is_empty() {
            return Ok(a);
        }
        let as_floats = |v: Vec<(i128, u64)>| -> Vec<(f64, u64)> {
            // Monotone, so still sorted; values that round together merge.
            merge_sorted(
                Vec::new(),
                v.into_iter().map(|(k, c)| (k as f64, c)).collect(),
                float_cmp,
            )
        };
        Ok(match (a, b) {
            (FloatSum { count: c1, sum: s1 }, FloatSum { count: c2, sum: s2 }) => FloatSum {
                count: c1 + c2,
                sum: s1 + s2,
            },
            (IntSum { count: c1, sum: s1 }, IntSum { count: c2, sum: s2 }) => IntSum {
                count: c1 + c2,
                sum: s1.checked_add(s2).ok_or_else(|| {
                    Error::column(column, "the sum of the values overflows 128 bits")
                })?,
            },
            (IntSum { count: c1, sum: s1 }, FloatSum { count: c2, sum: s2 })
            | (FloatSum { count: c2, sum: s2 }, IntSum { count: c1, sum: s1 }) => FloatSum {
                count: c1 + c2,
                sum: s1 as f64 + s2,
            },
            (Floats(x), Floats(y)) => Floats(merge_sorted(x, y, float_cmp)),
            (Ints(x), Ints(y)) => Ints(merge_sorted(x, y, i128::cmp)),
            (Ints(x), Floats(y)) | (Floats(y), Ints(x)) => {
                Floats(merge_sorted(as_floats(x), y, float_cmp))
            }
            (Strings(mut x), Strings(y)) => {
                for (k, c) in y {
                    *x.entry(k).or_default() += c;
                }
                Strings(x)
            }
            (Strings(_), _) | (_, Strings(_)) => {
                return Err(Error::column(
                    column,
                    "Utf8 in some batches and numeric in others; cast the column to one type",
                ))
            }
            _ => {
                return Err(Error::InvalidState(format!(
                    "partial states of column '{column}' come from different strategies"
                )))
            }
        })
    }

    /// The fill value for `strategy`.
    fn finish(self, strategy: Strategy, column: &str) -> Result<Fill> {
        if self.is_empty() {
            return Err(Error::column(
                column,
                "no non-null values to learn a fill value from; use strategy `constant` or drop the column",
            ));
        }
        let fill = match (strategy, self) {
            (Strategy::Mean, Partial::FloatSum { count, sum }) => Fill::Float(sum / count as f64),
            (Strategy::Mean, Partial::IntSum { count, sum }) => {
                Fill::Float(sum as f64 / count as f64)
            }
            (Strategy::Median, Partial::Floats(v)) => {
                let (lo, hi) = middle(&v);
                let m = (lo + hi) / 2.0;
                Fill::Float(if m.is_finite() {
                    m
                } else {
                    lo / 2.0 + hi / 2.0
                })
            }
            (Strategy::Median, Partial::Ints(v)) => {
                let (lo, hi) = middle(&v);
                Fill::Float((lo + hi) as f64 / 2.0)
            }
            (Strategy::MostFrequent, Partial::Floats(v)) => Fill::Float(mode(&v)),
            (Strategy::MostFrequent, Partial::Ints(v)) => Fill::Int(mode(&v)),
            (Strategy::MostFrequent, Partial::Strings(m)) => {
                // Ascending order: the first maximum is the smallest string.
                let mut best: Option<(&String, u64)> = None;
                for (s, c) in &m {
                    if best.is_none_or(|(_, b)| *c > b) {
                        best = Some((s, *c));
                    }
                }
                Fill::Text(best.map(|(s, _)| s.clone()).unwrap_or_default())
            }
            (s, p) => {
                return Err(Error::InvalidState(format!(
                    "a partial state {p:?} of column '{column}' cannot give strategy {s:?}"
                )))
            }
        };
        if let Fill::Float(v) = fill {
            if !v.is_finite() {
                return Err(Error::column(
                    column,
                    format!("the fill value overflows to {v}; the values are too large"),
                ));
            }
        }
        Ok(fill)
    }
}

/// The two middle values of a non-empty multiset given as ascending
/// `(value, count)` (the same value twice for an odd count).
fn middle<K: Copy>(v: &[(K, u64)]) -> (K, K) {
    let n: u64 = v.iter().map(|(_, c)| c).sum();
    let at = |r: u64| {
        let mut seen = 0;
        for (k, c) in v {
            seen += c;
            if r < seen {
                return *k;
            }
        }
        v[v.len() - 1].0
    };
    (at((n - 1) / 2), at(n / 2))
}

/// The most frequent value of a non-empty ascending `(value, count)` list,
/// the smallest on ties.
fn mode<K: Copy>(v: &[(K, u64)]) -> K {
    let mut best = v[0];
    for x in &v[1..] {
        if x.1 > best.1 {
            best = *x;
        }
    }
    best.0
}

/// How one column is filled, once checked against its type.
enum Plan<'a> {
    /// `mean` or `median`: widen to `Float64`, fill nulls and NaN.
    Widen(f64),
    /// A `Utf8` column.
    Text(&'a str),
    /// An integer column; the value is in the type's range.
    Int(i128),
    /// A float column; the value is finite in the type.
    Float(f64),
}

type F16 = <Float16Type as ArrowPrimitiveType>::Native;

/// A copy of a primitive array with nulls, and values `missing` says are
/// missing, replaced by `fill`; no nulls.
fn fill_primitive<T: ArrowPrimitiveType>(
    a: &dyn Array,
    fill: T::Native,
    missing: impl Fn(T::Native) -> bool,
) -> ArrayRef {
    let a = a.as_primitive::<T>();
    Arc::new(PrimitiveArray::<T>::from_iter_values(a.iter().map(
        |o| match o {
            Some(v) if !missing(v) => v,
            _ => fill,
        },
    )))
}

impl Impute {
    /// An error about a fill value that does not suit a column: invalid
    /// parameters for `constant`, invalid input (the column changed type
    /// since fitting) otherwise.
    fn unfit(&self, column: &str, message: String) -> Error {
        if self.params.strategy == Strategy::Constant {
            Error::InvalidParams(format!("column '{column}': {message}"))
        } else {
            Error::column(column, message)
        }
    }

    fn plan<'a>(&self, column: &str, t: &DataType, fill: &'a Fill) -> Result<Plan<'a>> {
        let what = if self.params.strategy == Strategy::Constant {
            "`fill_value`"
        } else {
            "the most frequent value learned at fit time"
        };
        match self.params.strategy {
            Strategy::Mean | Strategy::Median => {
                if !columns::is_numeric(t) {
                    return Err(columns::wrong_type(
                        column,
                        "a numeric type (integer or float) for strategy mean or median",
                        t,
                    ));
                }
                match fill {
                    Fill::Float(v) => Ok(Plan::Widen(*v)),
                    other => Err(Error::InvalidState(format!(
                        "the fill value of column '{column}' is {other:?}, not a float"
                    ))),
                }
            }
            Strategy::MostFrequent | Strategy::Constant => match (t, fill) {
                (DataType::Utf8, Fill::Text(s)) => Ok(Plan::Text(s)),
                (DataType::Utf8, Fill::Int(_) | Fill::Float(_)) => Err(self.unfit(
                    column,
                    format!("{what} is a number but the column is Utf8; use a string"),
                )),
                (t, Fill::Text(_)) if columns::is_numeric(t) => Err(self.unfit(
                    column,
                    format!("{what} is a string but the column is {t}; use a number"),
                )),
                (t, fill) if t.is_integer() => {
                    let (lo, hi) = int_range(t).unwrap_or((0, -1));
                    let v = match fill {
                        Fill::Int(v) => Some(*v),
                        Fill::Float(v) if v.fract() == 0.0 && v.abs() < 1e39 => Some(*v as i128),
                        _ => None,
                    };
                    match v {
                        Some(v) if (lo..=hi).contains(&v) => Ok(Plan::Int(v)),
                        _ => Err(self.unfit(
                            column,
                            format!("{what} {} does not fit the column's type {t}", show(fill)),
                        )),
                    }
                }
                (t, fill) if t.is_floating() => {
                    let v = match fill {
                        Fill::Int(v) => *v as f64,
                        Fill::Float(v) => *v,
                        Fill::Text(_) => f64::NAN,
                    };
                    let fits = match t {
                        DataType::Float16 => F16::from_f64(v).is_finite(),
                        DataType::Float32 => (v as f32).is_finite(),
                        _ => v.is_finite(),
                    };
                    if fits {
                        Ok(Plan::Float(v))
                    } else {
                        Err(self.unfit(
                            column,
                            format!("{what} {} does not fit the column's type {t}", show(fill)),
                        ))
                    }
                }
                (t, _) => Err(columns::wrong_type(
                    column,
                    "a numeric (integer or float) or Utf8 type",
                    t,
                )),
            },
        }
    }
}

fn show(f: &Fill) -> String {
    match f {
        Fill::Float(v) => v.to_string(),
        Fill::Int(v) => v.to_string(),
        Fill::Text(s) => format!("'{s}'"),
    }
}

/// Column `a` with its missing values filled as planned.
fn apply_plan(a: &dyn Array, plan: &Plan<'_>) -> Result<ArrayRef> {
    Ok(match *plan {
        Plan::Widen(v) => {
            let x = columns::array_as_f64(a)
                .ok_or_else(|| Error::Internal(format!("{} is not numeric", a.data_type())))?;
            Arc::new(Float64Array::from_iter_values(
                x.iter().map(|o| o.filter(|f| !f.is_nan()).unwrap_or(v)),
            ))
        }
        Plan::Text(s) => Arc::new(StringArray::from_iter_values(
            a.as_string::<i32>().iter().map(|o| o.unwrap_or(s)),
        )),
        // In range: `plan` checked it, so the casts are exact.
        Plan::Int(v) => match a.data_type() {
            DataType::Int8 => fill_primitive::<Int8Type>(a, v as i8, |_| false),
            DataType::Int16 => fill_primitive::<Int16Type>(a, v as i16, |_| false),
            DataType::Int32 => fill_primitive::<Int32Type>(a, v as i32, |_| false),
            DataType::Int64 => fill_primitive::<Int64Type>(a, v as i64, |_| false),
            DataType::UInt8 => fill_primitive::<UInt8Type>(a, v as u8, |_| false),
            DataType::UInt16 => fill_primitive::<UInt16Type>(a, v as u16, |_| false),
            DataType::UInt32 => fill_primitive::<UInt32Type>(a, v as u32, |_| false),
            DataType::UInt64 => fill_primitive::<UInt64Type>(a, v as u64, |_| false),
            t => return Err(Error::Internal(format!("{t} is not an integer type"))),
        },
        Plan::Float(v) => match a.data_type() {
            DataType::Float16 => {
                fill_primitive::<Float16Type>(a, F16::from_f64(v), |x: F16| x.is_nan())
            }
            DataType::Float32 => fill_primitive::<Float32Type>(a, v as f32, f32::is_nan),
            DataType::Float64 => fill_primitive::<Float64Type>(a, v, f64::is_nan),
            t => return Err(Error::Internal(format!("{t} is not a float type"))),
        },
    })
}

impl FittedTransform for Impute {
    type Params = Params;
    type Partial = Vec<Partial>;
    type State = State;

    fn info() -> PluginInfo {
        PluginInfo::new(
            "impute",
            env!("CARGO_PKG_VERSION"),
            "Fill nulls (and NaN) with the mean, exact median, most frequent value or a constant, like scikit-learn's SimpleImputer. mean/median output Float64; most_frequent/constant keep the column's type; imputed columns are non-nullable.",
        )
        .with_kind(PluginKind::OptionallyFitted)
        .with_params_schema(
            r#"{"type":"object","required":["columns","strategy"],"additionalProperties":false,"properties":{"columns":{"type":"array","items":{"type":"string"},"minItems":1,"uniqueItems":true,"description":"columns to impute: numeric for mean/median, numeric or Utf8 for most_frequent/constant"},"strategy":{"enum":["mean","median","most_frequent","constant"],"description":"mean/median output Float64; most_frequent (smallest on ties) and constant keep the type; constant needs no fit"},"fill_value":{"type":["number","string"],"description":"required for strategy constant, and only allowed there: a number for numeric columns (an integer in range for integer columns), a string for Utf8 columns"}}}"#,
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
            .map(|c| Partial::of(params.strategy, c, columns::column(batch, c)?.as_ref()))
            .collect()
    }

    fn merge(params: &Params, a: Vec<Partial>, b: Vec<Partial>) -> Result<Vec<Partial>> {
        if a.len() != params.columns.len() || b.len() != params.columns.len() {
            return Err(Error::InvalidState(format!(
                "partial states for {} and {} columns, but the parameters list {}",
                a.len(),
                b.len(),
                params.columns.len()
            )));
        }
        params
            .columns
            .iter()
            .zip(a.into_iter().zip(b))
            .map(|(c, (x, y))| Partial::merge(c, x, y))
            .collect()
    }

    fn finish(params: &Params, partial: Vec<Partial>) -> Result<State> {
        if partial.len() != params.columns.len() {
            return Err(Error::InvalidState(format!(
                "partial state for {} columns, but the parameters list {}",
                partial.len(),
                params.columns.len()
            )));
        }
        let fills = params
            .columns
            .iter()
            .zip(partial)
            .map(|(c, p)| {
                Ok(ColumnFill {
                    column: c.clone(),
                    fill: p.finish(params.strategy, c)?,
                })
            })
            .collect::<Result<_>>()?;
        Ok(State {
            strategy: params.strategy,
            fills,
        })
    }

    fn new(params: Params, state: Option<State>) -> Result<Self> {
        check_params(&params)?;
        let fills = match (params.strategy, &params.fill_value, state) {
            (Strategy::Constant, Some(v), _) => vec![constant_fill(v)?; params.columns.len()],
            (Strategy::Constant, None, _) => {
                return Err(Error::InvalidParams(
                    "strategy `constant` needs `fill_value`".into(),
                ))
            }
            (_, _, None) => {
                return Err(Error::InvalidState(
                    "strategies mean, median and most_frequent need a fitted state".into(),
                ))
            }
            (s, _, Some(state)) => {
                if state.strategy != s {
                    return Err(Error::InvalidState(format!(
                        "state was fitted with strategy {:?} but the parameters say {s:?}",
                        state.strategy
                    )));
                }
                let fitted: Vec<&str> = state.fills.iter().map(|f| f.column.as_str()).collect();
                if fitted != params.columns {
                    return Err(Error::InvalidState(format!(
                        "state was fitted on columns {fitted:?} but the parameters list {:?}",
                        params.columns
                    )));
                }
                state.fills.into_iter().map(|f| f.fill).collect()
            }
        };
        Ok(Impute { params, fills })
    }

    fn output_schema(&self, input: &Schema) -> Result<Schema> {
        let mut schema = input.clone();
        for (c, fill) in self.params.columns.iter().zip(&self.fills) {
            let f = columns::field(&schema, c)?;
            let t = match self.plan(c, f.data_type(), fill)? {
                Plan::Widen(_) => DataType::Float64,
                _ => f.data_type().clone(),
            };
            let out = Field::new(c, t, false).with_metadata(f.metadata().clone());
            schema = columns::splice_schema(&schema, c, vec![out], false)?;
        }
        Ok(schema)
    }

    fn transform(&self, batch: &RecordBatch) -> Result<RecordBatch> {
        let mut batch = batch.clone();
        for (c, fill) in self.params.columns.iter().zip(&self.fills) {
            let col = columns::column(&batch, c)?.clone();
            let plan = self.plan(c, col.data_type(), fill)?;
            let out = apply_plan(col.as_ref(), &plan)?;
            let metadata = columns::field(batch.schema_ref(), c)?.metadata().clone();
            let field = Field::new(c, out.data_type().clone(), false).with_metadata(metadata);
            batch = columns::splice(&batch, c, vec![(field, out)], false)?;
        }
        Ok(batch)
    }
}

kiln_sdk::export!(Impute);

#[cfg(test)]
mod tests {
    use super::*;
    use kiln_sdk::arrow_array::{
        BooleanArray, Float32Array, Int32Array, Int64Array, UInt64Array, UInt8Array,
    };
    use kiln_sdk::testing;

    fn f64s(v: &[Option<f64>]) -> ArrayRef {
        Arc::new(Float64Array::from(v.to_vec()))
    }

    fn one(name: &str, a: ArrayRef) -> RecordBatch {
        testing::batch(vec![(name, a)])
    }

    fn out_f64(b: &RecordBatch, c: &str) -> Vec<f64> {
        let col = b.column_by_name(c).unwrap();
        assert_eq!(col.null_count(), 0);
        col.as_primitive::<Float64Type>().values().to_vec()
    }

    fn fitted(params: &str, batches: &[RecordBatch]) -> State {
        serde_json::from_slice(&testing::fit::<Impute>(params, batches).unwrap()).unwrap()
    }

    fn params(strategy: &str) -> String {
        format!(r#"{{"columns":["x"],"strategy":"{strategy}"}}"#)
    }

    #[test]
    fn matches_simple_imputer_literals() {
        // Printed by scikit-learn 1.9.1 / numpy 2.4.6:
        //   SimpleImputer(strategy=s).fit_transform(X).ravel()
        // where X holds NaN for each missing value (null or NaN here).
        let nan = f64::NAN;
        let x1 = [Some(1.0), None, Some(2.0), Some(2.0), Some(10.0), Some(nan)];
        let x2 = [
            Some(0.3),
            None,
            Some(0.1),
            Some(0.7),
            Some(0.2),
            Some(1e-3),
            Some(nan),
            Some(5.5),
        ];
        let ties = [Some(5.0), Some(3.0), None, Some(5.0), Some(3.0), Some(9.0)];
        let neg_ties = [Some(-2.0), Some(7.0), Some(nan), Some(-2.0), Some(7.0)];
        // (params, input, expected output)
        type Case<'a> = (String, &'a [Option<f64>], Vec<f64>);
        let cases: Vec<Case<'_>> = vec![
            (params("mean"), &x1, vec![1.0, 3.75, 2.0, 2.0, 10.0, 3.75]),
            (params("median"), &x1, vec![1.0, 2.0, 2.0, 2.0, 10.0, 2.0]),
            (
                params("most_frequent"),
                &x1,
                vec![1.0, 2.0, 2.0, 2.0, 10.0, 2.0],
            ),
            (
                r#"{"columns":["x"],"strategy":"constant","fill_value":-1.5}"#.into(),
                &x1,
                vec![1.0, -1.5, 2.0, 2.0, 10.0, -1.5],
            ),
            (
                params("mean"),
                &x2,
                vec![0.3, 1.1335, 0.1, 0.7, 0.2, 0.001, 1.1335, 5.5],
            ),
            (
                params("median"),
                &x2,
                vec![0.3, 0.25, 0.1, 0.7, 0.2, 0.001, 0.25, 5.5],
            ),
            (
                params("most_frequent"),
                &ties,
                vec![5.0, 3.0, 3.0, 5.0, 3.0, 9.0],
            ),
            (
                params("most_frequent"),
                &neg_ties,
                vec![-2.0, 7.0, -2.0, -2.0, 7.0],
            ),
        ];
        for (params, input, want) in cases {
            let b = one("x", f64s(input));
            let out = if params.contains("constant") {
                testing::apply::<Impute>(&params, None, &b)
            } else {
                testing::fit_apply::<Impute>(&params, &[b]).map(|mut v| v.remove(0))
            }
            .unwrap_or_else(|e| panic!("{params}: {e}"));
            let got = out_f64(&out, "x");
            // The mean may differ from numpy's pairwise sum in the last bit.
            let close = got
                .iter()
                .zip(&want)
                .all(|(g, w)| (g - w).abs() <= 4.0 * f64::EPSILON * w.abs());
            assert!(
                close && got.len() == want.len(),
                "{params} {input:?}: {got:?} != {want:?}"
            );
        }
    }

    #[test]
    fn hand_computed_medians_and_means() {
        // Sorted present values and their median, worked out by hand.
        let cases: Vec<(Vec<Option<f64>>, f64, f64)> = vec![
            // (values, median, mean)
            (vec![Some(4.0), Some(1.0), None, Some(3.0)], 3.0, 8.0 / 3.0),
            // numpy.median([4, 1, 3, 2, 8, 7]) == 3.5: (3 + 4) / 2.
            (
                vec![
                    Some(4.0),
                    Some(1.0),
                    Some(3.0),
                    Some(2.0),
                    Some(8.0),
                    Some(7.0),
                ],
                3.5,
                25.0 / 6.0,
            ),
            (vec![Some(-0.0), Some(0.0), Some(5.0)], 0.0, 5.0 / 3.0),
            (vec![Some(2.0), Some(2.0), Some(2.0), Some(9.0)], 2.0, 3.75),
            (vec![None, Some(-7.25)], -7.25, -7.25),
        ];
        for (values, median, mean) in cases {
            let b = one("x", f64s(&values));
            for (strategy, want) in [("median", median), ("mean", mean)] {
                let st = fitted(&params(strategy), std::slice::from_ref(&b));
                assert_eq!(st.fills[0].fill, Fill::Float(want), "{strategy} {values:?}");
            }
        }
    }

    #[test]
    fn integer_columns_become_float64_for_mean_and_median() {
        // [1, null, 4, 6]: mean 11/3, median 4 (by hand).
        let b = one(
            "x",
            Arc::new(Int32Array::from(vec![Some(1), None, Some(4), Some(6)])),
        );
        for (strategy, fill) in [("mean", 11.0 / 3.0), ("median", 4.0)] {
            let out =
                testing::fit_apply::<Impute>(&params(strategy), std::slice::from_ref(&b)).unwrap();
            assert_eq!(out[0].schema().field(0).data_type(), &DataType::Float64);
            assert_eq!(out_f64(&out[0], "x"), [1.0, fill, 4.0, 6.0], "{strategy}");
        }
        // An even count of large integers: (2^62 + (2^62 + 2)) / 2 computed
        // exactly before the one rounding to f64.
        let big = 1i64 << 62;
        let b = one("x", Arc::new(Int64Array::from(vec![big, big + 2])));
        let st = fitted(&params("median"), &[b]);
        assert_eq!(st.fills[0].fill, Fill::Float((big + 1) as f64));
    }

    #[test]
    fn fitting_in_batches_gives_the_state_of_one_batch() {
        let values: Vec<Option<f64>> = (0..60)
            .map(|i| (i % 7 != 3).then(|| ((i * 37) % 11) as f64 * 0.5 - 1.0))
            .collect();
        for strategy in ["mean", "median", "most_frequent"] {
            let whole = fitted(&params(strategy), &[one("x", f64s(&values))]);
            for cuts in [vec![0, 1, 30, 31, 60], vec![0, 59, 60], vec![0, 20, 40, 60]] {
                let parts: Vec<RecordBatch> = cuts
                    .windows(2)
                    .map(|w| one("x", f64s(&values[w[0]..w[1]])))
                    .collect();
                let many = fitted(&params(strategy), &parts);
                // Values are multiples of 0.5, so every sum is exact.
                assert_eq!(many, whole, "{strategy} {cuts:?}");
            }
        }
        // Reference median: sort the present values, average the middles.
        let mut present: Vec<f64> = values.iter().flatten().copied().collect();
        present.sort_by(f64::total_cmp);
        let n = present.len();
        let median = (present[(n - 1) / 2] + present[n / 2]) / 2.0;
        assert_eq!(
            fitted(&params("median"), &[one("x", f64s(&values))]).fills[0].fill,
            Fill::Float(median)
        );
    }

    #[test]
    fn integer_and_float_batches_merge() {
        // A column inferred Int64 in one file and Float64 in another:
        // [1, 2] and [2.5, 10] have median (2 + 2.5) / 2 and mean 15.5 / 4.
        let ints = one("x", Arc::new(Int64Array::from(vec![1, 2])));
        let floats = one("x", f64s(&[Some(2.5), Some(10.0)]));
        for (strategy, want) in [("median", 2.25), ("mean", 3.875)] {
            let st = fitted(&params(strategy), &[ints.clone(), floats.clone()]);
            assert_eq!(st.fills[0].fill, Fill::Float(want), "{strategy}");
        }
        let text = one("x", Arc::new(StringArray::from(vec!["a"])));
        let e = testing::fit::<Impute>(&params("most_frequent"), &[ints, text]).unwrap_err();
        assert_eq!(
            e,
            Error::column(
                "x",
                "Utf8 in some batches and numeric in others; cast the column to one type"
            )
        );
    }

    #[test]
    fn most_frequent_keeps_the_type() {
        // Strings, scikit-learn 1.9.1:
        //   SimpleImputer(strategy="most_frequent", missing_values=None).fit_transform(
        //       [["pear"],["Apple"],[None],["pear"],["Apple"],["apple"]])
        //   -> pear, Apple, Apple, pear, Apple, apple ("Apple" < "pear" on the tie)
        let s = one(
            "x",
            Arc::new(StringArray::from(vec![
                Some("pear"),
                Some("Apple"),
                None,
                Some("pear"),
                Some("Apple"),
                Some("apple"),
            ])),
        );
        let out = testing::fit_apply::<Impute>(&params("most_frequent"), &[s]).unwrap();
        let got: Vec<&str> = out[0]
            .column(0)
            .as_string::<i32>()
            .iter()
            .flatten()
            .collect();
        assert_eq!(got, ["pear", "Apple", "Apple", "pear", "Apple", "apple"]);
        assert_eq!(out[0].schema().field(0).data_type(), &DataType::Utf8);

        // Int64 beyond 2^53: 2^53 + 1 is the mode, exactly (it has no f64).
        let big = (1i64 << 53) + 1;
        let b = one(
            "x",
            Arc::new(Int64Array::from(vec![
                Some(big),
                None,
                Some(big),
                Some(big - 1),
            ])),
        );
        let out = testing::fit_apply::<Impute>(&params("most_frequent"), &[b]).unwrap();
        assert_eq!(
            out[0]
                .column(0)
                .as_primitive::<Int64Type>()
                .values()
                .to_vec(),
            [big, big, big, big - 1]
        );

        // UInt64 at its maximum.
        let b = one(
            "x",
            Arc::new(UInt64Array::from(vec![
                Some(u64::MAX),
                None,
                Some(u64::MAX),
                Some(1),
            ])),
        );
        let out = testing::fit_apply::<Impute>(&params("most_frequent"), &[b]).unwrap();
        assert_eq!(
            out[0]
                .column(0)
                .as_primitive::<UInt64Type>()
                .values()
                .to_vec(),
            [u64::MAX, u64::MAX, u64::MAX, 1]
        );

        // Float32 stays Float32; NaN is missing too; the tie 0.5 / 1.5 goes to 0.5.
        let b = one(
            "x",
            Arc::new(Float32Array::from(vec![
                Some(1.5),
                Some(f32::NAN),
                Some(0.5),
                None,
                Some(1.5),
                Some(0.5),
            ])),
        );
        let out = testing::fit_apply::<Impute>(&params("most_frequent"), &[b]).unwrap();
        assert_eq!(out[0].schema().field(0).data_type(), &DataType::Float32);
        assert_eq!(
            out[0]
                .column(0)
                .as_primitive::<Float32Type>()
                .values()
                .to_vec(),
            [1.5, 0.5, 0.5, 0.5, 1.5, 0.5]
        );
    }

    #[test]
    fn constant_keeps_the_type_and_checks_the_fill_value() {
        let int64 = one("x", Arc::new(Int64Array::from(vec![Some(5), None])));
        let uint8 = one("x", Arc::new(UInt8Array::from(vec![Some(5), None])));
        let float32 = one(
            "x",
            Arc::new(Float32Array::from(vec![None, Some(f32::NAN), Some(1.0)])),
        );
        let float64 = one("x", f64s(&[None, Some(f64::NAN), Some(1.0)]));
        let text = one("x", Arc::new(StringArray::from(vec![None, Some("a")])));
        let nulls = one("x", f64s(&[None, None]));
        let constant =
            |v: &str| format!(r#"{{"columns":["x"],"strategy":"constant","fill_value":{v}}}"#);
        let ok = |v: &str, b: &RecordBatch| {
            let out = testing::apply::<Impute>(&constant(v), None, b)
                .unwrap_or_else(|e| panic!("{v}: {e}"));
            assert_eq!(
                out.schema().field(0).data_type(),
                b.schema().field(0).data_type()
            );
            assert!(!out.schema().field(0).is_nullable());
            assert_eq!(out.column(0).null_count(), 0);
            out
        };
        let i64s = |b: &RecordBatch| b.column(0).as_primitive::<Int64Type>().values().to_vec();
        assert_eq!(i64s(&ok("-1", &int64)), [5, -1]);
        assert_eq!(i64s(&ok("3.0", &int64)), [5, 3]);
        // Exact beyond 2^53 (parsed as an integer, never through f64).
        assert_eq!(
            i64s(&ok("9007199254740993", &int64)),
            [5, 9_007_199_254_740_993]
        );
        assert_eq!(
            ok("255", &uint8)
                .column(0)
                .as_primitive::<UInt8Type>()
                .values()
                .to_vec(),
            [5, 255]
        );
        assert_eq!(
            ok("0.25", &float32)
                .column(0)
                .as_primitive::<Float32Type>()
                .values()
                .to_vec(),
            [0.25, 0.25, 1.0]
        );
        assert_eq!(out_f64(&ok("7", &float64), "x"), [7.0, 7.0, 1.0]);
        assert_eq!(out_f64(&ok("0", &nulls), "x"), [0.0, 0.0]);
        let got: Vec<String> = ok(r#""missing""#, &text)
            .column(0)
            .as_string::<i32>()
            .iter()
            .map(|s| s.unwrap().to_owned())
            .collect();
        assert_eq!(got, ["missing", "a"]);

        // Fill values that do not fit: invalid parameters naming the column.
        for (v, b) in [
            ("-1", &uint8),
            ("256", &uint8),
            ("0.5", &int64),
            ("1e300", &int64),
            ("1e300", &float32),
            (r#""x""#, &int64),
            ("3", &text),
        ] {
            let e = testing::apply::<Impute>(&constant(v), None, b).unwrap_err();
            assert!(
                matches!(&e, Error::InvalidParams(m) if m.starts_with("column 'x': ")),
                "{v} on {}: {e}",
                b.schema().field(0).data_type()
            );
        }
        for bad in [
            r#"{"columns":["x"],"strategy":"constant"}"#,
            r#"{"columns":["x"],"strategy":"constant","fill_value":null}"#,
            r#"{"columns":["x"],"strategy":"constant","fill_value":true}"#,
            r#"{"columns":["x"],"strategy":"constant","fill_value":[1]}"#,
            r#"{"columns":["x"],"strategy":"mean","fill_value":1}"#,
        ] {
            let e = testing::apply::<Impute>(bad, None, &int64).unwrap_err();
            assert!(matches!(e, Error::InvalidParams(_)), "{bad}: {e}");
        }
        // Constant needs no fit, and refuses one.
        assert!(!Impute::needs_fit(
            &serde_json::from_str(&constant("1")).unwrap()
        ));
        assert!(matches!(
            testing::fit::<Impute>(&constant("1"), &[int64]).unwrap_err(),
            Error::InvalidParams(_)
        ));
    }

    #[test]
    fn output_schema_is_non_nullable_and_in_place() {
        let b = testing::batch(vec![
            (
                "a",
                Arc::new(Int32Array::from(vec![Some(1), None])) as ArrayRef,
            ),
            ("k", Arc::new(StringArray::from(vec!["p", "q"])) as ArrayRef),
            ("b", f64s(&[None, Some(2.0)])),
        ]);
        let out = testing::fit_apply::<Impute>(r#"{"columns":["b","a"],"strategy":"mean"}"#, &[b])
            .unwrap();
        let fields: Vec<(String, DataType, bool)> = out[0]
            .schema()
            .fields()
            .iter()
            .map(|f| (f.name().clone(), f.data_type().clone(), f.is_nullable()))
            .collect();
        assert_eq!(
            fields,
            [
                ("a".to_string(), DataType::Float64, false),
                ("k".to_string(), DataType::Utf8, true),
                ("b".to_string(), DataType::Float64, false),
            ]
        );
        assert_eq!(out_f64(&out[0], "a"), [1.0, 1.0]);
        assert_eq!(out_f64(&out[0], "b"), [2.0, 2.0]);
    }

    #[test]
    fn errors_name_the_column() {
        let b = testing::batch(vec![
            ("empty", f64s(&[None, Some(f64::NAN)])),
            ("s", Arc::new(StringArray::from(vec!["a", "b"])) as ArrayRef),
            (
                "flag",
                Arc::new(BooleanArray::from(vec![true, false])) as ArrayRef,
            ),
            ("inf", f64s(&[Some(1.0), Some(f64::NEG_INFINITY)])),
        ]);
        let no_values = "no non-null values to learn a fill value from; use strategy `constant` or drop the column";
        let mean_median = "a numeric type (integer or float) for strategy mean or median";
        let cases: Vec<(&str, Error)> = vec![
            (
                r#"{"columns":["empty"],"strategy":"mean"}"#,
                Error::column("empty", no_values),
            ),
            (
                r#"{"columns":["empty"],"strategy":"median"}"#,
                Error::column("empty", no_values),
            ),
            (
                r#"{"columns":["empty"],"strategy":"most_frequent"}"#,
                Error::column("empty", no_values),
            ),
            (
                r#"{"columns":["s"],"strategy":"median"}"#,
                columns::wrong_type("s", mean_median, &DataType::Utf8),
            ),
            (
                r#"{"columns":["flag"],"strategy":"mean"}"#,
                columns::wrong_type("flag", mean_median, &DataType::Boolean),
            ),
            (
                r#"{"columns":["flag"],"strategy":"most_frequent"}"#,
                columns::wrong_type(
                    "flag",
                    "a numeric (integer or float) or Utf8 type",
                    &DataType::Boolean,
                ),
            ),
            (
                r#"{"columns":["nope"],"strategy":"mean"}"#,
                Error::column("nope", "no such column; the input has: empty, s, flag, inf"),
            ),
            (
                r#"{"columns":["inf"],"strategy":"median"}"#,
                Error::value(
                    "inf",
                    1,
                    "infinite value (-inf); replace or drop it before imputing",
                ),
            ),
        ];
        for (params, want) in cases {
            let e = testing::fit::<Impute>(params, std::slice::from_ref(&b)).unwrap_err();
            assert_eq!(e, want, "{params}");
        }
        for params in [
            r#"{"columns":["s"],"strategy":"mode"}"#,
            r#"{"columns":["s"]}"#,
            r#"{"columns":[],"strategy":"mean"}"#,
            r#"{"columns":["s","s"],"strategy":"most_frequent"}"#,
            r#"{"columns":["s"],"strategy":"most_frequent","add_indicator":true}"#,
        ] {
            let e = testing::fit::<Impute>(params, std::slice::from_ref(&b)).unwrap_err();
            assert!(matches!(e, Error::InvalidParams(_)), "{params}: {e}");
        }
        // Constant on a Boolean column: the type is wrong, not the parameters.
        let e = testing::apply::<Impute>(
            r#"{"columns":["flag"],"strategy":"constant","fill_value":1}"#,
            None,
            &b,
        )
        .unwrap_err();
        assert_eq!(
            e,
            columns::wrong_type(
                "flag",
                "a numeric (integer or float) or Utf8 type",
                &DataType::Boolean
            )
        );

        // At apply time: a state from another strategy or other columns, no
        // state, and a column whose type changed since fitting.
        let train = one("x", f64s(&[Some(2.5), Some(1.0), Some(2.5)]));
        let median =
            testing::fit::<Impute>(&params("median"), std::slice::from_ref(&train)).unwrap();
        let mf =
            testing::fit::<Impute>(&params("most_frequent"), std::slice::from_ref(&train)).unwrap();
        for (p, st) in [
            (params("mean"), Some(&median)),
            (
                r#"{"columns":["y"],"strategy":"median"}"#.into(),
                Some(&median),
            ),
            (params("median"), None),
        ] {
            let e = testing::apply::<Impute>(&p, st.map(|s| s.as_slice()), &train).unwrap_err();
            assert!(matches!(e, Error::InvalidState(_)), "{p}: {e}");
        }
        let retyped = one("x", Arc::new(StringArray::from(vec![Some("a"), None])));
        assert_eq!(
            testing::apply::<Impute>(&params("median"), Some(&median), &retyped).unwrap_err(),
            columns::wrong_type("x", mean_median, &DataType::Utf8)
        );
        assert_eq!(
            testing::apply::<Impute>(&params("most_frequent"), Some(&mf), &retyped).unwrap_err(),
            Error::column(
                "x",
                "the most frequent value learned at fit time is a number but the column is Utf8; use a string"
            )
        );
        let ints = one("x", Arc::new(Int32Array::from(vec![Some(1), None])));
        assert_eq!(
            testing::apply::<Impute>(&params("most_frequent"), Some(&mf), &ints).unwrap_err(),
            Error::column(
                "x",
                "the most frequent value learned at fit time 2.5 does not fit the column's type Int32"
            )
        );
    }
}
