//! Throughput on 1M rows: `standard-scaler`, `hash-encode` and `bucketize`
//! through Kiln (one call for the whole table) against the same computation
//! in native arrow-rs. The outputs are checked equal before timing.
//!
//! Run: cargo build --release -p kiln-cli && cargo bench -p kiln-host --bench transform

use std::time::Duration;

use criterion::{Criterion, Throughput};
use kiln_bench::{native, BenchPlugins, Kernel, Suite, SCALER_MEAN, SCALER_STD};
use kiln_runtime::Engine;

const ROWS: usize = 1_000_000;

fn main() {
    let Some(plugins) = BenchPlugins::for_benches() else {
        return;
    };
    let engine = Engine::new().expect("engine");
    let suite = Suite::load(&engine, &plugins).expect("plugins load and configure");
    let mut c = Criterion::default()
        .sample_size(20)
        .measurement_time(Duration::from_secs(5))
        .configure_from_args();
    for k in [
        Kernel::StandardScaler,
        Kernel::HashEncode,
        Kernel::Bucketize,
    ] {
        let input = k.input(ROWS, 1);
        let want = k.native(&input).expect("a throughput kernel");
        let mut call = suite.call(k).expect("configure");
        let got = call.call(&input).expect("call");
        assert_eq!(
            got.column(0).to_data(),
            want.to_data(),
            "{}: Kiln != native",
            k.name()
        );

        let mut g = c.benchmark_group(format!("transform/{}", k.name()));
        g.throughput(Throughput::Elements(ROWS as u64));
        g.bench_function("native", |b| b.iter(|| k.native(&input)));
        if k == Kernel::StandardScaler {
            let x = input
                .column(0)
                .as_any()
                .downcast_ref()
                .expect("float64 input");
            g.bench_function("native-kernels", |b| {
                b.iter(|| native::standard_scale_kernels(x, SCALER_MEAN, SCALER_STD))
            });
        }
        g.bench_function("kiln", |b| b.iter(|| call.call(&input).expect("call")));
        g.finish();
    }
    c.final_summary();
}
