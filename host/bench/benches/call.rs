//! Per-call latency of a 1-row and a 64-row batch through `standard-scaler`
//! and `one-hot` (one thread; `kiln bench` adds p99 and two threads).
//!
//! Run: cargo build --release -p kiln-cli && cargo bench -p kiln-host --bench call

use criterion::Criterion;
use kiln_bench::{BenchPlugins, Kernel, Suite};
use kiln_runtime::Engine;

fn main() {
    let Some(plugins) = BenchPlugins::for_benches() else {
        return;
    };
    let engine = Engine::new().expect("engine");
    let suite = Suite::load(&engine, &plugins).expect("plugins load and configure");
    let mut c = Criterion::default().configure_from_args();
    let mut g = c.benchmark_group("call");
    for k in [Kernel::StandardScaler, Kernel::OneHot] {
        for rows in [1, 64] {
            let batch = k.input(rows, 7);
            let mut call = suite.call(k).expect("configure");
            g.bench_function(format!("{}/{rows}-row", k.name()), |b| {
                b.iter(|| call.call(&batch).expect("call"))
            });
        }
    }
    g.finish();
    c.final_summary();
}
