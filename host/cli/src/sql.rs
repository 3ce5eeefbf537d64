//! `kiln sql`: DataFusion SQL over data files, with pinned Kiln versions
//! as functions. Parsing and printing only; the work is in
//! `kiln_host::sql` (kiln-datafusion).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use clap::Args;
use kiln_host::sql::datafusion::prelude::SessionConfig;
use kiln_host::sql::{SqlSession, Transform};
use kiln_host::{Bundle, Engine};
use serde_json::json;

use crate::registry::StoreArgs;

/// `kiln sql`.
#[derive(Args)]
pub struct SqlArgs {
    /// The query (DataFusion SQL).
    query: String,
    /// A table: NAME=FILE (Parquet, CSV, Arrow IPC or JSON-lines). Repeat a
    /// NAME to make one table of several files (same columns).
    #[arg(short, long = "table", value_name = "NAME=FILE")]
    tables: Vec<String>,
    /// A function for one version: NAME=SPEC, SPEC being NAME@TAG, a version
    /// id, or a .kiln bundle; then `NAME(col, ...)` in the query.
    #[arg(short, long = "function", value_name = "NAME=SPEC")]
    functions: Vec<String>,
    /// Write the result here (format by extension) and record the run;
    /// without it the result is printed.
    #[arg(short, long, value_name = "FILE")]
    output: Option<PathBuf>,
    /// Rows per batch (what each plugin call gets at most).
    #[arg(long, value_name = "N", default_value_t = 65_536)]
    batch_size: usize,
    /// Partitions the query runs in parallel [default: the CPU count].
    #[arg(long, value_name = "N")]
    partitions: Option<usize>,
    /// At most this many rows are printed (without --output).
    #[arg(long, value_name = "N", default_value_t = 100)]
    max_rows: usize,
}

/// Split `NAME=VALUE`.
fn pair<'a>(flag: &str, s: &'a str) -> Result<(&'a str, &'a str)> {
    match s.split_once('=') {
        Some((n, v)) if !n.is_empty() && !v.is_empty() => Ok((n, v)),
        _ => bail!("{flag} takes NAME=VALUE, got '{s}'"),
    }
}

/// Run `kiln sql`.
pub fn sql(engine: &Engine, store: &StoreArgs, args: &SqlArgs, json: bool) -> Result<()> {
    if args.batch_size == 0 {
        bail!("--batch-size must be at least 1");
    }
    let partitions = match args.partitions {
        Some(0) => bail!("--partitions must be at least 1"),
        Some(n) => n,
        None => std::thread::available_parallelism().map_or(1, |n| n.get()),
    };
    // A store is opened when there is one (for kiln('NAME@TAG', ...) and
    // the run record); bundles work without.
    let registry = store
        .active()
        .then(|| store.open(engine, false))
        .transpose()?
        .map(Arc::new);
    let config = SessionConfig::new()
        .with_batch_size(args.batch_size)
        .with_target_partitions(partitions);
    let mut session = SqlSession::new(registry.clone(), config)?;
    for f in &args.functions {
        let (name, spec) = pair("--function", f)?;
        let path = Path::new(spec);
        if path.extension().is_some_and(|e| e == "kiln") {
            let bundle = Bundle::read(path)?;
            session.register_transform(name, Transform::from_bundle(engine, &bundle)?)?;
        } else if path.extension().is_some_and(|e| e == "wasm") {
            bail!("--function {name}={spec}: a plugin file has no pinned parameters or state; register it (`kiln fit ... --name`, `kiln tag`) and give NAME@TAG, or export a bundle (`kiln export NAME@TAG -o x.kiln`)");
        } else {
            session.register_version(name, spec)?;
        }
    }
    let tables: Vec<(&str, &Path)> = args
        .tables
        .iter()
        .map(|t| pair("--table", t).map(|(n, p)| (n, Path::new(p))))
        .collect::<Result<_>>()?;
    session.register_tables(&tables)?;

    let started = Instant::now();
    match &args.output {
        Some(output) => {
            let (run, summary) = session.write(&args.query, output).with_context(|| {
                format!("the query did not run; {} is unchanged", output.display())
            })?;
            let elapsed = started.elapsed();
            let functions = run
                .as_ref()
                .and_then(|r| r.sql.as_ref())
                .map(|s| {
                    s.functions
                        .iter()
                        .map(|f| {
                            json!({
                                "function": f.function,
                                "spec": f.spec,
                                "version_id": f.transform.version_id,
                                "plugin": f.transform.plugin,
                            })
                        })
                        .collect::<Vec<_>>()
                })
                .unwrap_or_default();
            if json {
                println!(
                    "{}",
                    json!({
                        "run_id": run.as_ref().map(|r| r.id.clone()),
                        "output": output,
                        "output_fingerprint": run.as_ref().and_then(|r| r.outputs.first()).map(|o| o.fingerprint.clone()),
                        "rows_out": summary.rows,
                        "bytes_out": summary.bytes,
                        "functions": functions,
                        "partitions": partitions,
                        "elapsed_ms": elapsed.as_secs_f64() * 1e3,
                    })
                );
            } else {
                println!(
                    "{} rows -> {} in {elapsed:.2?}{}",
                    summary.rows,
                    output.display(),
                    run.map(|r| format!("\nrun {}", r.id)).unwrap_or_else(|| {
                        "\n(not recorded: no store; pass --store DIR or set KILN_HOME)".into()
                    })
                );
            }
        }
        None => {
            let (schema, batches) = session.collect(&args.query)?;
            print_result(&schema, &batches, args.max_rows, json)?;
        }
    }
    Ok(())
}

/// Print a query result: a table, or JSON `{columns, rows}` (rows as
/// objects, every row with --json).
fn print_result(
    schema: &arrow::datatypes::SchemaRef,
    batches: &[arrow::array::RecordBatch],
    max_rows: usize,
    json: bool,
) -> Result<()> {
    let total: usize = batches.iter().map(|b| b.num_rows()).sum();
    if json {
        let mut w = arrow::json::ArrayWriter::new(Vec::new());
        for b in batches {
            w.write(b)?;
        }
        w.finish()?;
        let bytes = w.into_inner();
        let rows: serde_json::Value = if bytes.is_empty() {
            json!([])
        } else {
            serde_json::from_slice(&bytes)?
        };
        let columns: Vec<_> = schema
            .fields()
            .iter()
            .map(|f| json!({"name": f.name(), "type": f.data_type().to_string()}))
            .collect();
        println!("{}", json!({"columns": columns, "rows": rows}));
        return Ok(());
    }
    let mut shown = Vec::new();
    let mut left = max_rows;
    for b in batches {
        if left == 0 {
            break;
        }
        let n = b.num_rows().min(left);
        shown.push(b.slice(0, n));
        left -= n;
    }
    if shown.is_empty() {
        shown.push(arrow::array::RecordBatch::new_empty(schema.clone()));
    }
    println!("{}", arrow::util::pretty::pretty_format_batches(&shown)?);
    if total > max_rows {
        println!("({total} rows, {max_rows} shown; --max-rows N or --output FILE for all)");
    } else {
        println!("({total} rows)");
    }
    Ok(())
}
