//! Serve a pinned transform per request: load it once, call it from several
//! threads, reload it atomically, read its metrics, and measure the per-call
//! latency of each instance strategy on a 1-row batch.
//!
//! Run (from the workspace root, after any `cargo build --release` has built
//! the plugins into target/wasm):
//!   cargo run --release -p kiln-host --example serving
//!   cargo run --release -p kiln-host --example serving -- PLUGIN_DIR [CALLS]
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use arrow::array::{ArrayRef, AsArray, Float64Array, RecordBatch, StringArray};
use arrow::datatypes::UInt64Type;
use kiln_host::{Engine, EngineConfig, InstanceStrategy, Params, ServingOptions, ServingTransform};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let dir = PathBuf::from(
        args.next()
            .unwrap_or_else(|| "target/wasm/wasm32-wasip2/plugin".into()),
    );
    let calls: usize = args.next().map(|n| n.parse()).transpose()?.unwrap_or(5000);
    let engine = Engine::new()?;

    // 1. Load and serve: one ServingTransform, shared by threads.
    let t0 = Instant::now();
    let plugin = engine.load(&dir.join("hash_encode.wasm"))?;
    let params = Params::from_json(r#"{"columns": ["city"], "buckets": 16}"#)?;
    let city = ServingTransform::new("city", plugin.clone(), params.clone(), None)?;
    println!("loaded {city:?} in {:.1?}", t0.elapsed());
    let one = RecordBatch::try_from_iter([(
        "city",
        Arc::new(StringArray::from(vec!["Paris"])) as ArrayRef,
    )])?;
    let outputs = std::thread::scope(|s| {
        let hs: Vec<_> = (0..4)
            .map(|_| s.spawn(|| city.apply(&one)))
            .collect::<Vec<_>>();
        hs.into_iter()
            .map(|h| h.join().expect("worker thread does not panic"))
            .collect::<Result<Vec<_>, _>>()
    })?;
    assert!(outputs.windows(2).all(|w| w[0] == w[1]));
    println!("4 threads, same output: {:?}", outputs[0].column(0));

    // 2. Reload: the name now points at other parameters.
    let wider = Params::from_json(r#"{"columns": ["city"], "buckets": 1024}"#)?;
    city.reload(plugin.clone(), wider, None)?;
    println!("after reload: {:?}", city.apply(&one)?.column(0));

    // 3. History independence: `counter` reports how many calls its
    //    instance has seen; it must be 1 every time.
    let counter = dir.join("counter.wasm");
    if counter.exists() {
        let counter = engine.load(&counter)?;
        for strategy in strategies() {
            let t = serve(&counter, Params::empty(), strategy)?;
            let seen: Vec<u64> = (0..3)
                .map(|_| {
                    t.apply(&one)
                        .map(|b| b.column(0).as_primitive::<UInt64Type>().value(0))
                })
                .collect::<Result<_, _>>()?;
            println!("counter under {strategy:?}: {seen:?}");
        }
    }

    // 4. Latency of a 1-row call, per strategy.
    println!("\n1-row apply latency, single thread, {calls} calls:");
    let scaler = engine.load(&dir.join("standard_scaler.wasm"))?;
    let sparams = Params::from_json(r#"{"columns": ["x"]}"#)?;
    let train = RecordBatch::try_from_iter([(
        "x",
        Arc::new(Float64Array::from(vec![1.0, 2.0, 4.0])) as ArrayRef,
    )])?;
    let mut fitter = scaler.fitter(&sparams)?;
    fitter.update(&train)?;
    let state = fitter.finish()?;
    let x =
        RecordBatch::try_from_iter([("x", Arc::new(Float64Array::from(vec![3.0])) as ArrayRef)])?;
    for strategy in strategies() {
        let t = serve(&plugin, params.clone(), strategy)?;
        report(
            "hash-encode",
            strategy,
            "back-to-back",
            &t,
            &one,
            calls,
            None,
        )?;
        let t = ServingTransform::with_options(
            "scaler",
            scaler.clone(),
            sparams.clone(),
            Some(state.clone()),
            ServingOptions::default().with_strategy(strategy),
        )?;
        report(
            "standard-scaler",
            strategy,
            "back-to-back",
            &t,
            &x,
            calls,
            None,
        )?;
        if matches!(strategy, InstanceStrategy::Pool { .. }) {
            // Requests that arrive 200 µs apart (5,000/s per thread): the pool
            // refills between them, so every call finds a warm instance.
            let gap = Some(Duration::from_micros(200));
            report(
                "hash-encode",
                strategy,
                "every 200 µs",
                &t_for(&plugin, &params, strategy)?,
                &one,
                calls,
                gap,
            )?;
            report(
                "standard-scaler",
                strategy,
                "every 200 µs",
                &t,
                &x,
                calls,
                gap,
            )?;
        }
    }
    // 5. The compiled-plugin cache on disk: the first engine compiles and
    //    writes; a second engine (as in a new process) loads from disk.
    println!("\nload time, compile vs disk cache (new engine each time):");
    let cache = tempfile::tempdir()?;
    for name in ["hash_encode", "standard_scaler", "one_hot"] {
        let path = dir.join(format!("{name}.wasm"));
        let config = EngineConfig::default().with_cache_dir(Some(cache.path().to_path_buf()));
        let t0 = Instant::now();
        Engine::with_config(config.clone())?.load(&path)?;
        let cold = t0.elapsed();
        let mut cached = Vec::new();
        for _ in 0..5 {
            let e = Engine::with_config(config.clone())?;
            let t0 = Instant::now();
            e.load(&path)?;
            cached.push(t0.elapsed());
        }
        cached.sort_unstable();
        println!(
            "  {name:<16} {:>5} KiB  compile {:>7.1?}  cached {:>6.1?} (median of 5)",
            std::fs::metadata(&path)?.len() / 1024,
            cold,
            cached[2]
        );
    }

    let m = city.metrics();
    println!(
        "\nmetrics of 'city': {} calls, {} errors, {} rows in, {} reloads, p50 ≤ {:?}",
        m.calls,
        m.errors,
        m.rows_in,
        m.reloads,
        m.latency.quantile(0.5)
    );
    Ok(())
}

fn strategies() -> [InstanceStrategy; 3] {
    [
        InstanceStrategy::Fresh,
        InstanceStrategy::Pool { depth: 4 },
        InstanceStrategy::ReuseUnsafe,
    ]
}

fn serve(
    plugin: &kiln_host::Plugin,
    params: Params,
    strategy: InstanceStrategy,
) -> kiln_host::Result<ServingTransform> {
    ServingTransform::with_options(
        "t",
        plugin.clone(),
        params,
        None,
        ServingOptions::default().with_strategy(strategy),
    )
}

fn t_for(
    plugin: &kiln_host::Plugin,
    params: &Params,
    strategy: InstanceStrategy,
) -> kiln_host::Result<ServingTransform> {
    serve(plugin, params.clone(), strategy)
}

/// Time `calls` applies (after a warm-up) and print p50 / p99.
fn report(
    what: &str,
    strategy: InstanceStrategy,
    pace: &str,
    t: &ServingTransform,
    batch: &RecordBatch,
    calls: usize,
    gap: Option<Duration>,
) -> kiln_host::Result<()> {
    for _ in 0..200 {
        t.apply(batch)?;
    }
    let before = t.metrics().cold_instances;
    let mut times = Vec::with_capacity(calls);
    for _ in 0..calls {
        if let Some(gap) = gap {
            let until = Instant::now() + gap;
            while Instant::now() < until {
                std::hint::spin_loop();
            }
        }
        let t0 = Instant::now();
        t.apply(batch)?;
        times.push(t0.elapsed());
    }
    times.sort_unstable();
    let q = |p: f64| times[((times.len() as f64 * p) as usize).min(times.len() - 1)];
    let strategy = match strategy {
        InstanceStrategy::Pool { depth } => format!("pool({depth})"),
        other => format!("{other:?}").to_lowercase(),
    };
    println!(
        "  {what:<16} {strategy:<12} {pace:<13} p50 {:>6.1} µs  p99 {:>6.1} µs  cold instances {}",
        q(0.50).as_secs_f64() * 1e6,
        q(0.99).as_secs_f64() * 1e6,
        t.metrics().cold_instances - before,
    );
    Ok(())
}
