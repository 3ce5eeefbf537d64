//! # kiln-datafusion: Kiln transforms in DataFusion SQL
//!
//! A pinned Kiln version becomes a SQL function, data files become
//! tables, and a plugin can be fitted on any query's result, so feature
//! engineering written as SQL runs the very `.wasm` (and fitted state)
//! that `kiln run` and a serving process run, with the same output bits.
//!
//! The map of the crate:
//! - [`Transform`]: one version, pinned: from a registry (`NAME@TAG` or a
//!   version id, authorized and masked like `kiln run`), a `.kiln`
//!   bundle, or a plugin file with parameters and a state.
//! - [`KilnUdf`] / [`register`]: the version as a DataFusion scalar UDF
//!   returning one `Struct` of the plugin's output fields; arguments are
//!   positional and named by the transform's `columns`; a fresh plugin
//!   instance per batch; `Immutable`; equal by version id.
//! - [`KilnFunction`]: one generic function, `kiln('NAME@TAG', age,
//!   income)`, resolving the version named by its first (literal)
//!   argument while the query is planned, then acting as that version's
//!   [`KilnUdf`]; it remembers what it resolved, for lineage.
//! - [`SqlSession`]: a context over a store with `kiln(...)` registered;
//!   [`SqlSession::write`] runs a query into a file and records a `sql`
//!   run (inputs, output, query, every version called), as `kiln run`
//!   records its runs. What `kiln sql` runs; [`verify()`] re-runs a
//!   recorded SQL run with its pinned versions (`kiln verify`).
//! - [`register_files`] / [`register_tables`]: Parquet, CSV, Arrow IPC and
//!   JSON-lines files as tables, read by `kiln-io` (Kiln's types; one
//!   partition per file).
//! - [`collect`] / [`write()`] and their blocking forms [`sql`] /
//!   [`sql_to_file`] ([`block_on`]): run a query, collect the batches or
//!   stream them into a file atomically.
//! - [`fit`] / [`FitSummary`]: fit a plugin on a query's partitions, with
//!   state bytes equal to `kiln fit`'s on the same batches, whatever the
//!   partition count.
//! - [`encode_udf`] / [`UdfDecoder`]: a [`KilnUdf`] as bytes (a versioned
//!   envelope with the plugin's component bytes, parameters, state and
//!   masks) and back, checked against its ids, for distributed engines
//!   that ship plans to other processes (`kiln-ballista`).
//! - [`Error`] / [`Result`]; [`runtime_error`] finds the Kiln error
//!   inside a `DataFusionError`.
//!
//! ```no_run
//! # fn main() -> kiln_datafusion::Result<()> {
//! use kiln_datafusion::{register, sql, Transform};
//! let engine = kiln_runtime::Engine::new()?;
//! let params = kiln_runtime::Params::from_json(r#"{"columns": ["age", "income"]}"#)?;
//! let scaler = Transform::from_files(
//!     &engine,
//!     "standard_scaler.wasm".as_ref(),
//!     params,
//!     Some("scaler.state".as_ref()),
//! )?;
//! let ctx = datafusion::prelude::SessionContext::new();
//! register(&ctx, "kiln_scaler", scaler)?;
//! let (_schema, batches) = sql(
//!     &ctx,
//!     "SELECT customer_id, kiln_scaler(age, income)['age'] AS age_z FROM customers",
//!     &[("customers", "customers.csv".as_ref())],
//! )?;
//! # let _ = batches; Ok(()) }
//! ```

#![deny(missing_docs)]

mod dispatch;
mod error;
mod fit;
mod query;
mod session;
mod table;
mod transform;
mod udf;
mod wire;

/// The DataFusion this crate is built on (one version for every caller).
pub use datafusion;
pub use dispatch::{KilnFunction, Resolver};
pub use error::{runtime_error, Error, Result};
pub use fit::{fit, FitSummary, MERGE_CHUNK};
pub use query::{block_on, collect, sql, sql_to_file, write};
pub use session::{verify, SqlSession, KILN_FUNCTION};
pub use table::{register_files, register_tables};
pub use transform::Transform;
pub use udf::{register, KilnUdf};
pub use wire::{encode_udf, is_encoded_udf, UdfDecoder, WIRE_FORMAT, WIRE_MAGIC};
