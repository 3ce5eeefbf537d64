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

const C1: u32 = 0xcc9e_2d51;
const C2: u32 = 0x1b87_3593;

/// A 4-byte block scrambled for the state (`k1` of the reference).
#[inline(always)]
fn scramble(k: u32) -> u32 {
    k.wrapping_mul(C1).rotate_left(15).wrapping_mul(C2)
}

/// One block folded into the state.
#[inline(always)]
fn mix(h: u32, k: u32) -> u32 {
    (h ^ scramble(k))
        .rotate_left(13)
        .wrapping_mul(5)
        .wrapping_add(0xe654_6b64)
}

/// The length folded in and the final avalanche.
#[inline(always)]
fn finish(h: u32, len: usize) -> u32 {
    let mut h = h ^ len as u32;
    h ^= h >> 16;
    h = h.wrapping_mul(0x85eb_ca6b);
    h ^= h >> 13;
    h = h.wrapping_mul(0xc2b2_ae35);
    h ^ (h >> 16)
}

/// The little-endian `u32` at `s[i..i + 4]` (the reference's block read).
#[inline(always)]
fn word(s: &[u8], i: usize) -> u32 {
    u32::from_le_bytes([s[i], s[i + 1], s[i + 2], s[i + 3]])
}

/// 32-bit x86 MurmurHash3 (Austin Appleby's reference `MurmurHash3_x86_32`).
pub fn murmur3_32(data: &[u8], seed: u32) -> u32 {
    let mut h = seed;
    // Two blocks per iteration: half the loop's back edges, each of which
    // the sandbox's compiler gives an interruption check.
    let mut pairs = data.chunks_exact(8);
    for c in &mut pairs {
        h = mix(mix(h, word(c, 0)), word(c, 4));
    }
    let mut chunks = pairs.remainder().chunks_exact(4);
    for c in &mut chunks {
        h = mix(h, word(c, 0));
    }
    let tail = chunks.remainder();
    if !tail.is_empty() {
        let mut k = 0u32;
        for (i, b) in tail.iter().enumerate() {
            k |= (*b as u32) << (8 * i);
        }
        h ^= scramble(k);
    }
    finish(h, data.len())
}

/// The bytes of a 0-, 1-, 2- and 3-byte tail within a 4-byte word.
const TAIL_MASK: [u32; 4] = [0, 0xff, 0xffff, 0xff_ffff];

/// [`murmur3_32`] of `buf[start..start + len]`, for a string followed by at
/// least 4 more bytes of `buf` (`start + len + 4 <= buf.len()`).
///
/// The same hash with one data-dependent branch (the pair loop's exit)
/// instead of three or four: strings of random length mispredict every
/// loop exit and `if`, which was most of the reference's time. The odd
/// block is mixed always and kept by a select; the tail is read as a whole
/// word and masked, and an empty tail scrambles to 0, which leaves the
/// state unchanged exactly as the reference's skipped `if` does. Bytes
/// read past the string are masked or discarded, never mixed.
#[inline(always)]
fn murmur3_32_padded(buf: &[u8], start: usize, len: usize, seed: u32) -> u32 {
    let padded_end = start.checked_add(len).and_then(|e| e.checked_add(4));
    assert!(
        padded_end.is_some_and(|e| e <= buf.len()),
        "4 bytes must follow the string"
    );
    let p = buf.as_ptr().wrapping_add(start);
    // SAFETY: every read is of 4 bytes at an offset `i <= len` from `start`
    // (the pairs end at `8 * pairs <= len`, the odd block starts there, the
    // tail at `len & !3`), so inside `buf` by the assert, whose sums are
    // checked (a `len` wrapped by bad offsets panics instead). Unaligned
    // reads are allowed by `read_unaligned`. (Safe slicing measured 5 %
    // slower here.)
    let rd = |i: usize| unsafe { u32::from_le(p.add(i).cast::<u32>().read_unaligned()) };
    let mut h = seed;
    let pairs = len / 8;
    for i in 0..pairs {
        h = mix(mix(h, rd(8 * i)), rd(8 * i + 4));
    }
    let odd = mix(h, rd(8 * pairs));
    h = if len & 4 != 0 { odd } else { h };
    h ^= scramble(rd(len & !3) & TAIL_MASK[len & 3]);
    finish(h, len)
}

/// `out[i] = murmur3_32(value i) % buckets` for every slot of a string
/// array's offsets over its bytes (null slots hash their empty range).
fn hash_into(out: &mut [u32], offsets: &[i32], data: &[u8], seed: u32, buckets: u32) {
    for (o, w) in out.iter_mut().zip(offsets.windows(2)) {
        let (start, end) = (w[0] as usize, w[1] as usize);
        let h = if end + 4 <= data.len() {
            murmur3_32_padded(data, start, end - start, seed)
        } else {
            murmur3_32(&data[start..end], seed)
        };
        *o = h % buckets;
    }
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
            // Straight over the offsets and bytes (no `&str` construction);
            // null rows hash their empty slot.
            let out: UInt32Array =
                output::fill::<UInt32Type, _>(strings.len(), strings.nulls().cloned(), |out| {
                    hash_into(
                        out,
                        strings.value_offsets(),
                        strings.value_data(),
                        seed,
                        buckets,
                    )
                });
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

    /// The one-branch path equals the reference for every length and
    /// every tail, whatever bytes follow the string (they are 0xff here, so
    /// a tail mask or odd-block select that let one through would show).
    #[test]
    fn padded_path_equals_the_reference_whatever_follows() {
        for len in 0..=40usize {
            for start in 0..4usize {
                for fill in [0x00u8, 0xff, 0x5a] {
                    let mut buf = vec![fill; start];
                    buf.extend((0..len).map(|i| (i * 37 + len) as u8));
                    buf.extend([fill; 4]);
                    let want = murmur3_32(&buf[start..start + len], 42);
                    assert_eq!(
                        murmur3_32_padded(&buf, start, len, 42),
                        want,
                        "len {len} start {start} fill {fill:#x}"
                    );
                }
            }
        }
        // Both paths through `hash_into`: the last string has no 4 bytes after it.
        let data = b"abcdefghijklmnopqrstuvwxyz";
        let offsets = [0, 3, 11, 20, 26];
        let mut got = vec![0; 4];
        hash_into(&mut got, &offsets, data, 7, 1 << 31);
        let want: Vec<u32> = offsets
            .windows(2)
            .map(|w| murmur3_32(&data[w[0] as usize..w[1] as usize], 7) % (1 << 31))
            .collect();
        assert_eq!(got, want);
    }

    /// Offsets that decrease (never sent by the host) give a wrapped length;
    /// the padded path refuses it instead of reading out of bounds.
    #[test]
    #[should_panic(expected = "4 bytes must follow the string")]
    fn padded_path_refuses_a_wrapped_length() {
        let buf = [0u8; 64];
        murmur3_32_padded(&buf, 8, 4usize.wrapping_sub(8), 0);
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
