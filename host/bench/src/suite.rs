//! The suite: data, kernels, native references, the runners and the report.

use std::fmt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use arrow::array::{
    make_array, Array, ArrayRef, AsArray, Float64Array, MutableArrayData, RecordBatch, StringArray,
    UInt32Array,
};
use arrow::buffer::{BooleanBuffer, NullBuffer, ScalarBuffer};
use arrow::datatypes::{DataType, Field, Float64Type, Schema, UInt32Type};
use serde::Serialize;
use serde_json::Value;

use kiln_runtime::{
    Engine, EngineConfig, Error, MemoryChecks, Params, Plugin, Result, State, Transformer,
};
use kiln_serve::{InstanceStrategy, ServingOptions, ServingTransform};

/// Mean in the `standard-scaler` state used for throughput (data are uniform on [0, 100)).
pub const SCALER_MEAN: f64 = 50.0;
/// Standard deviation in the `standard-scaler` state (100 / sqrt(12)).
pub const SCALER_STD: f64 = 28.867_513_459_481_287;
/// Bucket count of `hash-encode` (seed 0).
pub const HASH_BUCKETS: u32 = 1024;
/// Boundaries of `bucketize`.
pub const BOUNDARIES: [f64; 9] = [10.0, 20.0, 30.0, 40.0, 50.0, 60.0, 70.0, 80.0, 90.0];
/// Categories of the `one-hot` latency batches.
pub const CATEGORIES: [&str; 8] = [
    "basic", "family", "gold", "plus", "premium", "pro", "student", "trial",
];

/// The pandas / scikit-learn side, run with `python3 - DATA.arrow ...`.
pub const PYTHON_SCRIPT: &str = include_str!("../benches/python/kernels.py");

/// Guest memory one throughput call touches per input row (bytes), for
/// sizing `keep_resident`.
const WORKING_SET_PER_ROW: usize = 48;

/// The end-to-end job in pyarrow + scikit-learn (read Parquet, scale,
/// write Parquet), timed in-process beside `kiln run` as a whole process.
pub const PYTHON_END_TO_END: &str = include_str!("../benches/python/end_to_end.py");

/// The component bytes of the four plugins the benchmark runs.
#[derive(Debug, Clone)]
pub struct BenchPlugins {
    /// `standard_scaler.wasm`.
    pub standard_scaler: Vec<u8>,
    /// `one_hot.wasm`.
    pub one_hot: Vec<u8>,
    /// `hash_encode.wasm`.
    pub hash_encode: Vec<u8>,
    /// `bucketize.wasm`.
    pub bucketize: Vec<u8>,
}

impl BenchPlugins {
    /// Read `standard_scaler.wasm`, `one_hot.wasm`, `hash_encode.wasm` and
    /// `bucketize.wasm` from a folder (e.g. `target/wasm/wasm32-wasip2/plugin`).
    ///
    /// # Errors
    /// [`Error::Io`] naming the file that cannot be read.
    pub fn from_dir(dir: &Path) -> Result<BenchPlugins> {
        let read = |k: Kernel| {
            let p = dir.join(k.file());
            std::fs::read(&p).map_err(|e| Error::io(p, e))
        };
        Ok(BenchPlugins {
            standard_scaler: read(Kernel::StandardScaler)?,
            one_hot: read(Kernel::OneHot)?,
            hash_encode: read(Kernel::HashEncode)?,
            bucketize: read(Kernel::Bucketize)?,
        })
    }

    /// For the criterion bench binaries: the plugins in `$KILN_PLUGIN_DIR`,
    /// else in the workspace's build output (`target/wasm/wasm32-wasip2/plugin`).
    /// `None` (after saying on stderr how to build them) when they are missing,
    /// so a bench skips instead of failing.
    pub fn for_benches() -> Option<BenchPlugins> {
        let dir = std::env::var_os("KILN_PLUGIN_DIR").map_or_else(
            || Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/wasm/wasm32-wasip2/plugin"),
            PathBuf::from,
        );
        BenchPlugins::from_dir(&dir)
            .map_err(|e| {
                eprintln!(
                    "skipped: {e}; build the plugins with `cargo build --release -p kiln-cli`"
                )
            })
            .ok()
    }

    /// The bytes of one kernel's plugin.
    pub fn get(&self, k: Kernel) -> &[u8] {
        match k {
            Kernel::StandardScaler => &self.standard_scaler,
            Kernel::OneHot => &self.one_hot,
            Kernel::HashEncode => &self.hash_encode,
            Kernel::Bucketize => &self.bucketize,
        }
    }
}

/// A plugin with the parameters (and state) the benchmark runs it with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kernel {
    /// `standard-scaler` on `x: Float64` with mean [`SCALER_MEAN`], std [`SCALER_STD`].
    StandardScaler,
    /// `one-hot` on `plan: Utf8` over [`CATEGORIES`] (fitted on them).
    OneHot,
    /// `hash-encode` on `s: Utf8` into [`HASH_BUCKETS`] buckets, seed 0.
    HashEncode,
    /// `bucketize` on `x: Float64` with [`BOUNDARIES`].
    Bucketize,
}

impl Kernel {
    /// All four.
    pub const ALL: [Kernel; 4] = [
        Kernel::StandardScaler,
        Kernel::OneHot,
        Kernel::HashEncode,
        Kernel::Bucketize,
    ];

    /// The plugin's name, e.g. `standard-scaler`.
    pub fn name(self) -> &'static str {
        match self {
            Kernel::StandardScaler => "standard-scaler",
            Kernel::OneHot => "one-hot",
            Kernel::HashEncode => "hash-encode",
            Kernel::Bucketize => "bucketize",
        }
    }

    /// The plugin's file name, e.g. `standard_scaler.wasm`.
    pub fn file(self) -> &'static str {
        match self {
            Kernel::StandardScaler => "standard_scaler.wasm",
            Kernel::OneHot => "one_hot.wasm",
            Kernel::HashEncode => "hash_encode.wasm",
            Kernel::Bucketize => "bucketize.wasm",
        }
    }

    /// The parameters, as JSON.
    fn params(self) -> Value {
        match self {
            Kernel::StandardScaler => serde_json::json!({"columns": ["x"]}),
            Kernel::OneHot => serde_json::json!({"columns": ["plan"]}),
            Kernel::HashEncode => {
                serde_json::json!({"columns": ["s"], "buckets": HASH_BUCKETS})
            }
            Kernel::Bucketize => {
                serde_json::json!({"columns": ["x"], "boundaries": BOUNDARIES})
            }
        }
    }

    /// A one-column input batch of `rows` rows (deterministic for a `seed`).
    pub fn input(self, rows: usize, seed: u64) -> RecordBatch {
        match self {
            Kernel::StandardScaler | Kernel::Bucketize => {
                one_column("x", Arc::new(data::floats(rows, seed)))
            }
            Kernel::HashEncode => one_column("s", Arc::new(data::strings(rows, seed))),
            Kernel::OneHot => {
                let v: StringArray = (0..rows)
                    .map(|i| Some(CATEGORIES[(i + seed as usize) % CATEGORIES.len()]))
                    .collect();
                one_column("plan", Arc::new(v))
            }
        }
    }

    /// The kernel computed natively with arrow-rs over a [`Kernel::input`]
    /// batch: what Kiln's first output column must equal. `None` for
    /// `one-hot` (not a throughput kernel) or an input of another shape.
    pub fn native(self, input: &RecordBatch) -> Option<ArrayRef> {
        let col = input.columns().first()?;
        // The parameters go through `black_box`, as a native transform reads
        // them at run time: the compiler must not specialize the kernel on
        // them (e.g. `% 1024` into a mask), which the plugin cannot do either.
        use std::hint::black_box as param;
        Some(match self {
            Kernel::StandardScaler => Arc::new(native::standard_scale(
                col.as_primitive_opt::<Float64Type>()?,
                param(SCALER_MEAN),
                param(SCALER_STD),
            )),
            Kernel::HashEncode => Arc::new(native::hash_encode(
                col.as_string_opt::<i32>()?,
                param(HASH_BUCKETS),
                param(0),
            )),
            Kernel::Bucketize => Arc::new(native::bucketize(
                col.as_primitive_opt::<Float64Type>()?,
                param(&BOUNDARIES[..]),
            )),
            Kernel::OneHot => return None,
        })
    }
}

/// The four plugins loaded in one engine and configured as the benchmark
/// runs them.
#[derive(Debug, Clone)]
pub struct Suite {
    configured: Vec<(Kernel, Plugin, Params, Option<State>)>,
}

impl Suite {
    /// Load the plugins into `engine` and configure them (fitting `one-hot`
    /// on [`CATEGORIES`]).
    ///
    /// # Errors
    /// A plugin that does not load, rejects its parameters or fails to fit.
    pub fn load(engine: &Engine, plugins: &BenchPlugins) -> Result<Suite> {
        let mut configured = Vec::new();
        for k in Kernel::ALL {
            let plugin = engine.load_bytes(plugins.get(k), Path::new(k.file()))?;
            let params = Params::from_value(k.params())?;
            let state = match k {
                Kernel::StandardScaler => {
                    let stats = serde_json::json!([
                        {"column": "x", "mean": SCALER_MEAN, "std": SCALER_STD}
                    ]);
                    Some(State::from_bytes(stats.to_string().into_bytes()))
                }
                Kernel::OneHot => {
                    let mut fitter = plugin.fitter(&params)?;
                    fitter.update(&k.input(64, 3))?;
                    Some(fitter.finish()?)
                }
                Kernel::HashEncode | Kernel::Bucketize => None,
            };
            configured.push((k, plugin, params, state));
        }
        Ok(Suite { configured })
    }

    /// A serving handle for one kernel, shared by the threads that call it.
    ///
    /// # Errors
    /// What configuring the plugin reports.
    pub fn serving(&self, k: Kernel, strategy: InstanceStrategy) -> Result<ServingTransform> {
        let (_, plugin, params, state) = self.get(k)?;
        ServingTransform::with_options(
            k.name(),
            plugin.clone(),
            params.clone(),
            state.clone(),
            ServingOptions::default().with_strategy(strategy),
        )
    }

    fn get(&self, k: Kernel) -> Result<&(Kernel, Plugin, Params, Option<State>)> {
        self.configured
            .iter()
            .find(|c| c.0 == k)
            .ok_or_else(|| Error::Internal(format!("{} is not in the suite", k.name())))
    }

    /// A new caller of one kernel (each thread needs its own).
    ///
    /// # Errors
    /// What configuring the plugin reports.
    pub fn call(&self, k: Kernel) -> Result<Box<dyn BatchCall>> {
        let (_, plugin, params, state) = self.get(k)?;
        kiln_call(plugin, params, state.as_ref())
    }
}

/// What to measure and how often.
#[derive(Debug, Clone)]
pub struct BenchOptions {
    /// Table sizes for throughput (default 1M and 10M rows).
    pub rows: Vec<usize>,
    /// Rows per Kiln / peer call in throughput runs; `None` sends the whole
    /// table in one call.
    pub batch_rows: Option<usize>,
    /// Timed repetitions per throughput measurement (the median is kept).
    pub repeats: usize,
    /// Timed calls per thread for each latency measurement.
    pub latency_calls: usize,
    /// Thread counts for latency (default 1 and 2).
    pub threads: Vec<usize>,
    /// Cached loads per plugin (the median is kept).
    pub load_repeats: usize,
    /// Python interpreter for the pandas / scikit-learn side; `None` skips it.
    pub python: Option<PathBuf>,
    /// The built peer benchmark (`host/bench/benches/peer`); `None` or a missing
    /// file skips it with instructions.
    pub peer: Option<PathBuf>,
    /// Settings of the engines the benchmark creates.
    pub engine: EngineConfig,
    /// Memory checks of the throughput engine (default
    /// [`MemoryChecks::Explicit`], what a deployment making whole-table
    /// calls would pick; latency and loads use `engine`'s).
    pub throughput_memory_checks: MemoryChecks,
    /// The `kiln` binary, for the end-to-end row (`kiln run` of the scaler
    /// on a Parquet file as a whole process); `None` leaves the row out.
    pub kiln_exe: Option<PathBuf>,
}

impl Default for BenchOptions {
    /// The full run: 1M and 10M rows, 5 repeats, 5,000 calls per latency cell.
    fn default() -> Self {
        BenchOptions {
            rows: vec![1_000_000, 10_000_000],
            batch_rows: None,
            repeats: 5,
            latency_calls: 5_000,
            threads: vec![1, 2],
            load_repeats: 10,
            python: Some(PathBuf::from("python3")),
            peer: None,
            engine: EngineConfig::default(),
            throughput_memory_checks: MemoryChecks::Explicit,
            kiln_exe: None,
        }
    }
}

impl BenchOptions {
    /// A smoke run in seconds: 10,000 rows, few repeats and calls. Its
    /// numbers are not meaningful; it checks that everything runs.
    pub fn quick() -> Self {
        BenchOptions {
            rows: vec![10_000],
            repeats: 2,
            latency_calls: 200,
            load_repeats: 2,
            ..BenchOptions::default()
        }
    }
}

/// One configured transform, called with a batch: what "a Kiln call" means
/// in this benchmark.
pub trait BatchCall: Send {
    /// Transform one batch.
    ///
    /// # Errors
    /// Whatever the calling API reports.
    fn call(&mut self, batch: &RecordBatch) -> Result<RecordBatch>;
}

impl BatchCall for Transformer {
    fn call(&mut self, batch: &RecordBatch) -> Result<RecordBatch> {
        self.apply(batch)
    }
}

impl BatchCall for ServingTransform {
    fn call(&mut self, batch: &RecordBatch) -> Result<RecordBatch> {
        self.apply(batch)
    }
}

/// The one place that decides which API the benchmark measures. To measure
/// another (e.g. a serving handle), return it here.
fn kiln_call(
    plugin: &Plugin,
    params: &Params,
    state: Option<&State>,
) -> Result<Box<dyn BatchCall>> {
    Ok(Box::new(plugin.transformer(params, state)?))
}

/// Everything one run measured.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// The machine and the run's settings.
    pub machine: MachineInfo,
    /// First and cached load of each plugin.
    pub loads: Vec<LoadRow>,
    /// Per-call latency.
    pub latency: Vec<LatencyRow>,
    /// Throughput of the three kernels.
    pub throughput: Vec<ThroughputRow>,
    /// Whole jobs: `kiln run` as a process beside pyarrow + scikit-learn.
    pub end_to_end: Vec<EndToEndRow>,
    /// Whether the pandas / scikit-learn side ran.
    pub python: SideStatus,
    /// Whether the arrow-udf-runtime side ran.
    pub peer: SideStatus,
    /// The targets of issue 13, met or missed.
    pub targets: Vec<Target>,
}

/// Where the numbers come from.
#[derive(Debug, Clone, Serialize)]
pub struct MachineInfo {
    /// Logical CPUs.
    pub cpus: usize,
    /// 1-minute load average when the run started (Linux), a noise hint.
    pub load_average: Option<f64>,
    /// The CPU model (Linux).
    pub cpu_model: Option<String>,
    /// Rows per call in throughput runs (`null`: whole table).
    pub batch_rows: Option<usize>,
    /// Timed repetitions per throughput cell.
    pub repeats: usize,
    /// Instance memory kept resident between throughput calls, in bytes
    /// (`EngineConfig::keep_resident` raised to the largest call's working
    /// set; latency and loads run with the configured value).
    pub keep_resident: usize,
    /// Memory checks of the throughput engine (`explicit` or
    /// `guard-pages`; latency and loads run with the configured ones).
    pub throughput_memory_checks: String,
}

/// Load times of one plugin.
#[derive(Debug, Clone, Serialize)]
pub struct LoadRow {
    /// Plugin name.
    pub plugin: String,
    /// Component size in bytes.
    pub bytes: usize,
    /// First load in a fresh engine: hash, compile, instantiate, describe (ms).
    pub first_load_ms: f64,
    /// Load of the same bytes again from the engine's in-memory cache (ms, median).
    pub cached_load_ms: f64,
    /// Load in a fresh engine from an on-disk compiled cache (ms), when the
    /// engine has one.
    pub disk_cached_load_ms: Option<f64>,
}

/// Latency of one call.
#[derive(Debug, Clone, Serialize)]
pub struct LatencyRow {
    /// Plugin name.
    pub plugin: String,
    /// Where each call's fresh instance comes from: `pool` (the serving
    /// default: instantiated and configured ahead, off the caller's path)
    /// or `fresh` (instantiated and configured by the caller).
    pub instances: String,
    /// `paced` (each thread waits [`PACE_US`] between calls, a steady
    /// request rate the pool keeps up with) or `back-to-back` (calls as
    /// fast as possible: the pool drains and callers prepare instances).
    pub arrival: String,
    /// Rows per batch.
    pub rows: usize,
    /// Threads calling at once (sharing one serving handle).
    pub threads: usize,
    /// Calls timed (all threads).
    pub calls: usize,
    /// Median (µs).
    pub p50_us: f64,
    /// 99th percentile (µs).
    pub p99_us: f64,
    /// Calls per second over all threads.
    pub calls_per_sec: f64,
}

/// One whole job: `kiln run` as a process against pyarrow + scikit-learn.
#[derive(Debug, Clone, Serialize)]
pub struct EndToEndRow {
    /// What the job does.
    pub job: String,
    /// Rows in the Parquet file.
    pub rows: usize,
    /// `kiln run`, the whole process (ms, median).
    pub kiln_ms: f64,
    /// pyarrow + scikit-learn in-process (ms, median), if run.
    pub python_ms: Option<f64>,
    /// Python time / Kiln time (above 1: Kiln is faster).
    pub python_vs_kiln: Option<f64>,
    /// What the Python side ran.
    pub python_impl: Option<String>,
    /// Whether both wrote the same values, bit for bit.
    pub python_equal: Option<bool>,
    /// Why the Python side failed, if it did.
    pub python_error: Option<String>,
}

/// One kernel on one table size.
#[derive(Debug, Clone, Serialize)]
pub struct ThroughputRow {
    /// `standard-scaler`, `hash-encode` or `bucketize`.
    pub kernel: String,
    /// Rows in the table.
    pub rows: usize,
    /// Native arrow-rs (ms, median).
    pub native_ms: f64,
    /// Through Kiln (ms, median).
    pub kiln_ms: f64,
    /// `kiln_ms / native_ms`.
    pub kiln_vs_native: f64,
    /// Kiln's output equals the native output (checked before timing).
    pub verified: bool,
    /// pandas / scikit-learn (ms), when run.
    pub python_ms: Option<f64>,
    /// `python_ms / kiln_ms`: how many times faster Kiln is.
    pub python_vs_kiln: Option<f64>,
    /// What the Python side ran.
    pub python_impl: Option<String>,
    /// arrow-udf-runtime (ms), when run.
    pub peer_ms: Option<f64>,
    /// `peer_ms / kiln_ms`: how many times faster Kiln is.
    pub peer_vs_kiln: Option<f64>,
    /// `peer_ms / native_ms`.
    pub peer_vs_native: Option<f64>,
}

/// Whether an outside side (Python, peer) ran.
#[derive(Debug, Clone, Serialize)]
pub struct SideStatus {
    /// `ok`, `skipped` or `error`.
    pub status: String,
    /// Why it was skipped or failed, or what ran (versions).
    pub detail: String,
}

impl SideStatus {
    fn ok(detail: impl Into<String>) -> Self {
        SideStatus {
            status: "ok".into(),
            detail: detail.into(),
        }
    }
    fn skipped(detail: impl Into<String>) -> Self {
        SideStatus {
            status: "skipped".into(),
            detail: detail.into(),
        }
    }
    fn error(detail: impl Into<String>) -> Self {
        SideStatus {
            status: "error".into(),
            detail: detail.into(),
        }
    }
}

/// One target of issue 13.
#[derive(Debug, Clone, Serialize)]
pub struct Target {
    /// A stable key for scripts, e.g.
    /// `throughput.standard-scaler.1M.kiln_vs_native`.
    pub key: String,
    /// The goal, e.g. `standard-scaler 1M float64 <= 2.5x native`.
    pub goal: String,
    /// What was measured (in `unit`), if it was.
    pub measured: Option<f64>,
    /// The bound (in `unit`).
    pub limit: f64,
    /// `x`, `us` or `ms`.
    pub unit: String,
    /// Met (`true`), missed (`false`), or not measured in this run (`null`).
    pub met: Option<bool>,
}

/// Run the whole benchmark. `progress` receives one line per step.
///
/// # Errors
/// A plugin that fails to load or run, a Kiln output that differs from the
/// native computation ([`Error::Internal`]), or a temporary file that cannot
/// be written. A missing or failing Python or peer side is not an error: it
/// is reported in [`Report::python`] / [`Report::peer`].
pub fn run(
    plugins: &BenchPlugins,
    opts: &BenchOptions,
    progress: &mut dyn FnMut(&str),
) -> Result<Report> {
    // Size the resident instance memory to the largest call, as a deployment
    // feeding batches that large would (`--keep-resident`): about 48 bytes
    // per row covers the scaler's and bucketize's copies in and out and
    // hash-encode's strings.
    let table = opts.rows.iter().copied().max().unwrap_or(0);
    let largest = opts.batch_rows.map_or(table, |b| b.min(table));
    let keep_resident = opts
        .engine
        .keep_resident
        .max(largest.saturating_mul(WORKING_SET_PER_ROW))
        .min(opts.engine.memory_limit);
    let machine = MachineInfo {
        cpus: std::thread::available_parallelism().map_or(1, |n| n.get()),
        load_average: load_average(),
        cpu_model: cpu_model(),
        batch_rows: opts.batch_rows,
        repeats: opts.repeats,
        keep_resident,
        throughput_memory_checks: opts.throughput_memory_checks.name().into(),
    };

    // First loads compile into this engine's cache; the suite then loads from it.
    // No disk cache here: the first load must compile.
    let engine = Engine::with_config(opts.engine.clone().with_cache_dir(None))?;
    progress("loads: first (compile) and cached load of each plugin");
    let mut loads = Vec::new();
    for k in Kernel::ALL {
        loads.push(time_loads(&engine, k, plugins.get(k), opts)?);
    }
    let suite = Suite::load(&engine, plugins)?;

    let mut latency = Vec::new();
    let pool = InstanceStrategy::default();
    for k in [Kernel::StandardScaler, Kernel::OneHot] {
        for rows in [1, 64] {
            let batch = k.input(rows, 7);
            for &threads in &opts.threads {
                for (instances, strategy, paced) in [
                    ("pool", pool, true),
                    ("pool", pool, false),
                    ("fresh", InstanceStrategy::Fresh, false),
                ] {
                    // The caller-side fresh instance is a reference point:
                    // one cell per kernel is enough.
                    if instances == "fresh" && (rows != 1 || threads != 1) {
                        continue;
                    }
                    let arrival = if paced { "paced" } else { "back-to-back" };
                    progress(&format!(
                        "latency: {}, {rows} row(s), {threads} thread(s), {instances}, {arrival}",
                        k.name()
                    ));
                    let serving = suite.serving(k, strategy)?;
                    let make = || -> Result<Box<dyn BatchCall>> { Ok(Box::new(serving.clone())) };
                    let mut row = time_latency(
                        k.name(),
                        &make,
                        &batch,
                        threads,
                        opts.latency_calls,
                        paced.then_some(Duration::from_micros(PACE_US)),
                    )?;
                    row.instances = instances.into();
                    latency.push(row);
                }
            }
        }
    }

    // Throughput runs in an engine whose instances keep the largest call's
    // working set resident, with explicit memory checks by default (no
    // `mprotect` of that working set when a slot is reused); latency above
    // ran with the configured settings, as a service answering small
    // requests would.
    let big = Engine::with_config(
        opts.engine
            .clone()
            .with_cache_dir(None)
            .with_keep_resident(keep_resident)
            .with_memory_checks(opts.throughput_memory_checks),
    )?;
    let suite = Suite::load(&big, plugins)?;
    let tmp = tempfile::tempdir().map_err(|e| Error::io(std::env::temp_dir(), e))?;
    let python_ready = python_status(opts.python.as_deref());
    let peer_ready = peer_status(opts.peer.as_deref());
    let mut python = python_ready.clone().err();
    let mut peer = peer_ready.clone().err();
    let (mut python_ran, mut peer_ran) = (None, None);
    let mut throughput = Vec::new();
    for &rows in &opts.rows {
        progress(&format!("throughput: generating {rows} rows"));
        let xb = Kernel::StandardScaler.input(rows, 1);
        let sb = Kernel::HashEncode.input(rows, 2);
        let x = xb.column(0).as_primitive::<Float64Type>();
        let s = sb.column(0).as_string::<i32>();
        let data_file = tmp.path().join(format!("data-{rows}.arrow"));
        write_data(&data_file, x, s)?;
        let mut py = None;
        if let (Ok(py_exe), None) = (&python_ready, &python) {
            progress(&format!("throughput: pandas / scikit-learn on {rows} rows"));
            match run_python(py_exe, &data_file, opts.repeats) {
                Ok(v) => py = Some(v),
                Err(e) => python = Some(SideStatus::error(e)),
            }
        }
        let mut pr = None;
        if let (Ok(peer_exe), None) = (&peer_ready, &peer) {
            progress(&format!("throughput: arrow-udf-runtime on {rows} rows"));
            match run_peer(peer_exe, &data_file, opts) {
                Ok(v) => pr = Some(v),
                Err(e) => peer = Some(SideStatus::error(e)),
            }
        }
        for k in [
            Kernel::StandardScaler,
            Kernel::HashEncode,
            Kernel::Bucketize,
        ] {
            let kernel = k.name();
            progress(&format!(
                "throughput: {kernel} on {rows} rows, Kiln and native"
            ));
            let input = if k == Kernel::HashEncode { &sb } else { &xb };
            let mut row = time_throughput(&suite, k, input, opts)?;
            if let Some(py) = &py {
                let ms = py
                    .pointer(&format!("/kernels/{kernel}/ms"))
                    .and_then(Value::as_f64);
                row.python_ms = ms;
                row.python_vs_kiln = ms.map(|ms| ms / row.kiln_ms);
                row.python_impl = py
                    .pointer(&format!("/kernels/{kernel}/impl"))
                    .and_then(Value::as_str)
                    .map(str::to_owned);
                if let Some(why) = python_mismatch(py, k, input) {
                    python = Some(SideStatus::error(why));
                }
            }
            if let Some(pr) = &pr {
                let ms = pr
                    .pointer(&format!("/kernels/{kernel}/ms"))
                    .and_then(Value::as_f64);
                let verified = pr
                    .pointer(&format!("/kernels/{kernel}/verified"))
                    .and_then(Value::as_bool);
                if verified == Some(false) {
                    peer = Some(SideStatus::error(format!(
                        "arrow-udf-runtime's {kernel} output differs from its native computation"
                    )));
                }
                row.peer_ms = ms;
                row.peer_vs_kiln = ms.map(|ms| ms / row.kiln_ms);
                row.peer_vs_native = ms.map(|ms| ms / row.native_ms);
            }
            throughput.push(row);
        }
        if let Some(py) = &py {
            python_ran = Some(describe_side(py));
        }
        if let Some(pr) = &pr {
            peer_ran = Some(describe_side(pr));
        }
    }
    // An error (or a skip) wins; otherwise what ran.
    let side = |status: Option<SideStatus>, ran: Option<String>| {
        status.unwrap_or_else(|| match ran {
            Some(versions) => SideStatus::ok(versions),
            None => SideStatus::skipped("no throughput rows"),
        })
    };
    let mut end_to_end = Vec::new();
    if let Some(kiln) = &opts.kiln_exe {
        let rows = opts.rows.iter().copied().min().unwrap_or(1_000_000);
        progress(&format!(
            "end to end: kiln run vs pyarrow + scikit-learn on a {rows}-row Parquet file"
        ));
        end_to_end.push(time_end_to_end(
            kiln,
            python_ready.as_ref().ok().map(PathBuf::as_path),
            &suite,
            plugins,
            rows,
            opts,
            tmp.path(),
        )?);
    }
    let python = side(python, python_ran);
    let peer = side(peer, peer_ran);
    let targets = targets(&loads, &latency, &throughput, &end_to_end);
    Ok(Report {
        machine,
        loads,
        latency,
        throughput,
        end_to_end,
        python,
        peer,
        targets,
    })
}

/// `kiln run` of the scaler over a Parquet file, timed as a whole process
/// (start, load from the disk cache, read, transform, write, exit), beside
/// the same job in pyarrow + scikit-learn timed in-process; both outputs are
/// read back and compared bit for bit.
fn time_end_to_end(
    kiln: &Path,
    python: Option<&Path>,
    suite: &Suite,
    plugins: &BenchPlugins,
    rows: usize,
    opts: &BenchOptions,
    dir: &Path,
) -> Result<EndToEndRow> {
    let input = dir.join(format!("e2e-{rows}.parquet"));
    let batch = Kernel::StandardScaler.input(rows, 5);
    let mut w = kiln_io::Writer::create(&input, batch.schema())?;
    w.write(&batch)?;
    w.finish()?;
    let plugin = dir.join(Kernel::StandardScaler.file());
    std::fs::write(&plugin, plugins.get(Kernel::StandardScaler))
        .map_err(|e| Error::io(&plugin, e))?;
    let state_file = dir.join("scaler.state");
    let (_, _, params, state) = suite.get(Kernel::StandardScaler)?;
    let state = state
        .as_ref()
        .ok_or_else(|| Error::Internal("the scaler has no state".into()))?;
    std::fs::write(&state_file, state.as_bytes()).map_err(|e| Error::io(&state_file, e))?;
    let kiln_out = dir.join("e2e-kiln.parquet");
    let cache = dir.join("cache");
    let mut cmd = Command::new(kiln);
    cmd.arg("run")
        .arg(&plugin)
        .arg("--input")
        .arg(&input)
        .arg("--output")
        .arg(&kiln_out)
        .arg("--state")
        .arg(&state_file)
        .arg("--params")
        .arg(params.as_str())
        .arg("--cache-dir")
        .arg(&cache)
        // No store in the temporary directory: nothing is recorded anywhere.
        .current_dir(dir)
        .env_remove("KILN_HOME")
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let mut run = || -> Result<()> {
        let out = cmd
            .output()
            .map_err(|e| Error::Internal(format!("cannot start {}: {e}", kiln.display())))?;
        if !out.status.success() {
            return Err(Error::Internal(format!(
                "kiln run failed ({}): {}",
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            )));
        }
        Ok(())
    };
    run()?; // warm-up: compiles into the disk cache, as any second run finds it
    let kiln_ms = median_ms(opts.repeats, &mut run)?;
    let want = kiln_io::read_all(&kiln_out, &Default::default())?.1;
    let mut row = EndToEndRow {
        job: "standard-scaler: read Parquet, transform, write Parquet".into(),
        rows,
        kiln_ms,
        python_ms: None,
        python_vs_kiln: None,
        python_impl: None,
        python_equal: None,
        python_error: None,
    };
    if let Some(py) = python {
        let py_out = dir.join("e2e-python.parquet");
        let params =
            serde_json::json!({"mean": SCALER_MEAN, "std": SCALER_STD, "repeats": opts.repeats});
        let result = run_script(
            py,
            "end_to_end.py",
            PYTHON_END_TO_END,
            &[
                input.as_os_str(),
                py_out.as_os_str(),
                params.to_string().as_ref(),
            ],
        );
        match result {
            Ok(v) => {
                let ms = v.get("ms").and_then(Value::as_f64);
                row.python_ms = ms;
                row.python_vs_kiln = ms.map(|ms| ms / kiln_ms);
                row.python_impl = v.get("impl").and_then(Value::as_str).map(str::to_owned);
                let got = kiln_io::read_all(&py_out, &Default::default())?.1;
                row.python_equal = Some(same_column(&want, &got, "x"));
            }
            Err(e) => row.python_error = Some(e),
        }
    }
    Ok(row)
}

/// Whether column `name` holds the same f64 bit patterns in both tables.
fn same_column(a: &[RecordBatch], b: &[RecordBatch], name: &str) -> bool {
    let bits = |t: &[RecordBatch]| -> Option<Vec<u64>> {
        let mut out = Vec::new();
        for batch in t {
            let c = batch
                .column_by_name(name)?
                .as_primitive_opt::<Float64Type>()?;
            out.extend(c.values().iter().map(|v| v.to_bits()));
        }
        Some(out)
    };
    matches!((bits(a), bits(b)), (Some(x), Some(y)) if x == y)
}

/// Time one kernel through Kiln and natively, after checking both agree.
fn time_throughput(
    suite: &Suite,
    k: Kernel,
    input: &RecordBatch,
    opts: &BenchOptions,
) -> Result<ThroughputRow> {
    let kernel = k.name();
    let native = || {
        k.native(input)
            .ok_or_else(|| Error::Internal(format!("{kernel} has no native version")))
    };
    let batches = split(input, opts.batch_rows);
    let mut call = suite.call(k)?;

    // Check first (this is also the warm-up): Kiln's output, whole,
    // must equal the native output.
    let want = native()?;
    let mut got = Vec::with_capacity(batches.len());
    for b in &batches {
        got.push(call.call(b)?.column(0).clone());
    }
    let got: Vec<&dyn Array> = got.iter().map(|a| a.as_ref()).collect();
    let got = arrow::compute::concat(&got)
        .map_err(|e| Error::Internal(format!("concatenating Kiln's output: {e}")))?;
    if got.to_data() != want.to_data() {
        return Err(Error::Internal(format!(
            "{kernel}: Kiln's output differs from the native arrow-rs computation on {} rows",
            input.num_rows()
        )));
    }

    // A second warm-up pass: a large call leaves its instance to the
    // reaper thread, so the next call takes another pool slot, and each slot
    // faults its memory in once. Timing starts when both have.
    for b in &batches {
        std::hint::black_box(call.call(b)?);
    }

    let native_ms = median_ms(opts.repeats, || {
        std::hint::black_box(native()?);
        Ok(())
    })?;
    let kiln_ms = median_ms(opts.repeats, || {
        for b in &batches {
            std::hint::black_box(call.call(b)?);
        }
        Ok(())
    })?;
    Ok(ThroughputRow {
        kernel: kernel.into(),
        rows: input.num_rows(),
        native_ms,
        kiln_ms,
        kiln_vs_native: kiln_ms / native_ms,
        verified: true,
        python_ms: None,
        python_vs_kiln: None,
        python_impl: None,
        peer_ms: None,
        peer_vs_kiln: None,
        peer_vs_native: None,
    })
}

/// The same computations as the plugins, written natively with arrow-rs:
/// the floor Kiln is measured against. Each gives the plugin's output bit
/// for bit (the benchmark checks it before timing).
pub mod native {
    use super::*;

    /// `standard-scaler`: `(x - mean) / std` with arrow's `unary` kernel
    /// (one vectorized pass; nulls kept).
    pub fn standard_scale(x: &Float64Array, mean: f64, std: f64) -> Float64Array {
        x.unary(|v| (v - mean) / std)
    }

    /// `standard-scaler` with arrow's arithmetic kernels (`sub` then `div`
    /// by scalars): two passes, for comparison with [`standard_scale`].
    ///
    /// # Errors
    /// Arrow's, which cannot happen for `Float64` inputs.
    pub fn standard_scale_kernels(
        x: &Float64Array,
        mean: f64,
        std: f64,
    ) -> std::result::Result<ArrayRef, arrow::error::ArrowError> {
        use arrow::compute::kernels::numeric::{div, sub};
        let centered = sub(x, &Float64Array::new_scalar(mean))?;
        div(&centered, &Float64Array::new_scalar(std))
    }

    /// `hash-encode`: MurmurHash3 x86_32 of each string's UTF-8 bytes,
    /// modulo `buckets`, read straight from the offsets and values buffers
    /// with the plugin's algorithm ([`murmur3_32_padded`] wherever 4 bytes
    /// follow the string), so both sides do the same work.
    pub fn hash_encode(s: &StringArray, buckets: u32, seed: u32) -> UInt32Array {
        let data = s.value_data();
        let values: ScalarBuffer<u32> = s
            .value_offsets()
            .windows(2)
            .map(|w| {
                let (start, end) = (w[0] as usize, w[1] as usize);
                let h = if end + 4 <= data.len() {
                    murmur3_32_padded(data, start, end - start, seed)
                } else {
                    murmur3_32(&data[start..end], seed)
                };
                h % buckets
            })
            .collect();
        UInt32Array::new(values, s.nulls().cloned())
    }

    /// `bucketize`: how many `boundaries` are `<= x` (numpy.digitize,
    /// right=False); nulls and NaN give null.
    pub fn bucketize(x: &Float64Array, boundaries: &[f64]) -> UInt32Array {
        let v = x.values();
        let values: ScalarBuffer<u32> = v
            .iter()
            .map(|x| boundaries.partition_point(|b| *b <= *x) as u32)
            .collect();
        let not_nan = NullBuffer::new(BooleanBuffer::collect_bool(v.len(), |i| !v[i].is_nan()));
        let nulls = NullBuffer::union(x.nulls(), Some(&not_nan));
        UInt32Array::new(values, nulls)
    }

    const C1: u32 = 0xcc9e_2d51;
    const C2: u32 = 0x1b87_3593;

    /// A 4-byte block scrambled for the state (`k1` of the reference).
    fn scramble(k: u32) -> u32 {
        k.wrapping_mul(C1).rotate_left(15).wrapping_mul(C2)
    }

    /// One block folded into the state.
    fn mix(h: u32, k: u32) -> u32 {
        (h ^ scramble(k))
            .rotate_left(13)
            .wrapping_mul(5)
            .wrapping_add(0xe654_6b64)
    }

    /// The length folded in and the final avalanche.
    fn finish(mut h: u32, len: usize) -> u32 {
        h ^= len as u32;
        h ^= h >> 16;
        h = h.wrapping_mul(0x85eb_ca6b);
        h ^= h >> 13;
        h = h.wrapping_mul(0xc2b2_ae35);
        h ^ (h >> 16)
    }

    /// MurmurHash3 x86_32 (Austin Appleby's reference).
    pub fn murmur3_32(data: &[u8], seed: u32) -> u32 {
        let mut h = seed;
        let mut chunks = data.chunks_exact(4);
        for c in &mut chunks {
            h = mix(h, u32::from_le_bytes([c[0], c[1], c[2], c[3]]));
        }
        let tail = chunks.remainder();
        if !tail.is_empty() {
            let k = tail
                .iter()
                .enumerate()
                .fold(0u32, |k, (i, b)| k | (u32::from(*b) << (8 * i)));
            h ^= scramble(k);
        }
        finish(h, data.len())
    }

    /// [`murmur3_32`] of `buf[start..start + len]` where at least 4 bytes of
    /// `buf` follow the string: the tail read as one word and masked, the
    /// odd block kept by a select, so the only data-dependent branch is the
    /// pair loop's exit (strings of random length mispredict every other
    /// one). The hash-encode plugin's kernel, written natively.
    pub fn murmur3_32_padded(buf: &[u8], start: usize, len: usize, seed: u32) -> u32 {
        const TAIL_MASK: [u32; 4] = [0, 0xff, 0xffff, 0xff_ffff];
        assert!(
            start + len + 4 <= buf.len(),
            "4 bytes must follow the string"
        );
        // (Reading through `buf` with a `try_into` compiles best here; a
        // subslice read byte by byte was 1.5x slower natively.)
        let word = |i: usize| {
            u32::from_le_bytes(buf[start + i..start + i + 4].try_into().expect("4 bytes"))
        };
        let mut h = seed;
        let pairs = len / 8;
        for i in 0..pairs {
            h = mix(mix(h, word(8 * i)), word(8 * i + 4));
        }
        let odd = mix(h, word(8 * pairs));
        h = if len & 4 != 0 { odd } else { h };
        h ^= scramble(word(len & !3) & TAIL_MASK[len & 3]);
        finish(h, len)
    }
}

/// Deterministic benchmark data (splitmix64), so every side sees the same table.
pub mod data {
    use super::*;

    fn splitmix(state: &mut u64) -> u64 {
        *state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = *state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// `n` float64 values uniform on [0, 100), no nulls.
    pub fn floats(n: usize, seed: u64) -> Float64Array {
        let mut st = seed;
        let v: ScalarBuffer<f64> = (0..n)
            .map(|_| (splitmix(&mut st) >> 11) as f64 / (1u64 << 53) as f64 * 100.0)
            .collect();
        Float64Array::new(v, None)
    }

    /// `n` ASCII strings of 4 to 24 characters (about 14 on average), no nulls.
    pub fn strings(n: usize, seed: u64) -> StringArray {
        const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789_-";
        let mut st = seed;
        let mut buf = String::new();
        let mut b = arrow::array::StringBuilder::with_capacity(n, n * 14);
        for _ in 0..n {
            let r = splitmix(&mut st);
            let len = 4 + (r % 21) as usize;
            buf.clear();
            let mut bits = splitmix(&mut st);
            for i in 0..len {
                if i % 10 == 9 {
                    bits = splitmix(&mut st);
                }
                buf.push(ALPHABET[(bits % ALPHABET.len() as u64) as usize] as char);
                bits /= ALPHABET.len() as u64;
            }
            b.append_value(&buf);
        }
        b.finish()
    }
}

fn one_column(name: &str, a: ArrayRef) -> RecordBatch {
    let schema = Schema::new(vec![Field::new(
        name,
        a.data_type().clone(),
        a.is_nullable(),
    )]);
    RecordBatch::try_new(Arc::new(schema), vec![a]).expect("one column matches its field")
}

/// A batch as batches of `rows` rows, each with its own buffers (a sliced
/// array would send its whole parent buffer across the boundary).
pub fn split(batch: &RecordBatch, rows: Option<usize>) -> Vec<RecordBatch> {
    let n = batch.num_rows();
    match rows {
        Some(r) if r > 0 && r < n => (0..n)
            .step_by(r)
            .map(|off| {
                let columns = batch
                    .columns()
                    .iter()
                    .map(|a| {
                        let data = a.to_data();
                        let mut part = MutableArrayData::new(vec![&data], false, r);
                        part.try_extend(0, off, (off + r).min(n))
                            .expect("a slice of one array cannot overflow its offsets");
                        make_array(part.freeze())
                    })
                    .collect();
                RecordBatch::try_new(batch.schema(), columns)
                    .expect("parts of a valid batch are valid")
            })
            .collect(),
        _ => vec![batch.clone()],
    }
}

fn write_data(path: &Path, x: &Float64Array, s: &StringArray) -> Result<()> {
    let schema = Arc::new(Schema::new(vec![
        Field::new("x", DataType::Float64, false),
        Field::new("s", DataType::Utf8, false),
    ]));
    let batch = RecordBatch::try_new(
        schema.clone(),
        vec![Arc::new(x.clone()), Arc::new(s.clone())],
    )
    .map_err(|e| Error::Internal(format!("benchmark table: {e}")))?;
    let mut w = kiln_io::Writer::create(path, schema)?;
    w.write(&batch)?;
    w.finish()?;
    Ok(())
}

fn median_ms(repeats: usize, mut f: impl FnMut() -> Result<()>) -> Result<f64> {
    let mut t = Vec::with_capacity(repeats.max(1));
    for _ in 0..repeats.max(1) {
        let t0 = Instant::now();
        f()?;
        t.push(t0.elapsed().as_secs_f64() * 1e3);
    }
    t.sort_by(f64::total_cmp);
    Ok(t[t.len() / 2])
}

/// First load into an engine that has not seen the plugin, then cached
/// loads of the same bytes.
fn time_loads(engine: &Engine, k: Kernel, bytes: &[u8], opts: &BenchOptions) -> Result<LoadRow> {
    let label = Path::new(k.file());
    let t0 = Instant::now();
    std::hint::black_box(engine.load_bytes(bytes, label)?);
    let first_load_ms = t0.elapsed().as_secs_f64() * 1e3;
    let cached_load_ms = median_ms(opts.load_repeats, || {
        std::hint::black_box(engine.load_bytes(bytes, label)?);
        Ok(())
    })?;
    Ok(LoadRow {
        plugin: k.name().into(),
        bytes: bytes.len(),
        first_load_ms,
        cached_load_ms,
        disk_cached_load_ms: time_disk_cached_load(opts, k, bytes)?,
    })
}

/// A load in a fresh engine that finds the compiled artifact in an on-disk
/// cache (ms, median): what a restarted process pays. One engine warms a
/// temporary cache directory; each timed load is in a new engine over it.
fn time_disk_cached_load(opts: &BenchOptions, k: Kernel, bytes: &[u8]) -> Result<Option<f64>> {
    let dir = tempfile::tempdir().map_err(|e| Error::io(std::env::temp_dir(), e))?;
    let config = opts
        .engine
        .clone()
        .with_cache_dir(Some(dir.path().to_path_buf()));
    let label = Path::new(k.file());
    Engine::with_config(config.clone())?.load_bytes(bytes, label)?;
    let mut times = Vec::with_capacity(opts.load_repeats.max(1));
    for _ in 0..opts.load_repeats.max(1) {
        let engine = Engine::with_config(config.clone())?;
        let t0 = Instant::now();
        std::hint::black_box(engine.load_bytes(bytes, label)?);
        times.push(t0.elapsed().as_secs_f64() * 1e3);
    }
    times.sort_by(f64::total_cmp);
    Ok(Some(times[times.len() / 2]))
}

/// The gap (µs) each thread leaves between calls in `paced` latency cells:
/// 10,000 calls/s per thread, a busy endpoint the warm pool keeps up with.
pub const PACE_US: u64 = 100;

type MakeCall<'a> = dyn Fn() -> Result<Box<dyn BatchCall>> + Sync + 'a;

/// `threads` threads, each with its own caller, each timing `calls` calls.
fn time_latency(
    plugin: &str,
    make: &MakeCall<'_>,
    batch: &RecordBatch,
    threads: usize,
    calls: usize,
    pace: Option<Duration>,
) -> Result<LatencyRow> {
    let threads = threads.max(1);
    let warmup = (calls / 10).clamp(10, 500);
    let barrier = Barrier::new(threads);
    let t0 = Instant::now();
    let per_thread: Vec<Result<Vec<u64>>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|_| {
                scope.spawn(|| {
                    let mut call = make()?;
                    for _ in 0..warmup {
                        std::hint::black_box(call.call(batch)?);
                    }
                    barrier.wait();
                    let mut t = Vec::with_capacity(calls);
                    for _ in 0..calls {
                        if let Some(gap) = pace {
                            std::thread::sleep(gap);
                        }
                        let t0 = Instant::now();
                        std::hint::black_box(call.call(batch)?);
                        t.push(t0.elapsed().as_nanos() as u64);
                    }
                    Ok(t)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err(Error::Internal("a latency thread panicked".into())))
            })
            .collect()
    });
    let wall = t0.elapsed().as_secs_f64();
    let mut all = Vec::with_capacity(threads * calls);
    for t in per_thread {
        all.extend(t?);
    }
    all.sort_unstable();
    let pct = |p: usize| all[(all.len() * p / 100).min(all.len() - 1)] as f64 / 1e3;
    Ok(LatencyRow {
        plugin: plugin.into(),
        instances: String::new(),
        arrival: if pace.is_some() {
            "paced"
        } else {
            "back-to-back"
        }
        .into(),
        rows: batch.num_rows(),
        threads,
        calls: all.len(),
        p50_us: pct(50),
        p99_us: pct(99),
        calls_per_sec: all.len() as f64 / wall,
    })
}

/// `Ok(interpreter)` if it imports scikit-learn, pandas and pyarrow.
fn python_status(python: Option<&Path>) -> std::result::Result<PathBuf, SideStatus> {
    let Some(py) = python else {
        return Err(SideStatus::skipped("disabled"));
    };
    let ok = Command::new(py)
        .args(["-c", "import sklearn, pandas, pyarrow"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if ok {
        Ok(py.to_path_buf())
    } else {
        Err(SideStatus::skipped(format!(
            "{} cannot import sklearn, pandas and pyarrow; install them with `pip install scikit-learn pandas pyarrow`",
            py.display()
        )))
    }
}

fn run_python(py: &Path, data: &Path, repeats: usize) -> std::result::Result<Value, String> {
    let params = serde_json::json!({
        "mean": SCALER_MEAN,
        "std": SCALER_STD,
        "buckets": HASH_BUCKETS,
        "boundaries": BOUNDARIES,
        "repeats": repeats,
    });
    run_script(
        py,
        "kernels.py",
        PYTHON_SCRIPT,
        &[data.as_os_str(), params.to_string().as_ref()],
    )
}

/// Pipe `script` to `py -` with `args`; its stdout is one JSON document.
fn run_script(
    py: &Path,
    name: &str,
    script: &str,
    args: &[&std::ffi::OsStr],
) -> std::result::Result<Value, String> {
    let mut child = Command::new(py)
        .arg("-")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", py.display()))?;
    if let Some(mut stdin) = child.stdin.take() {
        std::io::Write::write_all(&mut stdin, script.as_bytes())
            .map_err(|e| format!("cannot send {name} to python: {e}"))?;
    }
    let out = child
        .wait_with_output()
        .map_err(|e| format!("python did not finish: {e}"))?;
    parse_side_output(&format!("python {name}"), &out)
}

fn parse_side_output(what: &str, out: &std::process::Output) -> std::result::Result<Value, String> {
    if !out.status.success() {
        return Err(format!(
            "{what} failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    serde_json::from_slice(&out.stdout).map_err(|e| format!("{what} printed no JSON: {e}"))
}

/// Check the Python side computed the same thing (checksums).
fn python_mismatch(py: &Value, k: Kernel, input: &RecordBatch) -> Option<String> {
    let kernel = k.name();
    let got = py
        .pointer(&format!("/kernels/{kernel}/checksum"))
        .and_then(Value::as_f64)?;
    let out = k.native(input)?;
    let want: f64 = if let Some(f) = out.as_primitive_opt::<Float64Type>() {
        f.values().iter().sum()
    } else {
        out.as_primitive_opt::<UInt32Type>()?
            .values()
            .iter()
            .map(|v| f64::from(*v))
            .sum()
    };
    let close = (got - want).abs() <= 1e-6 * want.abs().max(1.0);
    (!close).then(|| format!("the Python {kernel} checksum {got} differs from native {want}"))
}

fn peer_status(peer: Option<&Path>) -> std::result::Result<PathBuf, SideStatus> {
    const HOW: &str = "build it with: cd host/bench/benches/peer && rustup target add wasm32-wasip1 && cargo build --release --target wasm32-wasip1 -p kiln-peer-udf && cargo build --release -p kiln-peer-bench (then pass --peer host/bench/benches/peer/target/release/kiln-peer-bench)";
    match peer {
        Some(p) if p.is_file() => Ok(p.to_path_buf()),
        Some(p) => Err(SideStatus::skipped(format!(
            "{} not found; {HOW}",
            p.display()
        ))),
        None => Err(SideStatus::skipped(format!("not configured; {HOW}"))),
    }
}

fn run_peer(peer: &Path, data: &Path, opts: &BenchOptions) -> std::result::Result<Value, String> {
    let mut cmd = Command::new(peer);
    cmd.arg("--data")
        .arg(data)
        .args(["--repeats", &opts.repeats.to_string()]);
    if let Some(r) = opts.batch_rows {
        cmd.args(["--batch-rows", &r.to_string()]);
    }
    let out = cmd
        .output()
        .map_err(|e| format!("cannot start {}: {e}", peer.display()))?;
    parse_side_output("kiln-peer-bench", &out)
}

fn describe_side(v: &Value) -> String {
    v.get("versions")
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .map(|(k, v)| format!("{k} {}", v.as_str().unwrap_or("?")))
                .collect::<Vec<_>>()
                .join(", ")
        })
        .unwrap_or_default()
}

fn targets(
    loads: &[LoadRow],
    latency: &[LatencyRow],
    tp: &[ThroughputRow],
    e2e: &[EndToEndRow],
) -> Vec<Target> {
    let mut out = Vec::new();
    let mut push = |key: String,
                    goal: String,
                    measured: Option<f64>,
                    limit: f64,
                    unit: &str,
                    at_most: bool| {
        out.push(Target {
            key,
            goal,
            measured,
            limit,
            unit: unit.into(),
            met: measured.map(|m| if at_most { m <= limit } else { m >= limit }),
        });
    };
    // Throughput targets (issue 13) hold at 1M and 10M rows; with neither
    // measured, the smallest table stands in.
    let mut sizes: Vec<usize> = [1_000_000, 10_000_000]
        .into_iter()
        .filter(|n| tp.iter().any(|r| r.rows == *n))
        .collect();
    if sizes.is_empty() {
        sizes.extend(tp.iter().map(|r| r.rows).min());
    }
    for rows in sizes {
        let at = |kernel: &str| tp.iter().find(|r| r.kernel == kernel && r.rows == rows);
        let n = human_rows(rows);
        for (kernel, limit) in [
            ("standard-scaler", 2.5),
            ("bucketize", 2.5),
            ("hash-encode", 1.5),
        ] {
            push(
                format!("throughput.{kernel}.{n}.kiln_vs_native"),
                format!("{kernel} {n}: Kiln <= {limit}x native"),
                at(kernel).map(|r| r.kiln_vs_native),
                limit,
                "x",
                true,
            );
        }
        for (kernel, times, what) in [
            ("standard-scaler", 1.0, "StandardScaler.transform"),
            ("bucketize", 1.0, "numpy.digitize"),
            ("hash-encode", 6.0, "the murmurhash3_32 loop"),
        ] {
            push(
                format!("throughput.{kernel}.{n}.python_vs_kiln"),
                format!("{kernel} {n}: Kiln >= {times}x as fast as {what}"),
                at(kernel).and_then(|r| r.python_vs_kiln),
                times,
                "x",
                false,
            );
        }
        for kernel in ["standard-scaler", "hash-encode", "bucketize"] {
            push(
                format!("throughput.{kernel}.{n}.peer_vs_kiln"),
                format!("{kernel} {n}: Kiln faster than arrow-udf-runtime"),
                at(kernel).and_then(|r| r.peer_vs_kiln),
                1.0,
                "x",
                false,
            );
        }
    }
    for plugin in ["standard-scaler", "one-hot"] {
        for arrival in ["paced", "back-to-back"] {
            let l = latency.iter().find(|l| {
                l.plugin == plugin
                    && l.rows == 1
                    && l.threads == 1
                    && l.instances == "pool"
                    && l.arrival == arrival
            });
            push(
                format!("latency.{plugin}.1-row.{arrival}.p50_us"),
                format!("{plugin} 1-row call p50 <= 10 us (1 thread, {arrival})"),
                l.map(|l| l.p50_us),
                10.0,
                "us",
                true,
            );
            push(
                format!("latency.{plugin}.1-row.{arrival}.p99_us"),
                format!("{plugin} 1-row call p99 <= 50 us (1 thread, {arrival})"),
                l.map(|l| l.p99_us),
                50.0,
                "us",
                true,
            );
        }
    }
    push(
        "load.cached_in_process_ms".into(),
        "cached load <= 20 ms (slowest plugin, in-process cache)".into(),
        loads.iter().map(|l| l.cached_load_ms).reduce(f64::max),
        20.0,
        "ms",
        true,
    );
    push(
        "load.cached_on_disk_ms".into(),
        "cached load <= 20 ms (slowest plugin, disk cache, new process)".into(),
        loads
            .iter()
            .filter_map(|l| l.disk_cached_load_ms)
            .reduce(f64::max),
        20.0,
        "ms",
        true,
    );
    if let Some(e) = e2e.first() {
        push(
            format!(
                "end_to_end.standard-scaler.{}.python_vs_kiln",
                human_rows(e.rows)
            ),
            format!(
                "kiln run {} Parquet (whole process) faster than pyarrow + scikit-learn in-process",
                human_rows(e.rows)
            ),
            e.python_vs_kiln,
            1.0,
            "x",
            false,
        );
    }
    out
}

fn human_rows(n: usize) -> String {
    if n >= 1_000_000 && n.is_multiple_of(1_000_000) {
        format!("{}M", n / 1_000_000)
    } else if n >= 1_000 && n.is_multiple_of(1_000) {
        format!("{}k", n / 1_000)
    } else {
        n.to_string()
    }
}

fn load_average() -> Option<f64> {
    std::fs::read_to_string("/proc/loadavg")
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

fn cpu_model() -> Option<String> {
    let info = std::fs::read_to_string("/proc/cpuinfo").ok()?;
    let line = info.lines().find(|l| l.starts_with("model name"))?;
    Some(line.split_once(':')?.1.trim().to_owned())
}

fn opt(v: Option<f64>, digits: usize) -> String {
    v.map_or_else(|| "-".into(), |v| format!("{v:.digits$}"))
}

/// A ratio as `12.3x`, or `-`.
fn times(v: Option<f64>) -> String {
    v.map_or_else(|| "-".into(), |v| format!("{v:.1}x"))
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let m = &self.machine;
        writeln!(
            f,
            "kiln bench: {} CPU(s){}{}, {} per call, median of {}, {} MiB kept resident and {} memory checks for throughput",
            m.cpus,
            m.cpu_model
                .as_ref()
                .map(|c| format!(" ({c})"))
                .unwrap_or_default(),
            m.load_average
                .map(|l| format!(", load average {l:.2} at start"))
                .unwrap_or_default(),
            m.batch_rows
                .map_or_else(|| "whole table".into(), |r| format!("{r} rows")),
            m.repeats,
            m.keep_resident >> 20,
            m.throughput_memory_checks
        )?;
        writeln!(
            f,
            "\nThroughput (ms; ratios are time / time, higher x = Kiln faster for python/peer)"
        )?;
        writeln!(
            f,
            "{:<16} {:>6} {:>9} {:>9} {:>8} {:>10} {:>9} {:>10} {:>9} {:>8} {:>6}",
            "kernel",
            "rows",
            "native",
            "kiln",
            "kiln/nat",
            "python",
            "py/kiln",
            "peer",
            "peer/kiln",
            "peer/nat",
            "equal"
        )?;
        for r in &self.throughput {
            writeln!(
                f,
                "{:<16} {:>6} {:>9.2} {:>9.2} {:>7.2}x {:>10} {:>9} {:>10} {:>9} {:>8} {:>6}",
                r.kernel,
                human_rows(r.rows),
                r.native_ms,
                r.kiln_ms,
                r.kiln_vs_native,
                opt(r.python_ms, 2),
                times(r.python_vs_kiln),
                opt(r.peer_ms, 2),
                times(r.peer_vs_kiln),
                times(r.peer_vs_native),
                if r.verified { "yes" } else { "NO" },
            )?;
        }
        writeln!(
            f,
            "  python: {} ({})",
            self.python.status, self.python.detail
        )?;
        writeln!(f, "  peer:   {} ({})", self.peer.status, self.peer.detail)?;
        writeln!(
            f,
            "\nPer-call latency through ServingTransform (a fresh instance per call; \
             pool = prepared off the caller's path, paced = one call per {PACE_US} us per thread)"
        )?;
        writeln!(
            f,
            "{:<16} {:<6} {:<13} {:>5} {:>8} {:>9} {:>9} {:>11}",
            "plugin", "inst.", "arrival", "rows", "threads", "p50 us", "p99 us", "calls/s"
        )?;
        for l in &self.latency {
            writeln!(
                f,
                "{:<16} {:<6} {:<13} {:>5} {:>8} {:>9.1} {:>9.1} {:>11.0}",
                l.plugin,
                l.instances,
                l.arrival,
                l.rows,
                l.threads,
                l.p50_us,
                l.p99_us,
                l.calls_per_sec
            )?;
        }
        if !self.end_to_end.is_empty() {
            writeln!(
                f,
                "\nEnd to end (ms; kiln = `kiln run` as a whole process, python = pyarrow + scikit-learn in-process)"
            )?;
            for e in &self.end_to_end {
                writeln!(
                    f,
                    "{:<56} {:>6} kiln {:>8.1} python {:>8} py/kiln {:>7} equal {}",
                    e.job,
                    human_rows(e.rows),
                    e.kiln_ms,
                    e.python_ms.map_or("-".into(), |v| format!("{v:.1}")),
                    e.python_vs_kiln.map_or("-".into(), |v| format!("{v:.2}x")),
                    e.python_equal.map_or("-", |b| if b { "yes" } else { "NO" }),
                )?;
            }
        }
        writeln!(f, "\nLoads")?;
        writeln!(
            f,
            "{:<16} {:>9} {:>12} {:>11} {:>10}",
            "plugin", "KiB", "first ms", "cached ms", "disk ms"
        )?;
        for l in &self.loads {
            writeln!(
                f,
                "{:<16} {:>9} {:>12.1} {:>11.3} {:>10}",
                l.plugin,
                l.bytes / 1024,
                l.first_load_ms,
                l.cached_load_ms,
                opt(l.disk_cached_load_ms, 2)
            )?;
        }
        writeln!(f, "\nTargets (issue 13)")?;
        for t in &self.targets {
            let verdict = match t.met {
                Some(true) => "met   ",
                Some(false) => "MISSED",
                None => "n/a   ",
            };
            writeln!(
                f,
                "  {verdict} {:<68} {} (limit {} {})",
                t.goal,
                t.measured
                    .map_or_else(|| "not measured".into(), |m| format!("{m:.2} {}", t.unit)),
                t.limit,
                t.unit
            )?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn murmur3_matches_published_vectors() {
        let cases: &[(&[u8], u32, u32)] = &[
            (b"", 0, 0),
            (b"", 1, 0x514E_28B7),
            (&[0xff, 0xff, 0xff, 0xff], 0, 0x7629_3B50),
            (&[0x21, 0x43, 0x65, 0x87], 0x5082_EDEE, 0x2362_F9DE),
            (&[0x21, 0x43, 0x65], 0, 0x7E4A_8634),
            (&[0x21, 0x43], 0, 0xA0F7_B07A),
            (&[0x21], 0, 0x7266_1CF4),
            (b"Hello, world!", 1234, 0xFAF6_CDB3),
            (
                b"The quick brown fox jumps over the lazy dog",
                0,
                0x2E4F_F723,
            ),
        ];
        for (data, seed, want) in cases {
            assert_eq!(
                native::murmur3_32(data, *seed),
                *want,
                "{data:?} seed {seed}"
            );
        }
    }

    #[test]
    fn padded_murmur_equals_the_reference_whatever_follows() {
        for len in 0..=40usize {
            for fill in [0x00u8, 0xff] {
                let mut buf: Vec<u8> = (0..len).map(|i| (i * 37 + len) as u8).collect();
                buf.extend([fill; 4]);
                assert_eq!(
                    native::murmur3_32_padded(&buf, 0, len, 9),
                    native::murmur3_32(&buf[..len], 9),
                    "len {len} fill {fill:#x}"
                );
            }
        }
    }

    #[test]
    fn native_bucketize_follows_numpy_digitize() {
        // numpy.digitize([-1, 10, 15, 90, 1e9, nan], [10..90 step 10]) = [0, 1, 1, 9, 9, 9]; NaN is null here.
        let x = Float64Array::from(vec![
            Some(-1.0),
            Some(10.0),
            None,
            Some(15.0),
            Some(90.0),
            Some(1e9),
            Some(f64::NAN),
        ]);
        let got: Vec<Option<u32>> = native::bucketize(&x, &BOUNDARIES).iter().collect();
        assert_eq!(
            got,
            [Some(0), Some(1), None, Some(1), Some(9), Some(9), None]
        );
    }

    #[test]
    fn native_scaler_kernels_agree_with_unary() {
        let x = data::floats(1000, 5);
        let a = native::standard_scale(&x, SCALER_MEAN, SCALER_STD);
        let b = native::standard_scale_kernels(&x, SCALER_MEAN, SCALER_STD).unwrap();
        assert_eq!(a.to_data(), b.to_data());
        assert_eq!(a.value(0), (x.value(0) - 50.0) / SCALER_STD);
    }

    #[test]
    fn data_is_deterministic_and_in_range() {
        let (a, b) = (data::floats(500, 1), data::floats(500, 1));
        assert_eq!(a, b);
        assert!(a.values().iter().all(|v| (0.0..100.0).contains(v)));
        let s = data::strings(500, 2);
        assert_eq!(s, data::strings(500, 2));
        assert!(s.iter().flatten().all(|v| (4..=24).contains(&v.len())));
    }

    #[test]
    fn split_gives_whole_batches_with_own_buffers() {
        let b = Kernel::StandardScaler.input(10, 1);
        let parts = split(&b, Some(4));
        assert_eq!(
            parts.iter().map(|b| b.num_rows()).collect::<Vec<_>>(),
            [4, 4, 2]
        );
        let col = |b: &RecordBatch| b.column(0).as_primitive::<Float64Type>().clone();
        assert_eq!(parts[1].column(0).to_data().offset(), 0);
        assert_eq!(parts[1].column(0).to_data().buffers()[0].len(), 4 * 8);
        assert_eq!(col(&parts[1]).value(0), col(&b).value(4));
        assert_eq!(split(&b, None).len(), 1);
    }

    #[test]
    fn native_is_defined_for_the_throughput_kernels() {
        for k in [
            Kernel::StandardScaler,
            Kernel::HashEncode,
            Kernel::Bucketize,
        ] {
            let out = k.native(&k.input(3, 1)).expect("native version");
            assert_eq!(out.len(), 3, "{}", k.name());
        }
        assert!(Kernel::OneHot.native(&Kernel::OneHot.input(3, 1)).is_none());
    }
}
