//! Builds every guest crate (the six plugins in plugins/ and the test
//! plugins in tests/plugins/) for wasm32-wasip2 with the `plugin` profile, in
//! one nested cargo invocation with its own target directory (target/wasm),
//! so the outer build's lock is not contended.
//!
//! `kiln demo` embeds the six plugins; the end-to-end tests find all of
//! them through `KILN_PLUGIN_DIR`.

use std::env;
use std::path::PathBuf;
use std::process::Command;

fn main() {
    let manifest =
        PathBuf::from(env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let workspace = manifest
        .join("../..")
        .canonicalize()
        .expect("workspace root exists");
    let target_dir = workspace.join("target/wasm");
    for dir in ["plugins", "tests/plugins", "sdk", "wit"] {
        println!("cargo:rerun-if-changed={}", workspace.join(dir).display());
    }
    println!(
        "cargo:rerun-if-changed={}",
        workspace.join("Cargo.lock").display()
    );

    let mut guests = Vec::new();
    for dir in ["plugins", "tests/plugins"] {
        let mut entries: Vec<_> = std::fs::read_dir(workspace.join(dir))
            .expect("guest folder exists")
            .filter_map(|e| e.ok())
            .filter(|e| e.path().join("Cargo.toml").exists())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        entries.sort();
        guests.extend(entries);
    }

    let cargo = env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(&workspace)
        .args([
            "build",
            "--locked",
            "--profile",
            "plugin",
            "--target",
            "wasm32-wasip2",
        ])
        .arg("--target-dir")
        .arg(&target_dir);
    for g in &guests {
        cmd.args(["-p", g]);
    }
    // Flags meant for the host build must not leak into the guest build.
    for var in [
        "CARGO_ENCODED_RUSTFLAGS",
        "RUSTFLAGS",
        "CARGO_TARGET_DIR",
        "CARGO_BUILD_TARGET",
        "RUSTC_WORKSPACE_WRAPPER",
    ] {
        cmd.env_remove(var);
    }
    cmd.env(
        "CARGO_TARGET_WASM32_WASIP2_RUSTFLAGS",
        "-C target-feature=+simd128",
    );
    let status = cmd
        .status()
        .expect("cannot start cargo to build the plugins");
    if !status.success() {
        panic!(
            "building the plugins for wasm32-wasip2 failed (see above). If the target is missing, install it with:\n    rustup target add wasm32-wasip2"
        );
    }
    let out = target_dir.join("wasm32-wasip2/plugin");
    println!("cargo:rustc-env=KILN_PLUGIN_DIR={}", out.display());
}
