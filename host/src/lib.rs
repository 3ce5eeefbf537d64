//! placeholder (being written)
mod error;
pub mod io;
pub use error::{Error, PluginRef, Result};
