//! `kiln bench`: argument parsing and printing over `kiln_host::bench`.

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Args;
use kiln_host::bench::{self, BenchOptions, BenchPlugins};
use kiln_host::{EngineConfig, MemoryChecks};

/// Where `cargo build --release` in host/bench/benches/peer puts the peer benchmark.
const DEFAULT_PEER: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../bench/benches/peer/target/release/kiln-peer-bench"
);

#[derive(Args)]
pub struct BenchArgs {
    /// A smoke run in seconds (10,000 rows, few calls): checks that everything runs; its numbers mean little.
    #[arg(long)]
    quick: bool,
    /// Table sizes for throughput, e.g. --rows 1000000,10000000 (default both; 10,000 with --quick).
    #[arg(long, value_name = "N", value_delimiter = ',', num_args = 1..)]
    rows: Vec<usize>,
    /// Rows per Kiln (and peer) call in throughput runs (default: the whole table in one call).
    #[arg(long, value_name = "N")]
    batch_rows: Option<usize>,
    /// Timed repetitions per throughput cell; the median is kept.
    #[arg(long, value_name = "N")]
    repeats: Option<usize>,
    /// Timed calls per thread per latency cell.
    #[arg(long, value_name = "N")]
    calls: Option<usize>,
    /// Python with scikit-learn, pandas and pyarrow for the Python column.
    #[arg(long, value_name = "PATH", default_value = "python3")]
    python: PathBuf,
    /// Leave out the Python column.
    #[arg(long)]
    no_python: bool,
    /// The built peer benchmark (arrow-udf-runtime; see host/bench/benches/peer/Cargo.toml).
    #[arg(long, value_name = "PATH", default_value = DEFAULT_PEER)]
    peer: PathBuf,
}

/// `memory_checks` is `--memory-checks` if given: it then applies to the
/// throughput engine too, which otherwise uses explicit checks.
pub fn run(
    args: &BenchArgs,
    engine: EngineConfig,
    memory_checks: Option<MemoryChecks>,
    json: bool,
) -> Result<()> {
    let bytes = |file: &str| {
        crate::demo::PLUGINS
            .iter()
            .find(|(f, _)| *f == file)
            .map(|(_, b)| b.to_vec())
            .with_context(|| format!("{file} is not embedded in this kiln"))
    };
    let plugins = BenchPlugins {
        standard_scaler: bytes("standard_scaler.wasm")?,
        one_hot: bytes("one_hot.wasm")?,
        hash_encode: bytes("hash_encode.wasm")?,
        bucketize: bytes("bucketize.wasm")?,
    };
    let mut opts = if args.quick {
        BenchOptions::quick()
    } else {
        BenchOptions::default()
    };
    if !args.rows.is_empty() {
        opts.rows = args.rows.clone();
    }
    opts.batch_rows = args.batch_rows;
    if let Some(r) = args.repeats {
        opts.repeats = r;
    }
    if let Some(c) = args.calls {
        opts.latency_calls = c;
    }
    opts.python = (!args.no_python).then(|| args.python.clone());
    opts.peer = Some(args.peer.clone());
    opts.engine = engine;
    if let Some(checks) = memory_checks {
        opts.throughput_memory_checks = checks;
    }
    // The end-to-end row times this very binary's `kiln run`.
    opts.kiln_exe = std::env::current_exe().ok();
    let report = bench::run(&plugins, &opts, &mut |msg| eprintln!("bench: {msg}"))?;
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{report}");
    }
    Ok(())
}
