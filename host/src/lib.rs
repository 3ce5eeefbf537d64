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
//! - [`ServingTransform`]: a named, pinned transform for a service: callable
//!   from many threads, each call in a fresh pre-warmed instance, reloadable
//!   atomically, with counters and a latency histogram ([`MetricsSnapshot`]).
//! - [`io`]: streaming readers and atomic writers for Parquet, CSV, Arrow IPC
//!   and JSON-lines.
//! - [`job`]: whole-file fit and run, as the CLI does them, with progress.
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

mod bindings;
mod cache;
mod engine;
mod error;
#[doc(hidden)]
pub mod fuzzing;
pub mod io;
pub mod job;
mod params;
mod plugin;
mod sandbox;
mod serving;
mod wire;

pub use engine::{plugin_id, Engine, EngineConfig};
pub use error::{Error, PluginRef, Result};
pub use params::Params;
pub use plugin::{Fitter, Plugin, PluginInfo, PluginKind, State, Transformer, WIT_VERSION};
pub use serving::{
    Histogram, InstanceStrategy, MetricsSnapshot, ServingOptions, ServingTransform, LATENCY_BUCKETS,
};
