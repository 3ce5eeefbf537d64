//! The error type of the registry: store, bundle, verify and gate errors,
//! around the runtime's [`kiln_runtime::Error`].

use std::path::PathBuf;

/// Everything that can go wrong in the registry.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Loading data or plugins, or calling a plugin, failed.
    #[error(transparent)]
    Runtime(#[from] kiln_runtime::Error),
    /// The registry store is unreadable or inconsistent.
    #[error("store {}: {message}", dir.display())]
    Store {
        /// The store directory.
        dir: PathBuf,
        /// What is wrong and what to do.
        message: String,
    },
    /// Another process holds the store.
    #[error("store {} is in use by {holder}; wait for it to finish, or pass --wait to queue behind it", dir.display())]
    StoreBusy {
        /// The store directory.
        dir: PathBuf,
        /// Who holds it (pid, command, since when).
        holder: String,
    },
    /// The store was written by a newer Kiln.
    #[error("store {} has format {found}, this kiln reads format {supported} and older; upgrade kiln", dir.display())]
    StoreFormat {
        /// The store directory.
        dir: PathBuf,
        /// The format found.
        found: u64,
        /// The newest format this build reads.
        supported: u64,
    },
    /// A name, tag, version, run or plugin that the store does not have.
    #[error("{0}")]
    NotFound(String),
    /// A `.kiln` bundle that is malformed or does not match its hashes.
    #[error("bundle {}: {message}", path.display())]
    Bundle {
        /// The bundle file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// A recorded run cannot be re-executed (not successful, inputs missing, …).
    #[error("cannot verify run {run}: {message}")]
    Verify {
        /// The run id.
        run: String,
        /// Why.
        message: String,
    },
    /// Data broke a contract; nothing was written.
    #[error("{} breaks the {stage} contract; nothing was written:\n  {}", path.display(), violations.join("\n  "))]
    Contract {
        /// The file checked.
        path: PathBuf,
        /// `input` or `output`.
        stage: String,
        /// Each violation: column, rule, observed value, example rows.
        violations: Vec<String>,
    },
    /// The acting principal may not do this (access control is on).
    #[error("{principal} may not {permission} '{subject}' ({}); an admin can allow it with `kiln access grant ROLE --on {subject} --allow {permission}` and `kiln access grant ROLE --member {principal}`", match held { Some(h) => format!("it holds {h}"), None => "it holds no grant there".to_string() })]
    Denied {
        /// Who asked.
        principal: String,
        /// What it needed.
        permission: crate::Permission,
        /// The name (or `*`).
        subject: String,
        /// What it holds there, if anything.
        held: Option<crate::Permission>,
    },
    /// A column policy cannot apply to the data (nothing was written).
    #[error("column '{column}' cannot be masked: {message}")]
    Policy {
        /// The column.
        column: String,
        /// Why, and what to do.
        message: String,
    },
    /// A request that makes no sense (a bad name, pattern or mask).
    #[error("{0}")]
    Usage(String),
    /// A promotion gate refused the candidate.
    #[error("promotion refused: gate '{gate}' failed: {message}")]
    Gate {
        /// `contracts`, `golden` or `drift`.
        gate: String,
        /// What failed.
        message: String,
    },
}

impl Error {
    /// Shorthand for a [`kiln_runtime::Error::Io`].
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Runtime(kiln_runtime::Error::io(path, source))
    }

    /// Shorthand for a [`kiln_runtime::Error::Internal`]: a Kiln bug.
    pub(crate) fn internal(message: impl Into<String>) -> Self {
        Error::Runtime(kiln_runtime::Error::Internal(message.into()))
    }

    /// The runtime error inside, if this is one.
    pub fn as_runtime(&self) -> Option<&kiln_runtime::Error> {
        match self {
            Error::Runtime(e) => Some(e),
            _ => None,
        }
    }
}

/// `Result` with the registry's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
