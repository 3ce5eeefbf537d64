//! # kiln-sdk: write a Kiln feature transform in Rust
//!
//! A Kiln plugin is a WebAssembly component that transforms Apache Arrow
//! record batches. This crate hides the component model: you implement one
//! trait over [`RecordBatch`](arrow_array::RecordBatch), deserialize your
//! parameters with serde, and export the type with [`export!`]. The same code
//! compiles natively, so you unit-test it with `cargo test` and the
//! [`testing`] helpers.
//!
//! - [`StatelessTransform`]: output depends on parameters and the batch only.
//! - [`FittedTransform`]: a mergeable fit (partial state per batch, merge,
//!   finish) produces a state the transform then uses. Every
//!   [`StatelessTransform`] is also a [`FittedTransform`] that needs no fit.
//! - [`Error`]: what a plugin reports (invalid parameters, invalid input with
//!   column and row, invalid state, internal); traps are the host's business.
//! - [`columns`]: small helpers to look up typed input columns with good errors.
//! - [`output`]: build output arrays the host receives without a copy;
//!   [`output::unary_mut`] rewrites an input column over its own buffer
//!   when a plugin overrides `transform_owned` (no new memory at all);
//!   [`output::fill`] hands a kernel the output as a slice to write in
//!   blocks (SIMD).
//! - In the sandbox, small allocations come from a bump arena in front of
//!   the system allocator (every call runs in a fresh instance, so they are
//!   never reused). Turning off the default `arena` feature keeps the
//!   system allocator, or lets a plugin set its own `#[global_allocator]`.
//! - In the sandbox, the WASI a plugin never needs (environment,
//!   terminals) is answered inside the plugin, so its component imports
//!   fewer interfaces and each call's instance is cheaper to create (the
//!   default `lean-wasi` feature).
//!
//! ```
//! use std::sync::Arc;
//! use arrow_array::{Array, ArrayRef, Float64Array, RecordBatch};
//! use arrow_schema::Schema;
//! use kiln_sdk::{columns, PluginInfo, Result, StatelessTransform};
//!
//! /// Multiplies one Float64 column by a constant.
//! struct Scale { column: String, factor: f64 }
//!
//! #[derive(serde::Deserialize)]
//! struct Params { column: String, factor: f64 }
//!
//! impl StatelessTransform for Scale {
//!     type Params = Params;
//!     fn info() -> PluginInfo {
//!         PluginInfo::new("scale", "0.1.0", "Multiply a column by a constant")
//!     }
//!     fn new(p: Params) -> Result<Self> { Ok(Scale { column: p.column, factor: p.factor }) }
//!     fn output_schema(&self, input: &Schema) -> Result<Schema> { Ok(input.clone()) }
//!     fn transform(&self, batch: &RecordBatch) -> Result<RecordBatch> {
//!         let x = columns::float64(batch, &self.column)?;
//!         let y: Float64Array = x.unary(|v| v * self.factor);
//!         columns::replace(batch, &self.column, Arc::new(y) as ArrayRef)
//!     }
//! }
//! kiln_sdk::export!(Scale);
//!
//! let out = kiln_sdk::testing::apply::<Scale>(
//!     r#"{"column": "x", "factor": 2.0}"#,
//!     None,
//!     &kiln_sdk::testing::batch(vec![("x", Arc::new(Float64Array::from(vec![1.0, 2.5])) as ArrayRef)]),
//! ).unwrap();
//! assert_eq!(columns::float64(&out, "x").unwrap().values().to_vec(), vec![2.0, 5.0]);
//! ```
//!
//! Build for the sandbox with `cargo build --release --target wasm32-wasip2`;
//! the `.wasm` in `target/wasm32-wasip2/release/` is the plugin.
#![deny(missing_docs)]

// The plugin's allocator where `build.rs` sets `kiln_arena`; natively
// only for its unit tests.
#[cfg(any(test, kiln_arena))]
mod arena;
pub mod columns;
mod error;
pub mod output;
mod plugin;
pub mod testing;

#[cfg(target_arch = "wasm32")]
mod guest;
// The WASI imports a plugin never needs, answered in the guest (where
// `build.rs` sets `kiln_lean_wasi`).
#[cfg(kiln_lean_wasi)]
mod lean_wasi;

pub use error::{Error, Result};
pub use plugin::{FittedTransform, PluginInfo, PluginKind, StatelessTransform};

/// Re-exported so plugins use the exact Arrow crates the SDK speaks.
pub use arrow_array;
/// Re-exported so plugins use the exact Arrow crates the SDK speaks.
pub use arrow_buffer;
/// Re-exported so plugins use the exact Arrow crates the SDK speaks.
pub use arrow_schema;

/// Items the [`export!`] macro expands to. Not part of the public API.
#[doc(hidden)]
pub mod __private {
    #[cfg(target_arch = "wasm32")]
    pub use crate::guest::bindings;
    #[cfg(target_arch = "wasm32")]
    pub use crate::guest::Adapter;
}

/// Export a type implementing [`FittedTransform`] (or [`StatelessTransform`])
/// as the plugin's entry point. Use it once per plugin crate.
///
/// On targets other than `wasm32` it only checks that the type implements
/// the trait, so the plugin crate still compiles natively for unit tests.
#[macro_export]
macro_rules! export {
    ($plugin:ty) => {
        #[cfg(target_arch = "wasm32")]
        const _: () = {
            type __KilnPlugin = $crate::__private::Adapter<$plugin>;
            $crate::__private::bindings::__export_kiln_plugin!(__KilnPlugin with_types_in $crate::__private::bindings);
        };
        #[cfg(not(target_arch = "wasm32"))]
        const _: () = {
            // What the wasm export would call, so nothing reads as dead code natively.
            let _ = <$plugin as $crate::FittedTransform>::info;
            let _ = <$plugin as $crate::FittedTransform>::new;
            let _ = <$plugin as $crate::FittedTransform>::transform;
            let _ = <$plugin as $crate::FittedTransform>::output_schema;
            let _ = <$plugin as $crate::FittedTransform>::fit_partial;
        };
    };
}
