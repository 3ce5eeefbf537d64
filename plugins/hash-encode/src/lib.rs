//! `hash-encode`: the hashing trick for high-cardinality strings.
//!
//! Each listed string column becomes `murmur3_32(value, seed) % buckets` as
//! `UInt32` (nulls stay null). The hash is the 32-bit x86 MurmurHash3 of the
//! value's UTF-8 bytes, unsigned, as in scikit-learn's `murmurhash3_32(...,
//! positive=True)`.

use std::sync::Arc;

use kiln_sdk::arrow_array::types::UInt32Type;
use kiln_sdk::arrow_array::{Array, ArrayRef, RecordBatch, UInt32Array};
use kiln_sdk::arrow_schema::{DataType, Field, Schema};
use kiln_sdk::{columns, output, Error, PluginInfo, Result, StatelessTransform};
use serde::Deserialize;

/// Parameters of `hash-encode`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Params {
    /// String columns to hash.
    pub columns: Vec<String>,
    /// Number of buckets (the output is in `0..buckets`).
    pub buckets: u32,
    /// MurmurHash3 seed.
    #[serde(default)]
    pub seed: u32,
    /// Write the output to `<column><suffix>` instead of replacing the column.
    #[serde(default)]
    pub suffix: Option<String>,
}

/// The configured transform.
pub struct HashEncode(Params);

/// 32-bit x86 MurmurHash3 (Austin Appleby's reference `MurmurHash3_x86_32`).
pub fn murmur3_32(data: &[u8], seed: u32) -> u32 {
    const C1: u32 = 0xcc9e_2d51;
    const C2: u32 = 0x1b87_3593;
    let mix = |h: u32, c: &[u8]| {
        let k = u32::from_le_bytes([c[0], c[1], c[2], c[3]]);
        let k = k.wrapping_mul(C1).rotate_left(15).wrapping_mul(C2);
        (h ^ k)
            .rotate_left(13)
            .wrapping_mul(5)
            .wrapping_add(0xe654_6b64)
    };
    let mut h = seed;
    // Two blocks per iteration: half the loop's back edges, each of which
    // the sandbox's compiler gives an interruption check.
    let mut pairs = data.chunks_exact(8);
    for c in &mut pairs {
        h = mix(mix(h, &c[..4]), &c[4..]);
    }
    let mut chunks = pairs.remainder().chunks_exact(4);
    for c in &mut chunks {
        h = mix(h, c);
    }
    let tail = chunks.remainder();
    if !tail.is_empty() {
        let mut k = 0u32;
        for (i, b) in tail.iter().enumerate() {
            k |= (*b as u32) << (8 * i);
        }
        h ^= k.wrapping_mul(C1).rotate_left(15).wrapping_mul(C2);
    }
    h ^= data.len() as u32;
    h ^= h >> 16;
    h = h.wrapping_mul(0x85eb_ca6b);
    h ^= h >> 13;
    h = h.wrapping_mul(0xc2b2_ae35);
    h ^ (h >> 16)
}

impl HashEncode {
    fn out_name(&self, c: &str) -> String {
        match &self.0.suffix {
            Some(s) => format!("{c}{s}"),
            None => c.to_owned(),
        }
    }
}

impl StatelessTransform for HashEncode {
    type Params = Params;

    fn info() -> PluginInfo {
        PluginInfo::new(
            "hash-encode",
            env!("CARGO_PKG_VERSION"),
            "Hash each string of the listed columns with 32-bit MurmurHash3 (seeded) into `buckets` buckets; output UInt32.",
        )
        .with_params_schema(
            r#"{"type":"object","required":["columns","buckets"],"additionalProperties":false,"properties":{"columns":{"type":"array","items":{"type":"string"},"description":"Utf8 columns to hash"},"buckets":{"type":"integer","minimum":1,"description":"number of buckets"},"seed":{"type":"integer","minimum":0,"default":0,"description":"MurmurHash3 seed"},"suffix":{"type":"string","description":"write to <column><suffix> instead of replacing"}}}"#,
        )
    }

    fn new(params: Params) -> Result<Self> {
        if params.buckets == 0 {
            return Err(Error::InvalidParams("`buckets` must be at least 1".into()));
        }
        if params.columns.is_empty() {
            return Err(Error::InvalidParams(
                "`columns` lists no column to hash".into(),
            ));
        }
        Ok(HashEncode(params))
    }

    fn output_schema(&self, input: &Schema) -> Result<Schema> {
        let mut schema = input.clone();
        for c in &self.0.columns {
            let f = columns::field(&schema, c)?;
            if f.data_type() != &DataType::Utf8 {
                return Err(columns::wrong_type(c, "Utf8", f.data_type()));
            }
            let out = Field::new(self.out_name(c), DataType::UInt32, f.is_nullable());
            schema = columns::splice_schema(&schema, c, vec![out], self.0.suffix.is_some())?;
        }
        Ok(schema)
    }

    fn transform(&self, batch: &RecordBatch) -> Result<RecordBatch> {
        let mut batch = batch.clone();
        for c in &self.0.columns {
            let strings = columns::utf8(&batch, c)?;
            let (buckets, seed) = (self.0.buckets, self.0.seed);
            // Straight over the offsets and bytes (no per-row bounds checks
            // or `&str` construction); null rows hash their empty slot.
            let data = strings.value_data();
            let values = strings
                .value_offsets()
                .windows(2)
                .map(|w| murmur3_32(&data[w[0] as usize..w[1] as usize], seed) % buckets);
            let out: UInt32Array =
                output::collect::<UInt32Type, _>(strings.len(), values, strings.nulls().cloned());
            let nullable = columns::field(batch.schema_ref(), c)?.is_nullable();
            let field = Field::new(self.out_name(c), DataType::UInt32, nullable);
            batch = columns::splice(
                &batch,
                c,
                vec![(field, Arc::new(out) as ArrayRef)],
                self.0.suffix.is_some(),
            )?;
        }
        Ok(batch)
    }
}

kiln_sdk::export!(HashEncode);

#[cfg(test)]
mod tests {
    use super::*;
    use kiln_sdk::arrow_array::StringArray;
    use kiln_sdk::testing;

    /// Published test vectors of MurmurHash3_x86_32 (from the SMHasher
    /// verification set and the widely used table in Appleby's discussions).
    #[test]
    fn murmur3_matches_published_vectors() {
        let cases: &[(&[u8], u32, u32)] = &[
            (b"", 0, 0),
            (b"", 1, 0x514E_28B7),
            (b"", 0xffff_ffff, 0x81F1_6F39),
            (&[0xff, 0xff, 0xff, 0xff], 0, 0x7629_3B50),
            (&[0x21, 0x43, 0x65, 0x87], 0, 0xF55B_516B),
            (&[0x21, 0x43, 0x65, 0x87], 0x5082_EDEE, 0x2362_F9DE),
            (&[0x21, 0x43, 0x65], 0, 0x7E4A_8634),
            (&[0x21, 0x43], 0, 0xA0F7_B07A),
            (&[0x21], 0, 0x7266_1CF4),
            (&[0, 0, 0, 0], 0, 0x2362_F9DE),
            (&[0, 0, 0], 0, 0x85F0_B427),
            (&[0, 0], 0, 0x30F4_C306),
            (&[0], 0, 0x514E_28B7),
            (b"Hello, world!", 1234, 0xFAF6_CDB3),
            (
                b"The quick brown fox jumps over the lazy dog",
                0,
                0x2E4F_F723,
            ),
        ];
        for (data, seed, want) in cases {
            assert_eq!(murmur3_32(data, *seed), *want, "data {data:?} seed {seed}");
        }
    }

    #[test]
    fn hashes_modulo_buckets_and_keeps_nulls() {
        let b = testing::batch(vec![(
            "city",
            Arc::new(StringArray::from(vec![Some("Paris"), None, Some("")])) as ArrayRef,
        )]);
        let out =
            testing::apply::<HashEncode>(r#"{"columns":["city"],"buckets":10,"seed":7}"#, None, &b)
                .unwrap();
        let col = out
            .column(0)
            .as_any()
            .downcast_ref::<UInt32Array>()
            .unwrap();
        assert_eq!(col.value(0), murmur3_32(b"Paris", 7) % 10);
        assert!(col.is_null(1));
        assert_eq!(col.value(2), murmur3_32(b"", 7) % 10);
    }

    #[test]
    fn suffix_keeps_the_original_column() {
        let b = testing::batch(vec![(
            "s",
            Arc::new(StringArray::from(vec!["a"])) as ArrayRef,
        )]);
        let out = testing::apply::<HashEncode>(
            r#"{"columns":["s"],"buckets":4,"suffix":"_h"}"#,
            None,
            &b,
        )
        .unwrap();
        assert_eq!(out.schema().field(0).name(), "s");
        assert_eq!(out.schema().field(1).name(), "s_h");
    }

    #[test]
    fn wrong_type_names_the_column() {
        let b = testing::batch(vec![(
            "n",
            Arc::new(UInt32Array::from(vec![1])) as ArrayRef,
        )]);
        let err =
            testing::apply::<HashEncode>(r#"{"columns":["n"],"buckets":4}"#, None, &b).unwrap_err();
        assert!(err.to_string().contains("'n'"), "{err}");
    }
}
