//! `kiln`: fit and run WebAssembly feature transforms over data files.
//!
//! A thin layer over `kiln-host`: argument parsing, progress and printing.
//! Exit codes: 0 success, 1 error, 2 usage error.

mod access;
mod bench;
mod demo;
mod pipeline;
mod quality;
mod registry;
mod serve;
mod sql;
mod table;

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::{Args, Parser, Subcommand};
use kiln_host::job::{self, JobOptions};
use kiln_host::{
    Bundle, Engine, EngineConfig, FitTarget, MemoryChecks, Params, Plugin, State, Transformer,
};
use registry::{LineageCommand, StoreArgs, StoreCommand};

/// The process allocator. A serving pool prepares and drops instances on its
/// refill thread while callers use them on theirs, so memory is routinely
/// freed on another thread than the one that allocated it; glibc's malloc
/// then takes the owning arena's lock (a futex wake-up per contended free),
/// which made a back-to-back 1-row call through the pool slower than
/// instantiating on the caller (docs/performance.md, tenth round).
/// mimalloc frees across threads without a lock. The price is a higher peak
/// RSS for batch jobs (freed batches are returned to the kernel after
/// 10 ms, not at once): 84-88 MiB against 55 for a 10M-row `kiln run`.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Run ML feature transforms as sandboxed WebAssembly components over Arrow data.
///
/// A plugin is a `.wasm` component implementing the kiln:transform contract;
/// its id is the sha256 of its bytes. Fitted plugins learn a state from data
/// (`kiln fit`), and `kiln run` applies plugin + parameters + state to files.
/// Files are Parquet (.parquet), CSV (.csv), Arrow IPC (.arrow/.ipc/.feather
/// file, .arrows stream) or JSON-lines (.jsonl/.ndjson), chosen by extension.
///
/// With a store (--store DIR, $KILN_HOME or ./.kiln), fits become named,
/// tagged versions and every run is recorded with its inputs' and outputs'
/// fingerprints: `kiln versions`, `promote`, `rollback`, `lineage`, `verify`,
/// `export` work on them.
///
/// Example:
///   kiln fit standard_scaler.wasm --input train.parquet --param columns=age --name scaler
///   kiln promote scaler --from dev --to prod
///   kiln run scaler@prod --input live.parquet --output features.parquet
///   kiln lineage trace features.parquet
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
    #[command(flatten)]
    store: StoreArgs,
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
    /// Instance memory kept resident between calls, e.g. 64MiB: size it to a
    /// call's working set (about 4x a batch's bytes) so large calls stop
    /// faulting in fresh pages.
    #[arg(long, global = true, value_name = "SIZE", default_value = "64MiB", value_parser = parse_size)]
    keep_resident: usize,
    /// How plugin code is kept inside its memory: guard-pages (cheapest for
    /// small calls; the default) or explicit bounds checks (faster for
    /// whole-table calls of a million rows or more, about 5% slower for
    /// 1-row calls). `kiln bench` measures throughput with explicit unless
    /// this is given.
    #[arg(long, global = true, value_name = "CHECKS",
          value_parser = clap::builder::TypedValueParser::try_map(
            clap::builder::PossibleValuesParser::new(["guard-pages", "explicit"]),
            |s| s.parse::<MemoryChecks>(),
        ))]
    memory_checks: Option<MemoryChecks>,
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
    /// Fit a plugin on input files; register a named version and/or write the state.
    ///
    /// --name registers the result; --state-out writes the state to a file.
    /// With --name, the plugin and the state are stored by content id, the
    /// version (plugin, parameters, state) is created and NAME@TAG moves to
    /// it; the fit run is recorded with the fingerprints of its inputs.
    ///
    /// Examples:
    ///   kiln fit standard_scaler.wasm --input train.parquet --param columns=age --name scaler
    ///   kiln fit scaler --input train2.parquet          (refit NAME's plugin and parameters; moves scaler@dev)
    ///   kiln fit standard_scaler.wasm --input train.csv --param columns=age --state-out scaler.state
    #[command(verbatim_doc_comment)]
    Fit {
        /// The plugin: a .wasm file, a transform NAME, or a registered plugin id.
        plugin: String,
        #[command(flatten)]
        data: DataArgs,
        #[command(flatten)]
        params: ParamArgs,
        /// Also write the fitted state to this file.
        #[arg(long, value_name = "FILE")]
        state_out: Option<PathBuf>,
        /// Register the result under this transform name.
        #[arg(long, value_name = "NAME")]
        name: Option<String>,
        /// The tag to move to the new version.
        #[arg(long, value_name = "TAG", default_value = "dev")]
        tag: String,
        /// Why (kept in the tag history).
        #[arg(long, value_name = "TEXT", default_value = "")]
        reason: String,
        /// What the feature means (stored with the name).
        #[arg(long, value_name = "TEXT")]
        description: Option<String>,
        /// Who owns the feature (stored with the name).
        #[arg(long, value_name = "WHO")]
        owner: Option<String>,
    },
    /// Apply a transform (plugin file, bundle, NAME@TAG or version id) to input files.
    ///
    /// TRANSFORM is a plugin file (.wasm, with --params and --state), a
    /// bundle (.kiln), NAME@TAG or a version id from the store. The output
    /// is written to a temporary file beside OUTPUT and renamed only when
    /// every batch succeeded; a failed run leaves OUTPUT untouched. Runs are
    /// recorded in the store when one is in use (NAME@TAG, --store,
    /// KILN_HOME, or an existing ./.kiln).
    ///
    /// Examples:
    ///   kiln run scaler@prod --input live.parquet --output features.parquet
    ///   kiln run standard_scaler.wasm --state scaler.state --param columns=age --input live.csv --output f.csv
    #[command(verbatim_doc_comment)]
    Run {
        /// The transform: a .wasm or .kiln file, NAME@TAG, or a version id.
        plugin: String,
        #[command(flatten)]
        data: DataArgs,
        /// Output file; the format follows the extension.
        #[arg(short, long, value_name = "FILE")]
        output: PathBuf,
        #[command(flatten)]
        params: ParamArgs,
        /// Fitted state from `kiln fit --state-out` (plugin files only).
        #[arg(long, value_name = "FILE")]
        state: Option<PathBuf>,
    },
    /// Register a plugin in the store (bytes and `describe` metadata).
    Add {
        /// The plugin (.wasm component).
        plugin: PathBuf,
    },
    /// List transform names, or one name's versions and tag history.
    Versions {
        /// The transform name (all names if omitted).
        name: Option<String>,
    },
    /// Point NAME@TAG at a version.
    Tag {
        /// NAME@TAG, e.g. scaler@staging.
        tag: String,
        /// The version id (or unique prefix), or another NAME@TAG.
        version: String,
        /// Why (kept in the tag history).
        #[arg(long, default_value = "")]
        reason: String,
    },
    /// Move NAME@TO to where NAME@FROM points.
    Promote {
        /// The transform name.
        name: String,
        /// The tag to promote from.
        #[arg(long, default_value = "staging")]
        from: String,
        /// The tag to move.
        #[arg(long, default_value = "prod")]
        to: String,
        /// Why (kept in the tag history).
        #[arg(long, default_value = "")]
        reason: String,
    },
    /// Move NAME@TAG back to its previous target (itself recorded as a move).
    Rollback {
        /// NAME@TAG, e.g. scaler@prod.
        tag: String,
        /// Why (kept in the tag history).
        #[arg(long, default_value = "")]
        reason: String,
    },
    /// Inspect recorded runs: log, show, trace a file, draw the graph.
    #[command(subcommand)]
    Lineage(LineageCommand),
    /// Re-execute a recorded run with its pinned plugin, parameters and state
    /// and report bit-identical, or the first column and row that differ.
    Verify {
        /// Run id (or a unique prefix), from `kiln lineage log`.
        run: String,
    },
    /// Remove runs older than N days and what nothing kept references
    /// (tags and their history keep their versions). Dry run unless --apply.
    Gc {
        /// Keep runs (and what they use) from the last N days.
        #[arg(long, value_name = "N", default_value_t = 30)]
        keep_days: u64,
        /// Remove for real.
        #[arg(long)]
        apply: bool,
    },
    /// Write NAME@TAG as a self-contained .kiln bundle for serving.
    Export {
        /// NAME@TAG.
        tag: String,
        /// The bundle file to write.
        #[arg(short, long, value_name = "FILE.kiln")]
        output: PathBuf,
    },
    /// Store maintenance.
    #[command(subcommand)]
    Store(StoreCommand),
    /// The audit log of administrative actions: log, verify, head.
    #[command(subcommand)]
    Audit(registry::AuditCommand),
    /// Who may do what: roles with grants on names, members, clearances for
    /// sensitive columns, bearer tokens for `kiln serve`, column masks.
    ///
    /// Off until `kiln access enable`; then every command acts as a principal
    /// (--as, else $KILN_USER, else the OS user) and needs a grant:
    ///   read     see and read a name's features (training sets, the dashboard)
    ///   run      run it (run, pipeline run, materialize, export, serving POSTs)
    ///   promote  move its tags (fit --name, tag, promote, rollback)
    ///   admin    its grants and column masks; admin on '*' is everything
    ///            (roles, members, clearances, tokens, gc, access disable)
    /// Each level includes the ones above it in this list. A grant is on a
    /// name, on '*', or on a prefix ending in '*' (team-a.*).
    ///
    /// Column masks apply whether access control is on or off: a principal
    /// whose roles lack the column's sensitivity label gets it hashed (keyed
    /// with the store's secret salt), redacted or bucketized, through
    /// `kiln run`, `kiln serve` and `kiln training-set`.
    ///
    /// `kiln materialize` refuses a principal without clearance for a masked
    /// column (a feature table holds raw values); training sets mask.
    ///
    /// Every change is an entry of the audit log (`kiln audit log`). No change
    /// may leave an enabled store without an admin on '*'.
    ///
    /// Trust: on the CLI --as is self-asserted, so whoever can write the
    /// store's files can act as anyone; grants there guard against mistakes
    /// and leave an audited trail. Over HTTP a bearer token is the identity,
    /// and `kiln serve` enforces every grant (docs/governance.md).
    ///
    /// Examples:
    ///   kiln access enable --as alice                     (alice becomes admin)
    ///   kiln access grant analysts --on 'customers.*' --allow read --as alice
    ///   kiln access grant analysts --member bob --as alice
    ///   kiln access mask customers email --sensitivity pii --with hash --as alice
    ///   kiln access grant privacy --member carol --clearance pii --as alice
    ///   kiln access token create svc-serving --label "prod feature server" --as alice
    ///   kiln access check bob --on customers --allow run
    ///   kiln access show
    #[command(subcommand, verbatim_doc_comment)]
    Access(access::AccessCommand),
    /// Write a pipeline's features for event files to a feature table (Delta Lake).
    ///
    /// Runs NAME@TAG over the inputs (each step a recorded run), adds the
    /// pipeline file's [[windows]] aggregations (each event sees [t - w, t)
    /// of its entity), and writes entity key, event time and features as ONE
    /// commit carrying the run and version id. Idempotent: the same input and
    /// version are written once. Nothing is committed on failure.
    ///
    /// Examples:
    ///   kiln materialize txn@prod --input events.parquet --table tables/txn
    ///   kiln materialize scaler@dev --input e.csv --table t --entity customer_id --timestamp event_at
    ///   kiln lineage trace tables/txn@3
    #[command(verbatim_doc_comment)]
    Materialize(table::MaterializeArgs),
    /// Join feature tables to a spine, point in time, into a training file.
    ///
    /// Each spine row (entity, time t, labels) gets each table's latest
    /// feature row of the same entity with event time <= t (or < t with
    /// --exclude-exact), at most --ttl old; ties: latest _kiln_created_at,
    /// then latest _kiln_row. Every spine row is kept (nulls where nothing
    /// matched). The run is recorded with each table version it read, and
    /// `kiln table vacuum` keeps those versions.
    ///
    /// Examples:
    ///   kiln training-set --spine labels.parquet --features tables/txn,tables/profile --output train.parquet
    ///   kiln training-set --spine labels.csv --features tables/txn@4 --ttl 7d --output train.parquet
    #[command(verbatim_doc_comment)]
    TrainingSet(table::TrainingSetArgs),
    /// Run SQL over data files, calling pinned versions as functions.
    ///
    /// kiln('NAME@TAG', col, ...) applies a version from the store: the
    /// columns are its input, in the order of its `columns` parameter; it
    /// returns a struct of its output columns (take one with ['age'], all with
    /// unnest). The version is pinned when the query is planned, the same
    /// plugin, parameters and state as `kiln run NAME@TAG`, a fresh instance
    /// per batch, the same output bits. With --output the result is written
    /// (replaced only on success) and recorded as a `sql` run: inputs, output,
    /// query and versions, as `kiln run` records (`kiln lineage show RUN`).
    ///
    /// Examples:
    ///   kiln sql "SELECT customer_id, kiln('scaler@prod', age, income)['age'] AS age_z FROM c" -t c=customers.parquet
    ///   kiln sql "SELECT id, unnest(kiln('scaler@prod', age, income)) FROM c" -t c=customers.csv -o features.parquet
    ///   kiln sql "SELECT plan, avg(s['income']) FROM (SELECT plan, z(age, income) AS s FROM c) GROUP BY plan" -t c=a.parquet -t c=b.parquet -f z=scaler.kiln
    #[command(verbatim_doc_comment)]
    Sql(sql::SqlArgs),
    /// Feature tables: history, time travel, vacuum.
    #[command(subcommand)]
    Table(table::TableCommand),
    /// Declarative pipelines: fit, run and show a kiln.toml feature set.
    #[command(subcommand)]
    Pipeline(pipeline::PipelineCommand),
    /// Replay a serving parity log through the pinned version it names and
    /// report every output that differs bit for bit (exit 1 if any).
    Parity {
        /// The log directory (meta.json, inputs.arrows, outputs.arrows).
        log: PathBuf,
    },
    /// Profile data files: count, nulls, min/max, mean/std, quantiles,
    /// histogram, top categories per column.
    Profile {
        /// Files read in order as one table.
        #[arg(required = true)]
        inputs: Vec<PathBuf>,
    },
    /// Check a data file against a contract (JSON: per column type,
    /// nullable, max_null_fraction, min, max, allowed, unique, severity).
    /// Exits 1 if a rule with severity `fail` is broken.
    Check {
        /// The data file.
        input: PathBuf,
        /// The contract file.
        #[arg(long, value_name = "FILE")]
        contract: PathBuf,
    },
    /// Compare live data with a training profile per feature (PSI,
    /// Jensen–Shannon, Kolmogorov–Smirnov, L∞). Exit code: 0 pass, 3 warn, 4 fail.
    ///
    /// BASELINE is NAME@TAG or a version id (the profile kept at fit time),
    /// a profile JSON from `kiln profile --json`, or a data file.
    Drift {
        /// NAME@TAG, version id, profile .json or data file.
        baseline: String,
        /// Live data files.
        #[arg(short, long = "input", value_name = "FILE", required = true, num_args = 1..)]
        inputs: Vec<PathBuf>,
        /// Also write a self-contained HTML report with per-feature histograms.
        #[arg(long, value_name = "FILE")]
        html: Option<PathBuf>,
        /// PSI at which a feature warns.
        #[arg(long, default_value_t = 0.1)]
        warn: f64,
        /// PSI at which a feature fails.
        #[arg(long, default_value_t = 0.25)]
        fail: f64,
        /// Per-feature PSI thresholds, COLUMN=WARN:FAIL (repeatable).
        #[arg(long, value_name = "COL=W:F")]
        threshold: Vec<String>,
    },
    // The help text is ServeArgs' doc comment.
    Serve(serve::ServeArgs),
    // The help text is UiArgs' doc comment.
    Ui(serve::UiArgs),
    /// Run the built-in example: fit and apply the bundled plugins to the
    /// bundled customer table and print the features.
    Demo {
        /// Keep the demo's files in this directory instead of a temporary one.
        #[arg(long, value_name = "DIR")]
        dir: Option<PathBuf>,
    },
    /// Measure Kiln beside native arrow-rs, pandas/scikit-learn and
    /// arrow-udf-runtime, and print the ratios (see docs/performance.md).
    Bench(bench::BenchArgs),
}

#[derive(Args)]
pub(crate) struct DataArgs {
    /// Input files, read in order as one table (same schema).
    #[arg(short, long = "input", value_name = "FILE", required = true, num_args = 1..)]
    pub(crate) inputs: Vec<PathBuf>,
    /// Rows per batch sent to the plugin.
    #[arg(long, value_name = "N", default_value_t = 65_536)]
    pub(crate) batch_size: usize,
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
        Err(e) => match e.downcast_ref::<quality::Exit>() {
            Some(quality::Exit(code, msg)) => {
                if !msg.is_empty() {
                    eprintln!("{msg}");
                }
                ExitCode::from(*code)
            }
            None => {
                eprintln!("error: {e:#}");
                ExitCode::FAILURE
            }
        },
    }
}

fn try_main(cli: Cli) -> Result<()> {
    if !(cli.limits.deadline > 0.0 && cli.limits.deadline.is_finite()) {
        anyhow::bail!("--deadline must be a positive number of seconds");
    }
    let config = EngineConfig::default()
        .with_deadline(Duration::from_secs_f64(cli.limits.deadline))
        .with_memory_limit(cli.limits.memory_limit)
        .with_keep_resident(cli.limits.keep_resident)
        .with_memory_checks(cli.limits.memory_checks.unwrap_or_default())
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
            name,
            tag,
            reason,
            description,
            owner,
        } => {
            // Refitting a named transform (`kiln fit scaler` or
            // `kiln fit scaler@prod`) registers under that name by default.
            let name = name.or_else(|| {
                let id_like = plugin.len() >= 8 && plugin.chars().all(|c| c.is_ascii_hexdigit());
                (!Path::new(&plugin).exists() && !plugin.ends_with(".wasm") && !id_like)
                    .then(|| plugin.split('@').next().unwrap_or_default().to_owned())
                    .filter(|n| !n.is_empty())
            });
            let target = name.map(|name| FitTarget {
                name,
                tag,
                reason,
                description,
                owner,
            });
            fit(
                &engine,
                &cli.store,
                &plugin,
                &data,
                &params,
                state_out.as_deref(),
                target,
                json,
            )
        }
        Command::Run {
            plugin,
            data,
            output,
            params,
            state,
        } => run(
            &engine,
            &cli.store,
            &plugin,
            &data,
            &params,
            state.as_deref(),
            &output,
            json,
        ),
        Command::Add { plugin } => registry::add(&engine, &cli.store, &plugin, json),
        Command::Versions { name } => {
            registry::versions(&engine, &cli.store, name.as_deref(), json)
        }
        Command::Tag {
            tag,
            version,
            reason,
        } => registry::tag(&engine, &cli.store, &tag, &version, &reason, json),
        Command::Promote {
            name,
            from,
            to,
            reason,
        } => registry::promote(&engine, &cli.store, &name, &from, &to, &reason, json),
        Command::Rollback { tag, reason } => {
            registry::rollback(&engine, &cli.store, &tag, &reason, json)
        }
        Command::Lineage(cmd) => registry::lineage(&engine, &cli.store, &cmd, json),
        Command::Verify { run } => registry::verify(&engine, &cli.store, &run, json),
        Command::Gc { keep_days, apply } => {
            registry::gc(&engine, &cli.store, keep_days, apply, json)
        }
        Command::Export { tag, output } => {
            registry::export(&engine, &cli.store, &tag, &output, json)
        }
        Command::Store(cmd) => registry::store_cmd(&engine, &cli.store, &cmd, json),
        Command::Audit(cmd) => registry::audit(&engine, &cli.store, &cmd, json),
        Command::Access(cmd) => access::command(&engine, &cli.store, &cmd, json),
        Command::Materialize(args) => table::materialize(&engine, &cli.store, &args, json),
        Command::TrainingSet(args) => table::training_set(&engine, &cli.store, &args, json),
        Command::Table(cmd) => table::command(&engine, &cli.store, &cmd, json),
        Command::Sql(args) => sql::sql(&engine, &cli.store, &args, json),
        Command::Pipeline(cmd) => pipeline::command(&engine, &cli.store, cmd, json),
        Command::Parity { log } => registry::parity(&engine, &cli.store, &log, json),
        Command::Profile { inputs } => quality::profile(&inputs, json),
        Command::Check { input, contract } => quality::check(&input, &contract, json),
        Command::Drift {
            baseline,
            inputs,
            html,
            warn,
            fail,
            threshold,
        } => quality::drift(
            &engine,
            &cli.store,
            &baseline,
            &inputs,
            html.as_deref(),
            kiln_host::quality::Thresholds { warn, fail },
            &threshold,
            json,
        ),
        Command::Serve(args) => serve::run(&engine, &cli.store, &args),
        Command::Ui(args) => serve::ui(&engine, &cli.store, &args),
        Command::Demo { dir } => demo::run(&engine, dir.as_deref(), json),
        Command::Bench(args) => bench::run(
            &args,
            engine.config().clone(),
            cli.limits.memory_checks,
            json,
        ),
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

impl ParamArgs {
    fn given(&self) -> bool {
        self.params.is_some() || !self.param.is_empty()
    }
}

#[allow(clippy::too_many_arguments)]
fn fit(
    engine: &Engine,
    store: &StoreArgs,
    spec: &str,
    data: &DataArgs,
    params: &ParamArgs,
    state_out: Option<&Path>,
    target: Option<FitTarget>,
    json: bool,
) -> Result<()> {
    let pb = progress_bar(json);
    let opts = JobOptions {
        batch_size: data.batch_size,
        ..Default::default()
    };
    let mut progress = |rows| {
        if let Some(pb) = &pb {
            pb.set_position(rows)
        }
    };
    if target.is_none() && !store.active() && !Path::new(spec).exists() {
        anyhow::bail!("'{spec}' is not a file; to refit a named transform use the store (--store DIR or KILN_HOME)");
    }
    if target.is_none() && state_out.is_none() {
        anyhow::bail!("nowhere to put the state: pass --name NAME to register it in the store, or --state-out FILE");
    }
    let (plugin, state, report) = if target.is_some() || store.active() {
        let reg = store.open(engine, target.is_some())?;
        let (plugin, from) = reg.plugin_for(spec)?;
        let params = match (&from, params.given()) {
            (Some(v), false) => Params::from_json(&v.params)?,
            _ => params.resolve(&plugin)?,
        };
        let out = reg.fit(
            &plugin,
            &params,
            &data.inputs,
            target.as_ref(),
            &opts,
            &mut progress,
        )?;
        let state = out
            .version
            .state_id
            .as_deref()
            .map(|s| reg.store().state(s))
            .transpose()?;
        let report = serde_json::json!({
            "run_id": out.run.id,
            "version_id": out.version.id,
            "tagged": out.tagged,
            "rows": out.run.inputs.iter().map(|d| d.rows).sum::<u64>(),
            "elapsed_ms": out.run.wall_ms,
            "params": serde_json::from_str::<serde_json::Value>(params.as_str())?,
        });
        (plugin, state, report)
    } else {
        let plugin = load(engine, Path::new(spec))?;
        let params = params.resolve(&plugin)?;
        let (state, summary) =
            job::fit_files(&plugin, &params, &data.inputs, &opts, &mut progress)?;
        let report = serde_json::json!({
            "rows": summary.rows,
            "batches": summary.batches,
            "elapsed_ms": summary.elapsed.as_secs_f64() * 1e3,
            "params": serde_json::from_str::<serde_json::Value>(params.as_str())?,
        });
        (plugin, Some(state), report)
    };
    if let Some(pb) = pb {
        pb.finish_and_clear();
    }
    if let (Some(out), Some(state)) = (state_out, &state) {
        write_atomic(out, state.as_bytes())?;
    }
    let mut report = report;
    report["plugin_id"] = plugin.id().into();
    report["plugin"] = plugin.info().name.clone().into();
    report["state_id"] = state.as_ref().map(State::id).into();
    report["state_out"] = state_out.map(|p| p.display().to_string()).into();
    if json {
        println!("{report}");
    } else {
        println!(
            "fitted {} on {} rows{}",
            plugin.info().name,
            report["rows"],
            match &report["elapsed_ms"] {
                serde_json::Value::Number(n) => format!(" in {:.1} ms", n.as_f64().unwrap_or(0.0)),
                _ => String::new(),
            }
        );
        if let Some(s) = &state {
            println!(
                "state {}{}",
                s.id(),
                state_out
                    .map(|p| format!(" -> {}", p.display()))
                    .unwrap_or_default()
            );
        }
        if let Some(v) = report["version_id"].as_str() {
            println!("version {v}");
        }
        if let Some(t) = report["tagged"].as_str() {
            println!(
                "{t} -> {}",
                &report["version_id"].as_str().unwrap_or("")[..12]
            );
        }
        if let Some(r) = report["run_id"].as_str() {
            println!("run {r}");
        }
    }
    Ok(())
}

#[allow(clippy::too_many_arguments)]
fn run(
    engine: &Engine,
    store: &StoreArgs,
    spec: &str,
    data: &DataArgs,
    params: &ParamArgs,
    state: Option<&Path>,
    output: &Path,
    json: bool,
) -> Result<()> {
    let pb = progress_bar(json);
    let opts = JobOptions {
        batch_size: data.batch_size,
        ..Default::default()
    };
    let mut progress = |rows| {
        if let Some(pb) = &pb {
            pb.set_position(rows)
        }
    };
    let path = Path::new(spec);
    let is_bundle = path.extension().is_some_and(|e| e == "kiln");
    let (plugin, summary, recorded, state_id) = if path.exists() && !is_bundle && !store.active() {
        // A plugin file and nothing to record: load it while the reader
        // thread starts decoding the input (a cold process spends a few
        // milliseconds on each).
        let mut loaded = None;
        let summary = job::run_files_loading(
            || -> Result<Transformer> {
                let plugin = engine.load(path)?;
                let params = params.resolve(&plugin)?;
                let state = read_state(state)?;
                let transformer = job::transformer(&plugin, &params, state.as_ref())?;
                loaded = Some((plugin, state.as_ref().map(State::id)));
                Ok(transformer)
            },
            &data.inputs,
            output,
            &opts,
            &mut progress,
        )?;
        let (plugin, state_id) =
            loaded.ok_or_else(|| anyhow::anyhow!("the job ran without loading the plugin"))?;
        (plugin, summary, None, state_id)
    } else if path.exists() {
        let (bytes, plugin, params, state) = if is_bundle {
            if params.given() || state.is_some() {
                anyhow::bail!(
                    "a bundle pins its parameters and state: drop --params/--param/--state"
                );
            }
            let b = Bundle::read(path)?;
            let plugin = b.load(engine)?;
            (
                b.plugin_bytes().to_vec(),
                plugin,
                b.params(),
                b.state().cloned(),
            )
        } else {
            let bytes =
                std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
            let plugin = engine.load_bytes(&bytes, path)?;
            let params = params.resolve(&plugin)?;
            (bytes, plugin, params, read_state(state)?)
        };
        let state_id = state.as_ref().map(State::id);
        if store.active() {
            let reg = store.open(engine, false)?;
            let version = reg.register_parts(&plugin, &bytes, &params, state.as_ref())?;
            let (rec, summary) =
                reg.run(&version, None, &data.inputs, output, &opts, &mut progress)?;
            (plugin, summary, Some(rec), state_id)
        } else {
            let summary = job::run_files(
                &plugin,
                &params,
                state.as_ref(),
                &data.inputs,
                output,
                &opts,
                &mut progress,
            )?;
            (plugin, summary, None, state_id)
        }
    } else {
        if params.given() || state.is_some() {
            anyhow::bail!("'{spec}' is pinned in the store: drop --params/--param/--state (or give a plugin file)");
        }
        let reg = store.open(engine, false)?;
        let target = spec.contains('@').then_some(spec);
        let version = match reg.store().resolve_any(spec)? {
            kiln_host::store::Resolved::Version(v) => v,
            kiln_host::store::Resolved::Pipeline(p) => {
                drop(pb);
                return pipeline::run(&reg, &p, target, data, output, json);
            }
        };
        let (plugin, _, _) = reg.load_version(&version)?;
        let (rec, summary) =
            reg.run(&version, target, &data.inputs, output, &opts, &mut progress)?;
        (plugin, summary, Some(rec), version.state_id)
    };
    if let Some(pb) = pb {
        pb.finish_and_clear();
    }
    if json {
        println!(
            "{}",
            serde_json::json!({
                "plugin_id": plugin.id(),
                "plugin": plugin.info().name,
                "run_id": recorded.as_ref().map(|r| r.id.clone()),
                "version_id": recorded.as_ref().map(|r| r.transform.version_id.clone()),
                "params": recorded.as_ref().and_then(|r| serde_json::from_str::<serde_json::Value>(&r.transform.params).ok()),
                "state_id": state_id,
                "output": output,
                "output_fingerprint": summary.output_fingerprint.as_ref().map(|f| f.id.clone()),
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
            "{}: {} rows -> {} ({} rows, {} columns) in {:.2?}{}",
            plugin.info().name,
            summary.rows_in,
            output.display(),
            summary.rows_out,
            summary.output_schema.fields().len(),
            summary.elapsed,
            recorded
                .map(|r| format!("\nrun {}", r.id))
                .unwrap_or_default()
        );
    }
    Ok(())
}

/// The state file given with `--state`, if any.
fn read_state(path: Option<&Path>) -> Result<Option<State>> {
    path.map(|p| {
        std::fs::read(p)
            .map(State::from_bytes)
            .with_context(|| format!("cannot read state file {}", p.display()))
    })
    .transpose()
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
    let mut builder = tempfile::Builder::new();
    // Renamed into place: the mode `File::create` gives, not 0600.
    #[cfg(unix)]
    builder.permissions(std::os::unix::fs::PermissionsExt::from_mode(0o666));
    let mut tmp = builder
        .tempfile_in(dir)
        .with_context(|| format!("cannot write in {}", dir.display()))?;
    std::io::Write::write_all(&mut tmp, bytes)?;
    tmp.as_file().sync_all()?;
    tmp.persist(path)
        .with_context(|| format!("cannot write {}", path.display()))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn keep_resident_flag_default_is_the_engine_default() {
        assert_eq!(
            super::parse_size("64MiB"),
            Ok(kiln_host::EngineConfig::DEFAULT_KEEP_RESIDENT)
        );
    }
}
