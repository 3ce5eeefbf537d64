//! # kiln-runtime: load a Kiln plugin and call it
//!
//! The smallest piece of Kiln that runs a transform: compile a WebAssembly
//! component written against the `kiln:transform` contract, check it, and
//! call it over Arrow record batches in a sandbox. Everything else (files,
//! the registry, quality, pipelines, serving) is built on this crate; it has
//! no store, no HTTP server and no async runtime, so an engine integration
//! (DataFusion, Python) can depend on it alone.
//!
//! The map of the crate:
//! - [`Engine`] / [`EngineConfig`]: wasmtime configured for determinism
//!   (NaN canonicalization, deterministic relaxed SIMD, no threads) and
//!   limits (deadline, memory cap), WASI granting nothing, the compiled
//!   component cache keyed by plugin id, in memory and on disk;
//!   [`MemoryChecks`] picks guard pages (small calls) or explicit bounds
//!   checks (whole-table calls).
//! - [`Plugin`] / [`PluginInfo`] / [`PluginKind`]: a loaded, validated
//!   plugin and what it says about itself; [`Fitter`] fits it batch by batch
//!   into a [`State`] (or, for engines fitting batches in parallel,
//!   [`Plugin::fit_partial`] / [`Plugin::fit_merge`] / [`Plugin::fit_finish`]
//!   with [`PartialState`]s); [`Transformer`] applies it with [`Params`]
//!   and a state.
//!   Every call runs in a fresh instance.
//! - [`Ready`] / [`Signature`]: one fresh instance configured ahead of a
//!   call (what a serving pool keeps warm), and the input and declared
//!   output schemas it is called with.
//! - [`plugin_id`] / [`version_id`]: the content identities.
//! - [`Error`] / [`Result`]: one error naming the plugin, file, column or
//!   row; [`PluginRef`] names a plugin in errors.
//!
//! Batches cross the boundary as Arrow buffers through `kiln-wire`: one
//! copy in (the canonical-ABI lowering of borrowed Arrow buffers), one copy
//! out (the lift) or, for output buffers of 64 KiB or more from a plugin
//! that promises to leave them intact (kiln-sdk's custom section
//! `kiln:outputs-intact`), none: the arrays point into the finished
//! instance's memory, which lives as long as they do (at most 16 per
//! engine, [`Engine::lent_instances`]). Everything a plugin returns is
//! validated first, after the last guest code of the call has run.
//!
//! ```no_run
//! use kiln_runtime::{Engine, Params};
//! # fn main() -> kiln_runtime::Result<()> {
//! # let batch: arrow::array::RecordBatch = unimplemented!();
//! let engine = Engine::new()?;
//! let plugin = engine.load("standard_scaler.wasm".as_ref())?;
//! let params = Params::from_json(r#"{"columns": ["age"]}"#)?;
//! let mut fitter = plugin.fitter(&params)?;
//! fitter.update(&batch)?;
//! let state = fitter.finish()?;
//! let scaled = plugin.transformer(&params, Some(&state))?.apply(&batch)?;
//! # let _ = scaled; Ok(()) }
//! ```

#![deny(missing_docs)]

mod abi;
mod cache;
mod config;
mod engine;
mod error;
mod identity;
mod params;
mod plugin;
mod sandbox;

pub use config::{EngineConfig, MemoryChecks};
pub use engine::{Engine, WASMTIME_VERSION};
pub use error::{Error, PluginRef, Result};
pub use identity::{plugin_id, version_id};
pub use kiln_wire::WIT_VERSION;
pub use params::Params;
pub use plugin::{
    Fitter, PartialState, Plugin, PluginInfo, PluginKind, Ready, Signature, State, Transformer,
};
