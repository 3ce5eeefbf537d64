//! The engine compiles a plugin once: the cache is keyed by the plugin id
//! (sha256 of the bytes), so the same bytes under another name are not
//! compiled again and a changed byte is a different plugin.

use std::time::Instant;

use kiln_host::{plugin_id, Engine};

use crate::support::*;

#[test]
fn second_load_of_the_same_bytes_skips_compilation() {
    let engine = Engine::new().unwrap();
    let path = plugin_path("standard_scaler");
    let t0 = Instant::now();
    let a = engine.load(&path).unwrap();
    let first = t0.elapsed();
    assert_eq!(engine.cached_components(), 1);

    // Same bytes, another file name: same id, served from the cache.
    let dir = tempfile::tempdir().unwrap();
    let copy = dir.path().join("renamed.wasm");
    std::fs::copy(&path, &copy).unwrap();
    let t1 = Instant::now();
    let b = engine.load(&copy).unwrap();
    let second = t1.elapsed();
    assert_eq!(a.id(), b.id());
    assert_eq!(engine.cached_components(), 1, "no second compilation");
    eprintln!("first load {first:?}, cached load {second:?}");

    // The id is the sha256 of the bytes.
    let bytes = std::fs::read(&path).unwrap();
    assert_eq!(a.id(), plugin_id(&bytes));
    assert_eq!(a.id().len(), 64);
}
