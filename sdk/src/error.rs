//! The error type plugins return.

/// What a plugin reports to the host. The host adds the plugin's name and id.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Error {
    /// The parameters do not parse or are out of range.
    #[error("invalid parameters: {0}")]
    InvalidParams(String),
    /// The input lacks a column, has the wrong type, or holds an unusable value.
    #[error("invalid input{}{}: {message}", column.as_ref().map(|c| format!(" in column '{c}'")).unwrap_or_default(), row.map(|r| format!(" at row {r}")).unwrap_or_default())]
    InvalidInput {
        /// Column the problem is in, if known.
        column: Option<String>,
        /// Row (0-based, within the batch) the problem is in, if known.
        row: Option<u64>,
        /// What is wrong and what to do.
        message: String,
    },
    /// The fitted state is missing, corrupt, or from another plugin.
    #[error("invalid state: {0}")]
    InvalidState(String),
    /// A bug in the plugin.
    #[error("internal error: {0}")]
    Internal(String),
}

impl Error {
    /// An [`Error::InvalidInput`] about a column.
    pub fn column(column: impl Into<String>, message: impl Into<String>) -> Self {
        Error::InvalidInput {
            column: Some(column.into()),
            row: None,
            message: message.into(),
        }
    }

    /// An [`Error::InvalidInput`] about one value of a column.
    pub fn value(column: impl Into<String>, row: usize, message: impl Into<String>) -> Self {
        Error::InvalidInput {
            column: Some(column.into()),
            row: Some(row as u64),
            message: message.into(),
        }
    }
}

impl From<arrow_schema::ArrowError> for Error {
    fn from(e: arrow_schema::ArrowError) -> Self {
        Error::Internal(e.to_string())
    }
}

/// `Result` with the plugin [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
