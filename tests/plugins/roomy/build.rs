//! Links the component with 32 MiB of initial linear memory (wasm-ld's
//! default is the data and a 1 MiB stack), as a plugin built for
//! whole-table calls may be (docs/performance.md). Only for the wasm build:
//! the workspace also builds this crate natively, where the flag means
//! nothing to the linker.
fn main() {
    if std::env::var("TARGET").is_ok_and(|t| t.starts_with("wasm32")) {
        println!("cargo:rustc-link-arg=--initial-memory=33554432");
    }
}
