//! First load (compile) and cached load of each benchmark plugin.
//!
//! Run: cargo build --release -p kiln-cli && cargo bench -p kiln-host --bench compile
//! (the plugins come from target/wasm/wasm32-wasip2/plugin or $KILN_PLUGIN_DIR).

use std::path::Path;
use std::time::Duration;

use criterion::{BatchSize, Criterion};
use kiln_bench::{BenchPlugins, Kernel};
use kiln_runtime::Engine;

fn main() {
    let Some(plugins) = BenchPlugins::for_benches() else {
        return;
    };
    let mut c = Criterion::default()
        .sample_size(10)
        .measurement_time(Duration::from_secs(5))
        .configure_from_args();
    let mut g = c.benchmark_group("load");
    for k in Kernel::ALL {
        let bytes = plugins.get(k);
        let label = Path::new(k.file());
        g.bench_function(format!("{}/first", k.name()), |b| {
            b.iter_batched(
                || Engine::new().expect("engine"),
                |engine| engine.load_bytes(bytes, label).expect("load"),
                BatchSize::PerIteration,
            )
        });
        let engine = Engine::new().expect("engine");
        engine.load_bytes(bytes, label).expect("load");
        g.bench_function(format!("{}/cached", k.name()), |b| {
            b.iter(|| engine.load_bytes(bytes, label).expect("load"))
        });
    }
    g.finish();
    c.final_summary();
}
