//! Soak: two threads making many calls, mixing good and trapping plugins, in
//! one process. Every good call must succeed and resident memory must stay
//! flat. Ignored by default (minutes long); run it with
//!
//!     cargo test --release -p kiln-cli --test tests soak -- --ignored --nocapture
//!
//! `KILN_SOAK_CALLS` sets the calls per thread (default 100,000). Its last
//! figures are recorded in docs/reliability.md.

use std::sync::Arc;
use std::time::Instant;

use arrow::array::{ArrayRef, RecordBatch, StringArray};
use kiln_host::{Engine, EngineConfig, Error, Params};

use crate::support::*;

fn rss_bytes() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|k| k.parse::<u64>().ok())
        .unwrap_or(0)
        * 1024
}

#[test]
#[ignore = "soak test, minutes long: see the module docs for the command"]
fn two_threads_of_mixed_good_and_trapping_calls_keep_memory_flat() {
    let calls: usize = std::env::var("KILN_SOAK_CALLS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    let engine = Engine::with_config(EngineConfig::default().with_memory_limit(64 << 20)).unwrap();
    let hash = engine.load(&plugin_path("hash_encode")).unwrap();
    let panicky = engine.load(&plugin_path("panicky")).unwrap();
    let batch = RecordBatch::try_from_iter([(
        "city",
        Arc::new(StringArray::from(vec!["Paris", "Lyon", "Berlin", "Madrid"])) as ArrayRef,
    )])
    .unwrap();
    let params = Params::from_json(r#"{"columns":["city"],"buckets":64}"#).unwrap();
    let expected = hash
        .transformer(&params, None)
        .unwrap()
        .apply(&batch)
        .unwrap();

    let start = Instant::now();
    let mut rss_warm = 0;
    let results: Vec<(usize, usize)> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..2)
            .map(|thread| {
                let (hash, panicky, batch, params, expected) = (
                    hash.clone(),
                    panicky.clone(),
                    batch.clone(),
                    params.clone(),
                    expected.clone(),
                );
                scope.spawn(move || {
                    let mut good = hash.transformer(&params, None).unwrap();
                    let mut bad = panicky.transformer(&Params::empty(), None).unwrap();
                    let (mut ok, mut traps) = (0, 0);
                    for i in 0..calls {
                        if i % 10 == thread {
                            match bad.apply(&batch) {
                                Err(Error::Trap { .. }) => traps += 1,
                                other => panic!("panicky should trap, got {other:?}"),
                            }
                        } else {
                            assert_eq!(good.apply(&batch).unwrap(), expected);
                            ok += 1;
                        }
                    }
                    (ok, traps)
                })
            })
            .collect();
        // Resident memory once both threads are warm.
        std::thread::sleep(std::time::Duration::from_secs(3));
        rss_warm = rss_bytes();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let rss_end = rss_bytes();
    let elapsed = start.elapsed();
    let (ok, traps): (usize, usize) = results.iter().fold((0, 0), |a, r| (a.0 + r.0, a.1 + r.1));
    eprintln!(
        "soak: 2 threads x {calls} calls in {elapsed:.1?}: {ok} good calls all correct, {traps} traps; RSS warm {} MiB, end {} MiB",
        rss_warm >> 20,
        rss_end >> 20
    );
    assert_eq!(ok + traps, 2 * calls);
    assert!(
        rss_end < rss_warm + (32 << 20),
        "resident memory grew from {rss_warm} to {rss_end} bytes"
    );
}
