//! Dataset fingerprints: a hash of the *logical* Arrow content of a table.
//!
//! The same rows give the same fingerprint whatever the file format (Parquet,
//! CSV, Arrow IPC, JSON-lines), the compression or the batch boundaries; one
//! changed value changes it. What counts as content: column names, logical
//! types (a dictionary counts as its value type), which rows are null, and
//! the values of the others (every NaN counts as one NaN). Nullability flags
//! and schema metadata do not count.
//!
//! Encoding (version `fp1`), per column, two SHA-256 streams: the positions
//! of null rows (u64 little-endian), and the values of valid rows: fixed
//! width types as their little-endian bytes, booleans as one byte, strings
//! and binaries as a u64 length then the bytes, nested types as the
//! length-prefixed Arrow row format of each row. The fingerprint is
//! SHA-256 over the version, the row count and, per field, its name, type
//! and the two column digests.

use std::path::Path;

use arrow::array::{Array, ArrayRef, AsArray, RecordBatch};
use arrow::datatypes::{ArrowNativeType, DataType, SchemaRef};
use arrow::row::{RowConverter, SortField};
use sha2::{Digest, Sha256};

use crate::file::{self as io, ReadOptions};
use kiln_runtime::{Error, Result};

/// The fingerprint of a table: a hex id prefixed by the encoding version.
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct Fingerprint {
    /// `fp1:` followed by 64 hex digits.
    pub id: String,
    /// Rows in the table.
    pub rows: u64,
}

/// Computes a [`Fingerprint`] batch by batch.
///
/// # Examples
/// ```
/// use std::sync::Arc;
/// use arrow::array::{Int64Array, RecordBatch};
/// use kiln_io::Fingerprinter;
/// let batch = RecordBatch::try_from_iter([("x", Arc::new(Int64Array::from(vec![1, 2, 3])) as _)]).unwrap();
/// let mut whole = Fingerprinter::new(&batch.schema());
/// whole.update(&batch).unwrap();
/// let mut split = Fingerprinter::new(&batch.schema());
/// split.update(&batch.slice(0, 1)).unwrap();
/// split.update(&batch.slice(1, 2)).unwrap();
/// assert_eq!(whole.finish(), split.finish());
/// ```
#[derive(Debug)]
pub struct Fingerprinter {
    schema: SchemaRef,
    columns: Vec<ColumnHasher>,
    rows: u64,
}

#[derive(Debug, Default)]
struct ColumnHasher {
    nulls: Sha256,
    values: Sha256,
}

impl Fingerprinter {
    /// A fingerprinter for tables with `schema`.
    pub fn new(schema: &SchemaRef) -> Fingerprinter {
        Fingerprinter {
            schema: schema.clone(),
            columns: schema
                .fields()
                .iter()
                .map(|_| ColumnHasher::default())
                .collect(),
            rows: 0,
        }
    }

    /// Add the rows of `batch` (its columns must match the schema given to
    /// [`Fingerprinter::new`] by position and type).
    ///
    /// # Errors
    /// [`Error::Internal`] if the batch does not match the schema.
    pub fn update(&mut self, batch: &RecordBatch) -> Result<()> {
        if batch.num_columns() != self.columns.len() {
            return Err(Error::Internal(format!(
                "fingerprint: batch has {} columns, schema {}",
                batch.num_columns(),
                self.columns.len()
            )));
        }
        for (hasher, column) in self.columns.iter_mut().zip(batch.columns()) {
            hasher.update(column, self.rows)?;
        }
        self.rows += batch.num_rows() as u64;
        Ok(())
    }

    /// The fingerprint of every row added.
    pub fn finish(self) -> Fingerprint {
        let mut h = Sha256::new();
        h.update(b"kiln-fingerprint-v1\0");
        h.update(self.rows.to_le_bytes());
        for (field, col) in self.schema.fields().iter().zip(self.columns) {
            put_bytes(&mut h, field.name().as_bytes());
            put_bytes(
                &mut h,
                logical_type(field.data_type()).to_string().as_bytes(),
            );
            h.update(col.nulls.finalize());
            h.update(col.values.finalize());
        }
        Fingerprint {
            id: format!("fp1:{}", hex::encode(h.finalize())),
            rows: self.rows,
        }
    }
}

/// Fingerprint a data file, as any Kiln reader sees it.
///
/// # Errors
/// As [`io::open`], and any error reading a batch.
pub fn fingerprint_file(path: &Path) -> Result<Fingerprint> {
    let reader = io::open(path, &ReadOptions::default())?;
    let mut fp = Fingerprinter::new(&reader.schema());
    for batch in reader {
        fp.update(&batch?)?;
    }
    Ok(fp.finish())
}

fn logical_type(t: &DataType) -> &DataType {
    match t {
        DataType::Dictionary(_, v) => logical_type(v),
        other => other,
    }
}

fn put_bytes(h: &mut Sha256, b: &[u8]) {
    h.update((b.len() as u64).to_le_bytes());
    h.update(b);
}

impl ColumnHasher {
    fn update(&mut self, array: &ArrayRef, first_row: u64) -> Result<()> {
        if let DataType::Dictionary(_, values) = array.data_type() {
            let plain = arrow::compute::cast(array, values)
                .map_err(|e| Error::Internal(format!("fingerprint: {e}")))?;
            return self.update(&plain, first_row);
        }
        if array.null_count() > 0 {
            for i in 0..array.len() {
                if array.is_null(i) {
                    self.nulls.update((first_row + i as u64).to_le_bytes());
                }
            }
        }
        let valid = |i: usize| array.is_valid(i);
        use DataType as T;
        match array.data_type() {
            T::Null => {}
            T::Boolean => {
                let a = array.as_boolean();
                for i in (0..a.len()).filter(|&i| valid(i)) {
                    self.values.update([a.value(i) as u8]);
                }
            }
            T::Float16 => self.floats(
                array
                    .as_primitive::<arrow::datatypes::Float16Type>()
                    .values(),
                |v| {
                    if v.is_nan() {
                        0x7e00u16.to_le_bytes().to_vec()
                    } else {
                        v.to_le_bytes().to_vec()
                    }
                },
                &valid,
            ),
            T::Float32 => self.floats(
                array
                    .as_primitive::<arrow::datatypes::Float32Type>()
                    .values(),
                |v| {
                    if v.is_nan() {
                        f32::NAN.to_le_bytes().to_vec()
                    } else {
                        v.to_le_bytes().to_vec()
                    }
                },
                &valid,
            ),
            T::Float64 => self.floats(
                array
                    .as_primitive::<arrow::datatypes::Float64Type>()
                    .values(),
                |v| {
                    if v.is_nan() {
                        f64::NAN.to_le_bytes().to_vec()
                    } else {
                        v.to_le_bytes().to_vec()
                    }
                },
                &valid,
            ),
            T::Utf8 => self.varlen(
                array.len(),
                |i| array.as_string::<i32>().value(i).as_bytes(),
                &valid,
            ),
            T::LargeUtf8 => self.varlen(
                array.len(),
                |i| array.as_string::<i64>().value(i).as_bytes(),
                &valid,
            ),
            T::Utf8View => self.varlen(
                array.len(),
                |i| array.as_string_view().value(i).as_bytes(),
                &valid,
            ),
            T::Binary => self.varlen(array.len(), |i| array.as_binary::<i32>().value(i), &valid),
            T::LargeBinary => {
                self.varlen(array.len(), |i| array.as_binary::<i64>().value(i), &valid)
            }
            T::BinaryView => self.varlen(array.len(), |i| array.as_binary_view().value(i), &valid),
            t if t.is_primitive() => {
                // Integers, decimals, dates, times, timestamps, durations, intervals:
                // the values buffer is little-endian fixed-width.
                let data = array.to_data();
                let width = t.primitive_width().unwrap_or(0);
                let start = data.offset() * width;
                let bytes = &data.buffers()[0].as_slice()[start..start + data.len() * width];
                if array.null_count() == 0 {
                    self.values.update(bytes);
                } else {
                    for (i, chunk) in bytes.chunks_exact(width).enumerate() {
                        if valid(i) {
                            self.values.update(chunk);
                        }
                    }
                }
            }
            t => {
                // Nested and other types: Arrow's row format, one row at a time.
                let converter = RowConverter::new(vec![SortField::new(t.clone())])
                    .map_err(|e| Error::Internal(format!("fingerprint of {t}: {e}")))?;
                let rows = converter
                    .convert_columns(std::slice::from_ref(array))
                    .map_err(|e| Error::Internal(format!("fingerprint of {t}: {e}")))?;
                for i in (0..array.len()).filter(|&i| valid(i)) {
                    put_bytes(&mut self.values, rows.row(i).as_ref());
                }
            }
        }
        Ok(())
    }

    fn floats<N: ArrowNativeType>(
        &mut self,
        values: &[N],
        canonical: impl Fn(N) -> Vec<u8>,
        valid: &dyn Fn(usize) -> bool,
    ) {
        let mut buf = Vec::with_capacity(4096);
        for (i, v) in values.iter().enumerate() {
            if valid(i) {
                buf.extend_from_slice(&canonical(*v));
                if buf.len() >= 4096 {
                    self.values.update(&buf);
                    buf.clear();
                }
            }
        }
        self.values.update(&buf);
    }

    fn varlen<'a>(
        &mut self,
        len: usize,
        value: impl Fn(usize) -> &'a [u8],
        valid: &dyn Fn(usize) -> bool,
    ) {
        for i in (0..len).filter(|&i| valid(i)) {
            put_bytes(&mut self.values, value(i));
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::array::{DictionaryArray, Float64Array, Int32Array, Int64Array, StringArray};
    use arrow::datatypes::Int8Type;

    use super::*;

    fn fp(batches: &[RecordBatch]) -> Fingerprint {
        let mut f = Fingerprinter::new(&batches[0].schema());
        for b in batches {
            f.update(b).unwrap();
        }
        f.finish()
    }

    fn table(x: Vec<Option<i64>>, s: Vec<Option<&str>>) -> RecordBatch {
        RecordBatch::try_from_iter([
            ("x", Arc::new(Int64Array::from(x)) as ArrayRef),
            ("s", Arc::new(StringArray::from(s)) as ArrayRef),
        ])
        .unwrap()
    }

    #[test]
    fn batch_boundaries_and_slices_do_not_matter() {
        let t = table(
            vec![Some(1), None, Some(3), Some(4)],
            vec![Some("a"), Some("bc"), None, Some("")],
        );
        let whole = fp(std::slice::from_ref(&t));
        assert_eq!(whole, fp(&[t.slice(0, 1), t.slice(1, 2), t.slice(3, 1)]));
        assert_eq!(whole.rows, 4);
        assert!(whole.id.starts_with("fp1:"));
    }

    #[test]
    fn every_change_changes_it() {
        let base = fp(&[table(vec![Some(1), Some(2)], vec![Some("a"), Some("b")])]);
        let cases = [
            table(vec![Some(1), Some(3)], vec![Some("a"), Some("b")]),
            table(vec![Some(1), None], vec![Some("a"), Some("b")]),
            table(vec![Some(1), Some(2)], vec![Some("a"), Some("c")]),
            // Moving a byte between adjacent strings must change it.
            table(vec![Some(1), Some(2)], vec![Some("ab"), Some("")]),
            table(vec![Some(2), Some(1)], vec![Some("b"), Some("a")]),
            table(vec![Some(1)], vec![Some("a")]),
        ];
        for (i, t) in cases.iter().enumerate() {
            assert_ne!(base, fp(std::slice::from_ref(t)), "case {i}");
        }
        // A null's hidden value does not count: the null slot may hold anything.
        let a = Int64Array::from(vec![Some(1), None]);
        let b = Int64Array::new(vec![1, 99].into(), a.nulls().cloned());
        let ta = RecordBatch::try_from_iter([("x", Arc::new(a) as ArrayRef)]).unwrap();
        let tb = RecordBatch::try_from_iter([("x", Arc::new(b) as ArrayRef)]).unwrap();
        assert_eq!(fp(&[ta]), fp(&[tb]));
    }

    #[test]
    fn names_and_types_count_dictionaries_do_not() {
        let ints = |name: &str| {
            RecordBatch::try_from_iter([(name, Arc::new(Int64Array::from(vec![1])) as ArrayRef)])
                .unwrap()
        };
        assert_ne!(fp(&[ints("x")]), fp(&[ints("y")]));
        let i32s =
            RecordBatch::try_from_iter([("x", Arc::new(Int32Array::from(vec![1])) as ArrayRef)])
                .unwrap();
        assert_ne!(fp(&[ints("x")]), fp(&[i32s]));

        let plain = RecordBatch::try_from_iter([(
            "s",
            Arc::new(StringArray::from(vec!["a", "b", "a"])) as ArrayRef,
        )])
        .unwrap();
        let dict: DictionaryArray<Int8Type> = vec!["a", "b", "a"].into_iter().collect();
        let dict = RecordBatch::try_from_iter([("s", Arc::new(dict) as ArrayRef)]).unwrap();
        assert_eq!(fp(&[plain]), fp(&[dict]));
    }

    #[test]
    fn all_nans_are_one_nan() {
        let t = |v: f64| {
            RecordBatch::try_from_iter([("f", Arc::new(Float64Array::from(vec![v])) as ArrayRef)])
                .unwrap()
        };
        assert_eq!(
            fp(&[t(f64::NAN)]),
            fp(&[t(f64::from_bits(0x7ff8_dead_beef_0001))])
        );
        assert_ne!(fp(&[t(0.0)]), fp(&[t(-0.0)]));
    }
}
