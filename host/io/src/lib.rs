//! # kiln-io: data files in and out, fingerprints, whole-file jobs
//!
//! What Kiln does with files around a plugin call, as a library so that
//! embedders get it without the CLI.
//!
//! The map of the crate:
//! - [`open`] / [`open_many`] / [`read_all`] → [`Reader`] / [`MultiReader`]:
//!   streaming readers for Parquet, CSV, Arrow IPC (file and stream) and
//!   JSON-lines, chosen by extension ([`Format`]), batch by batch
//!   ([`ReadOptions`]).
//! - [`Writer`] / [`WriteSummary`]: atomic writers (temporary file, renamed
//!   over the target only on success).
//! - [`Fingerprinter`] / [`Fingerprint`] / [`fingerprint_file`]: the hash of
//!   a table's logical Arrow content (format, compression and batch
//!   boundaries do not count).
//! - [`job`]: whole-file fit and run, as `kiln fit` and `kiln run` do them.
//!
//! Errors are [`kiln_runtime::Error`], naming the file, column or row.
//!
//! ```no_run
//! # fn main() -> kiln_runtime::Result<()> {
//! let (schema, batches) = kiln_io::read_all("train.parquet".as_ref(), &Default::default())?;
//! let mut out = kiln_io::Writer::create("copy.arrow".as_ref(), schema)?;
//! for b in &batches { out.write(b)?; }
//! out.finish()?;
//! # Ok(()) }
//! ```

#![deny(missing_docs)]

mod file;
mod fingerprint;
pub mod job;

pub use file::{
    open, open_many, read_all, Format, MultiReader, ReadOptions, Reader, WriteSummary, Writer,
    ROW_GROUP_BYTES, ROW_GROUP_ROWS,
};
pub use fingerprint::{fingerprint_file, Fingerprint, Fingerprinter};
