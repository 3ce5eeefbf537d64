//! The `kiln` Python package (host/python) under pytest, against this
//! build's `kiln` binary and plugins: bit-identical fit and transform.
//!
//! The native module is the cdylib `cargo test` builds beside this test
//! binary (target/release/deps/lib_kiln.so). It is laid out as a package in a temporary directory (kiln/__init__.py +
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

/// The native module this build made: kiln-cli names kiln-python as a
/// dev-dependency, so `cargo test` writes its cdylib into the same deps/
/// folder as this test binary.
fn native_module() -> Option<PathBuf> {
    let exe = std::env::current_exe().expect("the test binary's path");
    let lib = exe.with_file_name("lib_kiln.so");
    if lib.exists() {
        Some(lib)
    } else {
        skip_or_fail(&format!(
            "{} is missing: `cargo test --release --workspace` builds it (kiln-cli's dev-dependency on kiln-python)",
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
    for f in std::fs::read_dir(root.join("python/kiln")).unwrap() {
        let f = f.unwrap().path();
        if f.extension().is_some_and(|e| e == "py") {
            std::fs::copy(&f, pkg.join(f.file_name().unwrap())).unwrap();
        }
    }
    std::fs::copy(&lib, pkg.join("_kiln.so")).unwrap();
    let out = Command::new(&py)
        .args(["-m", "pytest", "-q", "-p", "no:cacheprovider", "-rs"])
        .arg(root.join("tests"))
        .env("PYTHONPATH", site.path())
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .env("KILN_BIN", env!("CARGO_BIN_EXE_kiln"))
        .env("KILN_PLUGIN_DIR", env!("KILN_PLUGIN_DIR"))
        .output()
        .expect("python runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    println!("{stdout}");
    assert!(out.status.success(), "pytest failed:\n{stdout}\n{stderr}");
    assert!(stdout.contains(" passed"), "{stdout}");
    // pyspark, Java and ray are needed by some tests; where the oracles are
    // required (CI), none may skip.
    if std::env::var("KILN_REQUIRE_PYTHON").as_deref() == Ok("1") {
        assert!(!stdout.contains("skipped"), "{stdout}");
    }
}
