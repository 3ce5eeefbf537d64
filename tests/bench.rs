//! `kiln bench`: the quick run prints one well-formed JSON report with every
//! section, the outputs checked equal to native arrow-rs, and a missing peer
//! or Python side reported as skipped (no timing assertions).

use serde_json::Value;

use crate::support::kiln_ok;

#[test]
fn quick_bench_prints_a_json_report_with_every_section() {
    let out = kiln_ok(&[
        "bench",
        "--quick",
        "--json",
        "--rows",
        "3000",
        "--calls",
        "20",
        "--no-python",
        "--peer",
        "/nonexistent/kiln-peer-bench",
    ]);
    let v: Value = serde_json::from_str(&out).expect("stdout is one JSON document");
    for key in [
        "machine",
        "loads",
        "latency",
        "throughput",
        "end_to_end",
        "python",
        "peer",
        "targets",
    ] {
        assert!(v.get(key).is_some(), "no '{key}' in {v:#}");
    }

    let loads = v["loads"].as_array().expect("loads is a list");
    let names: Vec<&str> = loads.iter().filter_map(|l| l["plugin"].as_str()).collect();
    assert_eq!(
        names,
        ["standard-scaler", "one-hot", "hash-encode", "bucketize"]
    );
    for l in loads {
        assert!(l["first_load_ms"].as_f64().is_some_and(|t| t > 0.0), "{l}");
        assert!(l["cached_load_ms"].as_f64().is_some(), "{l}");
        assert!(
            l["disk_cached_load_ms"].as_f64().is_some_and(|t| t > 0.0),
            "{l}"
        );
    }

    // 2 plugins x (1, 64 rows) x (1, 2 threads) x pool (paced, back-to-back),
    // plus one caller-side fresh reference per plugin.
    let latency = v["latency"].as_array().expect("latency is a list");
    assert_eq!(latency.len(), 18, "{latency:#?}");
    let cells = |inst: &str, arrival: &str| {
        latency
            .iter()
            .filter(|l| l["instances"] == inst && l["arrival"] == arrival)
            .count()
    };
    assert_eq!(
        (
            cells("pool", "paced"),
            cells("pool", "back-to-back"),
            cells("fresh", "back-to-back")
        ),
        (8, 8, 2)
    );
    for l in latency {
        let (p50, p99) = (l["p50_us"].as_f64(), l["p99_us"].as_f64());
        assert!(p50.is_some() && p99.is_some(), "{l}");
        assert!(p50 <= p99, "{l}");
        let calls = l["calls"].as_u64().expect("calls");
        assert_eq!(calls, 20 * l["threads"].as_u64().expect("threads"), "{l}");
    }

    let tp = v["throughput"].as_array().expect("throughput is a list");
    let kernels: Vec<&str> = tp.iter().filter_map(|r| r["kernel"].as_str()).collect();
    assert_eq!(kernels, ["standard-scaler", "hash-encode", "bucketize"]);
    for r in tp {
        assert_eq!(r["rows"], 3000, "{r}");
        assert_eq!(r["verified"], true, "{r}");
        for key in ["native_ms", "kiln_ms", "kiln_vs_native"] {
            assert!(r[key].as_f64().is_some(), "{key} in {r}");
        }
        assert!(r["python_ms"].is_null() && r["peer_ms"].is_null(), "{r}");
    }

    assert_eq!(v["python"]["status"], "skipped");
    assert_eq!(v["peer"]["status"], "skipped");
    let how = v["peer"]["detail"].as_str().expect("peer detail");
    assert!(
        how.contains("cargo build --release"),
        "says how to build: {how}"
    );

    // `kiln run` of this very binary, timed as a whole process.
    let e2e = v["end_to_end"].as_array().expect("end_to_end is a list");
    assert_eq!(e2e.len(), 1, "{e2e:#?}");
    assert!(
        e2e[0]["kiln_ms"].as_f64().is_some_and(|ms| ms > 0.0),
        "{e2e:#?}"
    );
    assert!(
        e2e[0]["python_ms"].is_null(),
        "python was disabled: {e2e:#?}"
    );

    let targets = v["targets"].as_array().expect("targets is a list");
    assert!(targets.len() >= 10, "{targets:#?}");
    let mut keys = std::collections::BTreeSet::new();
    for t in targets {
        let key = t["key"].as_str().expect("every target has a stable key");
        assert!(keys.insert(key.to_owned()), "key {key} twice");
        // Python and the peer did not run: those ratios are unmeasured.
        if key.ends_with(".python_vs_kiln") || key.ends_with(".peer_vs_kiln") {
            assert!(
                t["met"].is_null(),
                "not measured, so neither met nor missed: {t}"
            );
        } else {
            assert!(t["met"].is_boolean(), "{t}");
        }
    }
    for key in [
        "throughput.standard-scaler.3k.kiln_vs_native",
        "throughput.bucketize.3k.kiln_vs_native",
        "throughput.hash-encode.3k.python_vs_kiln",
        "latency.standard-scaler.1-row.paced.p50_us",
        "end_to_end.standard-scaler.3k.python_vs_kiln",
    ] {
        assert!(keys.contains(key), "no target {key} in {keys:?}");
    }
}
