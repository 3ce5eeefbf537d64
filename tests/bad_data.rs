//! Bad input data gives a typed error naming the file, column or row (or
//! correct output), and a failed run never leaves a half-written output or
//! clobbers an existing one.

use std::sync::Arc;

use arrow::array::{ArrayRef, Float64Array, RecordBatch};
use kiln_host::{Error, Params};

use crate::support::*;

#[test]
fn an_unparsable_number_after_the_inference_window_names_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("late.csv");
    let mut text = String::from("age\n");
    for i in 0..1500 {
        text.push_str(&format!("{}\n", 20 + i % 50));
    }
    text.push_str("forty\n");
    std::fs::write(&csv, text).unwrap();
    let e = kiln_err(&[
        "fit",
        s(&plugin_path("standard_scaler")),
        "--input",
        s(&csv),
        "--param",
        "columns=age",
        "--state-out",
        s(&dir.path().join("s")),
    ]);
    assert!(
        e.contains("late.csv") && e.contains("forty") && e.contains("line"),
        "{e}"
    );
}

#[test]
fn a_header_only_file_has_zero_rows_to_fit_and_transforms_to_zero_rows() {
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("empty_rows.csv");
    std::fs::write(&csv, "city,age\n").unwrap();
    let e = kiln_err(&[
        "fit",
        s(&plugin_path("one_hot")),
        "--input",
        s(&csv),
        "--param",
        "columns=city",
        "--state-out",
        s(&dir.path().join("s")),
    ]);
    assert!(
        e.contains("no rows to fit on") && e.contains("empty_rows.csv"),
        "{e}"
    );
    let out = dir.path().join("out.parquet");
    kiln_ok(&[
        "run",
        s(&plugin_path("hash_encode")),
        "--input",
        s(&csv),
        "--param",
        "columns=city",
        "--param",
        "buckets=8",
        "--output",
        s(&out),
    ]);
    let batches = read(&out);
    assert_eq!(batches.iter().map(|b| b.num_rows()).sum::<usize>(), 0);
}

#[test]
fn an_all_null_column_is_an_error_naming_it() {
    let p = load("standard_scaler");
    let params = Params::from_json(r#"{"columns":["x"]}"#).unwrap();
    let b = RecordBatch::try_from_iter([(
        "x",
        Arc::new(Float64Array::from(vec![None, None])) as ArrayRef,
    )])
    .unwrap();
    let mut f = p.fitter(&params).unwrap();
    f.update(&b).unwrap();
    let err = f.finish().unwrap_err();
    match &err {
        Error::InvalidInput { column, .. } => assert_eq!(column.as_deref(), Some("x")),
        other => panic!("expected invalid input, got {other}"),
    }
}

#[test]
fn a_failed_run_never_clobbers_or_half_writes_the_output() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("features.parquet");
    std::fs::write(&out, b"precious").unwrap();
    // Fails after reading: the plugin panics on its first batch.
    let e = kiln_err(&[
        "run",
        s(&plugin_path("panicky")),
        "--input",
        s(&customers_csv()),
        "--output",
        s(&out),
    ]);
    assert!(e.contains("panicky"), "{e}");
    // Fails mid-stream: row 3 of the second batch has an unknown category.
    let state = dir.path().join("s.state");
    let train = dir.path().join("train.csv");
    std::fs::write(&train, "plan\nbasic\nplus\npro\n").unwrap();
    kiln_ok(&[
        "fit",
        s(&plugin_path("one_hot")),
        "--input",
        s(&train),
        "--param",
        "columns=plan",
        "--state-out",
        s(&state),
    ]);
    let live = dir.path().join("live.csv");
    std::fs::write(&live, "plan\nbasic\nplus\npro\nbasic\nenterprise\n").unwrap();
    let e = kiln_err(&[
        "run",
        s(&plugin_path("one_hot")),
        "--input",
        s(&live),
        "--params",
        r#"{"columns":["plan"],"handle_unknown":"error"}"#,
        "--state",
        s(&state),
        "--output",
        s(&out),
        "--batch-size",
        "2",
    ]);
    assert!(
        e.contains("'plan'") && e.contains("row 4") && e.contains("enterprise"),
        "rows count across batches: {e}"
    );
    assert_eq!(std::fs::read(&out).unwrap(), b"precious");
    // Fails while loading, with the reader thread already decoding (and
    // blocked on its full channel: 300,000 rows are many batches): the
    // plugin needs a state that is not given, or is not a plugin at all.
    let big = dir.path().join("big.csv");
    std::fs::write(&big, format!("plan\n{}", "basic\n".repeat(300_000))).unwrap();
    let e = kiln_err(&[
        "run",
        s(&plugin_path("one_hot")),
        "--input",
        s(&big),
        "--param",
        "columns=plan",
        "--output",
        s(&out),
        "--batch-size",
        "1000",
    ]);
    assert!(e.contains("need a fitted state"), "{e}");
    let not_a_plugin = dir.path().join("not_a_plugin.wasm");
    std::fs::write(&not_a_plugin, b"\0asm garbage").unwrap();
    let e = kiln_err(&[
        "run",
        s(&not_a_plugin),
        "--input",
        s(&big),
        "--output",
        s(&out),
    ]);
    assert!(e.contains("not_a_plugin.wasm"), "{e}");
    assert_eq!(std::fs::read(&out).unwrap(), b"precious");
    let names: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        names.iter().all(|n| !n.ends_with(".tmp")),
        "no temporary file left: {names:?}"
    );
}
