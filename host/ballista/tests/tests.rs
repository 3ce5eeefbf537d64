//! kiln-ballista end to end: a scheduler and two executors in this
//! process run real plugins (built to wasm32-wasip2 by the workspace's
//! host/cli/build.rs) over a Parquet file, checked against what `kiln run`
//! writes for the same file through kiln-io and kiln-runtime directly.
//! One test binary, a module per story.

mod support;

mod cluster;
mod errors;
