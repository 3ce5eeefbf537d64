//! # kiln-serve: pinned transforms inside a service
//!
//! A serving process embeds this crate to call the exact plugin, parameters
//! and state a training run used, bit-identical to `kiln run`.
//!
//! The map of the crate:
//! - [`ServingTransform`] ([`ServingOptions`], [`InstanceStrategy`]): a
//!   named transform or pipeline, callable from many threads, every call in
//!   a fresh instance prepared ahead by a warm pool, reloadable atomically,
//!   with counters and a latency histogram ([`MetricsSnapshot`],
//!   [`Histogram`], [`LATENCY_BUCKETS`]) and an optional sampled parity log.
//! - [`RegistryServing`] / [`BundleServing`]: serve `name@tag` from a
//!   `kiln_store::Registry` (and follow tag moves), or a `.kiln` bundle
//!   without a store.
//! - [`http`] (cargo feature `http`): the HTTP feature server behind
//!   `kiln serve`: JSON or Arrow IPC in and out, reload from the store,
//!   `/healthz`, `/metrics`.
//! - [`Error`] / [`Result`]: the server's errors around the runtime's and
//!   the registry's.
//!
//! ```no_run
//! use kiln_serve::{RegistryServing, ServingOptions};
//! # fn main() -> kiln_store::Result<()> {
//! # let registry: kiln_store::Registry = unimplemented!();
//! let scaler = registry.serving("scaler@prod", ServingOptions::default())?;
//! # let batch: arrow::array::RecordBatch = unimplemented!();
//! let features = scaler.apply(&batch)?;
//! registry.reload(&scaler, "scaler@prod")?; // after a promotion
//! # let _ = features; Ok(()) }
//! ```

#![deny(missing_docs)]

mod error;
#[cfg(feature = "http")]
pub mod http;
mod registry;
mod serving;

pub use error::{Error, Result};
pub use registry::{BundleServing, RegistryServing};
pub use serving::{
    Histogram, InstanceStrategy, MetricsSnapshot, ServingOptions, ServingTransform, LATENCY_BUCKETS,
};
