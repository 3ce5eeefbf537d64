//! `kiln`: fit and run WebAssembly feature transforms over data files.
//!
//! A thin layer over `kiln-host`: argument parsing, progress and printing.
//! Exit codes: 0 success, 1 error, 2 usage error.

mod demo;

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::{Args, Parser, Subcommand};
use kiln_host::job::{self, JobOptions};
use kiln_host::{Engine, EngineConfig, Params, Plugin, State};

/// Run ML feature transforms as sandboxed WebAssembly components over Arrow data.
///
/// A plugin is a `.wasm` component implementing the kiln:transform contract;
/// its id is the sha256 of its bytes. Fitted plugins learn a state from data
/// (`kiln fit`), and `kiln run` applies plugin + parameters + state to files.
/// Files are Parquet (.parquet), CSV (.csv), Arrow IPC (.arrow/.ipc/.feather
/// file, .arrows stream) or JSON-lines (.jsonl/.ndjson), chosen by extension.
///
/// Example:
///   kiln inspect standard_scaler.wasm
///   kiln fit standard_scaler.wasm --input train.parquet --param columns=age,income --state-out scaler.state
///   kiln run standard_scaler.wasm --state scaler.state --param columns=age,income --input live.csv --output features.parquet
#[derive(Parser)]
#[command(name = "kiln", version, about, long_about, verbatim_doc_comment)]
struct Cli {
    #[command(subcommand)]
    command: Command,
    #[command(flatten)]
    limits: Limits,
    /// Print machine-readable JSON on stdout instead of text.
    #[arg(long, global = true)]
    json: bool,
    /// Log plugin stderr and debug details (repeat for more).
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    verbose: u8,
}

#[derive(Args)]
struct Limits {
    /// Longest one plugin call may run, in seconds.
    #[arg(long, global = true, value_name = "SECS", default_value_t = 30.0)]
    deadline: f64,
    /// Memory cap per plugin instance, e.g. 512MiB, 1GiB, or bytes.
    #[arg(long, global = true, value_name = "SIZE", default_value = "1GiB", value_parser = parse_size)]
    memory_limit: usize,
    /// Directory of the compiled-plugin cache [default: $KILN_HOME/cache, else ~/.cache/kiln].
    #[arg(long, global = true, value_name = "DIR")]
    cache_dir: Option<PathBuf>,
    /// Compile plugins without reading or writing the compiled-plugin cache.
    #[arg(long, global = true, conflicts_with = "cache_dir")]
    no_cache: bool,
}

#[derive(Subcommand)]
enum Command {
    /// Show a plugin's id (sha256), name, version, kind, parameter schema and WIT version.
    Inspect {
        /// The plugin (.wasm component).
        plugin: PathBuf,
    },
    /// Fit a plugin on input files and write its state to a file.
    ///
    /// The state's id (sha256 of its bytes) is printed; pass the file to
    /// `kiln run --state`.
    Fit {
        /// The plugin (.wasm component).
        plugin: PathBuf,
        #[command(flatten)]
        data: DataArgs,
        #[command(flatten)]
        params: ParamArgs,
        /// Where to write the fitted state.
        #[arg(long, value_name = "FILE")]
        state_out: PathBuf,
    },
    /// Apply a plugin to input files and write the result.
    ///
    /// The output is written to a temporary file beside OUTPUT and renamed
    /// only when every batch succeeded; a failed run leaves OUTPUT untouched.
    Run {
        /// The plugin (.wasm component).
        plugin: PathBuf,
        #[command(flatten)]
        data: DataArgs,
        /// Output file; the format follows the extension.
        #[arg(short, long, value_name = "FILE")]
        output: PathBuf,
        #[command(flatten)]
        params: ParamArgs,
        /// Fitted state from `kiln fit --state-out` (fitted plugins only).
        #[arg(long, value_name = "FILE")]
        state: Option<PathBuf>,
    },
    /// Run the built-in example: fit and apply the bundled plugins to the
    /// bundled customer table and print the features.
    Demo {
        /// Keep the demo's files in this directory instead of a temporary one.
        #[arg(long, value_name = "DIR")]
        dir: Option<PathBuf>,
    },
}

#[derive(Args)]
struct DataArgs {
    /// Input files, read in order as one table (same schema).
    #[arg(short, long = "input", value_name = "FILE", required = true, num_args = 1..)]
    inputs: Vec<PathBuf>,
    /// Rows per batch sent to the plugin.
    #[arg(long, value_name = "N", default_value_t = 65_536)]
    batch_size: usize,
}

#[derive(Args)]
struct ParamArgs {
    /// Parameters as a JSON object, e.g. '{"columns": ["age"]}'.
    #[arg(long, value_name = "JSON")]
    params: Option<String>,
    /// One parameter as KEY=VALUE (VALUE is JSON if it parses; a,b is a list). Repeatable.
    #[arg(long = "param", value_name = "KEY=VALUE")]
    param: Vec<String>,
}

impl ParamArgs {
    /// `--params` then `--param` pairs, typed by the plugin's parameter schema.
    fn resolve(&self, plugin: &Plugin) -> Result<Params> {
        let base = match &self.params {
            Some(json) => Params::from_json(json)?,
            None => Params::empty(),
        };
        Ok(base.with_pairs_for(&self.param, &plugin.info().params_schema)?)
    }
}

fn parse_size(s: &str) -> Result<usize, String> {
    let t = s.trim();
    let (num, mult) = [
        ("GiB", 1usize << 30),
        ("MiB", 1 << 20),
        ("KiB", 1 << 10),
        ("G", 1 << 30),
        ("M", 1 << 20),
        ("K", 1 << 10),
    ]
    .iter()
    .find_map(|(suf, m)| t.strip_suffix(suf).map(|n| (n, *m)))
    .unwrap_or((t, 1));
    let n: f64 = num
        .trim()
        .parse()
        .map_err(|_| format!("'{s}' is not a size like 512MiB or 1GiB"))?;
    if n.is_nan() || n <= 0.0 {
        return Err(format!("'{s}' must be positive"));
    }
    Ok((n * mult as f64) as usize)
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let level = match cli.verbose {
        0 => "warn,kiln::plugin=warn",
        1 => "info",
        _ => "debug",
    };
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("KILN_LOG")
                .unwrap_or_else(|_| level.into()),
        )
        .with_writer(std::io::stderr)
        .init();
    match try_main(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn try_main(cli: Cli) -> Result<()> {
    if !(cli.limits.deadline > 0.0 && cli.limits.deadline.is_finite()) {
        anyhow::bail!("--deadline must be a positive number of seconds");
    }
    let config = EngineConfig::default()
        .with_deadline(Duration::from_secs_f64(cli.limits.deadline))
        .with_memory_limit(cli.limits.memory_limit)
        .with_cache_dir(match cli.limits.no_cache {
            true => None,
            false => (cli.limits.cache_dir.clone()).or_else(EngineConfig::default_cache_dir),
        });
    let engine = Engine::with_config(config)?;
    let json = cli.json;
    match cli.command {
        Command::Inspect { plugin } => inspect(&engine, &plugin, json),
        Command::Fit {
            plugin,
            data,
            params,
            state_out,
        } => fit(&engine, &plugin, &data, &params, &state_out, json),
        Command::Run {
            plugin,
            data,
            output,
            params,
            state,
        } => run(
            &engine,
            &plugin,
            &data,
            &params,
            state.as_deref(),
            &output,
            json,
        ),
        Command::Demo { dir } => demo::run(&engine, dir.as_deref(), json),
    }
}

fn load(engine: &Engine, path: &Path) -> Result<Plugin> {
    Ok(engine.load(path)?)
}

fn inspect(engine: &Engine, path: &Path, json: bool) -> Result<()> {
    let plugin = load(engine, path)?;
    let info = plugin.info();
    if json {
        println!("{}", serde_json::to_string_pretty(info)?);
    } else {
        println!("{} {}", info.name, info.version);
        println!("  id:            {}", info.id);
        println!(
            "  kind:          {}",
            serde_json::to_value(info.kind)?.as_str().unwrap_or("?")
        );
        println!("  wit:           kiln:transform@{}", info.wit_version);
        println!("  deterministic: {}", info.deterministic);
        println!("  description:   {}", info.description);
        println!(
            "  parameters:    {}",
            serde_json::to_string_pretty(&info.params_schema)?.replace('\n', "\n                 ")
        );
    }
    Ok(())
}

/// A progress bar on a terminal (stderr), nothing otherwise.
fn progress_bar(json: bool) -> Option<indicatif::ProgressBar> {
    if json || !std::io::stderr().is_terminal() {
        return None;
    }
    let pb = indicatif::ProgressBar::new_spinner();
    pb.set_style(
        indicatif::ProgressStyle::with_template(
            "{spinner} {elapsed_precise} {human_pos} rows ({per_sec})",
        )
        .expect("progress template is valid"),
    );
    pb.enable_steady_tick(Duration::from_millis(120));
    Some(pb)
}

fn fit(
    engine: &Engine,
    path: &Path,
    data: &DataArgs,
    params: &ParamArgs,
    state_out: &Path,
    json: bool,
) -> Result<()> {
    let plugin = load(engine, path)?;
    let params = &params.resolve(&plugin)?;
    let pb = progress_bar(json);
    let opts = JobOptions {
        batch_size: data.batch_size,
    };
    let (state, summary) = job::fit_files(&plugin, params, &data.inputs, &opts, &mut |rows| {
        if let Some(pb) = &pb {
            pb.set_position(rows)
        }
    })?;
    if let Some(pb) = pb {
        pb.finish_and_clear();
    }
    write_atomic(state_out, state.as_bytes())?;
    if json {
        println!(
            "{}",
            serde_json::json!({
                "plugin_id": plugin.id(),
                "plugin": plugin.info().name,
                "params": serde_json::from_str::<serde_json::Value>(params.as_str())?,
                "state_id": state.id(),
                "state_out": state_out,
                "rows": summary.rows,
                "batches": summary.batches,
                "elapsed_ms": summary.elapsed.as_secs_f64() * 1e3,
            })
        );
    } else {
        println!(
            "fitted {} on {} rows in {:.2?}\nstate {} -> {}",
            plugin.info().name,
            summary.rows,
            summary.elapsed,
            state.id(),
            state_out.display()
        );
    }
    Ok(())
}

fn run(
    engine: &Engine,
    path: &Path,
    data: &DataArgs,
    params: &ParamArgs,
    state: Option<&Path>,
    output: &Path,
    json: bool,
) -> Result<()> {
    let plugin = load(engine, path)?;
    let params = &params.resolve(&plugin)?;
    let state = match state {
        Some(p) => {
            Some(State::from_bytes(std::fs::read(p).with_context(|| {
                format!("cannot read state file {}", p.display())
            })?))
        }
        None => None,
    };
    let pb = progress_bar(json);
    let opts = JobOptions {
        batch_size: data.batch_size,
    };
    let summary = job::run_files(
        &plugin,
        params,
        state.as_ref(),
        &data.inputs,
        output,
        &opts,
        &mut |rows| {
            if let Some(pb) = &pb {
                pb.set_position(rows)
            }
        },
    )?;
    if let Some(pb) = pb {
        pb.finish_and_clear();
    }
    if json {
        println!(
            "{}",
            serde_json::json!({
                "plugin_id": plugin.id(),
                "plugin": plugin.info().name,
                "params": serde_json::from_str::<serde_json::Value>(params.as_str())?,
                "state_id": state.as_ref().map(State::id),
                "output": output,
                "rows_in": summary.rows_in,
                "rows_out": summary.rows_out,
                "batches": summary.batches,
                "bytes_out": summary.bytes_out,
                "elapsed_ms": summary.elapsed.as_secs_f64() * 1e3,
                "peak_rss_bytes": peak_rss_bytes(),
            })
        );
    } else {
        println!(
            "{}: {} rows -> {} ({} rows, {} columns) in {:.2?}",
            plugin.info().name,
            summary.rows_in,
            output.display(),
            summary.rows_out,
            summary.output_schema.fields().len(),
            summary.elapsed
        );
    }
    Ok(())
}

/// Peak resident memory of this process (Linux `VmHWM`), if known.
fn peak_rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// Write a small file atomically (temp file + rename).
fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let mut tmp = tempfile::NamedTempFile::new_in(dir)
        .with_context(|| format!("cannot write in {}", dir.display()))?;
    std::io::Write::write_all(&mut tmp, bytes)?;
    tmp.as_file().sync_all()?;
    tmp.persist(path)
        .with_context(|| format!("cannot write {}", path.display()))?;
    Ok(())
}
