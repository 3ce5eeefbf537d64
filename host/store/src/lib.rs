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
//! - Access control ([`Access`], [`Role`], [`Permission`], [`TokenRecord`],
//!   [`ColumnPolicy`]): roles with grants on names, members, clearances,
//!   bearer tokens, column policies; off until [`Store::enable_access`],
//!   and never able to lock every admin out. [`Masking`] / [`Mask`] apply
//!   column policies to output batches (hash with the store's secret
//!   salt, redact, bucketize).
//! - [`Registry`]: an engine and a store used together: fit / run / verify
//!   with every run recorded, pipelines fitted step by step, promotion gates,
//!   parity replays, lineage trace and graph, export of bundles.
//! - [`LineageGraph`] ([`LineageNode`], [`NodeKind`]): recorded runs as a
//!   graph of datasets, runs and states, printed as dot or mermaid and
//!   drawn by the dashboard; [`DriftRecord`]: the latest drift report of a
//!   name ([`Store::save_drift`], [`Store::latest_drift`]).
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
mod lineage;
mod mask;
pub mod openlineage;
mod registry;
mod store;

pub use bundle::{Bundle, BundleManifest, BUNDLE_FORMAT};
pub use error::{Error, Result};
pub use lineage::{run_kind_label, DataNode, LineageGraph, LineageNode, NodeKind, RunNode};
pub use mask::{Mask, Masking};
pub use registry::{
    FitOutcome, FitTarget, LoadedVersion, ParityReport, PipelineFit, PipelineRun, Registry,
    TraceNode, TraceRun, VerifyReport,
};
pub use store::*;
