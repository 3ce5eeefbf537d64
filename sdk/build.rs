//! Sets `cfg(kiln_arena)` where the SDK installs its arena as the plugin's
//! global allocator (`src/arena.rs`): on `wasm32` without threads (the
//! plugin target; a module there has exactly one thread) and with the
//! `arena` feature. The condition lives here once; the code says
//! `#[cfg(kiln_arena)]`.
//!
//! Sets `cfg(kiln_lean_wasi)` where the SDK answers the WASI a plugin never
//! needs inside the plugin (`src/lean_wasi.rs`): on `wasm32-wasip2` (whose
//! wasi-libc declares the imports it replaces) with the `lean-wasi` feature.

use std::env;

fn main() {
    println!("cargo::rustc-check-cfg=cfg(kiln_arena)");
    println!("cargo::rustc-check-cfg=cfg(kiln_lean_wasi)");
    println!("cargo::rerun-if-changed=build.rs");
    let wasm32 = env::var("CARGO_CFG_TARGET_ARCH").is_ok_and(|a| a == "wasm32");
    let threads =
        env::var("CARGO_CFG_TARGET_FEATURE").is_ok_and(|f| f.split(',').any(|f| f == "atomics"));
    let arena = env::var_os("CARGO_FEATURE_ARENA").is_some();
    if wasm32 && !threads && arena {
        println!("cargo::rustc-cfg=kiln_arena");
    }
    let wasip2 = wasm32
        && env::var("CARGO_CFG_TARGET_OS").is_ok_and(|o| o == "wasi")
        && env::var("CARGO_CFG_TARGET_ENV").is_ok_and(|e| e == "p2");
    if wasip2 && env::var_os("CARGO_FEATURE_LEAN_WASI").is_some() {
        println!("cargo::rustc-cfg=kiln_lean_wasi");
    }
}
