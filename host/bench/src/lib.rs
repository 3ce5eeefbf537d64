//! # kiln-bench: Kiln beside native arrow-rs, pandas / scikit-learn and the
//! peer WASM UDF runtime (RisingWave's `arrow-udf-runtime`), measured side
//! by side in one run on one machine.
//!
//! [`run`] measures and returns a [`Report`] (serializable to JSON; its
//! `Display` is the table `kiln bench` prints):
//! - **loads**: first load (compile) and cached load of each plugin;
//! - **latency**: p50 / p99 of one call with a 1-row and a 64-row batch
//!   through `standard-scaler` and `one-hot`, on 1 and 2 threads;
//! - **throughput**: `standard-scaler`, `hash-encode` and `bucketize` over
//!   large tables through Kiln, against the same computation written
//!   natively with arrow-rs ([`native`], checked equal to Kiln's output before
//!   anything is timed), against pandas / scikit-learn (the script
//!   `host/bench/benches/python/kernels.py`, run when `python3` has scikit-learn,
//!   pandas and pyarrow) and against `arrow-udf-runtime` (the separate crate
//!   `host/bench/benches/peer`, run when it has been built);
//! - **targets**: the goals of issue 4, met or missed, and by how much.
//!
//! What is timed as "a Kiln call" is [`BatchCall`], made by one function
//! (`kiln_call`), so another calling API can be measured by changing one line.
//!
//! ```no_run
//! use kiln_bench::{self as bench, BenchOptions, BenchPlugins};
//! # fn main() -> kiln_runtime::Result<()> {
//! let plugins = BenchPlugins::from_dir("target/wasm/wasm32-wasip2/plugin".as_ref())?;
//! let report = bench::run(&plugins, &BenchOptions::quick(), &mut |msg| eprintln!("{msg}"))?;
//! println!("{report}");
//! # Ok(()) }
//! ```

//!
//! `kiln bench` (the CLI) prints this report; the criterion benches in
//! `benches/` (`cargo bench -p kiln-bench`) reuse [`BenchPlugins`],
//! [`Kernel`] and [`Suite`].

#![deny(missing_docs)]

mod suite;

pub use suite::*;
