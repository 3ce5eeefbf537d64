//! Why a schema or batch could not cross the boundary.

/// A schema or batch that cannot cross the boundary: which column (when the
/// problem is inside one) and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WireError {
    /// The top-level column, if the problem is inside one.
    pub column: Option<String>,
    /// What is wrong.
    pub message: String,
}

impl WireError {
    pub(crate) fn new(column: Option<&str>, message: impl Into<String>) -> Self {
        WireError {
            column: column.map(str::to_owned),
            message: message.into(),
        }
    }
}

impl std::fmt::Display for WireError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.column {
            Some(c) => write!(f, "column '{c}': {}", self.message),
            None => f.write_str(&self.message),
        }
    }
}

impl std::error::Error for WireError {}
