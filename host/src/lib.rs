//! # kiln-host: run feature transforms as sandboxed WebAssembly components
//!
//! Kiln runs ML feature transforms, compiled to WebAssembly components
//! against the `kiln:transform` WIT contract, over Apache Arrow data. Every
//! batch crosses the sandbox boundary as Arrow buffers (one copy in, one copy
//! out), every output is validated before Arrow code reads it, and the same
//! plugin and state give bit-identical output here and in the `kiln` CLI.
//!
//! The map of the crate:
//! - [`Engine`] / [`EngineConfig`]: wasmtime configured for determinism and
//!   limits (deadline, memory cap), WASI granting nothing, the compiled
//!   component cache keyed by plugin id, in memory and (with
//!   [`EngineConfig::with_cache_dir`]) on disk.
//! - [`Plugin`] / [`PluginInfo`]: a loaded, validated plugin and what it says
//!   about itself; [`Fitter`] fits it batch by batch into a [`State`];
//!   [`Transformer`] applies it with [`Params`] and a state.
//! - [`ServingTransform`]: a named, pinned transform or pipeline for a
//!   service: callable from many threads, each call in a fresh pre-warmed
//!   instance, reloadable atomically, with counters and a latency histogram
//!   ([`MetricsSnapshot`]) and an optional sampled parity log ([`parity`]).
//! - `serve` (cargo feature `serve`): the HTTP feature server behind
//!   `kiln serve`: JSON or Arrow IPC in and out, reload from the store,
//!   `/healthz`, `/metrics`.
//! - [`io`]: streaming readers and atomic writers for Parquet, CSV, Arrow IPC
//!   and JSON-lines.
//! - [`job`]: whole-file fit and run, as the CLI does them, with progress.
//! - [`Fingerprinter`] / [`Fingerprint`]: dataset fingerprints of the logical
//!   Arrow content (format, compression and batch boundaries do not count).
//! - [`store`]: the registry store (sled): plugins and states by content id,
//!   transform versions, names with tags and history, run records.
//! - [`Registry`]: fit / run / verify with every run recorded, `name@tag`
//!   resolution, lineage trace and graph, export of [`Bundle`]s.
//! - [`Bundle`]: a pinned version as one self-checking `.kiln` file.
//! - [`openlineage`]: runs as OpenLineage events (file or HTTP).
//! - [`pipeline`]: declarative feature pipelines (a TOML file: feature set,
//!   steps, contracts, gates) and [`pipeline::Pipeline`] to apply one.
//! - [`parity`]: serving logs of sampled calls, replayed by
//!   [`Registry::parity`] to prove serving and training agree bit for bit.
//! - [`quality`]: data contracts, column profiles, drift (PSI, Jensen–Shannon,
//!   Kolmogorov–Smirnov, L∞) and the HTML drift report.
//! - [`bench`]: Kiln beside native arrow-rs, Python and a peer runtime (`kiln bench`).
//! - [`Error`]: one error type naming the plugin, file, column or row.
//!
//! ```no_run
//! use kiln_host::{Engine, Params};
//! # fn main() -> kiln_host::Result<()> {
//! let engine = Engine::new()?;
//! let plugin = engine.load("standard_scaler.wasm".as_ref())?;
//! let params = Params::from_json(r#"{"columns": ["age"]}"#)?;
//! let (_, batches) = kiln_host::io::read_all("train.parquet".as_ref(), &Default::default())?;
//! let mut fitter = plugin.fitter(&params)?;
//! for b in &batches { fitter.update(b)?; }
//! let state = fitter.finish()?;
//! let mut scaler = plugin.transformer(&params, Some(&state))?;
//! let scaled = scaler.apply(&batches[0])?;
//! # let _ = scaled; Ok(()) }
//! ```

#![deny(missing_docs)]

pub mod bench;
mod bindings;
mod bundle;
mod cache;
mod engine;
mod error;
mod fingerprint;
#[doc(hidden)]
pub mod fuzzing;
pub mod io;
pub mod job;
pub mod openlineage;
mod params;
pub mod parity;
pub mod pipeline;
mod plugin;
pub mod quality;
mod registry;
mod sandbox;
#[cfg(feature = "serve")]
pub mod serve;
mod serving;
pub mod store;
mod wire;

pub use bundle::{Bundle, BundleManifest, BUNDLE_FORMAT};
pub use fingerprint::{fingerprint_file, Fingerprint, Fingerprinter};
pub use registry::{
    FitOutcome, FitTarget, ParityReport, PipelineFit, PipelineRun, Registry, TraceNode, TraceRun,
    VerifyReport,
};
pub use store::Store;

pub use engine::{plugin_id, Engine, EngineConfig};
pub use error::{Error, PluginRef, Result};
pub use params::Params;
pub use plugin::{Fitter, Plugin, PluginInfo, PluginKind, State, Transformer, WIT_VERSION};
pub use serving::{
    Histogram, InstanceStrategy, MetricsSnapshot, ServingOptions, ServingTransform, LATENCY_BUCKETS,
};
