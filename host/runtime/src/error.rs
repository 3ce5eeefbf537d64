//! The error type of the runtime, shared by the crates that read data and
//! call plugins (`kiln-io`, `kiln-quality`, `kiln-pipeline`); `kiln-store`
//! and `kiln-serve` wrap it in their own.
//!
//! Variants keep apart what the operator must fix (bad files, bad
//! parameters, a plugin that reports bad input), what the plugin did wrong
//! (traps, limits, malformed output) and bugs in Kiln itself (`Internal`).
//! Every variant names the plugin, file, column or row it is about.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// Names a loaded plugin in errors: `name@version (id prefix)`. Cheap to clone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PluginRef(Arc<PluginRefInner>);

#[derive(Debug, PartialEq, Eq)]
struct PluginRefInner {
    name: String,
    version: String,
    id: String,
}

impl PluginRef {
    /// A reference from name, version (empty if unknown) and id.
    pub fn new(name: impl Into<String>, version: impl Into<String>, id: impl Into<String>) -> Self {
        PluginRef(Arc::new(PluginRefInner {
            name: name.into(),
            version: version.into(),
            id: id.into(),
        }))
    }

    /// Name from `describe`, or the file name before `describe` succeeded.
    pub fn name(&self) -> &str {
        &self.0.name
    }

    /// Version from `describe` (empty before it succeeded).
    pub fn version(&self) -> &str {
        &self.0.version
    }

    /// sha256 of the component bytes, hex.
    pub fn id(&self) -> &str {
        &self.0.id
    }
}

impl std::fmt::Display for PluginRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let id = &self.0.id[..self.0.id.len().min(12)];
        if self.0.version.is_empty() {
            write!(f, "plugin '{}' ({id})", self.0.name)
        } else {
            write!(f, "plugin '{}@{}' ({id})", self.0.name, self.0.version)
        }
    }
}

/// Everything that can go wrong loading data or plugins and calling them.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A file could not be opened, read, written or renamed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// A data file is corrupt, truncated, or not in the format its extension says.
    #[error("{}: {message}", path.display())]
    Data {
        /// The file.
        path: PathBuf,
        /// What is wrong, with row or column where known, and what to do.
        message: String,
    },
    /// The file extension names no format Kiln reads or writes.
    #[error("{}: unknown file format; use .parquet, .csv, .arrow/.ipc/.feather (IPC file), .arrows (IPC stream) or .jsonl/.ndjson", path.display())]
    UnknownFormat {
        /// The file.
        path: PathBuf,
    },
    /// The inputs of one run do not share a schema.
    #[error("{}: schema differs from the first input's: {message}", path.display())]
    SchemaMismatch {
        /// The file whose schema differs.
        path: PathBuf,
        /// The difference.
        message: String,
    },
    /// The bytes are not a usable Kiln plugin (not a component, truncated,
    /// wrong world, incompatible contract version).
    #[error("cannot load plugin {}: {message}", path.display())]
    Load {
        /// The plugin file, or `<memory>`.
        path: PathBuf,
        /// Why, and what to do.
        message: String,
    },
    /// Parameters given on the host side are not a JSON object or not `KEY=VALUE`.
    #[error("{0}")]
    ParamsSyntax(String),
    /// Parameters are rejected by the plugin.
    #[error("{plugin}: invalid parameters: {message}")]
    InvalidParams {
        /// The plugin.
        plugin: PluginRef,
        /// The plugin's explanation.
        message: String,
    },
    /// The plugin rejected its input: a missing column, a wrong type, a bad value.
    #[error("{plugin}: invalid input{}{}: {message}", column.as_ref().map(|c| format!(" in column '{c}'")).unwrap_or_default(), row.map(|r| format!(" at row {r}")).unwrap_or_default())]
    InvalidInput {
        /// The plugin.
        plugin: PluginRef,
        /// The column, if known.
        column: Option<String>,
        /// The row (0-based, counted across the whole input), if known.
        row: Option<u64>,
        /// The plugin's explanation.
        message: String,
    },
    /// The fitted state is missing, corrupt or from another plugin.
    #[error("{plugin}: invalid state: {message}")]
    InvalidState {
        /// The plugin.
        plugin: PluginRef,
        /// Why.
        message: String,
    },
    /// The plugin reported a bug in itself.
    #[error("{plugin}: internal error in the plugin: {message}")]
    PluginInternal {
        /// The plugin.
        plugin: PluginRef,
        /// The plugin's message.
        message: String,
    },
    /// The plugin trapped (a panic, an out-of-bounds access, a stack overflow).
    #[error("{plugin} trapped: {message}{}", if stderr.is_empty() { String::new() } else { format!("\nplugin stderr:\n{stderr}") })]
    Trap {
        /// The plugin.
        plugin: PluginRef,
        /// The trap, e.g. `wasm trap: call stack exhausted`.
        message: String,
        /// What the plugin wrote to stderr during the call (a panic message lands here).
        stderr: String,
    },
    /// A call ran longer than the deadline.
    #[error("{plugin}: deadline of {limit:?} exceeded; raise it with --deadline if the input is legitimately large")]
    DeadlineExceeded {
        /// The plugin.
        plugin: PluginRef,
        /// The configured deadline.
        limit: Duration,
    },
    /// The plugin tried to grow its memory past the cap.
    #[error("{plugin}: memory cap of {limit} bytes hit; raise it with --memory-limit or use a smaller --batch-size")]
    MemoryLimit {
        /// The plugin.
        plugin: PluginRef,
        /// The cap in bytes.
        limit: usize,
    },
    /// The plugin returned data that is malformed or differs from what it declared.
    #[error("{plugin} returned an invalid batch{}: {message}", column.as_ref().map(|c| format!(" (column '{c}')")).unwrap_or_default())]
    InvalidOutput {
        /// The plugin.
        plugin: PluginRef,
        /// The column, if known.
        column: Option<String>,
        /// What is wrong.
        message: String,
    },
    /// Too many plugin instances are alive at once in this engine (each
    /// call, and each warm instance of a serving pool, holds one).
    #[error("{plugin}: too many plugin instances alive at once ({message}); retry, or serve fewer transforms per engine")]
    Busy {
        /// The plugin.
        plugin: PluginRef,
        /// wasmtime's explanation.
        message: String,
    },
    /// A Kiln bug: please report it.
    #[error("internal error (a bug in kiln): {0}")]
    Internal(String),
}

impl Error {
    /// Shorthand for [`Error::Data`].
    pub fn data(path: impl Into<PathBuf>, message: impl std::fmt::Display) -> Self {
        Error::Data {
            path: path.into(),
            message: message.to_string(),
        }
    }

    /// Shorthand for [`Error::Io`].
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }
}

impl Error {
    /// Add `by` to the row of an [`Error::InvalidInput`] (rows count across
    /// the batches of a run, not within one batch); other errors unchanged.
    pub fn with_row_offset(self, by: u64) -> Error {
        match self {
            Error::InvalidInput {
                plugin,
                column,
                row,
                message,
            } => Error::InvalidInput {
                plugin,
                column,
                row: row.map(|r| r + by),
                message,
            },
            other => other,
        }
    }
}

/// `Result` with the runtime's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
