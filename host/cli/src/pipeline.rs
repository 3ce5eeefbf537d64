//! `kiln pipeline`: fit, run and show declarative pipelines (kiln.toml).

use std::path::{Path, PathBuf};

use anyhow::Result;
use clap::Subcommand;
use kiln_host::job::JobOptions;
use kiln_host::pipeline::PipelineSpec;
use kiln_host::store::{PipelineRecord, Resolved};
use kiln_host::{Engine, FitTarget, Registry};

use crate::registry::StoreArgs;
use crate::DataArgs;

#[derive(Subcommand)]
pub enum PipelineCommand {
    /// Fit every step of a pipeline file in order (each on the previous
    /// steps' output), register it as one version with each step pinned, and
    /// move NAME@TAG to it (NAME from [feature_set], unless --name).
    Fit {
        /// The pipeline file (kiln.toml).
        file: PathBuf,
        #[command(flatten)]
        data: DataArgs,
        /// Register under this name instead of [feature_set].name.
        #[arg(long)]
        name: Option<String>,
        /// The tag to move.
        #[arg(long, default_value = "dev")]
        tag: String,
        /// Why (kept in the tag history).
        #[arg(long, default_value = "")]
        reason: String,
    },
    /// Run a registered pipeline (same as `kiln run NAME@TAG`): input
    /// contract, every step, output contract; OUTPUT is written only if all pass.
    Run {
        /// NAME@TAG or a pipeline id.
        pipeline: String,
        #[command(flatten)]
        data: DataArgs,
        /// Output file; the format follows the extension.
        #[arg(short, long, value_name = "FILE")]
        output: PathBuf,
    },
    /// Show a registered pipeline: its documentation, steps and contracts.
    Show {
        /// NAME@TAG or a pipeline id.
        pipeline: String,
    },
}

pub fn command(engine: &Engine, store: &StoreArgs, cmd: PipelineCommand, json: bool) -> Result<()> {
    match cmd {
        PipelineCommand::Fit {
            file,
            data,
            name,
            tag,
            reason,
        } => {
            let spec = PipelineSpec::from_file(&file)?;
            let reg = store.open(engine, true)?;
            let target = FitTarget {
                name: name.unwrap_or_default(),
                tag,
                reason,
                description: None,
                owner: None,
            };
            let opts = JobOptions {
                batch_size: data.batch_size,
                ..Default::default()
            };
            let fit = reg.fit_pipeline(&spec, &data.inputs, Some(&target), &opts, &mut |_| {})?;
            if json {
                println!(
                    "{}",
                    serde_json::json!({
                        "pipeline_id": fit.pipeline.id,
                        "steps": fit.pipeline.steps,
                        "fit_runs": fit.fits.iter().map(|r| &r.id).collect::<Vec<_>>(),
                        "state_ids": fit.fits.iter().map(|r| &r.transform.state_id).collect::<Vec<_>>(),
                        "tagged": fit.tagged,
                    })
                );
            } else {
                println!(
                    "pipeline {} ({} steps)",
                    fit.pipeline.id,
                    fit.pipeline.steps.len()
                );
                for (i, r) in fit.fits.iter().enumerate() {
                    println!(
                        "  step {}: {} version {} state {}",
                        i + 1,
                        r.transform.plugin,
                        &r.transform.version_id[..12],
                        r.transform
                            .state_id
                            .as_deref()
                            .map(|s| &s[..12])
                            .unwrap_or("-")
                    );
                }
                if let Some(t) = fit.tagged {
                    println!("{t} -> {}", &fit.pipeline.id[..12]);
                }
            }
            Ok(())
        }
        PipelineCommand::Run {
            pipeline,
            data,
            output,
        } => {
            let reg = store.open(engine, false)?;
            let p = resolve(&reg, &pipeline)?;
            let target = pipeline.contains('@').then_some(pipeline.as_str());
            run(&reg, &p, target, &data, &output, json)
        }
        PipelineCommand::Show { pipeline } => {
            let reg = store.open(engine, false)?;
            let p = resolve(&reg, &pipeline)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&p)?);
                return Ok(());
            }
            let fs = &p.spec.feature_set;
            println!(
                "{}: {}\nowner: {}\npipeline {}",
                fs.name, fs.description, fs.owner, p.id
            );
            println!("\ninputs:");
            for c in &p.spec.inputs {
                println!(
                    "  {:<16} {:<10} {:<10} {}",
                    c.name,
                    c.data_type.as_deref().unwrap_or(""),
                    c.unit.as_deref().unwrap_or(""),
                    c.source.as_deref().unwrap_or("")
                );
            }
            println!("\nsteps:");
            for (i, (s, v)) in p.spec.steps.iter().zip(&p.steps).enumerate() {
                println!("  {}. {} version {}", i + 1, s.plugin, &v[..12]);
            }
            println!("\noutputs:");
            for c in &p.spec.outputs {
                println!(
                    "  {:<16} {:<10} {}",
                    c.name,
                    c.unit.as_deref().unwrap_or(""),
                    c.description.as_deref().unwrap_or("")
                );
            }
            Ok(())
        }
    }
}

fn resolve(reg: &Registry, spec: &str) -> Result<PipelineRecord> {
    match reg.store().resolve_any(spec)? {
        Resolved::Pipeline(p) => Ok(*p),
        Resolved::Version(v) => anyhow::bail!(
            "{spec} is a single transform (version {}); use `kiln run`",
            &v.id[..12]
        ),
    }
}

pub fn run(
    reg: &Registry,
    p: &PipelineRecord,
    target: Option<&str>,
    data: &DataArgs,
    output: &Path,
    json: bool,
) -> Result<()> {
    let opts = JobOptions {
        batch_size: data.batch_size,
        ..Default::default()
    };
    let r = reg.run_pipeline(p, target, &data.inputs, output, &opts, &mut |_| {})?;
    if json {
        println!(
            "{}",
            serde_json::json!({
                "pipeline_id": p.id,
                "run_ids": r.runs.iter().map(|r| &r.id).collect::<Vec<_>>(),
                "output": output,
                "output_fingerprint": r.runs.last().and_then(|r| r.outputs.first()).map(|o| &o.fingerprint),
                "rows_in": r.rows_in,
                "rows_out": r.rows_out,
            })
        );
    } else {
        println!(
            "{}: {} rows -> {} ({} rows) through {} steps",
            p.spec.feature_set.name,
            r.rows_in,
            output.display(),
            r.rows_out,
            p.steps.len()
        );
    }
    Ok(())
}
