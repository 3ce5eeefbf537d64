//! The crate's error type, and the column lookup that produces
//! [`Error::MissingColumn`].

use arrow::array::{ArrayRef, RecordBatch};

/// Errors of the point-in-time operators; each names the column and what to do.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A named column is missing.
    #[error(
        "column '{column}' is missing from the {side} (it has: {available}); name the right column"
    )]
    MissingColumn {
        /// The column asked for.
        column: String,
        /// `spine`, `features` or `events`.
        side: String,
        /// The columns it has, comma separated.
        available: String,
    },
    /// A column has a type the operator cannot use.
    #[error("column '{column}' of the {side} is {found}; {expected}")]
    ColumnType {
        /// The column.
        column: String,
        /// `spine`, `features` or `events`.
        side: String,
        /// Its Arrow type.
        found: String,
        /// What was expected, as advice.
        expected: String,
    },
    /// A window, TTL or aggregation was written wrongly.
    #[error("invalid {what} '{value}': {hint}")]
    Spec {
        /// `window`, `ttl`, `aggregation`.
        what: String,
        /// What was written.
        value: String,
        /// What is accepted.
        hint: String,
    },
    /// An as-of join would output two columns of the same name.
    #[error("column '{column}' is in both the spine and the features; rename one (or leave it out of the feature columns)")]
    DuplicateColumn {
        /// The column name.
        column: String,
    },
    /// An Arrow kernel failed.
    #[error(transparent)]
    Arrow(#[from] arrow::error::ArrowError),
}

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// The column `name` of `batch`, or [`Error::MissingColumn`] listing what
/// the `side` has.
pub(crate) fn column<'a>(batch: &'a RecordBatch, name: &str, side: &str) -> Result<&'a ArrayRef> {
    batch.column_by_name(name).ok_or_else(|| {
        let schema = batch.schema_ref();
        let available: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
        Error::MissingColumn {
            column: name.to_string(),
            side: side.to_string(),
            available: available.join(", "),
        }
    })
}

/// [`Error::ColumnType`] for `array`, the column `name` of the `side`.
pub(crate) fn column_type(array: &ArrayRef, name: &str, side: &str, expected: String) -> Error {
    Error::ColumnType {
        column: name.to_string(),
        side: side.to_string(),
        found: array.data_type().to_string(),
        expected,
    }
}
