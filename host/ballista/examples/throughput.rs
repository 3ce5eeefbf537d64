//! Rows per second of a fitted standard scaler on a Ballista cluster in
//! this process: 1 executor against 2, one vcore each, over a generated
//! 1M-row Parquet file (16 row groups, read as 16 tasks).
//!
//! ```text
//! cargo build --release --workspace --examples   # and the plugins
//! target/release/examples/ballista_throughput [ROWS]
//! ```
//!
//! (`cargo run -p kiln-ballista` would resolve features for this one
//! package and rebuild much of the workspace's dependencies.)
//!
//! The query aggregates on the executors (`sum` of a scaled column), so
//! the time is the scan, the plugin calls and a tiny shuffle, not the
//! transfer of a million rows to the client. Each configuration runs the
//! query once to warm up (plugins compiled, file cached) and then five
//! times; the best run counts. The times are end to end, so they include
//! Ballista's fixed cost per job: two stages, and a client and executors
//! that poll every 50 ms (a 1-slot executor running short tasks can wait a
//! poll interval between them). At 1M rows that cost is a large part of
//! the time; pass a larger ROWS to see the scaler's share grow. The
//! speedup is bounded by the cores the machine really has free.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{ensure, Context, Result};
use arrow::array::{Float64Array, Int64Array, RecordBatch};
use arrow::datatypes::{DataType, Field, Schema};
use datafusion::prelude::{ParquetReadOptions, SessionConfig, SessionContext};
use kiln_ballista::{register, LocalCluster};
use kiln_datafusion::Transform;
use kiln_runtime::{Engine, Params};
use parquet::arrow::ArrowWriter;
use parquet::file::properties::WriterProperties;

const ROW_GROUPS: usize = 16;
const RUNS: usize = 5;

fn main() -> Result<()> {
    let rows: usize = match std::env::args().nth(1) {
        Some(n) => n.parse().context("ROWS must be a number")?,
        None => 1_000_000,
    };
    ensure!(rows >= ROW_GROUPS, "ROWS must be at least {ROW_GROUPS}");
    let plugin = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../target/wasm/wasm32-wasip2/plugin/standard_scaler.wasm");
    ensure!(
        plugin.exists(),
        "{} is missing: run `cargo build --release --workspace --examples` first (it builds the plugins)",
        plugin.display()
    );
    let dir = tempfile::tempdir()?;
    let input = dir.path().join("customers.parquet");
    write_input(&input, rows)?;

    let engine = Engine::new()?;
    let params = Params::from_json(r#"{"columns": ["age", "income"]}"#)?;
    let state = kiln_io::job::fit_files(
        &engine.load(&plugin)?,
        &params,
        std::slice::from_ref(&input),
        &Default::default(),
        &mut |_| {},
    )?
    .0;
    let state_path = dir.path().join("scaler.state");
    std::fs::write(&state_path, state.as_bytes())?;

    println!("{rows} rows, {ROW_GROUPS} row groups, standard scaler on (age, income)");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let mut rates = Vec::new();
    for executors in [1, 2] {
        let best = rt.block_on(measure(
            executors,
            &engine,
            &plugin,
            &params,
            &state_path,
            &input,
            rows,
        ))?;
        let rate = rows as f64 / best.as_secs_f64();
        println!(
            "{executors} executor{} x 1 vcore: best of {RUNS} {:>7.1} ms  {:>10.0} rows/s",
            if executors == 1 { " " } else { "s" },
            best.as_secs_f64() * 1e3,
            rate
        );
        rates.push(rate);
    }
    println!("speedup 2 vs 1 executors: {:.2}x", rates[1] / rates[0]);
    Ok(())
}

/// The best time of the scaler query on a fresh cluster of `executors`
/// executors.
async fn measure(
    executors: usize,
    engine: &Engine,
    plugin: &Path,
    params: &Params,
    state: &Path,
    input: &Path,
    rows: usize,
) -> Result<Duration> {
    let config = SessionConfig::new()
        .with_target_partitions(ROW_GROUPS)
        .set_usize("datafusion.optimizer.repartition_file_min_size", 0);
    let cluster = LocalCluster::start_with_config(executors, 1, engine.clone(), config).await?;
    let ctx = cluster.context();
    ctx.register_parquet(
        "customers",
        input.to_str().context("a UTF-8 temporary path")?,
        ParquetReadOptions::default(),
    )
    .await?;
    let t = Transform::from_files(engine, plugin, params.clone(), Some(state))?;
    register(ctx, "kiln_scaler", t)?;
    let best = best_of(
        ctx,
        "SELECT count(*) AS n, sum(kiln_scaler(age, income)['age']) AS s FROM customers",
        rows,
    )
    .await?;
    let decodes = cluster.executor_decodes();
    ensure!(
        decodes.iter().all(|&d| d > 0),
        "an executor ran no scaler task: {decodes:?}"
    );
    Ok(best)
}

/// The best time of `sql` (whose first column counts the rows) over
/// [`RUNS`] runs after a warm-up.
async fn best_of(ctx: &SessionContext, sql: &str, rows: usize) -> Result<Duration> {
    let mut best = Duration::MAX;
    for run in 0..=RUNS {
        let start = Instant::now();
        let out = ctx.sql(sql).await?.collect().await?;
        let took = start.elapsed();
        let n = out
            .first()
            .and_then(|b| b.column(0).as_any().downcast_ref::<Int64Array>())
            .map(|a| a.value(0));
        ensure!(
            n == Some(rows as i64),
            "counted {n:?} rows, expected {rows}"
        );
        if run > 0 {
            best = best.min(took);
        }
    }
    Ok(best)
}

/// `customer_id`, `age` and `income`, deterministic, in [`ROW_GROUPS`]
/// row groups.
fn write_input(path: &Path, rows: usize) -> Result<()> {
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = move || {
        x = x
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        x >> 11
    };
    let ids: Int64Array = (0..rows as i64).collect::<Vec<_>>().into();
    let ages: Int64Array = (0..rows)
        .map(|_| 18 + (next() % 60) as i64)
        .collect::<Vec<_>>()
        .into();
    let incomes: Float64Array = (0..rows)
        .map(|_| 15_000.0 + (next() % 9_000_000) as f64 / 100.0)
        .collect::<Vec<_>>()
        .into();
    let schema = Arc::new(Schema::new(vec![
        Field::new("customer_id", DataType::Int64, false),
        Field::new("age", DataType::Int64, true),
        Field::new("income", DataType::Float64, true),
    ]));
    let batch = RecordBatch::try_new(
        schema.clone(),
        vec![Arc::new(ids), Arc::new(ages), Arc::new(incomes)],
    )?;
    let props = WriterProperties::builder()
        .set_max_row_group_row_count(Some(rows.div_ceil(ROW_GROUPS)))
        .build();
    let mut w = ArrowWriter::try_new(std::fs::File::create(path)?, schema, Some(props))?;
    w.write(&batch)?;
    w.close()?;
    Ok(())
}
