//! # kiln-table: feature tables on Delta Lake
//!
//! Kiln transforms and records; this crate stores what it computes, the
//! core of a feature store. A feature table is a Delta Lake table in a local
//! directory whose rows are an entity key, an event time, windowed
//! aggregations and a pinned pipeline's features; every commit carries the
//! Kiln run and version that wrote it, and every read names the version it
//! read, so training sets and tables trace back to binaries and raw data.
//!
//! The map of the crate:
//! - [`materialize`] ([`MaterializeOptions`], [`MaterializeReport`]): run
//!   `NAME@TAG` over event files into a table, one atomic, idempotent,
//!   recorded commit.
//! - [`FeatureTable`]: open a table, its [`Commit`]s, [`Layout`], read a
//!   version ([`TableRef`] / [`AsOf`]: by version or time, from the
//!   commit log's own timestamps), lineage ids, vacuum.
//! - [`training_set`] ([`TrainingSetOptions`], [`TrainingSetReport`],
//!   [`TableUse`]): point-in-time correct joins of tables to a spine.
//! - [`vacuum`] ([`VacuumReport`], [`protected_versions`]): retention that
//!   never deletes a version a recorded training set read.
//! - [`Error`] / [`Result`].
//!
//! The operators themselves (as-of join, windows) are `kiln-temporal`'s,
//! shared with serving: `PipelineSpec::compiled_windows` gives the same
//! [`kiln_temporal::Windows`] a service calls per request.
//!
//! ```no_run
//! use kiln_table::{materialize, training_set, MaterializeOptions, TableRef, TrainingSetOptions};
//! # fn main() -> kiln_table::Result<()> {
//! # let registry: kiln_store::Registry = unimplemented!();
//! let m = materialize(&registry, "txn@prod", &["events.parquet".into()], "tables/txn".as_ref(),
//!                     &MaterializeOptions::default(), &mut |_| {})?;
//! let ts = training_set(&registry, "labels.parquet".as_ref(), &[TableRef::parse("tables/txn")],
//!                       "train.parquet".as_ref(), &TrainingSetOptions::default())?;
//! # let _ = (m, ts); Ok(()) }
//! ```

#![deny(missing_docs)]

mod error;
mod materialize;
mod table;
mod training;

pub use error::{Error, Result};
pub use materialize::{materialize, MaterializeOptions, MaterializeReport};
pub use table::{
    is_table, AsOf, Commit, FeatureTable, Layout, TableRef, WriteMode, COMMIT_KEY, CREATED_AT,
    ENTITY_PROPERTY, FEATURE_SET_PROPERTY, ROW, TIME_PROPERTY,
};
pub use training::{
    protected_versions, training_set, vacuum, TableUse, TrainingSetOptions, TrainingSetReport,
    VacuumReport,
};
