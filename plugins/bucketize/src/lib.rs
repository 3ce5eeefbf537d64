//! `bucketize`: the bucket index of each number against sorted boundaries.
//!
//! Each listed numeric column (any integer or float width, read as `Float64`)
//! becomes a `UInt32` bucket index: **the number of boundaries `<=` the
//! value**. Buckets are closed on the left and open on the right, so with
//! boundaries `[0, 10]`:
//!
//! | value         | bucket |
//! |---------------|--------|
//! | `x < 0`       | 0      |
//! | `0 <= x < 10` | 1      |
//! | `x >= 10`     | 2      |
//!
//! This is `numpy.digitize(x, boundaries, right=False)`. `-inf` falls in
//! bucket 0 and `+inf` in the last; nulls and NaN give null. Integers beyond
//! 2^53 are rounded to the nearest `f64` first.
//!
//! The boundaries come from one of two parameters:
//! - `boundaries`: explicit, strictly increasing. No fit is needed.
//! - `quantiles: n`: `n` buckets of roughly equal population. A fit learns the
//!   `n - 1` interior boundaries `numpy.quantile(values, k / n)` for
//!   `k = 1..n-1` (the default `"linear"` method), NaN and nulls left out, and
//!   drops repeated boundaries (as `numpy.unique`). These are the edges of
//!   scikit-learn's `KBinsDiscretizer(strategy="quantile")` without its
//!   minimum and maximum edges (scikit-learn also drops edges closer than
//!   1e-8; this plugin drops only equal ones). Infinite values are refused
//!   while fitting, as scikit-learn does.
//!
//! # Memory
//! The quantile fit is exact and mergeable: a partial state keeps, for each
//! column, every distinct value with its count, sorted, and merging two
//! partials is a sorted merge. The state therefore grows with the number of
//! *distinct* values: small for integers, ratings or rounded prices, but as
//! large as the column itself (about 30 bytes of JSON per value) for
//! continuous data. Fit such columns on a sample; a bounded-memory sketch
//! (t-digest, KLL) would be approximate, so this plugin does not use one.
//! The finished state is only the boundaries.
//!
//! # Parameters
//! ```json
//! {"columns": ["age"], "boundaries": [18, 65]}
//! {"columns": ["income", "debt"], "quantiles": 4, "suffix": "_q"}
//! ```
//! Without `suffix` the column is replaced by its bucket index; with it the
//! index goes to `<column><suffix>`, right after the kept column.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use kiln_sdk::arrow_array::types::UInt32Type;
use kiln_sdk::arrow_array::{Array, ArrayRef, Float64Array, RecordBatch, UInt32Array};
use kiln_sdk::arrow_buffer::{BooleanBuffer, NullBuffer};
use kiln_sdk::arrow_schema::{DataType, Field, Schema};
use kiln_sdk::{columns, output, Error, FittedTransform, PluginInfo, PluginKind, Result};
use serde::{Deserialize, Serialize};

/// The largest accepted `quantiles`.
pub const MAX_QUANTILES: u32 = 65_536;

/// Parameters of `bucketize`. Exactly one of `boundaries` and `quantiles`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Params {
    /// Numeric columns to bucketize.
    pub columns: Vec<String>,
    /// Explicit boundaries, strictly increasing, shared by all columns.
    #[serde(default)]
    pub boundaries: Option<Vec<f64>>,
    /// Number of buckets (2 to [`MAX_QUANTILES`]) whose boundaries are learned
    /// per column as quantiles of the fitted data.
    #[serde(default)]
    pub quantiles: Option<u32>,
    /// Write the index to `<column><suffix>` instead of replacing the column.
    #[serde(default)]
    pub suffix: Option<String>,
}

/// Where the boundaries come from, once the parameters are validated.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Source<'a> {
    Explicit(&'a [f64]),
    Quantiles(u32),
}

impl Params {
    fn source(&self) -> Result<Source<'_>> {
        if self.columns.is_empty() {
            return Err(Error::InvalidParams(
                "`columns` lists no column to bucketize".into(),
            ));
        }
        let mut seen = BTreeSet::new();
        if let Some(dup) = self.columns.iter().find(|c| !seen.insert(c.as_str())) {
            return Err(Error::InvalidParams(format!(
                "`columns` lists '{dup}' twice"
            )));
        }
        if self.suffix.as_deref() == Some("") {
            return Err(Error::InvalidParams(
                "`suffix` is empty: leave it out to replace the columns".into(),
            ));
        }
        match (&self.boundaries, self.quantiles) {
            (Some(_), Some(_)) => Err(Error::InvalidParams(
                "give either `boundaries` or `quantiles`, not both".into(),
            )),
            (None, None) => Err(Error::InvalidParams(
                "give `boundaries` (explicit) or `quantiles` (learned by a fit)".into(),
            )),
            (Some(b), None) => {
                check_increasing(b)
                    .map_err(|m| Error::InvalidParams(format!("`boundaries` {m}")))?;
                Ok(Source::Explicit(b))
            }
            (None, Some(n)) if !(2..=MAX_QUANTILES).contains(&n) => Err(Error::InvalidParams(
                format!("`quantiles` is {n}; it must be between 2 and {MAX_QUANTILES}"),
            )),
            (None, Some(n)) => Ok(Source::Quantiles(n)),
        }
    }
}

/// `Err(reason)` unless `b` is non-empty, finite and strictly increasing.
fn check_increasing(b: &[f64]) -> std::result::Result<(), String> {
    if b.is_empty() {
        return Err("is empty; give at least one boundary".into());
    }
    if let Some(x) = b.iter().find(|x| !x.is_finite()) {
        return Err(format!("holds {x}; boundaries must be finite"));
    }
    if let Some(w) = b.windows(2).find(|w| w[0] >= w[1]) {
        return Err(format!(
            "must be strictly increasing, but {} is followed by {}",
            w[0], w[1]
        ));
    }
    Ok(())
}

/// Partial fit state: per column, its distinct values (NaN and nulls left
/// out, `-0.0` counted as `0.0`) in increasing order with their counts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Partial {
    /// Column name to sorted `(value, count)` pairs.
    pub counts: BTreeMap<String, Vec<(f64, u64)>>,
}

/// Fitted state: per column, its learned boundaries (strictly increasing).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct State {
    /// Column name to boundaries.
    pub boundaries: BTreeMap<String, Vec<f64>>,
}

/// The configured transform: one boundary list per column.
pub struct Bucketize {
    columns: Vec<(String, Vec<f64>)>,
    suffix: Option<String>,
}

/// The bucket of `x`: how many of the sorted `boundaries` are `<= x`.
pub fn bucket(boundaries: &[f64], x: f64) -> u32 {
    boundaries.partition_point(|b| *b <= x) as u32
}

/// The bucket of every value of `x`; NaN rows become null, as null rows
/// stay null. The values live in a `Vec<u8>` the host takes uncopied.
fn buckets(x: &Float64Array, boundaries: &[f64]) -> UInt32Array {
    let values = x.values();
    let nan_nulls = |any_nan: bool| {
        if any_nan {
            let not_nan = BooleanBuffer::collect_bool(x.len(), |i| !values[i].is_nan());
            NullBuffer::union(x.nulls(), Some(&NullBuffer::new(not_nan)))
        } else {
            x.nulls().cloned()
        }
    };
    if boundaries.len() <= COUNT_UP_TO {
        let mut any_nan = false;
        let out = output::fill::<UInt32Type, _>(x.len(), None, |out| {
            for (o, block) in out.chunks_mut(BLOCK).zip(values.chunks(BLOCK)) {
                any_nan |= count_block(block, boundaries, o);
            }
        });
        return UInt32Array::new(out.into_parts().1, nan_nulls(any_nan));
    }
    let nulls = nan_nulls(values.iter().any(|v| v.is_nan()));
    let out = values
        .iter()
        .map(|&v| if v.is_nan() { 0 } else { bucket(boundaries, v) });
    output::collect::<UInt32Type, _>(x.len(), out, nulls)
}

/// Up to this many boundaries, [`buckets`] counts the boundaries `<= x`
/// instead of searching for `x` among them.
const COUNT_UP_TO: usize = 16;

/// Values per call of [`count_block`].
const BLOCK: usize = 4096;

/// [`bucket`] of every value of `block` into `out` (same length), and
/// whether `block` holds a NaN. For sorted boundaries, the count of those
/// `<= x` is the partition point, and NaN counts 0. No branch depends on
/// the data: per boundary, one compare and one subtract of its all-ones
/// mask for two values at a time (wasm SIMD), four values per step, where a
/// binary search per value is a chain of dependent loads and branches.
#[cfg(target_arch = "wasm32")]
fn count_block(block: &[f64], boundaries: &[f64], out: &mut [u32]) -> bool {
    use core::arch::wasm32::{
        f64x2, f64x2_le, f64x2_ne, f64x2_splat, i64x2_extract_lane, i64x2_splat, i64x2_sub, v128,
        v128_any_true, v128_or,
    };
    let mut splat = [f64x2_splat(0.0); COUNT_UP_TO];
    for (s, &b) in splat.iter_mut().zip(boundaries) {
        *s = f64x2_splat(b);
    }
    let splat: &[v128] = &splat[..boundaries.len()];
    let mut nan = i64x2_splat(0);
    let mut quads = block.chunks_exact(4);
    let mut outs = out.chunks_exact_mut(4);
    for (x, o) in quads.by_ref().zip(outs.by_ref()) {
        let (lo, hi) = (f64x2(x[0], x[1]), f64x2(x[2], x[3]));
        nan = v128_or(nan, v128_or(f64x2_ne(lo, lo), f64x2_ne(hi, hi)));
        let (mut c_lo, mut c_hi) = (i64x2_splat(0), i64x2_splat(0));
        for &b in splat {
            // `b <= x` is all ones (-1) in the lanes where it holds.
            c_lo = i64x2_sub(c_lo, f64x2_le(b, lo));
            c_hi = i64x2_sub(c_hi, f64x2_le(b, hi));
        }
        o[0] = i64x2_extract_lane::<0>(c_lo) as u32;
        o[1] = i64x2_extract_lane::<1>(c_lo) as u32;
        o[2] = i64x2_extract_lane::<0>(c_hi) as u32;
        o[3] = i64x2_extract_lane::<1>(c_hi) as u32;
    }
    let rest = quads.remainder();
    for (&x, o) in rest.iter().zip(outs.into_remainder()) {
        *o = boundaries.iter().map(|&b| u32::from(b <= x)).sum();
    }
    v128_any_true(nan) || rest.iter().any(|x| x.is_nan())
}

/// [`count_block`] natively (the unit tests), one value at a time.
#[cfg(not(target_arch = "wasm32"))]
fn count_block(block: &[f64], boundaries: &[f64], out: &mut [u32]) -> bool {
    for (o, &x) in out.iter_mut().zip(block) {
        *o = boundaries.iter().map(|&b| u32::from(b <= x)).sum();
    }
    block.iter().any(|x| x.is_nan())
}

/// Sorted `(value, count)` pairs of the finite, non-null values of `column`.
fn value_counts(batch: &RecordBatch, column: &str) -> Result<Vec<(f64, u64)>> {
    let a = columns::numeric_as_f64(batch, column)?;
    let mut values = Vec::with_capacity(a.len() - a.null_count());
    for (row, v) in a.iter().enumerate() {
        match v {
            None => {}
            Some(x) if x.is_nan() => {}
            Some(x) if x.is_infinite() => {
                return Err(Error::value(
                    column,
                    row,
                    format!("{x} cannot be used to learn quantile boundaries; filter it out or give explicit `boundaries`"),
                ))
            }
            // `+ 0.0` turns -0.0 into 0.0, so the two count as one value.
            Some(x) => values.push(x + 0.0),
        }
    }
    values.sort_unstable_by(f64::total_cmp);
    let mut counts: Vec<(f64, u64)> = Vec::new();
    for x in values {
        match counts.last_mut() {
            Some((v, n)) if *v == x => *n += 1,
            _ => counts.push((x, 1)),
        }
    }
    Ok(counts)
}

/// Merge two sorted `(value, count)` lists into one.
fn merge_counts(a: Vec<(f64, u64)>, b: Vec<(f64, u64)>) -> Vec<(f64, u64)> {
    let mut out = Vec::with_capacity(a.len() + b.len());
    let (mut a, mut b) = (a.into_iter().peekable(), b.into_iter().peekable());
    loop {
        let next = match (a.peek(), b.peek()) {
            (None, None) => break,
            (Some(_), None) => a.next(),
            (None, Some(_)) => b.next(),
            (Some(x), Some(y)) if x.0 < y.0 => a.next(),
            (Some(x), Some(y)) if y.0 < x.0 => b.next(),
            (Some(_), Some(_)) => {
                let (v, n) = a.next().expect("peeked");
                let (_, m) = b.next().expect("peeked");
                Some((v, n + m))
            }
        };
        out.extend(next);
    }
    out
}

/// `numpy.quantile(values, q)` with the default `"linear"` method, where
/// `values` is given as sorted `(value, count)` pairs and `cumulative[i]` is
/// the number of values in `counts[..=i]`.
fn quantile(counts: &[(f64, u64)], cumulative: &[u64], q: f64) -> f64 {
    let n = *cumulative.last().expect("quantile of no values");
    // The value at 0-based position `i` of the sorted values.
    let at = |i: u64| counts[cumulative.partition_point(|c| *c <= i)].0;
    // numpy: virtual index (n - 1) * q; above the last index, the last value.
    let virtual_index = (n - 1) as f64 * q;
    if virtual_index >= (n - 1) as f64 {
        return at(n - 1);
    }
    let below = virtual_index.floor();
    let gamma = virtual_index - below;
    let (a, b) = (at(below as u64), at(below as u64 + 1));
    // numpy's `_lerp`: from the nearer end, for accuracy and monotonicity.
    let diff = b - a;
    if gamma >= 0.5 {
        b - diff * (1.0 - gamma)
    } else {
        a + diff * gamma
    }
}

/// The distinct interior quantile boundaries `k / n`, `k = 1..n-1`, sorted.
fn quantile_boundaries(counts: &[(f64, u64)], n: u32) -> Vec<f64> {
    let cumulative: Vec<u64> = counts
        .iter()
        .scan(0u64, |acc, (_, c)| {
            *acc += c;
            Some(*acc)
        })
        .collect();
    let mut b: Vec<f64> = (1..n)
        .map(|k| quantile(counts, &cumulative, f64::from(k) / f64::from(n)) + 0.0)
        .collect();
    b.sort_unstable_by(f64::total_cmp);
    b.dedup();
    b
}

impl Bucketize {
    fn out_name(&self, c: &str) -> String {
        match &self.suffix {
            Some(s) => format!("{c}{s}"),
            None => c.to_owned(),
        }
    }

    /// The output field for input field `f` (nullable if the input is, or if
    /// it is a float column whose NaN become null), after checking its type
    /// and that the output name is free in `schema`.
    fn out_field(&self, schema: &Schema, c: &str) -> Result<Field> {
        let f = columns::field(schema, c)?;
        if !columns::is_numeric(f.data_type()) {
            return Err(columns::wrong_type(
                c,
                "a numeric type (integer or float)",
                f.data_type(),
            ));
        }
        let name = self.out_name(c);
        if self.suffix.is_some() && schema.field_with_name(&name).is_ok() {
            return Err(Error::column(
                c,
                format!("the output column '{name}' already exists; choose another `suffix`"),
            ));
        }
        let nullable = f.is_nullable() || f.data_type().is_floating();
        Ok(Field::new(name, DataType::UInt32, nullable))
    }
}

impl FittedTransform for Bucketize {
    type Params = Params;
    type Partial = Partial;
    type State = State;

    fn info() -> PluginInfo {
        PluginInfo::new(
            "bucketize",
            env!("CARGO_PKG_VERSION"),
            "Bucket index (UInt32, numpy.digitize right=False: count of boundaries <= x) of numeric columns, against explicit `boundaries` or `quantiles` boundaries learned by an exact, mergeable fit. Nulls and NaN stay null.",
        )
        .with_kind(PluginKind::OptionallyFitted)
        .with_params_schema(
            r#"{"type":"object","required":["columns"],"additionalProperties":false,"oneOf":[{"required":["boundaries"]},{"required":["quantiles"]}],"properties":{"columns":{"type":"array","items":{"type":"string"},"minItems":1,"uniqueItems":true,"description":"numeric columns (integer or float) to bucketize"},"boundaries":{"type":"array","items":{"type":"number"},"minItems":1,"description":"explicit boundaries, strictly increasing; bucket = number of boundaries <= x; no fit needed"},"quantiles":{"type":"integer","minimum":2,"maximum":65536,"description":"number of buckets; the n-1 interior boundaries are learned per column as numpy.quantile(x, k/n) (linear), duplicates dropped; needs a fit"},"suffix":{"type":"string","minLength":1,"description":"write to <column><suffix> instead of replacing"}}}"#,
        )
    }

    fn needs_fit(params: &Params) -> bool {
        matches!(params.source(), Ok(Source::Quantiles(_)))
    }

    fn fit_partial(params: &Params, batch: &RecordBatch) -> Result<Partial> {
        if let Source::Explicit(_) = params.source()? {
            return Err(Error::InvalidParams(
                "`boundaries` are explicit, so there is nothing to fit: run without a state".into(),
            ));
        }
        let counts = params
            .columns
            .iter()
            .map(|c| Ok((c.clone(), value_counts(batch, c)?)))
            .collect::<Result<_>>()?;
        Ok(Partial { counts })
    }

    fn merge(_params: &Params, a: Partial, mut b: Partial) -> Result<Partial> {
        let mut counts = BTreeMap::new();
        for (c, x) in a.counts {
            let y = b.counts.remove(&c).unwrap_or_default();
            counts.insert(c, merge_counts(x, y));
        }
        counts.extend(b.counts);
        Ok(Partial { counts })
    }

    fn finish(params: &Params, mut partial: Partial) -> Result<State> {
        let n = match params.source()? {
            Source::Quantiles(n) => n,
            Source::Explicit(_) => {
                return Err(Error::InvalidParams(
                    "`boundaries` are explicit, so there is nothing to fit".into(),
                ))
            }
        };
        let mut boundaries = BTreeMap::new();
        for c in &params.columns {
            let counts = partial.counts.remove(c).ok_or_else(|| {
                Error::InvalidState(format!("the partial state has no values for column '{c}'"))
            })?;
            if counts.is_empty() {
                return Err(Error::column(
                    c,
                    "no value that is not null or NaN to learn quantile boundaries from",
                ));
            }
            boundaries.insert(c.clone(), quantile_boundaries(&counts, n));
        }
        Ok(State { boundaries })
    }

    fn new(params: Params, state: Option<State>) -> Result<Self> {
        let columns = match (params.source()?, state) {
            (Source::Explicit(_), Some(_)) => {
                return Err(Error::InvalidState(
                    "`boundaries` are explicit, so this plugin takes no state: run without one"
                        .into(),
                ))
            }
            (Source::Explicit(b), None) => params
                .columns
                .iter()
                .map(|c| (c.clone(), b.to_vec()))
                .collect(),
            (Source::Quantiles(_), None) => {
                return Err(Error::InvalidState(
                    "`quantiles` boundaries are learned: fit first and pass the state".into(),
                ))
            }
            (Source::Quantiles(_), Some(mut state)) => {
                let mut columns = Vec::with_capacity(params.columns.len());
                for c in &params.columns {
                    let b = state.boundaries.remove(c).ok_or_else(|| {
                        Error::InvalidState(format!(
                            "the state has no boundaries for column '{c}'; was it fitted with these `columns`?"
                        ))
                    })?;
                    check_increasing(&b).map_err(|m| {
                        Error::InvalidState(format!("the boundaries of column '{c}' {m}"))
                    })?;
                    columns.push((c.clone(), b));
                }
                if let Some(c) = state.boundaries.keys().next() {
                    return Err(Error::InvalidState(format!(
                        "the state has boundaries for column '{c}', which `columns` does not list; was it fitted with these `columns`?"
                    )));
                }
                columns
            }
        };
        Ok(Bucketize {
            columns,
            suffix: params.suffix,
        })
    }

    fn output_schema(&self, input: &Schema) -> Result<Schema> {
        let mut schema = input.clone();
        for (c, _) in &self.columns {
            let out = self.out_field(&schema, c)?;
            schema = columns::splice_schema(&schema, c, vec![out], self.suffix.is_some())?;
        }
        Ok(schema)
    }

    fn transform(&self, batch: &RecordBatch) -> Result<RecordBatch> {
        let mut batch = batch.clone();
        for (c, boundaries) in &self.columns {
            let field = self.out_field(batch.schema_ref(), c)?;
            let x = columns::numeric_as_f64(&batch, c)?;
            let out = buckets(&x, boundaries);
            batch = columns::splice(
                &batch,
                c,
                vec![(field, Arc::new(out) as ArrayRef)],
                self.suffix.is_some(),
            )?;
        }
        Ok(batch)
    }
}

kiln_sdk::export!(Bucketize);

#[cfg(test)]
mod tests {
    use super::*;
    use kiln_sdk::arrow_array::cast::AsArray;
    use kiln_sdk::arrow_array::{Float32Array, Float64Array, Int32Array, Int64Array, StringArray};
    use kiln_sdk::testing;

    /// The normal sample `C` used below, generated by
    /// `numpy.random.default_rng(42).normal(loc=3, scale=2, size=37).round(3)`
    /// (numpy 2.4.6).
    const C: [f64; 37] = [
        3.609, 0.92, 4.501, 4.881, -0.902, 0.396, 3.256, 2.368, 2.966, 1.294, 4.759, 4.556, 3.132,
        5.254, 3.935, 1.281, 3.738, 1.082, 4.757, 2.9, 2.63, 1.638, 5.445, 2.691, 2.143, 2.296,
        4.065, 3.731, 3.825, 3.862, 7.283, 2.187, 1.976, 1.372, 4.232, 5.258, 2.772,
    ];

    fn f64s(v: Vec<Option<f64>>) -> ArrayRef {
        Arc::new(Float64Array::from(v))
    }

    fn one(name: &str, a: ArrayRef) -> RecordBatch {
        testing::batch(vec![(name, a)])
    }

    fn buckets(out: &RecordBatch, name: &str) -> Vec<Option<u32>> {
        let col = columns::column(out, name).unwrap();
        assert_eq!(col.data_type(), &DataType::UInt32);
        col.as_primitive::<UInt32Type>().iter().collect()
    }

    fn state_of(params: &str, batches: &[RecordBatch]) -> State {
        serde_json::from_slice(&testing::fit::<Bucketize>(params, batches).unwrap()).unwrap()
    }

    /// Expected values from `numpy.digitize(x, boundaries, right=False)`
    /// (numpy 2.4.6).
    #[test]
    fn bucket_matches_numpy_digitize() {
        let cases: &[(&[f64], &[f64], &[u32])] = &[
            (
                &[0.0, 10.0],
                &[
                    f64::NEG_INFINITY,
                    -5.0,
                    -0.0,
                    0.0,
                    5.0,
                    9.999,
                    10.0,
                    11.0,
                    f64::INFINITY,
                ],
                &[0, 0, 1, 1, 1, 1, 2, 2, 2],
            ),
            (
                &[-1.5, 0.0, 2.25, 100.0],
                &[
                    -2.0, -1.5, -1.4999, 0.0, 1e-300, 2.25, 2.2499999, 99.99, 100.0, 1e300,
                ],
                &[0, 1, 1, 2, 2, 3, 2, 3, 4, 4],
            ),
            // Hand-computed: one boundary splits in two.
            (&[3.0], &[2.0, 3.0, 4.0], &[0, 1, 1]),
        ];
        for (b, xs, want) in cases {
            let got: Vec<u32> = xs.iter().map(|x| bucket(b, *x)).collect();
            assert_eq!(&got, want, "boundaries {b:?}");
        }
    }

    #[test]
    fn explicit_boundaries_keep_nulls_and_nan_as_null() {
        let b = one(
            "x",
            f64s(vec![
                Some(-1.0),
                None,
                Some(f64::NAN),
                Some(0.0),
                Some(10.0),
                Some(f64::INFINITY),
            ]),
        );
        let out = testing::apply::<Bucketize>(r#"{"columns":["x"],"boundaries":[0,10]}"#, None, &b)
            .unwrap();
        assert_eq!(out.num_columns(), 1);
        assert_eq!(
            buckets(&out, "x"),
            vec![Some(0), None, None, Some(1), Some(2), Some(2)]
        );
    }

    #[test]
    fn integer_and_float32_columns_are_widened() {
        let b = testing::batch(vec![
            (
                "i",
                Arc::new(Int32Array::from(vec![Some(-7), Some(0), None, Some(10)])) as ArrayRef,
            ),
            (
                "f",
                Arc::new(Float32Array::from(vec![0.5, f32::NAN, 9.5, 10.0])) as ArrayRef,
            ),
        ]);
        let out =
            testing::apply::<Bucketize>(r#"{"columns":["i","f"],"boundaries":[0,10]}"#, None, &b)
                .unwrap();
        assert_eq!(buckets(&out, "i"), vec![Some(0), Some(1), None, Some(2)]);
        assert_eq!(buckets(&out, "f"), vec![Some(1), None, Some(1), Some(2)]);
    }

    #[test]
    fn sliced_input_is_read_from_its_offset() {
        let b = one(
            "x",
            f64s(vec![Some(-1.0), Some(5.0), None, Some(20.0), Some(-3.0)]),
        )
        .slice(1, 3);
        let out = testing::apply::<Bucketize>(r#"{"columns":["x"],"boundaries":[0,10]}"#, None, &b)
            .unwrap();
        assert_eq!(buckets(&out, "x"), vec![Some(1), None, Some(2)]);
    }

    #[test]
    fn suffix_keeps_the_column_and_output_follows_it() {
        let b = testing::batch(vec![
            ("a", Arc::new(Int64Array::from(vec![1, 20])) as ArrayRef),
            ("s", Arc::new(StringArray::from(vec!["p", "q"])) as ArrayRef),
            ("b", Arc::new(Int64Array::from(vec![30, 5])) as ArrayRef),
        ]);
        let out = testing::apply::<Bucketize>(
            r#"{"columns":["b","a"],"boundaries":[10],"suffix":"_bin"}"#,
            None,
            &b,
        )
        .unwrap();
        let names: Vec<&str> = out
            .schema_ref()
            .fields()
            .iter()
            .map(|f| f.name().as_str())
            .collect();
        assert_eq!(names, ["a", "a_bin", "s", "b", "b_bin"]);
        assert_eq!(buckets(&out, "a_bin"), vec![Some(0), Some(1)]);
        assert_eq!(buckets(&out, "b_bin"), vec![Some(1), Some(0)]);
        assert_eq!(
            columns::column(&out, "a").unwrap().data_type(),
            &DataType::Int64
        );
    }

    #[test]
    fn suffix_colliding_with_an_existing_column_is_refused() {
        let b = testing::batch(vec![
            ("a", Arc::new(Int64Array::from(vec![1])) as ArrayRef),
            ("a_bin", Arc::new(Int64Array::from(vec![1])) as ArrayRef),
        ]);
        let err = testing::apply::<Bucketize>(
            r#"{"columns":["a"],"boundaries":[0],"suffix":"_bin"}"#,
            None,
            &b,
        )
        .unwrap_err();
        assert!(err.to_string().contains("'a_bin' already exists"), "{err}");
    }

    /// Non-nullable integers stay non-nullable; floats may turn NaN into null.
    #[test]
    fn output_nullability_is_declared_from_the_input() {
        let input = Schema::new(vec![
            Field::new("i", DataType::Int16, false),
            Field::new("f", DataType::Float64, false),
            Field::new("n", DataType::UInt8, true),
        ]);
        let params = serde_json::from_str(r#"{"columns":["i","f","n"],"boundaries":[1]}"#).unwrap();
        let t = Bucketize::new(params, None).unwrap();
        let out = t.output_schema(&input).unwrap();
        let got: Vec<(DataType, bool)> = out
            .fields()
            .iter()
            .map(|f| (f.data_type().clone(), f.is_nullable()))
            .collect();
        assert_eq!(
            got,
            [
                (DataType::UInt32, false),
                (DataType::UInt32, true),
                (DataType::UInt32, true)
            ]
        );
    }

    /// Expected boundaries from
    /// `numpy.unique(numpy.quantile(numpy.asarray(data, float), numpy.arange(1, n) / n))`
    /// (numpy 2.4.6, method "linear"), compared bit for bit.
    #[test]
    fn quantile_boundaries_match_numpy() {
        let ramp: Vec<f64> = (1..=10).map(f64::from).collect();
        let dups = [1.0, 1.0, 1.0, 1.0, 2.0, 3.0, 100.0];
        let cases: Vec<(&[f64], u32, Vec<f64>)> = vec![
            (&C, 2, vec![3.132]),
            (&C, 4, vec![2.143, 3.132, 4.232]),
            (
                &C,
                10,
                vec![
                    1.2014,
                    1.7056,
                    2.2741999999999996,
                    2.7234,
                    3.132,
                    3.7352,
                    3.961,
                    4.545,
                    5.0302,
                ],
            ),
            (&ramp, 4, vec![3.25, 5.5, 7.75]),
            (&dups, 3, vec![1.0, 2.0]),
            (&dups, 5, vec![1.0, 1.5999999999999996, 2.8000000000000007]),
            (&[5.0, 5.0, 5.0], 4, vec![5.0]),
            (&[7.5], 3, vec![7.5]),
            (
                &[-3.0, 0.0, 0.0, 0.0, 0.0, 4.0, 9.0, 12.0],
                4,
                vec![0.0, 5.25],
            ),
            // Samples where a one-sided `a + (b - a) * gamma` is off by one
            // ulp from numpy (found by a random search against numpy).
            (
                &[2.24, -0.83, -0.62],
                5,
                vec![
                    -0.746,
                    -0.6619999999999999,
                    -0.04800000000000004,
                    1.0960000000000003,
                ],
            ),
            (
                &[
                    -1.38, -1.05, -0.81, -0.67, -0.56, -0.38, -0.33, -0.3, 0.01, 1.65,
                ],
                7,
                vec![
                    -0.9814285714285715,
                    -0.7300000000000001,
                    -0.5757142857142858,
                    -0.3728571428571429,
                    -0.3171428571428571,
                    -0.0785714285714288,
                ],
            ),
        ];
        for (data, n, want) in cases {
            let b = one("x", Arc::new(Float64Array::from(data.to_vec())));
            let state = state_of(&format!(r#"{{"columns":["x"],"quantiles":{n}}}"#), &[b]);
            let got = &state.boundaries["x"];
            let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
            assert_eq!(
                bits(got),
                bits(&want),
                "data {data:?} quantiles {n}: {got:?} != {want:?}"
            );
        }
    }

    /// Expected buckets from `numpy.digitize(C, numpy.unique(numpy.quantile(C,
    /// numpy.arange(1, 10) / 10)))` (numpy 2.4.6).
    #[test]
    fn fit_then_apply_matches_numpy() {
        let b = one("x", Arc::new(Float64Array::from(C.to_vec())));
        let out =
            testing::fit_apply::<Bucketize>(r#"{"columns":["x"],"quantiles":10}"#, &[b]).unwrap();
        let want = [
            5, 0, 7, 8, 0, 0, 5, 3, 4, 1, 8, 8, 5, 9, 6, 1, 6, 0, 8, 4, 3, 1, 9, 3, 2, 3, 7, 5, 6,
            6, 9, 2, 2, 1, 7, 9, 4,
        ];
        assert_eq!(
            buckets(&out[0], "x"),
            want.iter().map(|v| Some(*v)).collect::<Vec<_>>()
        );
    }

    /// Nulls and NaN are left out of the fit: C with them sprinkled in, split
    /// into batches of different sizes, gives the bytes of one clean batch.
    #[test]
    fn multi_batch_fit_equals_one_batch() {
        let params = r#"{"columns":["x","i"],"quantiles":10}"#;
        let ints: Vec<i64> = (0..37).map(|k| (k * 7919) % 23 - 11).collect();
        let whole = testing::batch(vec![
            ("x", Arc::new(Float64Array::from(C.to_vec())) as ArrayRef),
            ("i", Arc::new(Int64Array::from(ints.clone())) as ArrayRef),
        ]);
        let mut dirty_x: Vec<Option<f64>> = C.iter().map(|v| Some(*v)).collect();
        let mut dirty_i: Vec<Option<i64>> = ints.iter().map(|v| Some(*v)).collect();
        for at in [0, 9, 20, 30] {
            dirty_x.insert(at, if at % 2 == 0 { None } else { Some(f64::NAN) });
            dirty_i.insert(at, None);
        }
        let dirty = testing::batch(vec![
            ("x", f64s(dirty_x)),
            ("i", Arc::new(Int64Array::from(dirty_i)) as ArrayRef),
        ]);
        let split = [
            dirty.slice(0, 3),
            dirty.slice(3, 18),
            dirty.slice(21, 0),
            dirty.slice(21, 20),
        ];
        let one_fit = testing::fit::<Bucketize>(params, &[whole]).unwrap();
        assert_eq!(testing::fit::<Bucketize>(params, &split).unwrap(), one_fit);
        let rev: Vec<RecordBatch> = split.iter().rev().cloned().collect();
        assert_eq!(testing::fit::<Bucketize>(params, &rev).unwrap(), one_fit);
    }

    #[test]
    fn merge_is_associative_and_sums_counts() {
        let p: Params = serde_json::from_str(r#"{"columns":["x"],"quantiles":4}"#).unwrap();
        let part = |v: Vec<f64>| {
            Bucketize::fit_partial(&p, &one("x", Arc::new(Float64Array::from(v)))).unwrap()
        };
        let (a, b, c) = (
            part(vec![3.0, 1.0, 3.0]),
            part(vec![2.0, -0.0, 3.0]),
            part(vec![0.0, 9.0]),
        );
        let left = Bucketize::merge(
            &p,
            Bucketize::merge(&p, a.clone(), b.clone()).unwrap(),
            c.clone(),
        )
        .unwrap();
        let right = Bucketize::merge(&p, a, Bucketize::merge(&p, b, c).unwrap()).unwrap();
        assert_eq!(left, right);
        // -0.0 and 0.0 are one value.
        assert_eq!(
            left.counts["x"],
            vec![(0.0, 2), (1.0, 1), (2.0, 1), (3.0, 3), (9.0, 1)]
        );
    }

    #[test]
    fn infinity_in_fit_is_refused_with_its_row() {
        let b = one("x", f64s(vec![Some(1.0), None, Some(f64::NEG_INFINITY)]));
        let err =
            testing::fit::<Bucketize>(r#"{"columns":["x"],"quantiles":2}"#, &[b]).unwrap_err();
        assert!(
            matches!(&err, Error::InvalidInput { column: Some(c), row: Some(2), .. } if c == "x"),
            "{err}"
        );
    }

    #[test]
    fn column_with_only_nulls_and_nan_cannot_be_fitted() {
        let b = one("x", f64s(vec![None, Some(f64::NAN)]));
        let err =
            testing::fit::<Bucketize>(r#"{"columns":["x"],"quantiles":2}"#, &[b]).unwrap_err();
        assert!(err.to_string().contains("'x'"), "{err}");
    }

    #[test]
    fn needs_fit_only_for_quantiles() {
        assert_eq!(Bucketize::info().kind, PluginKind::OptionallyFitted);
        let cases = [
            (r#"{"columns":["x"],"quantiles":4}"#, true),
            (r#"{"columns":["x"],"boundaries":[1,2]}"#, false),
            (
                r#"{"columns":["x"],"boundaries":[1,2],"quantiles":4}"#,
                false,
            ),
        ];
        for (params, want) in cases {
            let p: Params = serde_json::from_str(params).unwrap();
            assert_eq!(Bucketize::needs_fit(&p), want, "{params}");
        }
    }

    #[test]
    fn bad_params_are_invalid_params() {
        let b = one("x", f64s(vec![Some(1.0)]));
        let cases = [
            (r#"{"columns":["x"]}"#, "give `boundaries`"),
            (
                r#"{"columns":["x"],"boundaries":[1],"quantiles":2}"#,
                "not both",
            ),
            (r#"{"columns":[],"boundaries":[1]}"#, "no column"),
            (r#"{"columns":["x","x"],"boundaries":[1]}"#, "twice"),
            (r#"{"columns":["x"],"boundaries":[]}"#, "empty"),
            (
                r#"{"columns":["x"],"boundaries":[1,1]}"#,
                "strictly increasing",
            ),
            (
                r#"{"columns":["x"],"boundaries":[2,1]}"#,
                "strictly increasing",
            ),
            (r#"{"columns":["x"],"quantiles":1}"#, "between 2"),
            (r#"{"columns":["x"],"quantiles":65537}"#, "between 2"),
            (r#"{"columns":["x"],"quantiles":-1}"#, "invalid value"),
            (
                r#"{"columns":["x"],"boundaries":[1],"suffix":""}"#,
                "`suffix` is empty",
            ),
            (
                r#"{"columns":["x"],"boundaries":[1],"bins":3}"#,
                "unknown field",
            ),
            (r#"{"column":"x","boundaries":[1]}"#, "unknown field"),
        ];
        for (params, want) in cases {
            let err = testing::apply::<Bucketize>(params, None, &b).unwrap_err();
            assert!(matches!(err, Error::InvalidParams(_)), "{params}: {err}");
            assert!(err.to_string().contains(want), "{params}: {err}");
        }
        let err =
            testing::fit::<Bucketize>(r#"{"columns":["x"],"boundaries":[1]}"#, &[b]).unwrap_err();
        assert!(err.to_string().contains("nothing to fit"), "{err}");
    }

    #[test]
    fn wrong_type_and_missing_column_name_the_column() {
        let b = one("s", Arc::new(StringArray::from(vec!["a"])));
        let cases = [
            (
                r#"{"columns":["s"],"boundaries":[1]}"#,
                "'s'",
                "expected a numeric type",
            ),
            (
                r#"{"columns":["nope"],"boundaries":[1]}"#,
                "'nope'",
                "no such column",
            ),
        ];
        for (params, column, msg) in cases {
            let err = testing::apply::<Bucketize>(params, None, &b).unwrap_err();
            assert!(
                err.to_string().contains(column) && err.to_string().contains(msg),
                "{err}"
            );
            let fit_params = params.replace(r#""boundaries":[1]"#, r#""quantiles":2"#);
            let err = testing::fit::<Bucketize>(&fit_params, std::slice::from_ref(&b)).unwrap_err();
            assert!(
                err.to_string().contains(column) && err.to_string().contains(msg),
                "{err}"
            );
        }
    }

    #[test]
    fn state_must_match_the_params() {
        let b = one("x", f64s(vec![Some(1.0), Some(2.0)]));
        let fitted = testing::fit::<Bucketize>(
            r#"{"columns":["x"],"quantiles":2}"#,
            std::slice::from_ref(&b),
        )
        .unwrap();
        let unsorted = br#"{"boundaries":{"x":[2.0,1.0]}}"#;
        let cases: [(&str, Option<&[u8]>, &str); 4] = [
            (r#"{"columns":["x"],"quantiles":2}"#, None, "fit first"),
            (
                r#"{"columns":["x"],"boundaries":[1]}"#,
                Some(&fitted),
                "takes no state",
            ),
            (
                r#"{"columns":["y"],"quantiles":2}"#,
                Some(&fitted),
                "no boundaries for column 'y'",
            ),
            (
                r#"{"columns":["x"],"quantiles":2}"#,
                Some(unsorted),
                "strictly increasing",
            ),
        ];
        for (params, state, want) in cases {
            let err = testing::apply::<Bucketize>(params, state, &b).unwrap_err();
            assert!(
                matches!(err, Error::InvalidState(_)) && err.to_string().contains(want),
                "{params}: {err}"
            );
        }
    }
}
