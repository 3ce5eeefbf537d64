//! `kiln demo`: the main job on the embedded default. The six plugins are
//! built by build.rs and embedded in the binary; the example table is
//! tests/data/customers.csv. Each step fits (when the plugin needs it) on the
//! previous step's output and runs over it, exactly as `kiln fit` and
//! `kiln run` do.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use kiln_host::job::{self, JobOptions};
use kiln_host::{Engine, Params};

macro_rules! plugin {
    ($file:literal) => {
        (
            $file,
            include_bytes!(concat!(env!("KILN_PLUGIN_DIR"), "/", $file)) as &[u8],
        )
    };
}

/// The plugins `kiln demo` (and `kiln bench`) ships with.
pub(crate) const PLUGINS: [(&str, &[u8]); 6] = [
    plugin!("impute.wasm"),
    plugin!("standard_scaler.wasm"),
    plugin!("one_hot.wasm"),
    plugin!("hash_encode.wasm"),
    plugin!("datetime_parts.wasm"),
    plugin!("bucketize.wasm"),
];

const CUSTOMERS: &str = include_str!("../../../tests/data/customers.csv");

/// The demo pipeline: (plugin file, parameters).
const STEPS: [(&str, &str); 6] = [
    ("impute.wasm", r#"{"columns":["age"],"strategy":"median"}"#),
    (
        "bucketize.wasm",
        r#"{"columns":["monthly_spend"],"quantiles":4,"suffix":"_quartile"}"#,
    ),
    ("standard_scaler.wasm", r#"{"columns":["age","income"]}"#),
    ("one_hot.wasm", r#"{"columns":["plan"]}"#),
    (
        "hash_encode.wasm",
        r#"{"columns":["city"],"buckets":16,"suffix":"_bucket"}"#,
    ),
    (
        "datetime_parts.wasm",
        r#"{"columns":["signup_at"],"parts":["hour","day_of_week","month"]}"#,
    ),
];

pub fn run(engine: &Engine, dir: Option<&Path>, json: bool) -> Result<()> {
    let tmp;
    let dir: PathBuf = match dir {
        Some(d) => {
            std::fs::create_dir_all(d).with_context(|| format!("cannot create {}", d.display()))?;
            d.to_path_buf()
        }
        None => {
            tmp = tempfile::tempdir()?;
            tmp.path().to_path_buf()
        }
    };
    for (file, bytes) in PLUGINS {
        std::fs::write(dir.join(file), bytes)?;
    }
    let mut input = dir.join("customers.csv");
    std::fs::write(&input, CUSTOMERS)?;
    let opts = JobOptions::default();
    let mut report = Vec::new();
    if !json {
        println!(
            "kiln demo: 6 plugins over {} ({} rows)\n",
            input.display(),
            CUSTOMERS.lines().count() - 1
        );
    }
    for (i, (file, params)) in STEPS.iter().enumerate() {
        let plugin = engine.load(&dir.join(file))?;
        let params = Params::from_json(params)?;
        let state = if plugin.needs_fit(&params)? {
            let (state, _) = job::fit_files(
                &plugin,
                &params,
                std::slice::from_ref(&input),
                &opts,
                &mut |_| {},
            )?;
            std::fs::write(dir.join(format!("step{}.state", i + 1)), state.as_bytes())?;
            Some(state)
        } else {
            None
        };
        let output = dir.join(format!("step{}.parquet", i + 1));
        let summary = job::run_files(
            &plugin,
            &params,
            state.as_ref(),
            std::slice::from_ref(&input),
            &output,
            &opts,
            &mut |_| {},
        )?;
        if !json {
            println!(
                "{}. {:<16} plugin {}  state {}\n   params {}\n   {} rows -> {} columns in {:.1?}",
                i + 1,
                plugin.info().name,
                &plugin.id()[..16],
                state
                    .as_ref()
                    .map(|s| s.id()[..16].to_owned())
                    .unwrap_or_else(|| "-".into()),
                params,
                summary.rows_out,
                summary.output_schema.fields().len(),
                summary.elapsed
            );
        }
        report.push(serde_json::json!({
            "step": i + 1,
            "plugin": plugin.info().name,
            "plugin_id": plugin.id(),
            "state_id": state.as_ref().map(|s| s.id()),
            "params": serde_json::from_str::<serde_json::Value>(params.as_str())?,
            "output": output,
            "rows": summary.rows_out,
        }));
        input = output;
    }
    let (_, batches) = kiln_host::io::read_all(&input, &Default::default())?;
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(
                &serde_json::json!({ "steps": report, "features": input })
            )?
        );
        return Ok(());
    }
    let head: Vec<_> = batches
        .iter()
        .take(1)
        .map(|b| b.slice(0, b.num_rows().min(8)))
        .collect();
    println!("\nfeatures ({}), first rows:", input.display());
    println!("{}", arrow::util::pretty::pretty_format_batches(&head)?);
    Ok(())
}
