//! The error type of the crate.

use datafusion::error::DataFusionError;

/// Everything that can go wrong running Kiln on a Ballista cluster.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Kiln or DataFusion failed: a transform that does not load or
    /// cannot be shipped, SQL that does not plan, a query that failed on
    /// an executor (plugin errors from other processes arrive as text).
    #[error(transparent)]
    Kiln(#[from] kiln_datafusion::Error),
    /// Ballista failed to start a scheduler or an executor, or to connect
    /// to one.
    #[error("ballista: {0}")]
    Ballista(#[from] ballista_core::error::BallistaError),
    /// A request that makes no sense (a cluster without executors).
    #[error("{0}")]
    Usage(String),
}

impl From<DataFusionError> for Error {
    /// Through [`kiln_datafusion::Error`], which finds a Kiln error that
    /// DataFusion carried.
    fn from(e: DataFusionError) -> Error {
        Error::Kiln(e.into())
    }
}

impl From<kiln_runtime::Error> for Error {
    fn from(e: kiln_runtime::Error) -> Error {
        Error::Kiln(e.into())
    }
}

impl Error {
    /// The Kiln runtime error inside, if the failure happened in this
    /// process (errors from executors arrive as text).
    pub fn as_runtime(&self) -> Option<&kiln_runtime::Error> {
        match self {
            Error::Kiln(e) => e.as_runtime(),
            Error::Ballista(_) | Error::Usage(_) => None,
        }
    }
}

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
