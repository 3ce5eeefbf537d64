//! `standard-scaler`: standardize numeric columns, like scikit-learn's
//! `StandardScaler`.
//!
//! Fit learns, per listed column, the mean and the population standard
//! deviation (`ddof = 0`) of the present values: nulls and NaN are ignored
//! (as scikit-learn ignores NaN), and an infinite value is an error naming
//! the column and row (scikit-learn refuses infinity too).
//!
//! Transform writes `(x - mean) / std` as `Float64`, in place or, with
//! `suffix`, to a new column `<column><suffix>` right after the original.
//! Nulls stay null and NaN stays NaN. A column that is constant, or
//! indistinguishable from constant within floating-point rounding (the test
//! of scikit-learn's `_is_constant_feature`), is scaled by 1, so it becomes
//! `x - mean` rather than a division by a tiny number.
//!
//! `with_mean: false` skips the centering and `with_std: false` the
//! scaling; the fitted state is the same either way, so one state serves
//! every combination.
//!
//! The partial state per batch is `(count, mean, M2)` (M2 is the sum of
//! squared deviations from the mean, computed within a batch by the
//! corrected two-pass formula scikit-learn uses), and partial states merge
//! with Chan, Golub and LeVeque's parallel update, so any split of the data
//! into batches gives the same statistics up to floating-point rounding.

use std::collections::BTreeSet;
use std::sync::Arc;

use kiln_sdk::arrow_array::cast::AsArray;
use kiln_sdk::arrow_array::types::Float64Type;
use kiln_sdk::arrow_array::{Array, ArrayRef, Float64Array, RecordBatch};
use kiln_sdk::arrow_schema::{DataType, Field, Schema};
use kiln_sdk::{columns, output, Error, FittedTransform, PluginInfo, Result};
use serde::{Deserialize, Serialize};

/// Parameters of `standard-scaler`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Params {
    /// Numeric columns to scale (any integer or float type).
    pub columns: Vec<String>,
    /// Write `<column><suffix>` and keep the original instead of replacing it.
    #[serde(default)]
    pub suffix: Option<String>,
    /// Subtract the mean (default true).
    #[serde(default = "yes")]
    pub with_mean: bool,
    /// Divide by the standard deviation (default true).
    #[serde(default = "yes")]
    pub with_std: bool,
}

fn yes() -> bool {
    true
}

/// Running moments of one column: the partial state.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq)]
pub struct Moments {
    /// Values seen (nulls and NaN excluded).
    pub count: u64,
    /// Their mean.
    pub mean: f64,
    /// Sum of squared deviations from the mean.
    pub m2: f64,
}

impl Moments {
    /// Moments of the present values of one batch's column.
    ///
    /// Corrected two-pass: `M2 = Σ(x - m)² - (Σ(x - m))² / n`, as
    /// scikit-learn's `_incremental_mean_and_var`.
    fn of(column: &str, values: &Float64Array) -> Result<Moments> {
        let mut count = 0u64;
        let mut sum = 0.0;
        for (row, v) in values.iter().enumerate() {
            let Some(v) = v.filter(|v| !v.is_nan()) else {
                continue;
            };
            if v.is_infinite() {
                return Err(Error::value(
                    column,
                    row,
                    format!("infinite value ({v}); replace or drop it before scaling"),
                ));
            }
            count += 1;
            sum += v;
        }
        if count == 0 {
            return Ok(Moments::default());
        }
        let mean = sum / count as f64;
        let (mut correction, mut squares) = (0.0, 0.0);
        for v in values.iter().flatten().filter(|v| !v.is_nan()) {
            let d = v - mean;
            correction += d;
            squares += d * d;
        }
        Ok(Moments {
            count,
            mean,
            // Rounding can make the difference a hair negative.
            m2: (squares - correction * correction / count as f64).max(0.0),
        })
    }

    /// Chan et al.'s pairwise update.
    fn merge(a: Moments, b: Moments) -> Moments {
        if a.count == 0 {
            return b;
        }
        if b.count == 0 {
            return a;
        }
        let n = a.count + b.count;
        let (na, nb, nf) = (a.count as f64, b.count as f64, n as f64);
        let d = b.mean - a.mean;
        Moments {
            count: n,
            mean: a.mean + d * (nb / nf),
            m2: a.m2 + b.m2 + d * d * (na * nb / nf),
        }
    }
}

/// Fitted statistics of one column: the state is one per listed column, in
/// the order of `columns`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ColumnStats {
    /// Column name.
    pub column: String,
    /// Mean of the present values.
    pub mean: f64,
    /// Population standard deviation; 0 when the column is constant (or
    /// indistinguishable from constant), which the transform scales by 1.
    pub std: f64,
}

/// Whether a variance is indistinguishable from 0 given the rounding error
/// of its computation: scikit-learn's `_is_constant_feature` (bound from
/// Chan, Golub and LeVeque on the two-pass algorithm).
fn is_constant(var: f64, mean: f64, n: u64) -> bool {
    let n = n as f64;
    let eps = f64::EPSILON;
    var <= n * eps * var + (n * mean * eps).powi(2)
}

/// The configured scaler.
pub struct StandardScaler {
    params: Params,
    stats: Vec<ColumnStats>,
}

impl StandardScaler {
    fn out_name(&self, c: &str) -> String {
        match &self.params.suffix {
            Some(s) => format!("{c}{s}"),
            None => c.to_owned(),
        }
    }

    /// `(shift, divisor)` of a column under the parameters.
    fn shift_scale(&self, s: &ColumnStats) -> (f64, f64) {
        let shift = if self.params.with_mean { s.mean } else { 0.0 };
        let scale = if self.params.with_std && s.std != 0.0 {
            s.std
        } else {
            1.0
        };
        (shift, scale)
    }
}

fn check_params(p: &Params) -> Result<()> {
    if p.columns.is_empty() {
        return Err(Error::InvalidParams(
            "`columns` lists no column to scale".into(),
        ));
    }
    let mut seen = BTreeSet::new();
    for c in &p.columns {
        if !seen.insert(c) {
            return Err(Error::InvalidParams(format!("`columns` lists '{c}' twice")));
        }
    }
    if p.suffix.as_deref() == Some("") {
        return Err(Error::InvalidParams(
            "`suffix` is empty; omit it to replace the columns in place".into(),
        ));
    }
    Ok(())
}

impl FittedTransform for StandardScaler {
    type Params = Params;
    type Partial = Vec<Moments>;
    type State = Vec<ColumnStats>;

    fn info() -> PluginInfo {
        PluginInfo::new(
            "standard-scaler",
            env!("CARGO_PKG_VERSION"),
            "Standardize numeric columns to Float64 (x - mean) / std with the mean and population std learned at fit time (nulls and NaN ignored; a constant column is scaled by 1), like scikit-learn's StandardScaler.",
        )
        .with_params_schema(
            r#"{"type":"object","required":["columns"],"additionalProperties":false,"properties":{"columns":{"type":"array","items":{"type":"string"},"minItems":1,"uniqueItems":true,"description":"numeric (integer or float) columns to scale"},"suffix":{"type":"string","minLength":1,"description":"write to <column><suffix> and keep the original instead of replacing it"},"with_mean":{"type":"boolean","default":true,"description":"subtract the mean"},"with_std":{"type":"boolean","default":true,"description":"divide by the population standard deviation"}}}"#,
        )
    }

    fn fit_partial(params: &Params, batch: &RecordBatch) -> Result<Vec<Moments>> {
        check_params(params)?;
        params
            .columns
            .iter()
            .map(|c| Moments::of(c, &columns::numeric_as_f64(batch, c)?))
            .collect()
    }

    fn merge(params: &Params, a: Vec<Moments>, b: Vec<Moments>) -> Result<Vec<Moments>> {
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
            .map(|(x, y)| Moments::merge(x, y))
            .collect())
    }

    fn finish(params: &Params, partial: Vec<Moments>) -> Result<Vec<ColumnStats>> {
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
            .map(|(c, m)| {
                if m.count == 0 {
                    return Err(Error::column(
                        c,
                        "no non-null values to fit on; impute the column first or drop it",
                    ));
                }
                let var = m.m2 / m.count as f64;
                let std = if is_constant(var, m.mean, m.count) {
                    0.0
                } else {
                    var.sqrt()
                };
                Ok(ColumnStats {
                    column: c.clone(),
                    mean: m.mean,
                    std,
                })
            })
            .collect()
    }

    fn new(params: Params, state: Option<Vec<ColumnStats>>) -> Result<Self> {
        check_params(&params)?;
        let stats = state
            .ok_or_else(|| Error::InvalidState("standard-scaler needs a fitted state".into()))?;
        let fitted: Vec<&str> = stats.iter().map(|s| s.column.as_str()).collect();
        if fitted != params.columns {
            return Err(Error::InvalidState(format!(
                "state was fitted on columns {fitted:?} but the parameters list {:?}",
                params.columns
            )));
        }
        if let Some(s) = stats
            .iter()
            .find(|s| !s.mean.is_finite() || !s.std.is_finite() || s.std < 0.0)
        {
            return Err(Error::InvalidState(format!(
                "state for column '{}' has mean {} and std {}; refit",
                s.column, s.mean, s.std
            )));
        }
        Ok(StandardScaler { params, stats })
    }

    fn output_schema(&self, input: &Schema) -> Result<Schema> {
        let mut schema = input.clone();
        let keep = self.params.suffix.is_some();
        for c in &self.params.columns {
            let f = columns::field(&schema, c)?;
            if !columns::is_numeric(f.data_type()) {
                return Err(columns::wrong_type(
                    c,
                    "a numeric type (integer or float)",
                    f.data_type(),
                ));
            }
            let name = self.out_name(c);
            if keep && schema.field_with_name(&name).is_ok() {
                return Err(Error::column(
                    c,
                    format!("output column '{name}' already exists; choose another suffix"),
                ));
            }
            let out = Field::new(name, DataType::Float64, f.is_nullable());
            schema = columns::splice_schema(&schema, c, vec![out], keep)?;
        }
        Ok(schema)
    }

    fn transform(&self, batch: &RecordBatch) -> Result<RecordBatch> {
        self.transform_owned(batch.clone())
    }

    /// Float64 columns replaced in place are rewritten over their own
    /// buffer (no new memory, no copy); other types are widened into a new
    /// one, and with `suffix` the original is kept, so the output is new.
    fn transform_owned(&self, batch: RecordBatch) -> Result<RecordBatch> {
        if self.params.suffix.is_none() {
            let mut batch = batch;
            for s in &self.stats {
                let (shift, scale) = self.shift_scale(s);
                batch = columns::replace_with(batch, &s.column, |field, column| {
                    let x = match column.as_primitive_opt::<Float64Type>() {
                        Some(x) => x.clone(),
                        None => columns::array_as_f64(column.as_ref()).ok_or_else(|| {
                            columns::wrong_type(
                                &s.column,
                                "a numeric type (integer or float)",
                                column.data_type(),
                            )
                        })?,
                    };
                    // The column's last other reference goes here, so
                    // `unary_mut` may write over its values.
                    drop(column);
                    let y = output::unary_mut(x, |v| (v - shift) / scale);
                    let nullable = field.is_nullable() || y.null_count() > 0;
                    let field = Field::new(field.name(), DataType::Float64, nullable);
                    Ok((field, Arc::new(y) as ArrayRef))
                })?;
            }
            return Ok(batch);
        }
        let mut batch = batch;
        for s in &self.stats {
            let x = columns::numeric_as_f64(&batch, &s.column)?;
            let (shift, scale) = self.shift_scale(s);
            let y = output::unary::<_, Float64Type, _>(&x, |v| (v - shift) / scale);
            let nullable =
                columns::field(batch.schema_ref(), &s.column)?.is_nullable() || y.null_count() > 0;
            let field = Field::new(self.out_name(&s.column), DataType::Float64, nullable);
            batch = columns::splice(
                &batch,
                &s.column,
                vec![(field, Arc::new(y) as ArrayRef)],
                self.params.suffix.is_some(),
            )?;
        }
        Ok(batch)
    }
}

kiln_sdk::export!(StandardScaler);

#[cfg(test)]
mod tests {
    use super::*;
    use kiln_sdk::arrow_array::{Float32Array, Int32Array, Int64Array, StringArray, UInt8Array};
    use kiln_sdk::testing;

    fn f64s(v: &[Option<f64>]) -> ArrayRef {
        Arc::new(Float64Array::from(v.to_vec()))
    }

    fn one(name: &str, a: ArrayRef) -> RecordBatch {
        testing::batch(vec![(name, a)])
    }

    fn values(b: &RecordBatch, name: &str) -> Vec<Option<f64>> {
        b.column_by_name(name)
            .unwrap_or_else(|| panic!("no column {name}"))
            .as_any()
            .downcast_ref::<Float64Array>()
            .expect("Float64 output")
            .iter()
            .collect()
    }

    fn state(params: &str, batches: &[RecordBatch]) -> Vec<ColumnStats> {
        serde_json::from_slice(&testing::fit::<StandardScaler>(params, batches).unwrap()).unwrap()
    }

    /// Equal as numbers, NaN equal to NaN, null to null.
    fn same(got: &[Option<f64>], want: &[Option<f64>]) -> bool {
        got.len() == want.len()
            && got.iter().zip(want).all(|(g, w)| match (g, w) {
                (Some(g), Some(w)) => g == w || (g.is_nan() && w.is_nan()),
                (None, None) => true,
                _ => false,
            })
    }

    #[test]
    fn hand_computed_cases() {
        // Oracles worked out by hand:
        // [1, 2, 3, 4]: mean 2.5, population variance (2.25+0.25+0.25+2.25)/4 = 1.25.
        // [1, NaN, 3]: NaN ignored, mean 2, variance 1, so std 1.
        // [7, 7, 7] and [-5]: variance 0, scaled by 1.
        let s = 1.25f64.sqrt();
        let nan = f64::NAN;
        // (params, input, expected output)
        type Case<'a> = (&'a str, Vec<Option<f64>>, Vec<Option<f64>>);
        let cases: Vec<Case<'_>> = vec![
            (
                r#"{"columns":["x"]}"#,
                vec![Some(1.0), Some(2.0), None, Some(3.0), Some(4.0)],
                vec![
                    Some(-1.5 / s),
                    Some(-0.5 / s),
                    None,
                    Some(0.5 / s),
                    Some(1.5 / s),
                ],
            ),
            (
                r#"{"columns":["x"],"with_mean":false}"#,
                vec![Some(1.0), Some(2.0), Some(3.0), Some(4.0)],
                vec![Some(1.0 / s), Some(2.0 / s), Some(3.0 / s), Some(4.0 / s)],
            ),
            (
                r#"{"columns":["x"],"with_std":false}"#,
                vec![Some(1.0), Some(2.0), Some(3.0), Some(4.0)],
                vec![Some(-1.5), Some(-0.5), Some(0.5), Some(1.5)],
            ),
            (
                r#"{"columns":["x"],"with_mean":false,"with_std":false}"#,
                vec![Some(1.0), None, Some(4.0)],
                vec![Some(1.0), None, Some(4.0)],
            ),
            (
                r#"{"columns":["x"]}"#,
                vec![Some(1.0), Some(nan), Some(3.0), None],
                vec![Some(-1.0), Some(nan), Some(1.0), None],
            ),
            (
                r#"{"columns":["x"]}"#,
                vec![Some(7.0), Some(7.0), None, Some(7.0)],
                vec![Some(0.0), Some(0.0), None, Some(0.0)],
            ),
            (r#"{"columns":["x"]}"#, vec![Some(-5.0)], vec![Some(0.0)]),
        ];
        for (params, input, want) in cases {
            let out = testing::fit_apply::<StandardScaler>(params, &[one("x", f64s(&input))])
                .unwrap_or_else(|e| panic!("{params} {input:?}: {e}"));
            let got = values(&out[0], "x");
            assert!(same(&got, &want), "{params} {input:?}: {got:?} != {want:?}");
        }
    }

    #[test]
    fn matches_scikit_learn_literals() {
        // Printed by scikit-learn 1.9.1 / numpy 2.4.6:
        //   s = StandardScaler(**kw).fit(X); s.transform(X).ravel()
        // with X the column as float64 (NaN for the null-free missing value).
        let nan = f64::NAN;
        let big = f64::from_bits(0x4202_a05f_2000_0001); // nextafter(1e10, inf)
                                                         // (params, input, expected output)
        type Case<'a> = (&'a str, Vec<f64>, Vec<f64>);
        let cases: Vec<Case<'_>> = vec![
            (
                r#"{"columns":["x"]}"#,
                vec![10.0, 20.0, 30.0, 55.0],
                vec![
                    -1.121_152_639_127_903_6,
                    -0.523_204_564_926_355,
                    0.074_743_509_275_193_58,
                    1.569_613_694_779_065_3,
                ],
            ),
            (
                r#"{"columns":["x"]}"#,
                vec![1.5, nan, -2.25, 8.0, 0.125],
                vec![
                    -0.090_483_660_294_532_56,
                    nan,
                    -1.077_578_136_234_887_7,
                    1.620_480_098_002_083,
                    -0.452_418_301_472_662_76,
                ],
            ),
            // Constant up to rounding: sklearn's variance is exactly 0, scale 1.
            (
                r#"{"columns":["x"]}"#,
                vec![0.1, 0.1, 0.1],
                vec![-1.387_778_780_781_445_7e-17; 3],
            ),
            // Variance 9.09e-13 but indistinguishable from constant
            // (_is_constant_feature): scale_ is 1, so the output is x - mean.
            (
                r#"{"columns":["x"]}"#,
                vec![1e10, big, 1e10, big],
                vec![0.0, 1.907_348_632_812_5e-6, 0.0, 1.907_348_632_812_5e-6],
            ),
            (
                r#"{"columns":["x"],"with_mean":false}"#,
                vec![3.0, 1.0, 4.0, 1.0, 5.0, 9.0, 2.0, 6.0],
                vec![
                    1.166_919_931_983_156_5,
                    0.388_973_310_661_052_1,
                    1.555_893_242_644_208_5,
                    0.388_973_310_661_052_1,
                    1.944_866_553_305_260_7,
                    3.500_759_795_949_469,
                    0.777_946_621_322_104_2,
                    2.333_839_863_966_313,
                ],
            ),
            (
                r#"{"columns":["x"],"with_std":false}"#,
                vec![3.0, 1.0, 4.0, 1.0, 5.0, 9.0, 2.0, 6.0],
                vec![-0.875, -2.875, 0.125, -2.875, 1.125, 5.125, -1.875, 2.125],
            ),
        ];
        for (params, input, want) in cases {
            let x: Vec<Option<f64>> = input.iter().map(|v| Some(*v)).collect();
            let out = testing::fit_apply::<StandardScaler>(params, &[one("x", f64s(&x))]).unwrap();
            let got = values(&out[0], "x");
            for (g, w) in got.iter().zip(&want) {
                let g = g.unwrap();
                let close = (g.is_nan() && w.is_nan()) || (g - w).abs() <= 1e-15 * w.abs().max(1.0);
                assert!(close, "{params} {input:?}: {got:?} != {want:?}");
            }
        }
    }

    #[test]
    fn integer_and_float32_columns_become_float64() {
        // sklearn on [3, 1, 4, 1, 5, 9, 2, 6] (int32 cast to float64), scikit-learn 1.9.1.
        let want = [
            -0.340_351_646_828_420_6,
            -1.118_298_268_150_525,
            0.048_621_663_832_631_515,
            -1.118_298_268_150_525,
            0.437_594_974_493_683_6,
            1.993_488_217_137_892_3,
            -0.729_324_957_489_472_8,
            0.826_568_285_154_735_8,
        ];
        let digits = [3, 1, 4, 1, 5, 9, 2, 6];
        let inputs: Vec<ArrayRef> = vec![
            Arc::new(Int32Array::from(digits.to_vec())),
            Arc::new(Int64Array::from(
                digits.iter().map(|v| *v as i64).collect::<Vec<_>>(),
            )),
            Arc::new(UInt8Array::from(
                digits.iter().map(|v| *v as u8).collect::<Vec<_>>(),
            )),
            Arc::new(Float32Array::from(
                digits.iter().map(|v| *v as f32).collect::<Vec<_>>(),
            )),
        ];
        for a in inputs {
            let t = a.data_type().clone();
            let out = testing::fit_apply::<StandardScaler>(r#"{"columns":["n"]}"#, &[one("n", a)])
                .unwrap();
            assert_eq!(out[0].schema().field(0).data_type(), &DataType::Float64);
            for (g, w) in values(&out[0], "n").iter().zip(want) {
                assert!((g.unwrap() - w).abs() < 1e-15, "{t}: {g:?} vs {w}");
            }
        }
    }

    #[test]
    fn fitting_in_batches_gives_the_state_of_one_batch() {
        // Exact case: [1, 2] + [3, 4] merge to mean 2.5, variance 1.25, as
        // the single batch [1, 2, 3, 4] (all operations exact in binary).
        let whole = state(
            r#"{"columns":["x"]}"#,
            &[one(
                "x",
                f64s(&[Some(1.0), Some(2.0), Some(3.0), Some(4.0)]),
            )],
        );
        let split = state(
            r#"{"columns":["x"]}"#,
            &[
                one("x", f64s(&[Some(1.0), Some(2.0)])),
                one("x", f64s(&[None, None])),
                one("x", f64s(&[Some(3.0), None, Some(4.0)])),
            ],
        );
        let want = vec![ColumnStats {
            column: "x".into(),
            mean: 2.5,
            std: 1.25f64.sqrt(),
        }];
        assert_eq!(whole, want);
        assert_eq!(split, want);

        // Many values in uneven splits, against a plain two-pass reference.
        let values: Vec<Option<f64>> = (0..100)
            .map(|i| (i % 9 != 0).then(|| (i * i) as f64 / 7.0 - 300.0))
            .collect();
        let present: Vec<f64> = values.iter().flatten().copied().collect();
        let mean = present.iter().sum::<f64>() / present.len() as f64;
        let var = present.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / present.len() as f64;
        let one_batch = state(r#"{"columns":["x"]}"#, &[one("x", f64s(&values))]);
        for cuts in [
            vec![0, 13, 50, 51, 100],
            vec![0, 1, 2, 99, 100],
            vec![0, 50, 100],
        ] {
            let parts: Vec<RecordBatch> = cuts
                .windows(2)
                .map(|w| one("x", f64s(&values[w[0]..w[1]])))
                .collect();
            let many = state(r#"{"columns":["x"]}"#, &parts);
            for s in [&one_batch[0], &many[0]] {
                assert!((s.mean - mean).abs() < 1e-12, "{cuts:?}: {s:?}");
                assert!((s.std - var.sqrt()).abs() < 1e-12, "{cuts:?}: {s:?}");
            }
        }
    }

    #[test]
    fn constant_column_split_over_batches_stays_constant() {
        let s = state(
            r#"{"columns":["x"]}"#,
            &[
                one("x", f64s(&[Some(0.1), Some(0.1)])),
                one("x", f64s(&[Some(0.1)])),
                one("x", f64s(&[Some(0.1), None, Some(0.1)])),
            ],
        );
        assert_eq!(s[0].std, 0.0);
    }

    #[test]
    fn suffix_keeps_the_original_and_schema_is_declared() {
        let b = testing::batch(vec![
            ("a", f64s(&[Some(1.0), Some(3.0)])),
            ("k", Arc::new(StringArray::from(vec!["p", "q"])) as ArrayRef),
            ("b", Arc::new(Int32Array::from(vec![10, 30])) as ArrayRef),
        ]);
        let out = testing::fit_apply::<StandardScaler>(
            r#"{"columns":["b","a"],"suffix":"_z"}"#,
            std::slice::from_ref(&b),
        )
        .unwrap();
        let names: Vec<&str> = out[0]
            .schema_ref()
            .fields()
            .iter()
            .map(|f| f.name().as_str())
            .collect();
        assert_eq!(names, ["a", "a_z", "k", "b", "b_z"]);
        // Each column: mean in the middle, std = half the spread.
        assert_eq!(values(&out[0], "a_z"), [Some(-1.0), Some(1.0)]);
        assert_eq!(values(&out[0], "b_z"), [Some(-1.0), Some(1.0)]);
        assert_eq!(values(&out[0], "a"), [Some(1.0), Some(3.0)]);
    }

    #[test]
    fn output_nullability_follows_the_input() {
        let schema = Schema::new(vec![Field::new("x", DataType::Int64, false)]);
        let b = RecordBatch::try_new(
            Arc::new(schema.clone()),
            vec![Arc::new(Int64Array::from(vec![1, 3])) as ArrayRef],
        )
        .unwrap();
        let st = testing::fit::<StandardScaler>(r#"{"columns":["x"]}"#, &[b]).unwrap();
        let t = StandardScaler::new(
            serde_json::from_str(r#"{"columns":["x"]}"#).unwrap(),
            Some(serde_json::from_slice(&st).unwrap()),
        )
        .unwrap();
        let out = t.output_schema(&schema).unwrap();
        assert_eq!(out.field(0), &Field::new("x", DataType::Float64, false));
    }

    #[test]
    fn errors_name_the_column() {
        let b = testing::batch(vec![
            ("s", Arc::new(StringArray::from(vec!["a", "b"])) as ArrayRef),
            ("x", f64s(&[Some(1.0), Some(f64::INFINITY)])),
            ("x_z", f64s(&[Some(1.0), Some(2.0)])),
            ("empty", f64s(&[None, None])),
        ]);
        let fit_err = |params: &str| {
            testing::fit::<StandardScaler>(params, std::slice::from_ref(&b)).unwrap_err()
        };
        let cases: Vec<(&str, Error)> = vec![
            (
                r#"{"columns":["s"]}"#,
                columns::wrong_type("s", "a numeric type (integer or float)", &DataType::Utf8),
            ),
            (
                r#"{"columns":["nope"]}"#,
                Error::column("nope", "no such column; the input has: s, x, x_z, empty"),
            ),
            (
                r#"{"columns":["x"]}"#,
                Error::value(
                    "x",
                    1,
                    "infinite value (inf); replace or drop it before scaling",
                ),
            ),
            (
                r#"{"columns":["empty"]}"#,
                Error::column(
                    "empty",
                    "no non-null values to fit on; impute the column first or drop it",
                ),
            ),
        ];
        for (params, want) in cases {
            assert_eq!(fit_err(params), want, "{params}");
        }
        for params in [
            r#"{"columns":["x"],"bogus":1}"#,
            r#"{"columns":[]}"#,
            r#"{"columns":["x","x"]}"#,
            r#"{"columns":["x"],"suffix":""}"#,
            r#"{"columns":"x"}"#,
        ] {
            assert!(
                matches!(fit_err(params), Error::InvalidParams(_)),
                "{params}"
            );
        }

        // At apply time: a missing or retyped column, a clashing suffix, and
        // a state fitted on other columns.
        let train = testing::batch(vec![("x", f64s(&[Some(1.0), Some(2.0)]))]);
        let st = testing::fit::<StandardScaler>(r#"{"columns":["x"]}"#, &[train]).unwrap();
        let apply = |params: &str, b: &RecordBatch| {
            testing::apply::<StandardScaler>(params, Some(&st), b).unwrap_err()
        };
        let no_x = testing::batch(vec![("y", f64s(&[Some(1.0)]))]);
        assert_eq!(
            apply(r#"{"columns":["x"]}"#, &no_x),
            Error::column("x", "no such column; the input has: y")
        );
        let text_x = testing::batch(vec![(
            "x",
            Arc::new(StringArray::from(vec!["1"])) as ArrayRef,
        )]);
        assert_eq!(
            apply(r#"{"columns":["x"]}"#, &text_x),
            columns::wrong_type("x", "a numeric type (integer or float)", &DataType::Utf8)
        );
        assert_eq!(
            apply(r#"{"columns":["x"],"suffix":"_z"}"#, &b),
            Error::column(
                "x",
                "output column 'x_z' already exists; choose another suffix"
            )
        );
        assert!(matches!(
            apply(r#"{"columns":["y"]}"#, &no_x),
            Error::InvalidState(_)
        ));
        assert!(matches!(
            testing::apply::<StandardScaler>(r#"{"columns":["x"]}"#, None, &b).unwrap_err(),
            Error::InvalidState(_)
        ));
    }
}
