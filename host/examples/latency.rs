//! Per-call latency of a 1-row batch through a plugin (fresh instance per call).
//!
//! Run: cargo run --release -p kiln-host --example latency -- target/wasm/wasm32-wasip2/plugin/hash_encode.wasm [CALLS]
//! (CALLS timed calls, default 5,000; raise it to profile the call path with `perf record`).
use std::sync::Arc;
use std::time::Instant;

use arrow::array::{ArrayRef, RecordBatch, StringArray};
use kiln_host::{Engine, Params};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let path = std::env::args()
        .nth(1)
        .ok_or("usage: latency hash_encode.wasm")?;
    let engine = Engine::new()?;
    let plugin = engine.load(path.as_ref())?;
    let calls: usize = match std::env::args().nth(2) {
        Some(n) => n.parse().map_err(|_| "CALLS must be a number")?,
        None => 5000,
    };
    let params = Params::from_json(r#"{"columns": ["city"], "buckets": 16}"#)?;
    let mut t = plugin.transformer(&params, None)?;
    let batch = RecordBatch::try_from_iter([(
        "city",
        Arc::new(StringArray::from(vec!["Paris"])) as ArrayRef,
    )])?;
    for _ in 0..200 {
        t.apply(&batch)?;
    }
    let calls = calls.max(100);
    let mut times = Vec::with_capacity(calls);
    for _ in 0..calls {
        let t0 = Instant::now();
        t.apply(&batch)?;
        times.push(t0.elapsed().as_nanos() as u64);
    }
    times.sort_unstable();
    println!(
        "1-row apply: p50 {:.1} µs, p99 {:.1} µs",
        times[calls / 2] as f64 / 1e3,
        times[calls * 99 / 100] as f64 / 1e3
    );
    Ok(())
}
