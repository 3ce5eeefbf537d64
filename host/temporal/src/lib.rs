//! # kiln-temporal: point-in-time operators over Arrow
//!
//! The two operators behind leak-free training sets and matching serving
//! values:
//! - [`asof_join`] / [`asof_indices`]: for every spine row, the latest
//!   feature row of the same entity at or before its time ([`AsOfSide`],
//!   [`AsOfOptions`]: TTL, exact matches).
//! - [`Windows`]: count/sum/mean/min/max ([`Agg`]) of a column over sliding
//!   windows ([`WindowSpec`]) — [`Windows::backfill`] for a whole table,
//!   [`Windows::at`] for one entity at serving time, equal bit for bit.
//! - [`parse_duration`] (`"15m"`) and [`time_micros`] (any time column as
//!   microseconds).
//!
//! Time is i64 microseconds since the Unix epoch, UTC, everywhere inside.
//! Accepted time columns: Timestamp (any unit; any or no time zone — naive
//! is read as UTC), Date32, Date64, Int64 (already microseconds), and
//! RFC 3339 text (as JSON rows carry times).
//!
//! ```
//! use std::sync::Arc;
//! use arrow::array::{Int64Array, RecordBatch, StringArray};
//! use kiln_temporal::{asof_join, AsOfOptions, AsOfSide};
//!
//! let spine = RecordBatch::try_from_iter([
//!     ("user", Arc::new(StringArray::from(vec!["a", "a"])) as _),
//!     ("ts", Arc::new(Int64Array::from(vec![5, 25])) as _),
//! ])?;
//! let clicks = RecordBatch::try_from_iter([
//!     ("user", Arc::new(StringArray::from(vec!["a", "a"])) as _),
//!     ("ts", Arc::new(Int64Array::from(vec![10, 20])) as _),
//!     ("clicks", Arc::new(Int64Array::from(vec![1, 2])) as _),
//! ])?;
//! let keys = ["user".to_string()];
//! let opts = AsOfOptions {
//!     ttl_us: Some(kiln_temporal::parse_duration("10us")?),
//!     ..Default::default()
//! };
//! let joined = asof_join(
//!     AsOfSide { batch: &spine, keys: &keys, time: "ts" },
//!     AsOfSide { batch: &clicks, keys: &keys, time: "ts" },
//!     &[],
//!     &["clicks".to_string()],
//!     &opts,
//! )?;
//! // At 5 nothing is known yet; at 25 the row at 20 is the latest.
//! assert_eq!(joined.column(2).as_ref(), &Int64Array::from(vec![None, Some(2)]));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

#![deny(missing_docs)]

mod asof;
mod error;
mod keys;
mod time;
mod window;

pub use asof::{asof_indices, asof_join, AsOfOptions, AsOfSide};
pub use error::{Error, Result};
pub use time::{parse_duration, time_micros};
pub use window::{Agg, WindowSpec, Windows};
