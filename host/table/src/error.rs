//! Errors of feature tables: each names the table, version, column or file,
//! and says what to do.

use std::path::PathBuf;

/// What can go wrong with a feature table.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Reading data, calling plugins, the store or the registry failed.
    #[error(transparent)]
    Store(#[from] kiln_store::Error),
    /// A point-in-time operator refused its input.
    #[error(transparent)]
    Temporal(#[from] kiln_temporal::Error),
    /// The table is not what the operation needs (not a table, another
    /// schema, a version it does not have, a feature Kiln does not read).
    #[error("feature table {}: {message}", dir.display())]
    Table {
        /// The table directory.
        dir: PathBuf,
        /// What is wrong and what to do.
        message: String,
    },
    /// Delta Lake refused or failed an operation.
    #[error("feature table {}: {source}", dir.display())]
    Delta {
        /// The table directory.
        dir: PathBuf,
        /// delta-rs's error.
        #[source]
        source: Box<deltalake::DeltaTableError>,
    },
    /// The request itself is incomplete or contradictory.
    #[error("{0}")]
    Usage(String),
}

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl From<kiln_runtime::Error> for Error {
    fn from(e: kiln_runtime::Error) -> Self {
        Error::Store(kiln_store::Error::Runtime(e))
    }
}

impl From<arrow::error::ArrowError> for Error {
    fn from(e: arrow::error::ArrowError) -> Self {
        Error::Temporal(kiln_temporal::Error::Arrow(e))
    }
}

impl Error {
    pub(crate) fn table(dir: impl Into<PathBuf>, message: impl Into<String>) -> Error {
        Error::Table {
            dir: dir.into(),
            message: message.into(),
        }
    }

    pub(crate) fn delta(dir: impl Into<PathBuf>, e: deltalake::DeltaTableError) -> Error {
        Error::Delta {
            dir: dir.into(),
            source: Box::new(e),
        }
    }

    pub(crate) fn io(path: impl Into<PathBuf>, e: std::io::Error) -> Error {
        kiln_runtime::Error::io(path, e).into()
    }
}
