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

/// Instances of large calls are dropped by the engine's reaper thread, not
/// by the caller: they must still all go back to the pool. 600 calls in a
/// row is more than the pool's 256 instance slots, so an instance that was
/// never dropped would make a later call fail as busy.
#[test]
fn instances_dropped_off_thread_all_return_to_the_pool() {
    use arrow::array::{ArrayRef, AsArray, Float64Array, RecordBatch};
    use arrow::datatypes::UInt32Type;
    use kiln_host::Params;
    use std::sync::Arc;

    let engine = Engine::new().unwrap();
    let plugin = engine.load(&plugin_path("bucketize")).unwrap();
    let params = Params::from_json(r#"{"columns": ["x"], "boundaries": [0, 10, 100]}"#).unwrap();
    let mut t = plugin.transformer(&params, None).unwrap();
    // 1 MB of doubles: well above the size from which the reaper drops.
    let x: Float64Array = (0..131_072).map(|i| f64::from(i % 200) - 50.0).collect();
    let batch = RecordBatch::try_from_iter([("x", Arc::new(x) as ArrayRef)]).unwrap();
    for call in 0..600 {
        let out = t
            .apply(&batch)
            .unwrap_or_else(|e| panic!("call {call}: {e}"));
        let col = out.column_by_name("x").unwrap();
        let b = col.as_primitive::<UInt32Type>();
        assert_eq!(b.len(), 131_072);
        // By hand: -50 -> 0 (below 0), 5 -> 1, 50 -> 2, 149 -> 3.
        assert_eq!(
            [b.value(0), b.value(55), b.value(100), b.value(199)],
            [0, 1, 2, 3]
        );
    }
}

/// An output buffer above `HUGE_PAGE_THRESHOLD` (kiln-wire) is lifted into
/// memory advised into huge pages; it must arrive byte for byte, in every
/// page (the last ones included), as the same arithmetic done here.
#[test]
fn outputs_above_the_huge_page_threshold_arrive_bit_for_bit() {
    use arrow::array::{Array, ArrayRef, AsArray, Float64Array, RecordBatch};
    use arrow::datatypes::Float64Type;
    use kiln_host::{Params, State};
    use std::sync::Arc;

    let rows = 700_000; // 5.6 MB of doubles out
    assert!(rows * 8 > kiln_host::wire::HUGE_PAGE_THRESHOLD);
    let engine = Engine::new().unwrap();
    let plugin = engine.load(&plugin_path("standard_scaler")).unwrap();
    let params = Params::from_json(r#"{"columns": ["x"]}"#).unwrap();
    let (mean, std) = (12.5, 3.75);
    let state = State::from_bytes(
        format!(r#"[{{"column": "x", "mean": {mean}, "std": {std}}}]"#).into_bytes(),
    );
    let mut t = plugin.transformer(&params, Some(&state)).unwrap();
    let x: Float64Array = (0..rows)
        .map(|i| (i as f64 * 0.37).sin() * 1e3 + (i % 97) as f64)
        .collect();
    let want: Vec<u64> = x
        .values()
        .iter()
        .map(|v| ((v - mean) / std).to_bits())
        .collect();
    let batch = RecordBatch::try_from_iter([("x", Arc::new(x) as ArrayRef)]).unwrap();
    for call in 0..3 {
        let out = t.apply(&batch).unwrap();
        let y = out.column(0).as_primitive::<Float64Type>();
        assert_eq!(y.len(), rows);
        assert_eq!(y.null_count(), 0);
        if let Some(row) = (0..rows).find(|&i| y.value(i).to_bits() != want[i]) {
            panic!(
                "call {call}, row {row}: {} != {}",
                y.value(row),
                f64::from_bits(want[row])
            );
        }
    }
}
