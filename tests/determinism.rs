//! The same plugin on the same input gives byte-identical output: across
//! runs, across processes, across batch sizes for row-wise transforms, and
//! whatever the payload of the NaNs in the input.

use std::sync::Arc;

use arrow::array::{ArrayRef, AsArray, Float64Array, RecordBatch};
use arrow::datatypes::Float64Type;
use kiln_host::job::{self, JobOptions};
use kiln_host::Params;

use crate::support::*;

#[test]
fn twenty_runs_in_two_processes_and_both_memory_checks_give_identical_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let scaler = plugin_path("standard_scaler");
    let state = dir.path().join("s.state");
    kiln_ok(&[
        "fit",
        s(&scaler),
        "--input",
        s(&customers_csv()),
        "--param",
        "columns=income,age",
        "--state-out",
        s(&state),
    ]);
    let mut outputs = Vec::new();
    for i in 0..20 {
        let out = dir.path().join(format!("out{i}.arrow"));
        // Every other run compiles the plugin with explicit bounds checks
        // instead of guard pages: that must not change a bit either.
        let checks = ["guard-pages", "explicit"][i % 2];
        kiln_ok(&[
            "run",
            s(&scaler),
            "--input",
            s(&customers_csv()),
            "--param",
            "columns=income,age",
            "--state",
            s(&state),
            "--output",
            s(&out),
            "--memory-checks",
            checks,
        ]);
        outputs.push(std::fs::read(&out).unwrap());
    }
    assert!(
        outputs.windows(2).all(|w| w[0] == w[1]),
        "all 20 runs wrote the same bytes"
    );
    // Refitting in another process gives the same state bytes.
    let state2 = dir.path().join("s2.state");
    kiln_ok(&[
        "fit",
        s(&scaler),
        "--input",
        s(&customers_csv()),
        "--param",
        "columns=income,age",
        "--state-out",
        s(&state2),
    ]);
    assert_eq!(
        std::fs::read(&state).unwrap(),
        std::fs::read(&state2).unwrap()
    );
}

#[test]
fn row_wise_output_does_not_depend_on_batch_size() {
    let dir = tempfile::tempdir().unwrap();
    let inputs = [customers_csv()];
    let p = load("hash_encode");
    let params = Params::from_json(r#"{"columns":["city","plan"],"buckets":97,"seed":3}"#).unwrap();
    let mut tables = Vec::new();
    for batch_size in [1, 7, 48, 65_536] {
        let out = dir.path().join(format!("h{batch_size}.parquet"));
        job::run_files(
            &p,
            &params,
            None,
            &inputs,
            &out,
            &JobOptions {
                batch_size,
                ..Default::default()
            },
            &mut |_| {},
        )
        .unwrap();
        tables.push(concat(&read(&out)));
    }
    assert!(tables.windows(2).all(|w| w[0] == w[1]));
}

#[test]
fn nan_payloads_do_not_leak_into_output() {
    // Two quiet NaNs with different payloads, and a signalling-pattern NaN.
    let payloads = [
        f64::NAN.to_bits(),
        0x7ff8_0000_dead_beef,
        0xfff8_0000_0000_0001,
        0x7ff0_0000_0000_0001,
    ];
    let p = load("standard_scaler");
    let params = Params::from_json(r#"{"columns":["x"]}"#).unwrap();
    let train = RecordBatch::try_from_iter([(
        "x",
        Arc::new(Float64Array::from(vec![1.0, 2.0, 4.0])) as ArrayRef,
    )])
    .unwrap();
    let mut fitter = p.fitter(&params).unwrap();
    fitter.update(&train).unwrap();
    let state = fitter.finish().unwrap();
    let mut t = p.transformer(&params, Some(&state)).unwrap();
    let mut seen = Vec::new();
    for bits in payloads {
        let x = Float64Array::from(vec![1.0, f64::from_bits(bits)]);
        assert!(x.value(1).is_nan());
        let b = RecordBatch::try_from_iter([("x", Arc::new(x) as ArrayRef)]).unwrap();
        let out = t.apply(&b).unwrap();
        let y = out.column(0).as_primitive::<Float64Type>();
        seen.push((y.value(0).to_bits(), y.value(1).to_bits()));
    }
    assert!(f64::from_bits(seen[0].1).is_nan());
    assert!(
        seen.windows(2).all(|w| w[0] == w[1]),
        "one canonical NaN whatever the input payload: {seen:x?}"
    );
}
