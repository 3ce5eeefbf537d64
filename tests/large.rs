//! A file far larger than one batch streams through `kiln run` with bounded
//! memory: 10 million rows, peak RSS well below the decompressed size.

use std::sync::Arc;

use arrow::array::{ArrayRef, Float64Array, RecordBatch};
use parquet::arrow::ArrowWriter;

use crate::support::*;

const ROWS: usize = 10_000_000;
const CHUNK: usize = 500_000;

#[test]
fn ten_million_rows_stream_with_bounded_memory() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("big.parquet");
    let file = std::fs::File::create(&input).unwrap();
    let mut writer: Option<ArrowWriter<std::fs::File>> = None;
    for c in 0..ROWS / CHUNK {
        let base = (c * CHUNK) as f64;
        let col = |k: f64| {
            Arc::new(Float64Array::from_iter_values(
                (0..CHUNK).map(|i| (base + i as f64) * k),
            )) as ArrayRef
        };
        let batch =
            RecordBatch::try_from_iter([("a", col(1.0)), ("b", col(0.5)), ("c", col(-3.0))])
                .unwrap();
        let w = writer.get_or_insert_with(|| {
            ArrowWriter::try_new(file.try_clone().unwrap(), batch.schema(), None).unwrap()
        });
        w.write(&batch).unwrap();
    }
    writer.unwrap().close().unwrap();
    let decompressed = (ROWS * 3 * 8) as u64;

    let scaler = plugin_path("standard_scaler");
    let state = dir.path().join("s.state");
    let output = dir.path().join("out.parquet");
    kiln_ok(&[
        "fit",
        s(&scaler),
        "--input",
        s(&input),
        "--param",
        "columns=a,b,c",
        "--state-out",
        s(&state),
    ]);
    let out = kiln_ok(&[
        "run",
        s(&scaler),
        "--input",
        s(&input),
        "--param",
        "columns=a,b,c",
        "--state",
        s(&state),
        "--output",
        s(&output),
        "--json",
    ]);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["rows_out"], ROWS as u64);
    let peak = v["peak_rss_bytes"]
        .as_u64()
        .expect("peak RSS reported on Linux");
    eprintln!(
        "10M rows: decompressed {} MiB, kiln peak RSS {} MiB, {:.0} ms",
        decompressed >> 20,
        peak >> 20,
        v["elapsed_ms"].as_f64().unwrap()
    );
    assert!(
        peak < decompressed / 2,
        "peak RSS {peak} bytes vs {decompressed} bytes of data"
    );
}
