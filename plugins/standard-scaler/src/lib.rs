//! `standard-scaler`: standardize numeric columns, like scikit-learn's
//! `StandardScaler`.
//!
//! Fit learns, per listed column, the mean and the population standard
//! deviation (`ddof = 0`), ignoring nulls and NaN. Transform outputs
//! `(x - mean) / std` as `Float64`; a column with zero variance is scaled by
//! 1 (as scikit-learn does), nulls stay null and NaN stays NaN.
//!
//! The partial state per batch is `(count, mean, M2)`, merged with Chan et
//! al.'s parallel update, so fitting in any batch split gives the same
//! statistics up to floating-point rounding.

use std::sync::Arc;

use kiln_sdk::arrow_array::{Array, ArrayRef, Float64Array, RecordBatch};
use kiln_sdk::arrow_schema::{DataType, Field, Schema};
use kiln_sdk::{columns, Error, FittedTransform, PluginInfo, Result};
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

/// Running moments of one column.
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
    fn of(values: &Float64Array) -> Moments {
        let mut m = Moments::default();
        for v in values.iter().flatten().filter(|v| !v.is_nan()) {
            m.count += 1;
            let d = v - m.mean;
            m.mean += d / m.count as f64;
            m.m2 += d * (v - m.mean);
        }
        m
    }

    fn merge(a: Moments, b: Moments) -> Moments {
        if a.count == 0 {
            return b;
        }
        if b.count == 0 {
            return a;
        }
        let n = a.count + b.count;
        let d = b.mean - a.mean;
        Moments {
            count: n,
            mean: a.mean + d * (b.count as f64 / n as f64),
            m2: a.m2 + b.m2 + d * d * (a.count as f64 * b.count as f64 / n as f64),
        }
    }
}

/// Fitted statistics of one column.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ColumnStats {
    /// Column name.
    pub column: String,
    /// Mean (0 when `with_mean` is false).
    pub mean: f64,
    /// Scale: the population std, or 1 for zero variance or `with_std` false.
    pub scale: f64,
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
}

fn check_params(p: &Params) -> Result<()> {
    if p.columns.is_empty() {
        return Err(Error::InvalidParams(
            "`columns` lists no column to scale".into(),
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
            "Standardize numeric columns: (x - mean) / std with the population std learned at fit time (nulls and NaN ignored; zero variance scales by 1), like scikit-learn's StandardScaler.",
        )
        .with_params_schema(
            r#"{"type":"object","required":["columns"],"additionalProperties":false,"properties":{"columns":{"type":"array","items":{"type":"string"},"description":"numeric columns to scale"},"suffix":{"type":"string","description":"write to <column><suffix> and keep the original"},"with_mean":{"type":"boolean","default":true},"with_std":{"type":"boolean","default":true}}}"#,
        )
    }

    fn fit_partial(params: &Params, batch: &RecordBatch) -> Result<Vec<Moments>> {
        check_params(params)?;
        params
            .columns
            .iter()
            .map(|c| Ok(Moments::of(&columns::numeric_as_f64(batch, c)?)))
            .collect()
    }

    fn merge(_params: &Params, a: Vec<Moments>, b: Vec<Moments>) -> Result<Vec<Moments>> {
        if a.len() != b.len() {
            return Err(Error::InvalidState(
                "partial states of different column counts".into(),
            ));
        }
        Ok(a.into_iter()
            .zip(b)
            .map(|(x, y)| Moments::merge(x, y))
            .collect())
    }

    fn finish(params: &Params, partial: Vec<Moments>) -> Result<Vec<ColumnStats>> {
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
                let std = (m.m2 / m.count as f64).sqrt();
                Ok(ColumnStats {
                    column: c.clone(),
                    mean: if params.with_mean { m.mean } else { 0.0 },
                    scale: if !params.with_std || std == 0.0 {
                        1.0
                    } else {
                        std
                    },
                })
            })
            .collect()
    }

    fn new(params: Params, state: Option<Vec<ColumnStats>>) -> Result<Self> {
        check_params(&params)?;
        let stats = state
            .ok_or_else(|| Error::InvalidState("standard-scaler needs a fitted state".into()))?;
        let fitted: Vec<&str> = stats.iter().map(|s| s.column.as_str()).collect();
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
        Ok(StandardScaler { params, stats })
    }

    fn output_schema(&self, input: &Schema) -> Result<Schema> {
        let mut schema = input.clone();
        for c in &self.params.columns {
            let f = columns::field(&schema, c)?;
            if !columns::is_numeric(f.data_type()) {
                return Err(columns::wrong_type(
                    c,
                    "a numeric type (integer or float)",
                    f.data_type(),
                ));
            }
            let out = Field::new(self.out_name(c), DataType::Float64, f.is_nullable());
            schema = columns::splice_schema(&schema, c, vec![out], self.params.suffix.is_some())?;
        }
        Ok(schema)
    }

    fn transform(&self, batch: &RecordBatch) -> Result<RecordBatch> {
        let mut batch = batch.clone();
        for s in &self.stats {
            let x = columns::numeric_as_f64(&batch, &s.column)?;
            let (mean, scale) = (s.mean, s.scale);
            let y: Float64Array = x.unary(|v| (v - mean) / scale);
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
    use kiln_sdk::arrow_array::Int32Array;
    use kiln_sdk::testing;

    fn f64s(v: Vec<Option<f64>>) -> ArrayRef {
        Arc::new(Float64Array::from(v))
    }

    #[test]
    fn scales_by_population_std_ignoring_nulls() {
        // [1, 2, 3, 4]: mean 2.5, population variance 1.25 (computed by hand).
        let b = testing::batch(vec![(
            "x",
            f64s(vec![Some(1.0), Some(2.0), None, Some(3.0), Some(4.0)]),
        )]);
        let out = testing::fit_apply::<StandardScaler>(r#"{"columns":["x"]}"#, &[b]).unwrap();
        let y = out[0]
            .column(0)
            .as_any()
            .downcast_ref::<Float64Array>()
            .unwrap();
        let s = 1.25f64.sqrt();
        assert_eq!(y.value(0), (1.0 - 2.5) / s);
        assert_eq!(y.value(4), (4.0 - 2.5) / s);
        assert!(y.is_null(2));
    }

    #[test]
    fn zero_variance_scales_by_one_and_ints_become_float() {
        let b = testing::batch(vec![(
            "n",
            Arc::new(Int32Array::from(vec![7, 7, 7])) as ArrayRef,
        )]);
        let out = testing::fit_apply::<StandardScaler>(r#"{"columns":["n"]}"#, &[b]).unwrap();
        let y = out[0]
            .column(0)
            .as_any()
            .downcast_ref::<Float64Array>()
            .unwrap();
        assert_eq!(y.values().to_vec(), vec![0.0, 0.0, 0.0]);
    }

    #[test]
    fn fitting_in_batches_matches_one_batch() {
        let values: Vec<Option<f64>> = (0..100)
            .map(|i| {
                if i % 9 == 0 {
                    None
                } else {
                    Some((i * i) as f64 / 7.0)
                }
            })
            .collect();
        let whole = testing::batch(vec![("x", f64s(values.clone()))]);
        let parts: Vec<RecordBatch> = [0..13, 13..50, 50..51, 51..100]
            .into_iter()
            .map(|r| testing::batch(vec![("x", f64s(values[r].to_vec()))]))
            .collect();
        let one: Vec<ColumnStats> = serde_json::from_slice(
            &testing::fit::<StandardScaler>(r#"{"columns":["x"]}"#, &[whole]).unwrap(),
        )
        .unwrap();
        let many: Vec<ColumnStats> = serde_json::from_slice(
            &testing::fit::<StandardScaler>(r#"{"columns":["x"]}"#, &parts).unwrap(),
        )
        .unwrap();
        assert!((one[0].mean - many[0].mean).abs() < 1e-12);
        assert!((one[0].scale - many[0].scale).abs() < 1e-12);
        // Reference: two-pass formula over the present values.
        let present: Vec<f64> = values.iter().flatten().copied().collect();
        let mean = present.iter().sum::<f64>() / present.len() as f64;
        let var = present.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / present.len() as f64;
        assert!((many[0].mean - mean).abs() < 1e-9 && (many[0].scale - var.sqrt()).abs() < 1e-9);
    }

    #[test]
    fn matches_scikit_learn_on_a_fixed_sample() {
        // sklearn.preprocessing.StandardScaler().fit_transform([[10.], [20.], [30.], [55.]]).ravel()
        // -> [-1.1211526391279036, -0.523204564926355, 0.07474350927519358, 1.5696136947790653]
        // (scikit-learn 1.x, run when this test was written)
        let b = testing::batch(vec![(
            "x",
            f64s(vec![Some(10.0), Some(20.0), Some(30.0), Some(55.0)]),
        )]);
        let out = testing::fit_apply::<StandardScaler>(r#"{"columns":["x"]}"#, &[b]).unwrap();
        let y = out[0]
            .column(0)
            .as_any()
            .downcast_ref::<Float64Array>()
            .unwrap();
        let want = [
            -1.121_152_639_127_903_6,
            -0.523_204_564_926_355,
            0.074_743_509_275_193_58,
            1.569_613_694_779_065_3,
        ];
        for (g, w) in y.values().iter().zip(want) {
            assert!((g - w).abs() < 1e-12, "{g} vs {w}");
        }
    }

    #[test]
    fn errors_name_the_column() {
        let b = testing::batch(vec![(
            "s",
            Arc::new(kiln_sdk::arrow_array::StringArray::from(vec!["a"])) as ArrayRef,
        )]);
        let e = testing::fit::<StandardScaler>(r#"{"columns":["s"]}"#, std::slice::from_ref(&b))
            .unwrap_err();
        assert!(e.to_string().contains("'s'"), "{e}");
        let e = testing::fit::<StandardScaler>(r#"{"columns":["nope"]}"#, std::slice::from_ref(&b))
            .unwrap_err();
        assert!(e.to_string().contains("'nope'"), "{e}");
        let e = testing::fit::<StandardScaler>(r#"{"columns":["s"],"bogus":1}"#, &[b]).unwrap_err();
        assert!(e.to_string().contains("bogus"), "{e}");
    }
}
