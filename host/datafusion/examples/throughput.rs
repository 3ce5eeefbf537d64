//! Rows per second of a Kiln UDF in DataFusion against kiln-runtime
//! called directly (what `kiln run` does), on the same in-memory batches.
//!
//! Run (after building the workspace, which builds the plugins):
//! `CARGO_TARGET_DIR=/work/target-df cargo run --release --manifest-path host/datafusion/Cargo.toml --example throughput -- 1000000`
//!
//! The plugins are read from `$KILN_PLUGIN_DIR`, else the workspace's
//! `target/wasm/wasm32-wasip2/plugin`.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use arrow::array::{Float64Array, RecordBatch};
use arrow::datatypes::{DataType, Field, Schema};
use datafusion::datasource::MemTable;
use datafusion::prelude::{SessionConfig, SessionContext};
use kiln_datafusion::{collect, register, Transform};
use kiln_runtime::{Engine, Params};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let rows: usize = std::env::args()
        .nth(1)
        .map(|s| s.parse())
        .transpose()?
        .unwrap_or(1_000_000);
    let dir = std::env::var_os("KILN_PLUGIN_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/wasm/wasm32-wasip2/plugin")
        });
    let engine = Engine::new()?;
    let plugin = engine.load(&dir.join("standard_scaler.wasm"))?;
    let params = Params::from_json(r#"{"columns": ["age", "income"]}"#)?;
    let schema = Arc::new(Schema::new(vec![
        Field::new("age", DataType::Float64, true),
        Field::new("income", DataType::Float64, true),
    ]));
    let batches = |size: usize| -> Vec<RecordBatch> {
        (0..rows)
            .step_by(size)
            .map(|start| {
                let n = size.min(rows - start);
                let age: Float64Array =
                    (start..start + n).map(|i| (i % 80) as f64 + 18.0).collect();
                let income: Float64Array = (start..start + n)
                    .map(|i| ((i * 7919) % 100_000) as f64 * 1.5)
                    .collect();
                RecordBatch::try_new(schema.clone(), vec![Arc::new(age), Arc::new(income)])
                    .expect("batch")
            })
            .collect()
    };
    let mut fitter = plugin.fitter(&params)?;
    for b in batches(65_536) {
        fitter.update(&b)?;
    }
    let state = fitter.finish()?;
    println!("{rows} rows, 2 float64 columns, standard-scaler; best of 5 runs");
    println!("{:<58} {:>10} {:>14}", "path", "time", "rows/s");
    let report = |what: &str, d: Duration| {
        println!(
            "{what:<58} {:>8.1}ms {:>14.0}",
            d.as_secs_f64() * 1e3,
            rows as f64 / d.as_secs_f64()
        );
    };
    for size in [8_192, 65_536] {
        let input = batches(size);
        let mut t = plugin.transformer(&params, Some(&state))?;
        let d = best(|| {
            for b in &input {
                t.apply(b).expect("apply");
            }
        });
        report(
            &format!("kiln-runtime Transformer::apply, batches of {size}"),
            d,
        );
        // Keeping every output, as a query result does.
        let d = best(|| {
            let kept: Vec<RecordBatch> = input.iter().map(|b| t.apply(b).expect("apply")).collect();
            assert_eq!(kept.len(), input.len());
        });
        report("  the same, keeping the outputs", d);
    }
    let rt = tokio::runtime::Builder::new_multi_thread().build()?;
    for (partitions, size) in [(1, 8_192), (1, 65_536), (2, 8_192), (2, 65_536)] {
        let input = batches(size);
        let per = input.len().div_ceil(partitions);
        let parts: Vec<Vec<RecordBatch>> = input.chunks(per).map(<[_]>::to_vec).collect();
        let ctx = SessionContext::new_with_config(
            SessionConfig::new()
                .with_target_partitions(partitions)
                .with_batch_size(size),
        );
        ctx.register_table("t", Arc::new(MemTable::try_new(schema.clone(), parts)?))?;
        register(
            &ctx,
            "kiln_scaler",
            Transform::from_parts(plugin.clone(), params.clone(), Some(state.clone()))?,
        )?;
        for (label, sql) in [
            ("SELECT age, income", "SELECT age, income FROM t"),
            (
                "SELECT kiln_scaler(age, income)",
                "SELECT kiln_scaler(age, income) AS z FROM t",
            ),
        ] {
            let d = best(|| {
                let (_, out) = rt.block_on(collect(&ctx, sql)).expect("query");
                assert_eq!(out.iter().map(RecordBatch::num_rows).sum::<usize>(), rows);
            });
            report(
                &format!("DataFusion {label}, {partitions} part., batches of {size}"),
                d,
            );
        }
    }
    Ok(())
}

/// The fastest of five runs (after one warm-up).
fn best(mut f: impl FnMut()) -> Duration {
    f();
    (0..5)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed()
        })
        .min()
        .expect("five runs")
}
