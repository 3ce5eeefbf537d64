//! The error type of the crate, and the bridge to DataFusion's.
//!
//! Inside a query a Kiln error travels as
//! `DataFusionError::External(Box<kiln_runtime::Error>)`: its text is the
//! text `kiln run` prints (`plugin 'name@version' (id): …`), and
//! [`Error::from`] / [`runtime_error`] get the typed error back out, however
//! DataFusion wrapped it on the way (context, shared, Arrow errors).

use arrow::error::ArrowError;
use datafusion::error::DataFusionError;

/// Everything that can go wrong registering or running Kiln in DataFusion.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Loading data or a plugin, or calling a plugin, failed (also when
    /// the call happened inside a query).
    #[error(transparent)]
    Runtime(#[from] kiln_runtime::Error),
    /// The registry could not resolve, authorize or load a version.
    #[error(transparent)]
    Store(#[from] kiln_store::Error),
    /// DataFusion failed: SQL that does not parse or plan, a missing table
    /// or column, an execution error.
    #[error("{0}")]
    DataFusion(DataFusionError),
    /// A request that makes no sense: a bad SQL function or table name, a
    /// pipeline where a version is needed, a blocking call inside an
    /// async runtime.
    #[error("{0}")]
    Usage(String),
    /// A transform's wire form (what a distributed engine ships to its
    /// workers, [`crate::encode_udf`]) could not be written or read: a
    /// transform without its plugin bytes, bytes that are not a Kiln UDF,
    /// an unknown format version, a truncated envelope, or parts that do
    /// not match their ids (tampered).
    #[error("{0}")]
    Wire(String),
}

impl Error {
    /// The runtime error inside, if this is one (also one that DataFusion
    /// wrapped).
    pub fn as_runtime(&self) -> Option<&kiln_runtime::Error> {
        match self {
            Error::Runtime(e) => Some(e),
            Error::Store(e) => e.as_runtime(),
            Error::DataFusion(e) => runtime_error(e),
            Error::Usage(_) | Error::Wire(_) => None,
        }
    }
}

impl From<DataFusionError> for Error {
    /// Unwrap a Kiln error that DataFusion carried as `External`, so that
    /// callers match on [`Error::Runtime`] whatever path it took.
    fn from(e: DataFusionError) -> Error {
        match e {
            DataFusionError::External(b) => match b.downcast::<kiln_runtime::Error>() {
                Ok(k) => Error::Runtime(*k),
                Err(b) => match b.downcast::<kiln_store::Error>() {
                    // A version `kiln('NAME@TAG', ...)` could not resolve.
                    Ok(s) => Error::Store(*s),
                    Err(b) => Error::DataFusion(DataFusionError::External(b)),
                },
            },
            other => Error::DataFusion(other),
        }
    }
}

/// The Kiln runtime error inside a DataFusion error, if there is one:
/// looks through `External`, `Context`, `Shared`, `Diagnostic`,
/// `Collection` and `ArrowError::ExternalError`.
pub fn runtime_error(e: &DataFusionError) -> Option<&kiln_runtime::Error> {
    match e {
        DataFusionError::External(b) => external(b.as_ref()),
        DataFusionError::Context(_, inner) => runtime_error(inner),
        DataFusionError::Shared(inner) => runtime_error(inner),
        DataFusionError::Diagnostic(_, inner) => runtime_error(inner),
        DataFusionError::ArrowError(a, _) => arrow_external(a),
        DataFusionError::Collection(all) => all.iter().find_map(runtime_error),
        _ => None,
    }
}

fn external<'a>(
    b: &'a (dyn std::error::Error + Send + Sync + 'static),
) -> Option<&'a kiln_runtime::Error> {
    if let Some(k) = b.downcast_ref::<kiln_runtime::Error>() {
        return Some(k);
    }
    if let Some(d) = b.downcast_ref::<DataFusionError>() {
        return runtime_error(d);
    }
    if let Some(s) = b.downcast_ref::<kiln_store::Error>() {
        return s.as_runtime();
    }
    b.downcast_ref::<ArrowError>().and_then(arrow_external)
}

fn arrow_external(a: &ArrowError) -> Option<&kiln_runtime::Error> {
    match a {
        ArrowError::ExternalError(b) => external(b.as_ref()),
        _ => None,
    }
}

/// A Kiln error as DataFusion carries it: `External`, typed, same text.
pub(crate) fn to_datafusion(e: kiln_runtime::Error) -> DataFusionError {
    DataFusionError::External(Box::new(e))
}

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn kiln() -> kiln_runtime::Error {
        kiln_runtime::Error::InvalidParams {
            plugin: kiln_runtime::PluginRef::new("p", "1.0.0", "abcdef0123456789"),
            message: "no".into(),
        }
    }

    #[test]
    fn finds_the_runtime_error_however_it_is_wrapped() {
        let text = kiln().to_string();
        let cases: Vec<DataFusionError> = vec![
            to_datafusion(kiln()),
            DataFusionError::Context("ctx".into(), Box::new(to_datafusion(kiln()))),
            DataFusionError::Shared(Arc::new(to_datafusion(kiln()))),
            DataFusionError::ArrowError(
                Box::new(ArrowError::ExternalError(Box::new(to_datafusion(kiln())))),
                None,
            ),
        ];
        for e in &cases {
            let found = runtime_error(e).map(ToString::to_string);
            assert_eq!(found.as_deref(), Some(text.as_str()), "{e:?}");
            assert!(e.to_string().contains(&text), "{e}");
        }
        assert!(runtime_error(&DataFusionError::Plan("x".into())).is_none());
    }

    #[test]
    fn from_unwraps_external_kiln_errors() {
        match Error::from(to_datafusion(kiln())) {
            Error::Runtime(e) => assert_eq!(e.to_string(), kiln().to_string()),
            other => panic!("{other:?}"),
        }
        let shared = Error::from(DataFusionError::Shared(Arc::new(to_datafusion(kiln()))));
        assert!(matches!(shared, Error::DataFusion(_)));
        assert!(shared.as_runtime().is_some());
    }
}
