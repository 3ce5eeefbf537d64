//! Feature-table commands: materialize, training-set, table history / show
//! / vacuum. Parsing and printing only; the work is in `kiln_host::table`.

use std::path::{Path, PathBuf};

use anyhow::{bail, Result};
use clap::{Args, Subcommand, ValueEnum};
use kiln_host::job::JobOptions;
use kiln_host::table::{self, FeatureTable, TableRef, WriteMode};
use kiln_host::Engine;
use serde_json::json;

use crate::registry::StoreArgs;

/// Append to the table, or replace its rows.
#[derive(Clone, Copy, ValueEnum)]
pub enum Mode {
    /// Add the rows as a new version.
    Append,
    /// Replace every row (older versions stay readable until vacuumed).
    Overwrite,
}

/// `kiln materialize`.
#[derive(Args)]
pub struct MaterializeArgs {
    /// The pipeline or transform: NAME@TAG or a version id.
    target: String,
    /// Event files, read in order as one table.
    #[arg(short, long = "input", value_name = "FILE", required = true, num_args = 1..)]
    inputs: Vec<PathBuf>,
    /// The feature table directory (created on first write).
    #[arg(long, value_name = "DIR")]
    table: PathBuf,
    /// Entity key column (repeatable) [default: the pipeline file's `entity`].
    #[arg(long, value_name = "COL")]
    entity: Vec<String>,
    /// Event time column [default: the pipeline file's `timestamp`].
    #[arg(long, value_name = "COL")]
    timestamp: Option<String>,
    /// Add a version with these rows, or replace the table's rows.
    #[arg(long, value_enum, default_value = "append")]
    mode: Mode,
    /// Rows per batch sent to the plugins.
    #[arg(long, value_name = "N", default_value_t = 65_536)]
    batch_size: usize,
}

/// `kiln training-set`.
#[derive(Args)]
pub struct TrainingSetArgs {
    /// The spine: entity key(s), event time and labels, one row per example.
    #[arg(long, value_name = "FILE")]
    spine: PathBuf,
    /// Feature tables, comma separated or repeated: DIR, DIR@VERSION or
    /// DIR@TIME (RFC 3339).
    #[arg(long, value_name = "TABLE", required = true, value_delimiter = ',')]
    features: Vec<String>,
    /// The training set file; the format follows the extension.
    #[arg(short, long, value_name = "FILE")]
    output: PathBuf,
    /// Only features at most this old at the spine time (inclusive), e.g. 1h, 7d.
    #[arg(long, value_name = "DURATION")]
    ttl: Option<String>,
    /// Only features strictly before the spine time (default: at or before).
    #[arg(long)]
    exclude_exact: bool,
    /// Entity key column of the spine (repeatable), and of tables that do
    /// not record theirs [default: each table's own].
    #[arg(long, value_name = "COL")]
    entity: Vec<String>,
    /// Time column of the spine, and of tables that do not record theirs
    /// [default: each table's own].
    #[arg(long, value_name = "COL")]
    timestamp: Option<String>,
}

#[derive(Subcommand)]
pub enum TableCommand {
    /// Every commit of a table: version, time, operation, the Kiln run and
    /// version that wrote it.
    History {
        /// The table directory.
        table: PathBuf,
    },
    /// Read a table as of a version or time: DIR, DIR@VERSION, DIR@TIME.
    ///
    /// Prints the first rows, or writes them all with --output.
    Show {
        /// DIR, DIR@VERSION or DIR@TIME (RFC 3339, e.g. 2026-12-01T10:00:00Z).
        table: String,
        /// Write every row to this file instead of printing.
        #[arg(short, long, value_name = "FILE")]
        output: Option<PathBuf>,
        /// Rows to print.
        #[arg(long, default_value_t = 20)]
        limit: usize,
    },
    /// Delete data files removed from the table more than N days ago,
    /// except those of versions a recorded training set read.
    Vacuum {
        /// The table directory.
        table: PathBuf,
        /// Keep removed files younger than N days.
        #[arg(long, value_name = "N", default_value_t = 7)]
        keep_days: u64,
        /// Only list what would be deleted.
        #[arg(long)]
        dry_run: bool,
    },
}

pub fn materialize(
    engine: &Engine,
    store: &StoreArgs,
    a: &MaterializeArgs,
    json: bool,
) -> Result<()> {
    let reg = store.open(engine, false)?;
    let opts = table::MaterializeOptions {
        job: JobOptions {
            batch_size: a.batch_size,
            ..Default::default()
        },
        entity: a.entity.clone(),
        timestamp: a.timestamp.clone(),
        mode: match a.mode {
            Mode::Append => WriteMode::Append,
            Mode::Overwrite => WriteMode::Overwrite,
        },
    };
    let r = table::materialize(&reg, &a.target, &a.inputs, &a.table, &opts, &mut |_| {})?;
    reg.store().flush()?;
    if json {
        println!("{}", serde_json::to_string_pretty(&r)?);
    } else if r.written {
        println!(
            "{}: version {} ({} rows of {} [{}])",
            r.table.display(),
            r.version,
            r.rows,
            r.target,
            r.features.join(", ")
        );
        if let Some(run) = &r.run {
            println!(
                "  run {} (kiln lineage trace {}@{})",
                run.id,
                r.table.display(),
                r.version
            );
        }
    } else {
        println!(
            "{}: already has these rows of {} in version {}; nothing written",
            r.table.display(),
            r.target,
            r.version
        );
    }
    Ok(())
}

pub fn training_set(
    engine: &Engine,
    store: &StoreArgs,
    a: &TrainingSetArgs,
    json: bool,
) -> Result<()> {
    // The run is recorded (vacuum keeps the versions it read): a store is
    // created if there is none yet.
    let reg = store.open(engine, true)?;
    let opts = table::TrainingSetOptions {
        ttl_us: a
            .ttl
            .as_deref()
            .map(kiln_host::temporal::parse_duration)
            .transpose()?,
        exclude_exact_matches: a.exclude_exact,
        entity: a.entity.clone(),
        timestamp: a.timestamp.clone(),
    };
    let tables: Vec<TableRef> = a.features.iter().map(|s| TableRef::parse(s)).collect();
    let r = table::training_set(&reg, &a.spine, &tables, &a.output, &opts)?;
    reg.store().flush()?;
    if json {
        println!("{}", serde_json::to_string_pretty(&r)?);
    } else {
        println!("{}: {} rows (run {})", r.output.display(), r.rows, r.run.id);
        for t in &r.tables {
            println!(
                "  {}@{}: {} of {} rows matched [{}]",
                t.table.display(),
                t.version,
                t.matched,
                r.rows,
                t.features.join(", ")
            );
        }
    }
    Ok(())
}

pub fn command(engine: &Engine, store: &StoreArgs, cmd: &TableCommand, json: bool) -> Result<()> {
    match cmd {
        TableCommand::History { table } => {
            let t = FeatureTable::open(table)?;
            let commits = t.commits()?;
            if json {
                println!("{}", serde_json::to_string_pretty(&commits)?);
                return Ok(());
            }
            for c in commits {
                let who = match &c.kiln {
                    Some(k) => format!(
                        "{} rows of {} (run {})",
                        k["rows"],
                        k["target"].as_str().unwrap_or("?"),
                        k["run"].as_str().unwrap_or("?")
                    ),
                    None => "(not written by kiln)".into(),
                };
                println!("v{:<4} {}  {:<14} {who}", c.version, c.time, c.operation);
            }
        }
        TableCommand::Show {
            table,
            output,
            limit,
        } => {
            let r = TableRef::parse(table);
            let t = FeatureTable::open(&r.dir)?;
            let version = t.resolve(&r.at)?;
            // The table's files hold raw values: mask them by the column
            // policies of the names that wrote it, for this principal.
            // A table Kiln did not write has no policies and needs no store.
            let masking = if t.targets(version)?.is_empty() {
                kiln_host::store::Masking::default()
            } else {
                t.masking(store.open(engine, false)?.store(), version)?
            };
            let (schema, batches) = t.read(version)?;
            let schema = masking.schema(&schema)?;
            let batches = batches
                .iter()
                .map(|b| masking.apply(b))
                .collect::<Result<Vec<_>, _>>()?;
            let rows: usize = batches.iter().map(|b| b.num_rows()).sum();
            if let Some(out) = output {
                let mut w = kiln_host::io::Writer::create(out, schema)?;
                for b in &batches {
                    w.write(b)?;
                }
                w.finish()?;
                if json {
                    println!(
                        "{}",
                        json!({"table": r.dir, "version": version, "rows": rows, "output": out})
                    );
                } else {
                    println!(
                        "{}@{version}: {rows} rows written to {}",
                        r.dir.display(),
                        out.display()
                    );
                }
            } else if json {
                println!(
                    "{}",
                    json!({"table": r.dir, "version": version, "rows": rows})
                );
            } else {
                println!("{}@{version}: {rows} rows", r.dir.display());
                let mut left = *limit;
                let mut shown = Vec::new();
                for b in &batches {
                    if left == 0 {
                        break;
                    }
                    let n = left.min(b.num_rows());
                    shown.push(b.slice(0, n));
                    left -= n;
                }
                println!("{}", arrow::util::pretty::pretty_format_batches(&shown)?);
            }
        }
        TableCommand::Vacuum {
            table,
            keep_days,
            dry_run,
        } => {
            let reg = store.open(engine, false)?;
            let r = table::vacuum(reg.store(), table, *keep_days, *dry_run)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&r)?);
            } else {
                let verb = if r.dry_run { "would delete" } else { "deleted" };
                println!("{}: {verb} {} files", r.table.display(), r.deleted.len());
                for f in &r.deleted {
                    println!("  {f}");
                }
                if !r.protected.is_empty() {
                    println!(
                        "  kept versions {:?}: recorded training sets read them",
                        r.protected
                    );
                }
            }
        }
    }
    Ok(())
}

/// `kiln lineage trace DIR[@VERSION]` for a feature table: the lineage id
/// of that version, and a label.
pub fn trace_target(arg: &Path) -> Result<Option<(String, String)>> {
    let r = TableRef::parse(&arg.display().to_string());
    if !table::is_table(&r.dir) {
        return Ok(None);
    }
    let t = FeatureTable::open(&r.dir)?;
    let version = t.resolve(&r.at)?;
    if version < 0 {
        bail!("{} has no versions yet", r.dir.display());
    }
    Ok(Some((
        t.dataset_id(version)?,
        format!("{}@{version}", r.dir.display()),
    )))
}
