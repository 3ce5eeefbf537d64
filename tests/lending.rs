//! Large outputs are not copied out of the plugin: the arrays point into
//! the instance's memory, and the instance lives exactly as long as they
//! do (at most 16 per engine; small outputs, plugins that do not promise
//! intact outputs, and calls beyond the cap are copied).

use std::sync::Arc;

use arrow::array::{ArrayRef, AsArray, Float64Array, RecordBatch};
use arrow::datatypes::Float64Type;
use kiln_host::{Engine, Error, Params, Plugin, State, Transformer};

use crate::support::*;

const MEAN: f64 = 50.0;
const STD: f64 = 28.867513459481287;

fn state() -> State {
    State::from_bytes(
        format!(
            r#"[{{"column":"x","mean":{MEAN},"std":{STD}}},{{"column":"y","mean":{MEAN},"std":{STD}}}]"#
        )
        .into_bytes(),
    )
}

/// Two columns, so one output buffer is not the last the plugin's
/// allocator handed out: had the plugin's post-return freed it, dlmalloc
/// would have written its free-list pointers into its first bytes (freeing
/// the last one merges it into the free top of the heap, which writes
/// nothing inside it).
fn params() -> Params {
    Params::from_json(r#"{"columns":["x","y"]}"#).unwrap()
}

fn scaler(engine: &Engine) -> Plugin {
    engine.load(&plugin_path("standard_scaler")).unwrap()
}

fn transformer(p: &Plugin) -> Transformer {
    p.transformer(&params(), Some(&state())).unwrap()
}

/// Columns `x` and `y` of `rows` values in [0, 100), different for every
/// `seed`.
fn input(rows: usize, seed: u64) -> RecordBatch {
    let col = |k: u64| {
        Arc::new(Float64Array::from_iter_values((0..rows as u64).map(|i| {
            ((i * 7919 + seed * 104_729 + k * 31) % 100_000) as f64 / 1000.0
        }))) as ArrayRef
    };
    RecordBatch::try_from_iter([("x", col(0)), ("y", col(1))]).unwrap()
}

/// The scaler's output, computed here: `(x - mean) / std`, bit for bit.
fn assert_scaled(out: &RecordBatch, input: &RecordBatch, what: &str) {
    assert_eq!(out.num_columns(), 2, "{what}");
    for c in 0..2 {
        let got = out.column(c).as_primitive::<Float64Type>();
        let x = input.column(c).as_primitive::<Float64Type>();
        assert_eq!(got.len(), x.len(), "{what}");
        for (i, (g, x)) in got.values().iter().zip(x.values()).enumerate() {
            let want = (x - MEAN) / STD;
            assert!(
                g.to_bits() == want.to_bits(),
                "{what}: column {c}, row {i}: {g} != {want}"
            );
        }
    }
}

#[test]
fn a_large_output_keeps_its_instance_exactly_as_long_as_it_lives() {
    let engine = Engine::new().unwrap();
    let p = scaler(&engine);
    let mut t = transformer(&p);
    let first_in = input(200_000, 1);
    let first = t.apply(&first_in).unwrap();
    assert_eq!(engine.lent_instances(), 1, "a 3.2 MB output stays in place");
    // Twenty more calls take pool slots meanwhile (each lent, then
    // dropped): none may be the one the first output lives in.
    for seed in 2..22 {
        let i = input(200_000, seed);
        let o = t.apply(&i).unwrap();
        assert_eq!(engine.lent_instances(), 2);
        assert_scaled(&o, &i, &format!("call {seed}"));
    }
    assert_eq!(engine.lent_instances(), 1);
    // A slice keeps the instance alive on its own.
    let tail = first.slice(150_000, 50_000);
    assert_scaled(&first, &first_in, "the first output, after 20 more calls");
    drop(first);
    assert_eq!(engine.lent_instances(), 1, "the slice still points into it");
    assert_scaled(&tail, &first_in.slice(150_000, 50_000), "the slice");
    drop(tail);
    assert_eq!(
        engine.lent_instances(),
        0,
        "the last array released the instance"
    );
}

#[test]
fn at_most_sixteen_instances_are_kept_and_later_outputs_are_copied() {
    let engine = Engine::new().unwrap();
    let p = scaler(&engine);
    let mut t = transformer(&p);
    let mut held = Vec::new();
    for seed in 0..20 {
        let i = input(100_000, seed);
        held.push((t.apply(&i).unwrap(), i));
        assert_eq!(engine.lent_instances(), (seed as usize + 1).min(16));
    }
    for (n, (out, i)) in held.iter().enumerate() {
        assert_scaled(out, i, &format!("output {n}"));
    }
    drop(held);
    assert_eq!(engine.lent_instances(), 0);
    // With room again, outputs are lent again.
    let i = input(100_000, 99);
    let out = t.apply(&i).unwrap();
    assert_eq!(engine.lent_instances(), 1);
    assert_scaled(&out, &i, "after the cap");
}

/// Input buffers of `kiln_host::wire::STREAM_THRESHOLD` bytes or more are
/// lowered with streaming stores: every byte still arrives, including an
/// odd tail after the last 64-byte block, and a window of a larger batch.
/// The output (two 64 MiB columns) is more than wasmtime's default 128 MiB
/// of host-call fuel, which the memory cap replaces.
#[test]
fn large_inputs_arrive_whole() {
    let engine = Engine::new().unwrap();
    let mut t = transformer(&scaler(&engine));
    let rows = kiln_host::wire::STREAM_THRESHOLD / 8 + 77; // 64 MiB + 616 bytes a column
    let i = input(rows, 5);
    assert!(i.column(0).to_data().buffers()[0].len() >= kiln_host::wire::STREAM_THRESHOLD);
    let out = t.apply(&i).unwrap();
    assert_scaled(&out, &i, "a 64 MiB column");
    let window = input(rows + 1_000, 6).slice(3, rows);
    let out = t.apply(&window).unwrap();
    assert_scaled(&out, &window, "a window at offset 3");
}

#[test]
fn small_outputs_are_copied() {
    let engine = Engine::new().unwrap();
    let mut t = transformer(&scaler(&engine));
    let i = input(1_000, 3); // 16 KB: a copy costs less than an instance
    let out = t.apply(&i).unwrap();
    assert_eq!(engine.lent_instances(), 0);
    assert_scaled(&out, &i, "small");
}

#[test]
fn a_plugin_without_the_promise_has_its_outputs_copied() {
    // The same scaler with its custom section's byte turned from 1 to 0:
    // it no longer promises that post-return leaves its outputs intact.
    let mut bytes = std::fs::read(plugin_path("standard_scaler")).unwrap();
    let name = b"kiln:outputs-intact";
    let at = bytes
        .windows(name.len())
        .position(|w| w == name)
        .expect("kiln-sdk plugins carry the kiln:outputs-intact section");
    assert_eq!(bytes[at + name.len()], 1);
    bytes[at + name.len()] = 0;
    let engine = Engine::new().unwrap();
    let p = engine
        .load_bytes(&bytes, std::path::Path::new("no-promise.wasm"))
        .unwrap();
    let mut t = transformer(&p);
    let i = input(200_000, 5);
    let out = t.apply(&i).unwrap();
    assert_eq!(engine.lent_instances(), 0);
    assert_scaled(&out, &i, "copied");
}

#[test]
fn an_instance_holding_an_output_refuses_another_call() {
    let engine = Engine::new().unwrap();
    let p = scaler(&engine);
    let big = input(200_000, 7);
    let sig = p
        .signature(&params(), Some(&state()), big.schema_ref())
        .unwrap();
    let mut ready = p.ready(&params(), Some(&state())).unwrap();
    let out = p.apply_ready(&mut ready, &big, &sig).unwrap();
    let err = p.apply_ready(&mut ready, &big, &sig).unwrap_err();
    assert!(matches!(err, Error::Internal(_)), "{err}");
    assert!(err.to_string().contains("prepare another"), "{err}");
    drop(ready);
    assert_eq!(
        engine.lent_instances(),
        1,
        "dropping the Ready keeps the output's instance"
    );
    assert_scaled(&out, &big, "held past its Ready");
    drop(out);
    assert_eq!(engine.lent_instances(), 0);
    // Small calls can still reuse one instance (it then carries state).
    let small = input(10, 8);
    let mut ready = p.ready(&params(), Some(&state())).unwrap();
    for _ in 0..2 {
        let o = p.apply_ready(&mut ready, &small, &sig).unwrap();
        assert_scaled(&o, &small, "small, reused");
    }
}

#[test]
fn every_serving_strategy_serves_large_batches_call_after_call() {
    use kiln_host::{InstanceStrategy, ServingOptions, ServingTransform};
    for strategy in [
        InstanceStrategy::default(),
        InstanceStrategy::Fresh,
        // Reuse drops an instance that holds its output instead of
        // offering it to the next call.
        InstanceStrategy::ReuseUnsafe,
    ] {
        let engine = Engine::new().unwrap();
        let t = ServingTransform::with_options(
            "scaler",
            scaler(&engine),
            params(),
            Some(state()),
            ServingOptions::default().with_strategy(strategy),
        )
        .unwrap();
        let mut held = Vec::new();
        for seed in 0..4 {
            let i = input(200_000, seed);
            let out = t
                .apply(&i)
                .unwrap_or_else(|e| panic!("{strategy:?}, call {seed}: {e}"));
            assert_scaled(&out, &i, &format!("{strategy:?}, call {seed}"));
            held.push(out);
        }
        assert_eq!(engine.lent_instances(), 4, "{strategy:?}");
        drop(held);
        assert_eq!(engine.lent_instances(), 0, "{strategy:?}");
    }
}
