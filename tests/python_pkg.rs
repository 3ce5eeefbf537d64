//! The `kiln` Python package (host/python) under pytest, against this
//! build's `kiln` binary and plugins: bit-identical fit and transform.
//!
//! The native module is the cdylib `cargo build --release --workspace`
//! writes (target/release/lib_kiln.so); this test does not build it. It
//! is laid out as a package in a temporary directory (kiln/__init__.py +
//! kiln/_kiln.so) and put on PYTHONPATH, so nothing is installed.

use std::path::{Path, PathBuf};
use std::process::Command;

/// A Python with pyarrow, numpy and pytest: KILN_PYTHON, the repo's .venv,
/// or python3. `None` (skipped) unless KILN_REQUIRE_PYTHON=1.
fn python() -> Option<PathBuf> {
    let venv = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../.venv/bin/python");
    let candidates = std::env::var_os("KILN_PYTHON")
        .map(PathBuf::from)
        .into_iter()
        .chain([venv, PathBuf::from("python3")]);
    for c in candidates {
        let ok = Command::new(&c)
            .args(["-c", "import pyarrow, numpy, pandas, pytest"])
            .output()
            .is_ok_and(|o| o.status.success());
        if ok {
            return Some(c);
        }
    }
    skip_or_fail("no Python with pyarrow, numpy, pandas and pytest: python3 -m venv .venv && .venv/bin/pip install pyarrow pandas pytest");
    None
}

fn skip_or_fail(why: &str) {
    assert!(
        std::env::var("KILN_REQUIRE_PYTHON").as_deref() != Ok("1"),
        "KILN_REQUIRE_PYTHON=1 but {why}"
    );
    eprintln!("skipped: {why}");
}

/// The native module this build made, if it did.
fn native_module() -> Option<PathBuf> {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target"));
    let lib = target.join("release/lib_kiln.so");
    if lib.exists() {
        Some(lib)
    } else {
        skip_or_fail(&format!(
            "{} is missing: run `cargo build --release --workspace` first (the README's test command does)",
            lib.display()
        ));
        None
    }
}

#[test]
fn the_python_package_gives_the_clis_bits() {
    let (Some(py), Some(lib)) = (python(), native_module()) else {
        return;
    };
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../host/python");
    let site = tempfile::tempdir().unwrap();
    let pkg = site.path().join("kiln");
    std::fs::create_dir(&pkg).unwrap();
    std::fs::copy(
        root.join("python/kiln/__init__.py"),
        pkg.join("__init__.py"),
    )
    .unwrap();
    std::fs::copy(&lib, pkg.join("_kiln.so")).unwrap();
    let out = Command::new(&py)
        .args(["-m", "pytest", "-q", "-p", "no:cacheprovider"])
        .arg(root.join("tests"))
        .env("PYTHONPATH", site.path())
        .env("KILN_BIN", env!("CARGO_BIN_EXE_kiln"))
        .env("KILN_PLUGIN_DIR", env!("KILN_PLUGIN_DIR"))
        .output()
        .expect("python runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "pytest failed:\n{stdout}\n{stderr}");
    assert!(stdout.contains(" passed"), "{stdout}");
    assert!(!stdout.contains("skipped"), "{stdout}");
}
