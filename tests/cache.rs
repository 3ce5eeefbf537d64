//! The compiled-plugin cache on disk: a second process loads what the first
//! compiled; a truncated, corrupt or foreign cache file is recompiled and
//! rewritten, never trusted and never a crash; cached code computes the same
//! bytes as freshly compiled code.

use std::path::{Path, PathBuf};

use kiln_host::{Engine, EngineConfig, Params};

use crate::support::*;

fn cwasm_files(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|r| r.filter_map(|e| e.ok()).map(|e| e.path()).collect())
        .unwrap_or_default();
    v.retain(|p| p.extension().is_some_and(|e| e == "cwasm"));
    v.sort();
    v
}

/// `kiln -v --cache-dir DIR run hash_encode ...`: (stderr, output bytes).
fn run_cached(cache: &Path, out: &Path, extra: &[&str]) -> (String, Vec<u8>) {
    let plugin = plugin_path("hash_encode");
    let input = customers_csv();
    let mut args = vec!["-v"];
    args.extend_from_slice(extra);
    args.extend_from_slice(&[
        "run",
        s(&plugin),
        "--input",
        s(&input),
        "--param",
        "columns=city,plan",
        "--param",
        "buckets=64",
        "--output",
        s(out),
    ]);
    if !extra.contains(&"--no-cache") {
        args.splice(1..1, ["--cache-dir", s(cache)]);
    }
    let o = kiln(&args);
    let stderr = String::from_utf8_lossy(&o.stderr).into_owned();
    assert!(o.status.success(), "kiln {args:?}: {stderr}");
    (stderr, std::fs::read(out).unwrap())
}

#[test]
fn a_second_process_loads_from_disk_and_a_broken_file_is_recompiled() {
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    let out = dir.path().join("out.arrow");

    // The oracle: a run that neither reads nor writes a cache.
    let (_, expected) = run_cached(&cache, &out, &["--no-cache"]);
    assert!(!cache.exists(), "--no-cache writes nothing");

    let (e1, o1) = run_cached(&cache, &out, &[]);
    assert!(e1.contains("wrote compiled plugin"), "{e1}");
    let files = cwasm_files(&cache);
    assert_eq!(files.len(), 1, "{files:?}");
    let (e2, o2) = run_cached(&cache, &out, &[]);
    assert!(e2.contains("loaded compiled plugin"), "{e2}");
    assert!(!e2.contains("wrote compiled plugin"), "{e2}");
    assert_eq!(o1, expected);
    assert_eq!(o2, expected, "cached code computes the same bytes");

    // Truncated: ignored, recompiled, rewritten; then loaded again.
    let good = std::fs::read(&files[0]).unwrap();
    let breakages: Vec<(&str, Vec<u8>)> = vec![
        ("truncated", good[..good.len() / 2].to_vec()),
        ("empty", Vec::new()),
        ("flipped byte", {
            let mut b = good.clone();
            let i = b.len() - 100;
            b[i] ^= 0x40;
            b
        }),
        ("foreign", b"\x7fELF not ours".repeat(1000)),
    ];
    for (what, bytes) in breakages {
        std::fs::write(&files[0], &bytes).unwrap();
        let (e3, o3) = run_cached(&cache, &out, &[]);
        assert!(e3.contains("ignoring cache file"), "{what}: {e3}");
        assert!(e3.contains("wrote compiled plugin"), "{what}: {e3}");
        assert_eq!(o3, expected, "{what}");
        assert_eq!(
            std::fs::read(&files[0]).unwrap().len(),
            good.len(),
            "{what}: rewritten"
        );
        let (e4, _) = run_cached(&cache, &out, &[]);
        assert!(e4.contains("loaded compiled plugin"), "{what}: {e4}");
    }
    assert_eq!(cwasm_files(&cache), files, "no temporary files left behind");
}

#[test]
fn a_second_engine_in_process_reads_the_disk_cache() {
    let dir = tempfile::tempdir().unwrap();
    let config = EngineConfig::default().with_cache_dir(Some(dir.path().to_path_buf()));
    let params = Params::from_json(r#"{"columns":["city"],"buckets":16}"#).unwrap();
    let batch = &read(&customers_csv())[0];

    let first = Engine::with_config(config.clone()).unwrap();
    let p1 = first.load(&plugin_path("hash_encode")).unwrap();
    let file = first.cache_file(p1.id()).unwrap();
    assert!(file.exists(), "{}", file.display());
    assert_eq!(first.cache_dir(), Some(dir.path()));
    let expected = p1.transformer(&params, None).unwrap().apply(batch).unwrap();

    let second = Engine::with_config(config).unwrap();
    let p2 = second.load(&plugin_path("hash_encode")).unwrap();
    assert_eq!(p2.info(), p1.info());
    assert_eq!(
        p2.transformer(&params, None).unwrap().apply(batch).unwrap(),
        expected
    );

    // Without a cache dir nothing is written anywhere.
    let plain = Engine::new().unwrap();
    assert_eq!(plain.cache_dir(), None);
    assert_eq!(plain.cache_file(p1.id()), None);
}
