//! # kiln-host: run feature transforms as sandboxed WebAssembly components
//!
//! Kiln runs ML feature transforms, compiled to WebAssembly components
//! against the `kiln:transform` WIT contract, over Apache Arrow data. Every
//! batch crosses the sandbox boundary as Arrow buffers (one copy in, one copy
//! out), every output is validated before Arrow code reads it, and the same
//! plugin and state give bit-identical output here and in the `kiln` CLI.
//!
//! This crate is the facade: one dependency for an embedder, re-exporting
//! the crates that do the work (see `docs/architecture.md`). Depend on a
//! smaller one where that is all you need, e.g. `kiln-runtime` alone to load
//! and call plugins.
//!
//! The map:
//! - from [`kiln_runtime`]: [`Engine`] / [`EngineConfig`] /
//!   [`MemoryChecks`], [`Plugin`] /
//!   [`PluginInfo`] / [`PluginKind`], [`Fitter`], [`Transformer`],
//!   [`State`], [`Params`], [`Ready`] / [`Signature`], the identities
//!   [`plugin_id`] / [`version_id`], and [`Error`] / [`Result`].
//! - [`io`] ([`kiln_io`]): streaming readers and atomic writers for Parquet,
//!   CSV, Arrow IPC and JSON-lines; [`Fingerprint`]s; [`job`]: whole-file
//!   fit and run.
//! - [`quality`] ([`kiln_quality`]): contracts, profiles, drift, the HTML
//!   drift report, and [`parity`] logs.
//! - [`pipeline`] ([`kiln_pipeline`]): declarative feature pipelines.
//! - [`store`] ([`kiln_store`]): the registry store; [`Registry`],
//!   [`Bundle`], [`openlineage`].
//! - from [`kiln_serve`]: [`ServingTransform`] and what configures and
//!   observes it, [`RegistryServing`] / [`BundleServing`]; `serve` (cargo
//!   feature `serve`): the HTTP feature server.
//! - [`temporal`] ([`kiln_temporal`]): point-in-time operators, the as-of
//!   join and windowed aggregations (shared by batch backfill and serving).
//! - `table` (cargo feature `table`, `kiln-table`): feature tables on Delta
//!   Lake: materialize, time travel, training sets, vacuum.
//! - `sql` (cargo feature `sql`, `kiln-datafusion`): DataFusion SQL over
//!   files with pinned versions as functions, `kiln('NAME@TAG', ...)`.
//! - [`bench`] ([`kiln_bench`]): Kiln beside native arrow-rs, Python and a
//!   peer runtime.
//! - [`wire`] ([`kiln_wire`]): the contract's records and their Arrow mapping.
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

#[doc(hidden)]
pub mod fuzzing;

pub use kiln_bench as bench;
#[cfg(feature = "sql")]
pub use kiln_datafusion as sql;
pub use kiln_io as io;
pub use kiln_io::job;
pub use kiln_io::{fingerprint_file, Fingerprint, Fingerprinter};
pub use kiln_pipeline as pipeline;
pub use kiln_quality as quality;
pub use kiln_quality::parity;
pub use kiln_runtime::{
    plugin_id, version_id, Engine, EngineConfig, Error, Fitter, MemoryChecks, Params, Plugin,
    PluginInfo, PluginKind, PluginRef, Ready, Result, Signature, State, Transformer, WIT_VERSION,
};
#[cfg(feature = "serve")]
pub use kiln_serve::http as serve;
pub use kiln_serve::{
    BundleServing, Histogram, InstanceStrategy, MetricsSnapshot, RegistryServing, ServingOptions,
    ServingTransform, LATENCY_BUCKETS,
};
pub use kiln_store as store;
pub use kiln_store::openlineage;
pub use kiln_store::{
    Bundle, BundleManifest, FitOutcome, FitTarget, ParityReport, PipelineFit, PipelineRun,
    Registry, Store, TraceNode, TraceRun, VerifyReport, BUNDLE_FORMAT,
};
#[cfg(feature = "table")]
pub use kiln_table as table;
pub use kiln_temporal as temporal;
pub use kiln_wire as wire;
