//! The error type of serving: the HTTP server's own errors around the
//! runtime's and the registry's.

/// Everything that can go wrong starting or running a server.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Loading or calling a plugin failed.
    #[error(transparent)]
    Runtime(#[from] kiln_runtime::Error),
    /// The store could not resolve or load what was asked.
    #[error(transparent)]
    Store(#[from] kiln_store::Error),
    /// The HTTP server cannot start: a bad `--transform` spec, a name used
    /// twice, an address that cannot be bound.
    #[error("{0}")]
    Serve(String),
    /// `kiln serve` cannot load the transform to serve as `name`.
    #[error("cannot serve '{name}' from {from}: {source}")]
    ServeLoad {
        /// The route name.
        name: String,
        /// The source as given (`NAME@TAG`, a bundle or plugin file).
        from: String,
        /// Why.
        source: Box<Error>,
    },
}

impl Error {
    /// Shorthand for a [`kiln_runtime::Error::Io`].
    #[cfg(feature = "http")]
    pub(crate) fn io(path: impl Into<std::path::PathBuf>, source: std::io::Error) -> Self {
        Error::Runtime(kiln_runtime::Error::io(path, source))
    }
}

/// `Result` with serving's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
