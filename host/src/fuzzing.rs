//! Entry points for the fuzz targets in `host/fuzz` (not a stable API).
//!
//! Each takes arbitrary bytes, builds the untrusted thing from them (a batch
//! as a plugin could return it, or an input file), and runs the host's real
//! validation or reader on it. Any panic is a bug.

use std::sync::Arc;

use arrow::datatypes::{DataType, Field, Schema};

use kiln_io::{self as io, ReadOptions};
use kiln_wire as w;

/// A cursor over the fuzzer's bytes.
struct Bytes<'a>(&'a [u8]);

impl Bytes<'_> {
    fn u8(&mut self) -> u8 {
        let (b, rest) = self
            .0
            .split_first()
            .map(|(b, r)| (*b, r))
            .unwrap_or((0, &[]));
        self.0 = rest;
        b
    }
    fn u64(&mut self) -> u64 {
        u64::from(self.u8()) | (u64::from(self.u8()) << 8)
    }
    fn vec(&mut self) -> Vec<u8> {
        let n = (self.u8() as usize).min(self.0.len());
        let (v, rest) = self.0.split_at(n);
        self.0 = rest;
        v.to_vec()
    }
}

fn data_type(b: &mut Bytes<'_>, fields: &mut Vec<w::Field>, depth: u8) {
    let dt = match b.u8() % 16 {
        0 => w::DataType::Boolean,
        1 => w::DataType::Int8,
        2 => w::DataType::Int32,
        3 => w::DataType::Int64,
        4 => w::DataType::Float64,
        5 => w::DataType::Utf8,
        6 => w::DataType::LargeUtf8,
        7 => w::DataType::Binary,
        8 => w::DataType::Date32,
        9 => w::DataType::Timestamp(w::TimestampType {
            unit: w::TimeUnit::Millisecond,
            timezone: Some("UTC".into()),
        }),
        10 => w::DataType::Decimal128(w::DecimalType {
            precision: b.u8(),
            scale: b.u8() as i8,
        }),
        11 if depth < 3 => w::DataType::List,
        12 if depth < 3 => w::DataType::FixedSizeList(u32::from(b.u8() % 5)),
        13 if depth < 3 => w::DataType::Struct(u32::from(b.u8() % 3)),
        14 if depth < 3 => w::DataType::Dictionary(w::IndexType::Int32),
        _ => w::DataType::Null,
    };
    let children = match &dt {
        w::DataType::List | w::DataType::FixedSizeList(_) | w::DataType::Dictionary(_) => 1,
        w::DataType::Struct(n) => *n,
        _ => 0,
    };
    fields.push(w::Field {
        name: format!("f{}", fields.len()),
        data_type: dt,
        nullable: b.u8().is_multiple_of(2),
        metadata: vec![],
    });
    for _ in 0..children {
        data_type(b, fields, depth + 1);
    }
}

/// Validate a batch built from `data` as if a plugin had returned it; the
/// declared schema is the batch's own schema (when it converts) so the deep
/// validation runs, not just the schema check.
pub fn plugin_output(data: &[u8]) {
    let mut b = Bytes(data);
    let mut fields = Vec::new();
    for _ in 0..(b.u8() % 3 + 1) {
        data_type(&mut b, &mut fields, 0);
    }
    let nodes = fields.len() + usize::from(b.u8() % 2);
    let arrays = (0..nodes)
        .map(|_| w::Array {
            length: b.u64() % 64,
            offset: b.u64() % 8,
            null_count: b.u64() % 8,
            validity: if b.u8().is_multiple_of(2) {
                None
            } else {
                Some(b.vec())
            },
            buffers: (0..b.u8() % 3).map(|_| b.vec()).collect(),
        })
        .collect();
    let schema = w::Schema {
        fields,
        metadata: vec![],
    };
    let declared = match w::import_schema(schema.clone()) {
        Ok(s) => Arc::new(s),
        Err(_) => Arc::new(Schema::new(vec![Field::new("x", DataType::Int32, true)])),
    };
    let batch = w::Batch {
        schema,
        num_rows: b.u64() % 64,
        arrays,
    };
    // The import that knows the declared schema's wire form skips the
    // schema check when the batch carries exactly that form: fuzz its
    // array validation too.
    if let Ok(declared_wire) = w::export_schema(&declared) {
        let mut same = batch.clone();
        same.schema = declared_wire.clone();
        let _ = w::import_batch_declared(same, &declared, &declared_wire);
    }
    let _ = w::import_batch(batch, Some(&declared));
}

/// Read `data` as an input file of the format its first byte picks.
pub fn input_file(data: &[u8]) {
    let Some((first, body)) = data.split_first() else {
        return;
    };
    let ext = ["parquet", "csv", "arrow", "arrows", "jsonl"][usize::from(*first) % 5];
    let Ok(dir) = tempfile::tempdir() else { return };
    let path = dir.path().join(format!("fuzz.{ext}"));
    if std::fs::write(&path, body).is_err() {
        return;
    }
    if let Ok(reader) = io::open(&path, &ReadOptions { batch_size: 16 }) {
        for batch in reader.take(64) {
            if batch.is_err() {
                break;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    /// The fuzz entry points on a deterministic stream of inputs: a smoke
    /// test in CI; the real runs are `cargo fuzz` (docs/reliability.md).
    #[test]
    fn entry_points_never_panic_on_pseudo_random_bytes() {
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        for len in 0..1500usize {
            let bytes: Vec<u8> = (0..len % 300)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    x as u8
                })
                .collect();
            super::plugin_output(&bytes);
            if len % 25 == 0 {
                super::input_file(&bytes);
            }
        }
    }
}
