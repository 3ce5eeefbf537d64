//! The serving API: a `ServingTransform` gives, from many threads and with
//! every instance strategy that keeps history independence, the bytes that
//! `Transformer::apply` gives; reload swaps atomically; a trap costs only
//! its own call; metrics count what happened.

use std::sync::Arc;

use arrow::array::{ArrayRef, AsArray, RecordBatch, StringArray};
use arrow::datatypes::UInt64Type;
use kiln_host::{
    Error, InstanceStrategy, Params, ServingOptions, ServingTransform, State, LATENCY_BUCKETS,
};

use crate::support::*;

const SAFE: [InstanceStrategy; 3] = [
    InstanceStrategy::Pool { depth: 4 },
    InstanceStrategy::Pool { depth: 1 },
    InstanceStrategy::Fresh,
];

fn serve(
    plugin: &str,
    params: &Params,
    state: Option<State>,
    strategy: InstanceStrategy,
) -> ServingTransform {
    ServingTransform::with_options(
        plugin,
        load(plugin),
        params.clone(),
        state,
        ServingOptions::default().with_strategy(strategy),
    )
    .unwrap()
}

fn customers(batch_size: usize) -> Vec<RecordBatch> {
    let opts = kiln_host::io::ReadOptions { batch_size };
    kiln_host::io::read_all(&customers_csv(), &opts).unwrap().1
}

fn scaler_state(params: &Params) -> State {
    let mut f = load("standard_scaler").fitter(params).unwrap();
    for b in customers(1000) {
        f.update(&b).unwrap();
    }
    f.finish().unwrap()
}

#[test]
fn serving_transform_is_send_sync_clone() {
    fn check<T: Send + Sync + Clone + 'static>() {}
    check::<ServingTransform>();
}

#[test]
fn outputs_equal_transformer_apply_from_four_threads() {
    let hash = Params::from_json(r#"{"columns":["city","plan"],"buckets":97,"seed":3}"#).unwrap();
    let scale = Params::from_json(r#"{"columns":["income","age"]}"#).unwrap();
    let state = scaler_state(&scale);
    let batches = customers(7);
    for (plugin, params, state) in [
        ("hash_encode", &hash, None),
        ("standard_scaler", &scale, Some(state)),
    ] {
        // The oracle: the library's one-shot path, batch by batch.
        let mut oracle = load(plugin).transformer(params, state.as_ref()).unwrap();
        let expected: Vec<RecordBatch> = batches.iter().map(|b| oracle.apply(b).unwrap()).collect();
        for strategy in SAFE {
            let t = serve(plugin, params, state.clone(), strategy);
            std::thread::scope(|s| {
                for _ in 0..4 {
                    let t = t.clone();
                    let (batches, expected) = (&batches, &expected);
                    s.spawn(move || {
                        for (b, e) in batches.iter().zip(expected) {
                            assert_eq!(&t.apply(b).unwrap(), e, "{plugin} {strategy:?}");
                        }
                    });
                }
            });
            let m = t.metrics();
            let rows: u64 = batches.iter().map(|b| b.num_rows() as u64).sum();
            assert_eq!(m.calls, 4 * batches.len() as u64);
            assert_eq!((m.errors, m.rows_in, m.rows_out), (0, 4 * rows, 4 * rows));
            assert_eq!(m.latency.count(), m.calls);
            assert_eq!(m.latency.counts.len(), LATENCY_BUCKETS.len() + 1);
        }
    }
}

fn counter_values(t: &ServingTransform, calls: usize) -> Vec<u64> {
    let b = RecordBatch::try_from_iter([(
        "x",
        Arc::new(StringArray::from(vec!["a", "b"])) as ArrayRef,
    )])
    .unwrap();
    (0..calls)
        .flat_map(|_| {
            let out = t.apply(&b).unwrap();
            out.column(0).as_primitive::<UInt64Type>().values().to_vec()
        })
        .collect()
}

#[test]
fn no_output_depends_on_call_history_through_the_serving_api() {
    for strategy in SAFE {
        let t = serve("counter", &Params::empty(), None, strategy);
        let seen: Vec<Vec<u64>> = std::thread::scope(|s| {
            let hs: Vec<_> = (0..3).map(|_| s.spawn(|| counter_values(&t, 20))).collect();
            hs.into_iter().map(|h| h.join().unwrap()).collect()
        });
        for v in seen {
            assert!(v.iter().all(|&n| n == 1), "{strategy:?}: {v:?}");
        }
    }
}

#[test]
fn reusing_instances_would_leak_history_which_is_why_it_is_not_offered() {
    // The control for the test above: the counter plugin does detect reuse.
    let t = serve(
        "counter",
        &Params::empty(),
        None,
        InstanceStrategy::ReuseUnsafe,
    );
    assert_eq!(counter_values(&t, 3), vec![1, 1, 2, 2, 3, 3]);
}

#[test]
fn a_trap_fails_only_its_call_and_the_pool_keeps_serving() {
    let bad = serve(
        "panicky",
        &Params::empty(),
        None,
        InstanceStrategy::Pool { depth: 2 },
    );
    let b = RecordBatch::try_from_iter([(
        "x",
        Arc::new(StringArray::from(vec!["a", "b", "c"])) as ArrayRef,
    )])
    .unwrap();
    for _ in 0..5 {
        match bad.apply(&b) {
            Err(Error::Trap { stderr, .. }) => {
                assert!(
                    stderr.contains("kiln test panic: boom at 3 rows"),
                    "{stderr}"
                )
            }
            other => panic!("expected the plugin's trap every time, got {other:?}"),
        }
    }
    let m = bad.metrics();
    assert_eq!((m.calls, m.errors, m.rows_in, m.rows_out), (5, 5, 15, 0));
    // Another transform on the same engine is unaffected.
    let hash = Params::from_json(r#"{"columns":["x"],"buckets":8}"#).unwrap();
    let good = serve("hash_encode", &hash, None, InstanceStrategy::default());
    let mut oracle = load("hash_encode").transformer(&hash, None).unwrap();
    assert_eq!(good.apply(&b).unwrap(), oracle.apply(&b).unwrap());
}

#[test]
fn bad_params_fail_at_load_not_at_the_first_request() {
    let e = ServingTransform::new(
        "h",
        load("hash_encode"),
        Params::from_json(r#"{"columns":["x"],"buckets":0}"#).unwrap(),
        None,
    )
    .unwrap_err();
    assert!(matches!(e, Error::InvalidParams { .. }), "{e}");
    let e = ServingTransform::new(
        "s",
        load("standard_scaler"),
        Params::from_json(r#"{"columns":["x"]}"#).unwrap(),
        Some(State::from_bytes(b"not a state".to_vec())),
    )
    .unwrap_err();
    assert!(matches!(e, Error::InvalidState { .. }), "{e}");
}

#[test]
fn reload_swaps_atomically_while_calls_run() {
    let p16 = Params::from_json(r#"{"columns":["city"],"buckets":16}"#).unwrap();
    let p1024 = Params::from_json(r#"{"columns":["city"],"buckets":1024}"#).unwrap();
    let plugin = load("hash_encode");
    let b = &customers(50)[0];
    let out16 = plugin.transformer(&p16, None).unwrap().apply(b).unwrap();
    let out1024 = plugin.transformer(&p1024, None).unwrap().apply(b).unwrap();
    assert_ne!(out16, out1024);

    let t = ServingTransform::new("city", plugin.clone(), p16.clone(), None).unwrap();
    let v16 = t.version();
    let stop = std::sync::atomic::AtomicBool::new(false);
    let started = std::sync::atomic::AtomicUsize::new(0);
    std::thread::scope(|s| {
        let workers: Vec<_> = (0..2)
            .map(|_| {
                s.spawn(|| {
                    let mut n = 0;
                    while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                        let out = t.apply(b).unwrap();
                        assert!(out == out16 || out == out1024, "a mix of two targets");
                        if n == 0 {
                            started.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        }
                        n += 1;
                    }
                    n
                })
            })
            .collect();
        // Reload only once both workers are calling (a busy machine may
        // schedule them late).
        while started.load(std::sync::atomic::Ordering::Relaxed) < 2 {
            std::thread::yield_now();
        }
        for i in 0..10 {
            let p = if i % 2 == 0 { &p1024 } else { &p16 };
            t.reload(plugin.clone(), p.clone(), None).unwrap();
            assert_eq!(&t.params(), p);
            // A call starting after reload returned sees the new target.
            assert_eq!(
                t.apply(b).unwrap(),
                if i % 2 == 0 { &out1024 } else { &out16 }.clone()
            );
        }
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        for w in workers {
            assert!(w.join().unwrap() > 0);
        }
    });
    assert_eq!(t.metrics().reloads, 10);
    assert_eq!(t.version(), v16, "back on the first target");
    // A reload the plugin rejects leaves the current target serving.
    let bad = Params::from_json(r#"{"columns":["city"],"buckets":0}"#).unwrap();
    assert!(t.reload(plugin, bad, None).is_err());
    assert_eq!(t.params(), p16);
    assert_eq!(t.apply(b).unwrap(), out16);
}

#[test]
fn version_pins_plugin_params_and_state() {
    let scale = Params::from_json(r#"{"columns":["income"]}"#).unwrap();
    let state = scaler_state(&scale);
    let a = ServingTransform::new(
        "a",
        load("standard_scaler"),
        scale.clone(),
        Some(state.clone()),
    )
    .unwrap();
    let b = ServingTransform::new(
        "b",
        load("standard_scaler"),
        scale.clone(),
        Some(state.clone()),
    )
    .unwrap();
    assert_eq!(
        a.version(),
        b.version(),
        "the name is not part of the version"
    );
    assert_eq!(a.state_id(), Some(state.id()));
    let other = Params::from_json(r#"{"columns":["age"]}"#).unwrap();
    let c = ServingTransform::new(
        "c",
        load("standard_scaler"),
        other.clone(),
        Some(scaler_state(&other)),
    )
    .unwrap();
    assert_ne!(a.version(), c.version());
    // The registry's version id: sha256 over
    // "kiln-version-v1\nplugin id\nparams\nstate id", computed here independently.
    use sha2::{Digest, Sha256};
    let text = format!(
        "kiln-version-v1\n{}\n{}\n{}",
        load("standard_scaler").id(),
        scale.as_str(),
        state.id()
    );
    assert_eq!(a.version(), hex::encode(Sha256::digest(text.as_bytes())));
}

#[test]
fn a_parity_log_holds_the_sampled_calls_on_disk_and_stops_at_a_reload() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("log");
    let hash = Params::from_json(r#"{"columns":["city"],"buckets":16}"#).unwrap();
    let t = serve(
        "hash_encode",
        &hash,
        None,
        InstanceStrategy::Pool { depth: 2 },
    );
    t.start_parity_log(&log, Some("city@prod".into()), 3)
        .unwrap();
    let batches = customers(5);
    let mut direct = load("hash_encode").transformer(&hash, None).unwrap();
    for b in &batches[..7] {
        t.apply(b).unwrap();
    }
    // Read while the log is still open: calls 1, 4 and 7 are already on disk.
    let read = kiln_host::parity::ParityLog::read(&log).unwrap();
    assert_eq!(read.meta.id, t.version());
    assert_eq!(read.meta.target.as_deref(), Some("city@prod"));
    assert_eq!(read.meta.sample_every, 3);
    assert_eq!(read.inputs.len(), 3);
    for (k, call) in [0, 3, 6].into_iter().enumerate() {
        assert_eq!(read.inputs[k], batches[call], "logged input {k}");
        assert_eq!(
            read.outputs[k],
            direct.apply(&batches[call]).unwrap(),
            "logged output {k}"
        );
    }
    // A reload changes the version: the log (of the old one) closes itself.
    let other = Params::from_json(r#"{"columns":["city"],"buckets":17}"#).unwrap();
    t.reload(load("hash_encode"), other, None).unwrap();
    for b in &batches[7..] {
        t.apply(b).unwrap();
    }
    assert_eq!(t.stop_parity_log().unwrap(), None, "already closed");
    assert_eq!(
        kiln_host::parity::ParityLog::read(&log)
            .unwrap()
            .inputs
            .len(),
        3
    );
    // A log directory is never overwritten.
    let e = t.start_parity_log(&log, None, 1).unwrap_err().to_string();
    assert!(e.contains("already holds a parity log"), "{e}");
}
