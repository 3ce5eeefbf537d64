//! # kiln-store: the registry, lineage and bundles
//!
//! Every result Kiln produces is pinned to the binary, parameters and state
//! that made it; this crate keeps those pins. One directory (`--store DIR`,
//! else `$KILN_HOME`, else `./.kiln`) holds a sled database behind a small
//! storage trait and a lock file; every change is one atomic commit.
//!
//! The map of the crate:
//! - [`Store`] ([`OpenOptions`]): plugins and states by content id,
//!   transform and pipeline versions, names with tags and every tag move,
//!   run records with dataset fingerprints; [`Store::check`], [`Store::gc`].
//!   The records: [`PluginRecord`], [`StateRecord`], [`VersionRecord`],
//!   [`PipelineRecord`], [`NameRecord`] / [`TagMove`], [`RunRecord`]
//!   ([`RunKind`], [`RunStatus`], [`DatasetRecord`], [`EngineSettings`],
//!   [`TransformParts`]); [`TagRef`] / [`Resolved`] for `name@tag`.
//! - The audit log ([`AuditEntry`], [`AuditHead`], [`AuditReport`]): every
//!   tag move and gc, hash-chained, written in the same commit as the
//!   change; [`Store::verify_audit`]; [`Store::with_actor`] names who acts.
//! - [`Registry`]: an engine and a store used together: fit / run / verify
//!   with every run recorded, pipelines fitted step by step, promotion gates,
//!   parity replays, lineage trace and graph, export of bundles.
//! - [`Bundle`] / [`BundleManifest`]: a pinned version as one
//!   self-checking `.kiln` file, usable without a store.
//! - [`openlineage`]: runs as OpenLineage events (file or HTTP).
//! - [`Error`] / [`Result`]: store, bundle, verify and gate errors around
//!   [`kiln_runtime::Error`].
//!
//! ```no_run
//! use kiln_store::{FitTarget, OpenOptions, Registry, Store};
//! # fn main() -> kiln_store::Result<()> {
//! let engine = kiln_runtime::Engine::new()?;
//! let opts = OpenOptions { create: true, wait: false };
//! let store = Store::open("./.kiln".as_ref(), &opts, &mut |_holder| {})?;
//! let version = store.resolve("scaler@prod")?;
//! let registry = Registry::new(engine, store);
//! # let _ = (version, registry); Ok(()) }
//! ```

#![deny(missing_docs)]

mod bundle;
mod error;
pub mod openlineage;
mod registry;
mod store;

pub use bundle::{Bundle, BundleManifest, BUNDLE_FORMAT};
pub use error::{Error, Result};
pub use registry::{
    FitOutcome, FitTarget, ParityReport, PipelineFit, PipelineRun, Registry, TraceNode, TraceRun,
    VerifyReport,
};
pub use store::*;
