//! End-to-end tests: the real `kiln` binary and the `kiln-host` library on
//! real files and real plugins (built to wasm32-wasip2 by host/cli/build.rs).
//! One test binary, a module per story.

mod support;

mod access;
mod audit;
mod bad_data;
mod bench;
mod boundary;
mod cache;
mod cli;
mod determinism;
mod engine;
mod large;
mod lending;
mod pipeline;
mod plugins;
mod python_pkg;
mod registry;
mod roundtrip;
mod sandbox;
mod serve;
mod serving;
mod soak;
mod sql;
mod tables;
mod ui;
