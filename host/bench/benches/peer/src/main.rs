//! Times RisingWave's arrow-udf-runtime (WASM UDFs, wasmtime) on the kernels
//! of `kiln bench`, over the table `kiln bench` writes, and prints JSON.
//!
//! Build and run: see Cargo.toml beside this file. Usage:
//!   kiln-peer-bench --data DATA.arrow [--repeats N] [--batch-rows N] [--udf kiln_peer_udf.wasm]
//!
//! Each kernel's output is checked against a native arrow-rs computation of
//! the same thing before it is timed; the JSON says whether it matched.

use std::sync::Arc;
use std::time::Instant;

use arrow_array::{
    make_array, Array, ArrayRef, Float64Array, RecordBatch, StringArray, UInt32Array,
};
use arrow_data::transform::MutableArrayData;
use arrow_schema::{DataType, Field, Schema};
use arrow_udf_runtime::wasm::Runtime;

const MEAN: f64 = 50.0;
const STD: f64 = 28.867513459481287;
const BUCKETS: u32 = 1024;
const BOUNDARIES: [f64; 9] = [10.0, 20.0, 30.0, 40.0, 50.0, 60.0, 70.0, 80.0, 90.0];
const DEFAULT_UDF: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/target/wasm32-wasip1/release/kiln_peer_udf.wasm"
);

type Res<T> = Result<T, Box<dyn std::error::Error>>;

fn main() {
    if let Err(e) = try_main() {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}

fn try_main() -> Res<()> {
    let mut data = None;
    let mut repeats = 5usize;
    let mut batch_rows = None;
    let mut udf = DEFAULT_UDF.to_owned();
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut val = || args.next().ok_or(format!("{a} needs a value"));
        match a.as_str() {
            "--data" => data = Some(val()?),
            "--repeats" => repeats = val()?.parse()?,
            "--batch-rows" => batch_rows = Some(val()?.parse::<usize>()?),
            "--udf" => udf = val()?,
            other => return Err(format!("unknown argument {other}").into()),
        }
    }
    let data = data.ok_or("--data DATA.arrow is required")?;
    let file = std::fs::File::open(&data)?;
    let reader = arrow_ipc::reader::FileReader::try_new(file, None)?;
    let batches: Vec<RecordBatch> = reader.collect::<Result<_, _>>()?;
    let table = arrow_select_concat(&batches)?;
    let x: ArrayRef = table.column_by_name("x").ok_or("no column x")?.clone();
    let s: ArrayRef = table.column_by_name("s").ok_or("no column s")?.clone();
    let rows = x.len();

    let wasm = std::fs::read(&udf).map_err(|e| format!("{udf}: {e}"))?;
    let t0 = Instant::now();
    let runtime = Runtime::new(&wasm)?;
    let load_ms = t0.elapsed().as_secs_f64() * 1e3;

    let xs = x.as_any().downcast_ref::<Float64Array>().ok_or("x is not float64")?;
    let ss = s.as_any().downcast_ref::<StringArray>().ok_or("s is not utf8")?;
    let mut kernels = serde_json::Map::new();
    for (kernel, func, arg, ret, input) in [
        ("standard-scaler", "scale", DataType::Float64, DataType::Float64, &x),
        ("hash-encode", "hash_encode", DataType::Utf8, DataType::UInt32, &s),
        ("bucketize", "bucketize", DataType::Float64, DataType::UInt32, &x),
    ] {
        let native = || -> ArrayRef {
            match kernel {
                "standard-scaler" => Arc::new(xs.unary::<_, arrow_array::types::Float64Type>(|v| (v - MEAN) / STD)),
                "hash-encode" => {
                    let d = ss.value_data();
                    let v: Vec<u32> = ss
                        .value_offsets()
                        .windows(2)
                        .map(|w| murmur3_32(&d[w[0] as usize..w[1] as usize], 0) % BUCKETS)
                        .collect();
                    Arc::new(UInt32Array::new(v.into(), ss.nulls().cloned()))
                }
                _ => Arc::new(
                    xs.unary_opt::<_, arrow_array::types::UInt32Type>(|v| {
                        (!v.is_nan()).then(|| BOUNDARIES.partition_point(|b| *b <= v) as u32)
                    }),
                ),
            }
        };
        let handle = runtime.find_function(func, vec![arg.clone()], ret)?;
        let parts = split(input, batch_rows, &arg);
        // Check (and warm up).
        let mut outs = Vec::new();
        for p in &parts {
            outs.push(runtime.call(&handle, p)?.column(0).clone());
        }
        let refs: Vec<&dyn Array> = outs.iter().map(|a| a.as_ref()).collect();
        let got = arrow_select::concat::concat(&refs)?;
        let verified = got.to_data() == native().to_data();
        let mut times = Vec::new();
        for _ in 0..repeats.max(1) {
            let t0 = Instant::now();
            for p in &parts {
                std::hint::black_box(runtime.call(&handle, p)?);
            }
            times.push(t0.elapsed().as_secs_f64() * 1e3);
        }
        let mut ntimes = Vec::new();
        for _ in 0..repeats.max(1) {
            let t0 = Instant::now();
            std::hint::black_box(native());
            ntimes.push(t0.elapsed().as_secs_f64() * 1e3);
        }
        kernels.insert(
            kernel.into(),
            serde_json::json!({
                "ms": median(times),
                "native_ms": median(ntimes),
                "verified": verified,
                "impl": format!("arrow-udf #[function] {func}, arrow-udf-runtime wasm"),
            }),
        );
    }
    println!(
        "{}",
        serde_json::json!({
            "rows": rows,
            "load_ms": load_ms,
            "versions": {"arrow-udf-runtime": "0.10", "arrow-udf": "0.10", "wasmtime": "36", "arrow": "58"},
            "kernels": kernels,
        })
    );
    Ok(())
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn arrow_select_concat(batches: &[RecordBatch]) -> Res<RecordBatch> {
    let schema = batches.first().ok_or("empty data file")?.schema();
    Ok(arrow_select::concat::concat_batches(&schema, batches)?)
}

/// The column as batches of `rows` rows with their own buffers.
fn split(a: &ArrayRef, rows: Option<usize>, dt: &DataType) -> Vec<RecordBatch> {
    let schema = Arc::new(Schema::new(vec![Field::new("a", dt.clone(), true)]));
    let one = |a: ArrayRef| RecordBatch::try_new(schema.clone(), vec![a]).expect("one column");
    let n = a.len();
    match rows {
        Some(r) if r > 0 && r < n => (0..n)
            .step_by(r)
            .map(|off| {
                let data = a.to_data();
                let mut m = MutableArrayData::new(vec![&data], false, r);
                m.extend(0, off, (off + r).min(n));
                one(make_array(m.freeze()))
            })
            .collect(),
        _ => vec![one(a.clone())],
    }
}

fn murmur3_32(data: &[u8], seed: u32) -> u32 {
    const C1: u32 = 0xcc9e_2d51;
    const C2: u32 = 0x1b87_3593;
    let mut h = seed;
    let mut chunks = data.chunks_exact(4);
    for c in &mut chunks {
        let k = u32::from_le_bytes([c[0], c[1], c[2], c[3]]);
        h ^= k.wrapping_mul(C1).rotate_left(15).wrapping_mul(C2);
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
