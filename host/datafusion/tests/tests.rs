//! kiln-datafusion end to end: real plugins (built to wasm32-wasip2 by the
//! workspace's host/cli/build.rs) on the repo's example table, checked
//! against what `kiln run` / `kiln fit` produce through kiln-io and
//! kiln-runtime directly. One test binary, a module per story.

mod support;

mod fit;
mod sources;
mod sql;
mod udf;
