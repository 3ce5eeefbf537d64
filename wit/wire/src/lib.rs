//! # kiln-wire: the contract's data layout in Rust
//!
//! A batch crosses the Kiln plugin boundary as Arrow buffers, described by
//! the records of the `types` interface in `wit/kiln.wit`. This crate is that
//! interface as plain Rust types plus the one mapping between them and
//! Arrow, shared by both sides: the host (`kiln-runtime`, which lowers and
//! lifts these types directly with the `wasmtime` feature) and the guest
//! SDK (`kiln-sdk`, which moves them in and out of wit-bindgen's types).
//! It depends on the Arrow crates only.
//!
//! The map of the crate:
//! - [`Schema`], [`Field`], [`DataType`] (and [`TimeUnit`],
//!   [`TimestampType`], [`DecimalType`], [`IndexType`]): a schema as field
//!   nodes in depth-first pre-order.
//! - [`Batch`] / [`Array`]: a batch as owned buffers; [`BatchView`] /
//!   [`ArrayView`]: the same record borrowing Arrow's buffers, for a
//!   lowering that is the only copy, each buffer a [`GuestBytes`] that
//!   (feature `wasmtime`) is written with streaming stores when large;
//!   `HostBytes` (feature `wasmtime`): an
//!   output buffer lifted with one `memcpy`, into huge pages when large, or
//!   inside `lending` left in the guest's memory under an owner;
//!   `HostSchema` (feature `wasmtime`): an output's schema, which inside
//!   `expecting` is compared with the declared one in the guest's memory
//!   instead of lifted.
//! - [`PluginError`] / [`InputError`]: what a plugin reports.
//! - [`export_schema`] / [`import_schema`]: Arrow schema <-> wire schema.
//! - [`Prepared`]: a record batch walked into wire form without copying;
//!   [`import_batch`]: a wire batch validated and wrapped as Arrow arrays
//!   without copying; [`import_batch_declared`]: the same against a
//!   declared schema whose wire form is known, skipping the schema's
//!   conversion when the batch carries exactly that form;
//!   [`import_host_batch`]: the guest's import of what the host sends,
//!   checking the layout but not the values again (offsets, UTF-8).
//! - [`WireError`]: why something could not cross, naming the column.
//!
//! ```
//! use std::sync::Arc;
//! use arrow_array::{ArrayRef, Int32Array, RecordBatch};
//!
//! let batch = RecordBatch::try_from_iter([
//!     ("x", Arc::new(Int32Array::from(vec![Some(1), None, Some(3)])) as ArrayRef),
//! ]).unwrap();
//! let schema = kiln_wire::export_schema(batch.schema_ref()).unwrap();
//! let wire = kiln_wire::Prepared::new(&batch, schema).into_batch();
//! let back = kiln_wire::import_batch(wire, Some(&batch.schema())).unwrap();
//! assert_eq!(back, batch);
//! ```

#![deny(missing_docs)]

mod batch;
mod error;
mod guest_bytes;
#[cfg(feature = "wasmtime")]
mod host_bytes;
#[cfg(feature = "wasmtime")]
mod host_schema;
mod schema;
mod types;

pub use batch::{
    import_batch, import_batch_declared, import_host_batch, DeclaredSchema, Prepared, WireBytes,
};
pub use error::WireError;
pub use guest_bytes::{GuestBytes, STREAM_THRESHOLD};
#[cfg(feature = "wasmtime")]
pub use host_bytes::{lending, HostBytes, HUGE_PAGE_THRESHOLD};
#[cfg(feature = "wasmtime")]
pub use host_schema::{expecting, host_schema_counts, HostSchema};
pub use schema::{export_schema, import_schema, MAX_DEPTH};
pub use types::{
    Array, ArrayView, Batch, BatchView, DataType, DecimalType, Field, IndexType, InputError,
    PluginError, Schema, TimeUnit, TimestampType,
};

/// The contract version these records belong to (`kiln:transform@…`).
pub const WIT_VERSION: &str = "0.1.0";
