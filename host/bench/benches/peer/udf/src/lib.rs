//! The three kernels of `kiln bench` as arrow-udf scalar functions, so that
//! arrow-udf-runtime can run them: the same arithmetic as Kiln's
//! `standard-scaler`, `hash-encode` and `bucketize` plugins with the
//! parameters `kiln bench` uses (kept equal to `kiln_host::bench`'s
//! constants; the runner checks the outputs against a native computation).

use arrow_udf::function;

/// Scaler state used by the benchmark (`kiln_host::bench::SCALER_MEAN` / `SCALER_STD`).
const MEAN: f64 = 50.0;
const STD: f64 = 28.867513459481287;
/// Buckets of the hash kernel (`kiln_host::bench::HASH_BUCKETS`).
const BUCKETS: u32 = 1024;
/// Boundaries of the bucketize kernel (`kiln_host::bench::BOUNDARIES`).
const BOUNDARIES: [f64; 9] = [10.0, 20.0, 30.0, 40.0, 50.0, 60.0, 70.0, 80.0, 90.0];

/// `(x - mean) / std`.
#[function("scale(float64) -> float64")]
fn scale(x: f64) -> f64 {
    (x - MEAN) / STD
}

/// MurmurHash3 x86_32 (seed 0) of the UTF-8 bytes, modulo the bucket count.
#[function("hash_encode(string) -> uint32")]
fn hash_encode(s: &str) -> u32 {
    murmur3_32(s.as_bytes(), 0) % BUCKETS
}

/// How many boundaries are `<= x` (numpy.digitize, right=False); NaN is null.
#[function("bucketize(float64) -> uint32")]
fn bucketize(x: f64) -> Option<u32> {
    (!x.is_nan()).then(|| BOUNDARIES.partition_point(|b| *b <= x) as u32)
}

fn murmur3_32(data: &[u8], seed: u32) -> u32 {
    const C1: u32 = 0xcc9e_2d51;
    const C2: u32 = 0x1b87_3593;
    let mut h = seed;
    let mut chunks = data.chunks_exact(4);
    for c in &mut chunks {
        let mut k = u32::from_le_bytes([c[0], c[1], c[2], c[3]]);
        k = k.wrapping_mul(C1).rotate_left(15).wrapping_mul(C2);
        h ^= k;
        h = h.rotate_left(13).wrapping_mul(5).wrapping_add(0xe654_6b64);
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
