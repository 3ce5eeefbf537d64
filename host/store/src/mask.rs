//! Column masks: what a principal without clearance sees of a sensitive
//! column (see [`crate::ColumnPolicy`]).
//!
//! - `hash`: HMAC-SHA256 of the value's text (as Arrow prints it), keyed
//!   with the store's secret salt, as 32 hex digits (128 bits). Equal
//!   values give equal hashes, so masked keys still join and count; the
//!   salt stops a dictionary attack on small domains (ages, zip codes).
//! - `redact`: every value null, the type kept.
//! - `bucketize:W`: numbers rounded down to a multiple of `W`, the type
//!   kept (`age` 37 with `bucketize:10` is 30).
//!
//! Nulls stay null. A masked column carries field metadata
//! `kiln.masked` (the mask) and `kiln.sensitivity` (the label), so a
//! reader knows what it got.

use std::collections::BTreeMap;
use std::sync::Arc;

use arrow::array::{new_null_array, Array, ArrayRef, RecordBatch, StringBuilder};
use arrow::compute::{cast, kernels::numeric};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use arrow::util::display::{ArrayFormatter, FormatOptions};
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use crate::{ColumnPolicy, Error, Result};

/// How a column is masked.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Mask {
    /// Keyed hash of the value (a string of 32 hex digits).
    Hash,
    /// Null.
    Redact,
    /// Rounded down to a multiple of `width`.
    Bucketize {
        /// The bucket width (positive; whole for integer columns).
        width: f64,
    },
}

impl std::fmt::Display for Mask {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Mask::Hash => f.write_str("hash"),
            Mask::Redact => f.write_str("redact"),
            Mask::Bucketize { width } => write!(f, "bucketize:{width}"),
        }
    }
}

impl std::str::FromStr for Mask {
    type Err = Error;
    fn from_str(s: &str) -> Result<Mask> {
        let bad = || {
            Error::Usage(format!(
                "'{s}' is not a mask: use hash, redact or bucketize:WIDTH (e.g. bucketize:10)"
            ))
        };
        match s.split_once(':') {
            None if s == "hash" => Ok(Mask::Hash),
            None if s == "redact" => Ok(Mask::Redact),
            Some(("bucketize", w)) => {
                let width: f64 = w.parse().map_err(|_| bad())?;
                if width.is_finite() && width > 0.0 {
                    Ok(Mask::Bucketize { width })
                } else {
                    Err(bad())
                }
            }
            _ => Err(bad()),
        }
    }
}

/// The masks one principal gets on one output: column → policy, and the
/// store's salt. Empty masks change nothing.
#[derive(Clone, Default)]
pub struct Masking {
    columns: BTreeMap<String, ColumnPolicy>,
    salt: Arc<[u8]>,
}

impl std::fmt::Debug for Masking {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Masking")
            .field("columns", &self.columns)
            .finish_non_exhaustive()
    }
}

impl Masking {
    /// Masks for `columns`, hashing with `salt`.
    pub fn new(columns: BTreeMap<String, ColumnPolicy>, salt: Arc<[u8]>) -> Masking {
        Masking { columns, salt }
    }

    /// Whether nothing is masked.
    pub fn is_empty(&self) -> bool {
        self.columns.is_empty()
    }

    /// The masked column names (whether or not an output has them).
    pub fn columns(&self) -> Vec<&str> {
        self.columns.keys().map(String::as_str).collect()
    }

    /// The sensitivity labels of the masked columns, each once.
    pub fn sensitivities(&self) -> Vec<&str> {
        let labels: std::collections::BTreeSet<&str> = self
            .columns
            .values()
            .map(|p| p.sensitivity.as_str())
            .collect();
        labels.into_iter().collect()
    }

    /// Every column's mask, column → mask (what a run records when it
    /// cannot tell which columns an output will have, e.g. SQL).
    pub fn masks(&self) -> BTreeMap<String, Mask> {
        self.columns
            .iter()
            .map(|(c, p)| (c.clone(), p.mask.clone()))
            .collect()
    }

    /// Every column's policy (mask and sensitivity label), column → policy.
    pub fn policies(&self) -> &BTreeMap<String, ColumnPolicy> {
        &self.columns
    }

    /// The key `hash` masks are computed with (the store's secret salt).
    ///
    /// Key material: only code that sends a masked transform to another
    /// process inside the same trust boundary (a Ballista executor, which
    /// must hash as the store does) reads it; never log or record it.
    pub fn salt(&self) -> &[u8] {
        &self.salt
    }

    /// The masks that apply to the columns of `schema`, column → mask.
    pub fn applied(&self, schema: &Schema) -> BTreeMap<String, Mask> {
        schema
            .fields()
            .iter()
            .filter_map(|f| {
                self.columns
                    .get(f.name())
                    .map(|p| (f.name().clone(), p.mask.clone()))
            })
            .collect()
    }

    /// The same masks, keeping only `masks` (a recorded run's), for
    /// re-executing it exactly.
    pub fn replay(masks: &BTreeMap<String, Mask>, salt: Arc<[u8]>) -> Masking {
        let columns = masks
            .iter()
            .map(|(c, m)| {
                (
                    c.clone(),
                    ColumnPolicy {
                        sensitivity: String::new(),
                        mask: m.clone(),
                    },
                )
            })
            .collect();
        Masking { columns, salt }
    }

    /// The schema of masked output for `schema`.
    ///
    /// # Errors
    /// [`Error::Policy`] for a mask that cannot apply to its column's type
    /// (`bucketize` on text, a fractional width on integers).
    pub fn schema(&self, schema: &Schema) -> Result<SchemaRef> {
        if self.is_empty() {
            return Ok(Arc::new(schema.clone()));
        }
        let fields: Vec<Field> = schema
            .fields()
            .iter()
            .map(|f| match self.columns.get(f.name()) {
                None => Ok(f.as_ref().clone()),
                Some(p) => {
                    let dt = masked_type(f.name(), f.data_type(), &p.mask)?;
                    let mut meta = f.metadata().clone();
                    meta.insert("kiln.masked".into(), p.mask.to_string());
                    if !p.sensitivity.is_empty() {
                        meta.insert("kiln.sensitivity".into(), p.sensitivity.clone());
                    }
                    Ok(Field::new(f.name(), dt, true).with_metadata(meta))
                }
            })
            .collect::<Result<_>>()?;
        Ok(Arc::new(Schema::new_with_metadata(
            fields,
            schema.metadata().clone(),
        )))
    }

    /// Mask `batch`.
    ///
    /// # Errors
    /// As [`Masking::schema`]; [`Error::Policy`] if a value cannot be
    /// printed for hashing.
    pub fn apply(&self, batch: &RecordBatch) -> Result<RecordBatch> {
        if self.is_empty() {
            return Ok(batch.clone());
        }
        let schema = self.schema(&batch.schema())?;
        let columns = batch
            .schema()
            .fields()
            .iter()
            .zip(batch.columns())
            .map(|(f, a)| match self.columns.get(f.name()) {
                None => Ok(a.clone()),
                Some(p) => mask_array(f.name(), a, &p.mask, &self.salt),
            })
            .collect::<Result<Vec<_>>>()?;
        RecordBatch::try_new(schema, columns).map_err(|e| Error::internal(e.to_string()))
    }
}

impl kiln_io::job::OutputStage for Masking {
    fn schema(&self, schema: &SchemaRef) -> Result<SchemaRef, kiln_io::job::StageError> {
        Ok(Masking::schema(self, schema)?)
    }

    fn apply(&self, batch: RecordBatch) -> Result<RecordBatch, kiln_io::job::StageError> {
        Ok(Masking::apply(self, &batch)?)
    }
}

fn policy_error(column: &str, message: impl Into<String>) -> Error {
    Error::Policy {
        column: column.into(),
        message: message.into(),
    }
}

fn masked_type(column: &str, dt: &DataType, mask: &Mask) -> Result<DataType> {
    match mask {
        Mask::Hash => Ok(DataType::Utf8),
        Mask::Redact => Ok(dt.clone()),
        Mask::Bucketize { width } => {
            if dt.is_integer() {
                if width.fract() != 0.0 || *width < 1.0 {
                    return Err(policy_error(
                        column,
                        format!("bucketize:{width} needs a whole width on an integer column ({dt}); change the policy with `kiln access mask`"),
                    ));
                }
                Ok(dt.clone())
            } else if dt.is_floating() {
                Ok(dt.clone())
            } else {
                Err(policy_error(
                    column,
                    format!("bucketize needs a numeric column, this one is {dt}; mask it with hash or redact (`kiln access mask`)"),
                ))
            }
        }
    }
}

fn mask_array(column: &str, a: &ArrayRef, mask: &Mask, salt: &[u8]) -> Result<ArrayRef> {
    let arrow = |e: arrow::error::ArrowError| policy_error(column, e.to_string());
    match mask {
        Mask::Redact => Ok(new_null_array(a.data_type(), a.len())),
        Mask::Hash => {
            let fmt =
                ArrayFormatter::try_new(a.as_ref(), &FormatOptions::default()).map_err(arrow)?;
            let mut out = StringBuilder::with_capacity(a.len(), a.len() * 32);
            let key = Hmac::<Sha256>::new_from_slice(salt).expect("HMAC takes a key of any size");
            let mut text = String::new();
            for i in 0..a.len() {
                if a.is_null(i) {
                    out.append_null();
                    continue;
                }
                text.clear();
                use std::fmt::Write as _;
                write!(text, "{}", fmt.value(i))
                    .map_err(|e| policy_error(column, e.to_string()))?;
                let mut mac = key.clone();
                mac.update(text.as_bytes());
                out.append_value(hex::encode(&mac.finalize().into_bytes()[..16]));
            }
            Ok(Arc::new(out.finish()))
        }
        Mask::Bucketize { width } => {
            let dt = a.data_type();
            masked_type(column, dt, mask)?;
            let wide = if dt.is_floating() {
                DataType::Float64
            } else if dt.is_signed_integer() {
                DataType::Int64
            } else {
                DataType::UInt64
            };
            let v = cast(a, &wide).map_err(arrow)?;
            let rounded: ArrayRef =
                match &wide {
                    DataType::Float64 => {
                        let f = v
                            .as_any()
                            .downcast_ref::<arrow::array::Float64Array>()
                            .expect("cast to Float64");
                        Arc::new(f.unary::<_, arrow::datatypes::Float64Type>(|x| {
                            (x / width).floor() * width
                        }))
                    }
                    DataType::Int64 => {
                        let w = *width as i64;
                        let i = v
                            .as_any()
                            .downcast_ref::<arrow::array::Int64Array>()
                            .expect("cast to Int64");
                        // Floor division; a bucket below i64::MIN becomes null.
                        Arc::new(
                            i.iter()
                                .map(|x| x.and_then(|x| x.div_euclid(w).checked_mul(w)))
                                .collect::<arrow::array::Int64Array>(),
                        )
                    }
                    _ => {
                        let w = *width as u64;
                        let u = v
                            .as_any()
                            .downcast_ref::<arrow::array::UInt64Array>()
                            .expect("cast to UInt64");
                        let wa = arrow::array::UInt64Array::new_scalar(w);
                        let q = numeric::div(u, &wa).map_err(arrow)?;
                        numeric::mul(&q, &wa).map_err(arrow)?
                    }
                };
            // Back to the column's type; a bucket outside it becomes null.
            cast(&rounded, dt).map_err(arrow)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{Float64Array, Int32Array, Int8Array, StringArray, UInt16Array};

    fn masking(cols: &[(&str, Mask)]) -> Masking {
        Masking::new(
            cols.iter()
                .map(|(c, m)| {
                    (
                        c.to_string(),
                        ColumnPolicy {
                            sensitivity: "pii".into(),
                            mask: m.clone(),
                        },
                    )
                })
                .collect(),
            Arc::from(&b"salt"[..]),
        )
    }

    fn one(col: ArrayRef, mask: Mask) -> ArrayRef {
        let batch = RecordBatch::try_from_iter([("c", col)]).unwrap();
        let out = masking(&[("c", mask.clone())]).apply(&batch).unwrap();
        assert_eq!(
            out.schema().field(0).metadata().get("kiln.masked"),
            Some(&mask.to_string())
        );
        out.column(0).clone()
    }

    #[test]
    fn hash_is_the_hmac_of_the_printed_value() {
        // Oracle: HMAC-SHA256 test vector computed independently
        // (python3 -c "import hmac,hashlib;print(hmac.new(b'salt',b'ada@x.org',hashlib.sha256).hexdigest()[:32])").
        let a: ArrayRef = Arc::new(StringArray::from(vec![
            Some("ada@x.org"),
            None,
            Some("ada@x.org"),
        ]));
        let out = one(a, Mask::Hash);
        let s = out.as_any().downcast_ref::<StringArray>().unwrap();
        assert_eq!(s.value(0), "9eb06cf8b495b2cc2cc1b5662018cc44");
        assert_eq!(s.value(0), s.value(2));
        assert!(s.is_null(1));
        assert_eq!(s.value(0).len(), 32);
        // Integers hash as their text: Int32 42 and "42" agree.
        let i = one(Arc::new(Int32Array::from(vec![42])), Mask::Hash);
        let t = one(Arc::new(StringArray::from(vec!["42"])), Mask::Hash);
        assert_eq!(
            i.as_any().downcast_ref::<StringArray>().unwrap().value(0),
            t.as_any().downcast_ref::<StringArray>().unwrap().value(0)
        );
    }

    #[test]
    fn bucketize_rounds_down_in_the_columns_type() {
        let cases: Vec<(ArrayRef, f64, ArrayRef)> = vec![
            (
                Arc::new(Int32Array::from(vec![Some(37), Some(-3), None, Some(40)])),
                10.0,
                Arc::new(Int32Array::from(vec![Some(30), Some(-10), None, Some(40)])),
            ),
            (
                Arc::new(Float64Array::from(vec![
                    Some(2.75),
                    Some(-0.1),
                    Some(f64::NAN),
                ])),
                0.5,
                Arc::new(Float64Array::from(vec![
                    Some(2.5),
                    Some(-0.5),
                    Some(f64::NAN),
                ])),
            ),
            (
                Arc::new(UInt16Array::from(vec![65535, 9])),
                10.0,
                Arc::new(UInt16Array::from(vec![65530, 0])),
            ),
            // -128 rounds to -200, outside Int8: null, never the value.
            (
                Arc::new(Int8Array::from(vec![Some(-128), Some(127)])),
                100.0,
                Arc::new(Int8Array::from(vec![None, Some(100)])),
            ),
        ];
        for (input, width, expect) in cases {
            let got = one(input.clone(), Mask::Bucketize { width });
            assert_eq!(got.data_type(), input.data_type());
            // NaN != NaN, so compare printed values.
            let p = |a: &ArrayRef| {
                arrow::util::pretty::pretty_format_columns("c", std::slice::from_ref(a))
                    .unwrap()
                    .to_string()
            };
            assert_eq!(p(&got), p(&expect), "{input:?} by {width}");
        }
    }

    #[test]
    fn redact_keeps_the_type_and_masks_are_refused_on_wrong_types() {
        let got = one(Arc::new(Float64Array::from(vec![1.0, 2.0])), Mask::Redact);
        assert_eq!(got.null_count(), 2);
        assert_eq!(got.data_type(), &DataType::Float64);
        let s = Schema::new(vec![
            Field::new("name", DataType::Utf8, false),
            Field::new("age", DataType::Int32, false),
        ]);
        let err = masking(&[("name", Mask::Bucketize { width: 10.0 })])
            .schema(&s)
            .unwrap_err();
        assert!(
            err.to_string().contains("'name'") && err.to_string().contains("Utf8"),
            "{err}"
        );
        let err = masking(&[("age", Mask::Bucketize { width: 2.5 })])
            .schema(&s)
            .unwrap_err();
        assert!(err.to_string().contains("whole width"), "{err}");
        for (text, ok) in [
            ("hash", true),
            ("redact", true),
            ("bucketize:5", true),
            ("bucketize:0", false),
            ("bucketize:x", false),
            ("drop", false),
        ] {
            assert_eq!(text.parse::<Mask>().is_ok(), ok, "{text}");
        }
    }
}
