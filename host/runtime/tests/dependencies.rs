//! kiln-runtime stays small: engine integrations (DataFusion, Python)
//! depend on it alone, so no store, HTTP server or async runtime may creep
//! into its dependency tree (issue 12).

use std::process::Command;

#[test]
fn runtime_pulls_in_no_store_http_or_async_runtime() {
    let out = Command::new(env!("CARGO"))
        .args([
            "tree",
            "-p",
            "kiln-runtime",
            "-e",
            "normal",
            "--prefix",
            "none",
            "--locked",
            "--offline",
        ])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("cargo runs");
    assert!(
        out.status.success(),
        "cargo tree failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let tree = String::from_utf8(out.stdout).expect("utf-8");
    let crates: Vec<&str> = tree
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    assert!(
        crates.contains(&"wasmtime"),
        "not a tree of kiln-runtime: {tree}"
    );
    for banned in ["sled", "axum", "hyper", "tokio", "wasmtime-wasi"] {
        assert!(
            !crates.contains(&banned),
            "kiln-runtime depends on {banned}:\n{tree}"
        );
    }
}
