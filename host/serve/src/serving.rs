//! Serving: a loaded, pinned transform that a service calls per request.
//!
//! A [`ServingTransform`] is a name bound to a *target* (plugin, parameters,
//! fitted state). It is `Send + Sync + Clone` (clones share everything) and
//! [`ServingTransform::apply`] may be called from many threads at once.
//!
//! Every call runs in an instance that was freshly instantiated and
//! configured and that no earlier call touched, so no output can depend on
//! call history and an instance that trapped is never used again. By default
//! ([`InstanceStrategy::Pool`]) those instances are prepared ahead of time by
//! a background thread, off the caller's path: a call takes a warm instance,
//! applies it once, and hands it back to that thread to be dropped. When the
//! pool is empty (calls arrive faster than the thread refills it) the caller
//! prepares one itself, which costs what [`InstanceStrategy::Fresh`] costs.
//!
//! [`ServingTransform::reload`] swaps the target atomically; calls already
//! running finish on the old one. Counters and a latency histogram are kept
//! per transform across reloads ([`ServingTransform::metrics`]).

use std::collections::VecDeque;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError, RwLock};
use std::time::{Duration, Instant};

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use sha2::{Digest, Sha256};

use kiln_pipeline::Pipeline;
use kiln_quality::parity::{ParityLogger, ParityMeta};
use kiln_runtime::{Params, Plugin, Ready, Result, Signature, State};

/// Input schemas remembered per target (with their wire form and output schema).
const SCHEMA_CACHE: usize = 16;

/// How a [`ServingTransform`] gets the instance each call runs in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum InstanceStrategy {
    /// Keep up to `depth` instances instantiated and configured ahead of
    /// time, on a background thread; each serves exactly one call. The
    /// default (depth 4). A pool holds at most `2 × depth` instances plus
    /// those in calls, out of the engine's 256.
    Pool {
        /// How many warm instances to keep ready (at least 1).
        depth: usize,
    },
    /// Instantiate and configure a fresh instance on the caller's thread for
    /// every call (what [`kiln_runtime::Transformer::apply`] does).
    Fresh,
    /// Reuse configured instances across calls. **Not history independent**:
    /// whatever a plugin keeps in its memory survives into the next call (the
    /// `counter` test plugin sees its count grow). Kept only to measure what
    /// freshness costs; never serve with it.
    #[doc(hidden)]
    ReuseUnsafe,
}

impl Default for InstanceStrategy {
    fn default() -> Self {
        InstanceStrategy::Pool { depth: 4 }
    }
}

/// Options of a [`ServingTransform`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ServingOptions {
    /// Where call instances come from (default: a warm pool of 4).
    pub strategy: InstanceStrategy,
}

impl ServingOptions {
    /// Set the instance strategy.
    pub fn with_strategy(mut self, strategy: InstanceStrategy) -> Self {
        self.strategy = strategy;
        self
    }
}

/// A named, pinned transform, ready to serve: callable from many threads,
/// reloadable atomically, with counters and a latency histogram.
///
/// Cheap to clone; clones share the target, the warm pool and the metrics.
///
/// The warm pool frees memory across threads (its refill thread drops
/// instances that callers used); under glibc's malloc those frees contend
/// on arena locks and double a back-to-back call's latency. Serve from a
/// process whose global allocator frees across threads without a lock
/// (mimalloc or jemalloc), as the `kiln` binary does (docs/serving.md).
///
/// # Examples
/// ```no_run
/// use std::sync::Arc;
/// use arrow::array::{ArrayRef, RecordBatch, StringArray};
/// use kiln_runtime::{Engine, Params};
/// use kiln_serve::ServingTransform;
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let engine = Engine::new()?;
/// let plugin = engine.load("hash_encode.wasm".as_ref())?;
/// let params = Params::from_json(r#"{"columns": ["city"], "buckets": 16}"#)?;
/// let city = ServingTransform::new("city", plugin, params, None)?;
/// let batch = RecordBatch::try_from_iter([(
///     "city",
///     Arc::new(StringArray::from(vec!["Paris"])) as ArrayRef,
/// )])?;
/// let features = city.apply(&batch)?;
/// println!("{} calls so far", city.metrics().calls);
/// # let _ = features; Ok(()) }
/// ```
#[derive(Clone)]
pub struct ServingTransform {
    shared: Arc<Shared>,
}

struct Shared {
    name: String,
    options: ServingOptions,
    current: RwLock<Arc<Target>>,
    metrics: Metrics,
    parity: ParityHook,
}

impl std::fmt::Debug for ServingTransform {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let t = self.target();
        let steps: Vec<String> = t
            .steps
            .iter()
            .map(|s| s.plugin.plugin_ref().to_string())
            .collect();
        f.debug_struct("ServingTransform")
            .field("name", &self.shared.name)
            .field("steps", &steps)
            .field("version", &t.version)
            .field("strategy", &self.shared.options.strategy)
            .finish()
    }
}

impl ServingTransform {
    /// Bind `name` to a plugin with parameters and (for fitted plugins) a
    /// state, with the default options (a warm pool of 4 instances).
    ///
    /// The plugin is configured once here, so bad parameters or state fail
    /// now rather than at the first request.
    ///
    /// # Errors
    /// [`crate::Error::InvalidParams`] / [`crate::Error::InvalidState`] if the
    /// plugin rejects them; trap and limit errors while configuring.
    pub fn new(
        name: impl Into<String>,
        plugin: Plugin,
        params: Params,
        state: Option<State>,
    ) -> Result<ServingTransform> {
        ServingTransform::with_options(name, plugin, params, state, ServingOptions::default())
    }

    /// As [`ServingTransform::new`], with options.
    ///
    /// # Errors
    /// As [`ServingTransform::new`].
    pub fn with_options(
        name: impl Into<String>,
        plugin: Plugin,
        params: Params,
        state: Option<State>,
        options: ServingOptions,
    ) -> Result<ServingTransform> {
        let name = name.into();
        let target = Target::single(&name, plugin, params, state, options.strategy)?;
        Ok(ServingTransform::from_target(name, target, options))
    }

    /// Bind `name` to a pipeline: [`ServingTransform::apply`] runs every
    /// step in order, each in its own fresh instance, exactly as
    /// [`Pipeline::transformer`] does (bit-identical output). Everything
    /// else (threads, reload, metrics, parity logs) works as for a single
    /// transform. Contracts are not checked per call: they are dataset
    /// rules (null fractions, uniqueness) that `kiln pipeline run`, `kiln
    /// check` and `kiln drift` apply to files and parity logs.
    ///
    /// # Errors
    /// As [`ServingTransform::new`], for the first step that fails.
    pub fn pipeline(
        name: impl Into<String>,
        pipeline: &Pipeline,
        options: ServingOptions,
    ) -> Result<ServingTransform> {
        let name = name.into();
        let target = Target::pipeline(&name, pipeline, options.strategy)?;
        Ok(ServingTransform::from_target(name, target, options))
    }

    fn from_target(name: String, target: Target, options: ServingOptions) -> ServingTransform {
        ServingTransform {
            shared: Arc::new(Shared {
                name,
                options,
                current: RwLock::new(Arc::new(target)),
                metrics: Metrics::default(),
                parity: ParityHook::default(),
            }),
        }
    }

    /// The name this transform is served under.
    pub fn name(&self) -> &str {
        &self.shared.name
    }

    /// The options it was created with.
    pub fn options(&self) -> &ServingOptions {
        &self.shared.options
    }

    fn target(&self) -> Arc<Target> {
        self.shared
            .current
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Whether the current target is a pipeline (see [`ServingTransform::steps`]).
    pub fn is_pipeline(&self) -> bool {
        self.target().pipeline
    }

    /// Every step of the current target, in order: plugin, parameters and
    /// state (one step for a single transform).
    pub fn steps(&self) -> Vec<(Plugin, Params, Option<State>)> {
        self.target()
            .steps
            .iter()
            .map(|s| (s.plugin.clone(), s.params.clone(), s.state.clone()))
            .collect()
    }

    /// The windowed aggregations of the current target (a pipeline whose
    /// file declares `[[windows]]`), if any.
    pub fn windows(&self) -> Option<kiln_temporal::Windows> {
        self.target().windows.clone()
    }

    /// The serving side of the feature set's windows: the aggregates as of
    /// `at_us` (UTC microseconds) over `recent`, the events of ONE entity
    /// (any order; events at or after `at_us` are ignored). Bit for bit the
    /// row `kiln materialize` writes for an event of that entity at
    /// `at_us` (see [`kiln_temporal::Windows::at`]).
    ///
    /// # Errors
    /// [`kiln_temporal::Error::Spec`] when the target declares no windows;
    /// missing or mistyped columns in `recent`.
    pub fn windows_at(
        &self,
        recent: &RecordBatch,
        at_us: i64,
    ) -> std::result::Result<RecordBatch, kiln_temporal::Error> {
        match &self.target().windows {
            Some(w) => w.at(recent, at_us),
            None => Err(kiln_temporal::Error::Spec {
                what: "windows".into(),
                value: self.shared.name.clone(),
                hint: "it declares no [[windows]] in its pipeline file".into(),
            }),
        }
    }

    /// The plugin currently served (for a pipeline, its first step's).
    pub fn plugin(&self) -> Plugin {
        self.target().first().plugin.clone()
    }

    /// The parameters currently served (for a pipeline, its first step's).
    pub fn params(&self) -> Params {
        self.target().first().params.clone()
    }

    /// The id of the state currently served, if any (for a pipeline, its
    /// first step's).
    pub fn state_id(&self) -> Option<String> {
        self.target().first().state.as_ref().map(State::id)
    }

    /// The version currently served. For a single transform: the
    /// registry's version id (sha256 over the plugin id, the canonical
    /// parameters and the state id; see [`kiln_runtime::version_id`]). For a pipeline: [`Pipeline::id`] (the
    /// registry's pipeline id) if it has one, else a hash of its steps'
    /// versions.
    pub fn version(&self) -> String {
        self.target().version.clone()
    }

    /// Transform one batch, each step in a fresh, never-used instance of
    /// the current target. The output is validated against the output
    /// schema the plugin declares, and is bit-identical to
    /// [`kiln_runtime::Transformer::apply`]'s. If a parity log is open
    /// ([`ServingTransform::start_parity_log`]), a sampled call is logged.
    ///
    /// # Errors
    /// What the plugin reports ([`crate::Error::InvalidInput`], ...),
    /// [`crate::Error::InvalidOutput`] for malformed output, traps and
    /// limits. An instance that failed is dropped, never reused.
    pub fn apply(&self, batch: &RecordBatch) -> Result<RecordBatch> {
        let t0 = Instant::now();
        let target = self.target();
        let out = target.apply(batch, &self.shared.metrics);
        self.shared
            .metrics
            .record(t0.elapsed(), batch.num_rows(), out.as_ref().ok());
        if let Ok(o) = &out {
            self.shared
                .parity
                .log(&self.shared.name, &target.version, batch, o);
        }
        out
    }

    /// The output schema the current target declares for an input schema.
    ///
    /// # Errors
    /// What the plugin reports (a missing column, a wrong type), traps.
    pub fn output_schema(&self, input: &SchemaRef) -> Result<SchemaRef> {
        self.target().output_schema(input)
    }

    /// Point this name at a new target. The new target is configured (and
    /// its pool started) before the swap, so a bad reload leaves the old
    /// target serving; calls already running finish on the old target,
    /// calls that start after `reload` returns use the new one. A parity
    /// log describes one version: it stops logging when the version changes.
    ///
    /// # Errors
    /// As [`ServingTransform::new`]; the current target is then unchanged.
    pub fn reload(&self, plugin: Plugin, params: Params, state: Option<State>) -> Result<()> {
        let target = Target::single(
            &self.shared.name,
            plugin,
            params,
            state,
            self.shared.options.strategy,
        )?;
        self.swap(target);
        Ok(())
    }

    /// As [`ServingTransform::reload`], to a pipeline.
    ///
    /// # Errors
    /// As [`ServingTransform::pipeline`]; the current target is then unchanged.
    pub fn reload_pipeline(&self, pipeline: &Pipeline) -> Result<()> {
        let target = Target::pipeline(&self.shared.name, pipeline, self.shared.options.strategy)?;
        self.swap(target);
        Ok(())
    }

    fn swap(&self, target: Target) {
        let old = std::mem::replace(
            &mut *self
                .shared
                .current
                .write()
                .unwrap_or_else(PoisonError::into_inner),
            Arc::new(target),
        );
        self.shared.metrics.reloads.fetch_add(1, Ordering::Relaxed);
        // The old target (and its pools) goes when the last call holding it ends.
        drop(old);
    }

    /// Counters and the latency histogram since this transform was created
    /// (kept across reloads).
    pub fn metrics(&self) -> MetricsSnapshot {
        self.shared.metrics.snapshot()
    }

    /// Start logging one call in `sample_every` (1 = every call,
    /// deterministically: calls 1, 1 + n, 1 + 2n, ...) of the current
    /// version to a new parity log in `dir`, for `kiln parity` and `kiln
    /// drift`. `target` is the `name@tag` it was resolved from, if any.
    /// Each logged call is flushed to disk before `apply` returns, so a
    /// crash loses at most the call being logged. Replaces (and finishes)
    /// a log already open. Failing to log never fails a call: it is
    /// reported with `tracing` and the log is closed.
    ///
    /// # Errors
    /// As [`ParityLogger::create`].
    pub fn start_parity_log(
        &self,
        dir: &Path,
        target: Option<String>,
        sample_every: u64,
    ) -> Result<()> {
        let version = self.version();
        let logger = ParityLogger::create(
            dir,
            &ParityMeta {
                target,
                id: version.clone(),
                sample_every,
            },
        )?;
        let old = self.shared.parity.set(Some((version, logger)));
        if let Some(old) = old {
            old.finish()?;
        }
        Ok(())
    }

    /// Stop the parity log, if one is open, and return how many calls it
    /// logged.
    ///
    /// # Errors
    /// If the log's streams cannot be finished.
    pub fn stop_parity_log(&self) -> Result<Option<u64>> {
        self.shared
            .parity
            .set(None)
            .map(ParityLogger::finish)
            .transpose()
    }
}

/// The parity log of a [`ServingTransform`], if one is open, with the
/// version it describes.
#[derive(Default)]
struct ParityHook {
    open: AtomicBool,
    logger: Mutex<Option<(String, ParityLogger)>>,
}

impl ParityHook {
    fn set(&self, new: Option<(String, ParityLogger)>) -> Option<ParityLogger> {
        let mut slot = self.logger.lock().unwrap_or_else(PoisonError::into_inner);
        self.open.store(new.is_some(), Ordering::Release);
        std::mem::replace(&mut *slot, new).map(|(_, l)| l)
    }

    fn log(&self, name: &str, version: &str, input: &RecordBatch, output: &RecordBatch) {
        // No lock on the call path unless a log is open.
        if !self.open.load(Ordering::Acquire) {
            return;
        }
        let mut slot = self.logger.lock().unwrap_or_else(PoisonError::into_inner);
        let Some((logged_version, logger)) = slot.as_mut() else {
            return;
        };
        let why = if logged_version != version {
            format!("'{name}' now serves version {version}")
        } else {
            match logger.log(input, output) {
                Ok(()) => return,
                Err(e) => format!("cannot log a call of '{name}': {e}"),
            }
        };
        tracing::warn!(target: "kiln::serving", "parity log closed: {why}");
        self.open.store(false, Ordering::Release);
        if let Some((_, l)) = slot.take() {
            let _ = l.finish();
        }
    }
}

/// What one name points at: one step (a single transform) or several (a
/// pipeline), and the version that identifies them.
struct Target {
    version: String,
    pipeline: bool,
    steps: Vec<Step>,
    windows: Option<kiln_temporal::Windows>,
}

impl Target {
    fn single(
        name: &str,
        plugin: Plugin,
        params: Params,
        state: Option<State>,
        strategy: InstanceStrategy,
    ) -> Result<Target> {
        let version = transform_version(plugin.id(), &params, state.as_ref());
        Ok(Target {
            version,
            pipeline: false,
            steps: vec![Step::new(name, plugin, params, state, strategy)?],
            windows: None,
        })
    }

    fn pipeline(name: &str, pipeline: &Pipeline, strategy: InstanceStrategy) -> Result<Target> {
        if pipeline.steps().is_empty() {
            return Err(kiln_runtime::Error::Internal(format!(
                "pipeline '{name}' has no steps"
            )));
        }
        let steps = pipeline
            .steps()
            .iter()
            .enumerate()
            .map(|(i, (plugin, params, state))| {
                Step::new(
                    &format!("{name}.{i}"),
                    plugin.clone(),
                    params.clone(),
                    state.clone(),
                    strategy,
                )
            })
            .collect::<Result<Vec<_>>>()?;
        let version = match pipeline.id() {
            Some(id) => id.to_owned(),
            None => {
                let mut h = Sha256::new();
                h.update(b"kiln-serving-pipeline\n");
                for s in &steps {
                    h.update(transform_version(
                        s.plugin.id(),
                        &s.params,
                        s.state.as_ref(),
                    ));
                    h.update(b"\n");
                }
                hex::encode(h.finalize())
            }
        };
        Ok(Target {
            version,
            pipeline: true,
            steps,
            windows: pipeline.windows().cloned(),
        })
    }

    fn first(&self) -> &Step {
        &self.steps[0]
    }

    /// The output schema for an input schema, through every step.
    fn output_schema(&self, input: &SchemaRef) -> Result<SchemaRef> {
        let mut schema = input.clone();
        for s in &self.steps {
            schema = s.signature(&schema)?.output().clone();
        }
        Ok(schema)
    }

    fn apply(&self, batch: &RecordBatch, metrics: &Metrics) -> Result<RecordBatch> {
        let (first, rest) = self.steps.split_first().expect("at least one step");
        let mut out = first.apply(batch, metrics)?;
        for s in rest {
            out = s.apply(&out, metrics)?;
        }
        Ok(out)
    }
}

/// One plugin with its parameters and state, and where its call instances
/// come from.
struct Step {
    plugin: Plugin,
    params: Params,
    state: Option<State>,
    schemas: RwLock<VecDeque<Signature>>,
    instances: Instances,
}

enum Instances {
    Fresh,
    Pool(PoolHandle),
    Reuse(Mutex<Vec<Ready>>),
}

impl Step {
    fn new(
        name: &str,
        plugin: Plugin,
        params: Params,
        state: Option<State>,
        strategy: InstanceStrategy,
    ) -> Result<Step> {
        // Configure once now: bad parameters or state fail at load time.
        let first = plugin.ready(&params, state.as_ref())?;
        let instances = match strategy {
            InstanceStrategy::Fresh => Instances::Fresh,
            InstanceStrategy::ReuseUnsafe => Instances::Reuse(Mutex::new(vec![first])),
            InstanceStrategy::Pool { depth } => Instances::Pool(PoolHandle::start(
                name,
                plugin.clone(),
                params.clone(),
                state.clone(),
                depth.max(1),
                first,
            )?),
        };
        Ok(Step {
            plugin,
            params,
            state,
            schemas: RwLock::new(VecDeque::new()),
            instances,
        })
    }

    /// The plugin's signature for an input schema, asked of the plugin
    /// once per distinct input schema.
    fn signature(&self, input: &SchemaRef) -> Result<Signature> {
        let hit = |cache: &VecDeque<Signature>| cache.iter().find(|s| s.matches(input)).cloned();
        if let Some(h) = hit(&self.schemas.read().unwrap_or_else(PoisonError::into_inner)) {
            return Ok(h);
        }
        let sig = self
            .plugin
            .signature(&self.params, self.state.as_ref(), input)?;
        let mut cache = self.schemas.write().unwrap_or_else(PoisonError::into_inner);
        if cache.len() >= SCHEMA_CACHE {
            cache.pop_front();
        }
        cache.push_back(sig.clone());
        Ok(sig)
    }

    fn apply(&self, batch: &RecordBatch, metrics: &Metrics) -> Result<RecordBatch> {
        let sig = self.signature(batch.schema_ref())?;
        let taken = match &self.instances {
            Instances::Fresh => None,
            Instances::Pool(pool) => pool.take(),
            Instances::Reuse(idle) => idle.lock().unwrap_or_else(PoisonError::into_inner).pop(),
        };
        let mut ready = match taken {
            Some(r) => r,
            None => {
                if !matches!(self.instances, Instances::Fresh) {
                    metrics.cold_instances.fetch_add(1, Ordering::Relaxed);
                }
                self.plugin.ready(&self.params, self.state.as_ref())?
            }
        };
        let out = self.plugin.apply_ready(&mut ready, batch, &sig);
        match &self.instances {
            Instances::Fresh => drop(ready),
            Instances::Pool(pool) => pool.retire(ready),
            Instances::Reuse(idle) => {
                // A failed instance (trap, limit, bad output) is dropped,
                // and so is one whose memory now holds the output.
                if out.is_ok() && !ready.is_spent() {
                    idle.lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .push(ready);
                }
            }
        }
        out
    }
}

/// The transform version: the registry's version id
/// ([`kiln_runtime::version_id`]), so a name served from a `.wasm` file, a
/// bundle or the store reports the id `kiln versions` shows.
fn transform_version(plugin_id: &str, params: &Params, state: Option<&State>) -> String {
    kiln_runtime::version_id(plugin_id, params, state.map(State::id).as_deref())
}

/// The warm pool of one target and its refill thread, which stops when the
/// target is dropped.
struct PoolHandle {
    core: Arc<PoolCore>,
}

struct PoolCore {
    depth: usize,
    slots: Mutex<PoolSlots>,
    wake: Condvar,
}

#[derive(Default)]
struct PoolSlots {
    ready: Vec<Ready>,
    /// Used instances, dropped by the refill thread (dropping a store
    /// resets its memory: not work for the caller).
    retired: Vec<Ready>,
    closed: bool,
}

impl PoolHandle {
    fn start(
        name: &str,
        plugin: Plugin,
        params: Params,
        state: Option<State>,
        depth: usize,
        first: Ready,
    ) -> Result<PoolHandle> {
        let core = Arc::new(PoolCore {
            depth,
            slots: Mutex::new(PoolSlots {
                ready: vec![first],
                ..PoolSlots::default()
            }),
            wake: Condvar::new(),
        });
        let thread_core = core.clone();
        std::thread::Builder::new()
            .name(format!("kiln-pool-{name}"))
            .spawn(move || refill(&thread_core, &plugin, &params, state.as_ref()))
            .map_err(|e| {
                kiln_runtime::Error::Internal(format!("cannot start a pool thread: {e}"))
            })?;
        Ok(PoolHandle { core })
    }

    fn lock(&self) -> MutexGuard<'_, PoolSlots> {
        self.core
            .slots
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// A warm instance, if one is ready.
    fn take(&self) -> Option<Ready> {
        let mut slots = self.lock();
        let r = slots.ready.pop();
        // Wake the refill thread once the pool is half empty (not on every
        // call: a wake-up is a system call).
        if slots.ready.len() <= self.core.depth / 2 {
            self.core.wake.notify_one();
        }
        r
    }

    /// Hand a used instance to the refill thread to drop; drop it here if
    /// that thread is behind (it may get no CPU), so the number of live
    /// instances stays bounded.
    fn retire(&self, used: Ready) {
        let mut slots = self.lock();
        if slots.retired.len() >= self.core.depth {
            self.core.wake.notify_one();
            drop(slots);
            drop(used);
            return;
        }
        slots.retired.push(used);
        if slots.retired.len() >= self.core.depth {
            self.core.wake.notify_one();
        }
    }
}

impl Drop for PoolHandle {
    fn drop(&mut self) {
        self.lock().closed = true;
        self.core.wake.notify_one();
    }
}

/// The refill thread: drop retired instances, top the pool up, sleep.
fn refill(core: &PoolCore, plugin: &Plugin, params: &Params, state: Option<&State>) {
    let lock = || core.slots.lock().unwrap_or_else(PoisonError::into_inner);
    let mut backoff = Duration::ZERO;
    loop {
        let retired = {
            let mut slots = lock();
            while !slots.closed
                && slots.ready.len() >= core.depth
                && slots.retired.len() < core.depth
            {
                slots = core
                    .wake
                    .wait_timeout(slots, Duration::from_millis(100))
                    .unwrap_or_else(PoisonError::into_inner)
                    .0;
                if !slots.retired.is_empty() {
                    break;
                }
            }
            if slots.closed {
                return;
            }
            std::mem::take(&mut slots.retired)
        };
        drop(retired);
        if lock().ready.len() >= core.depth {
            continue;
        }
        std::thread::sleep(backoff);
        match plugin.ready(params, state) {
            Ok(r) => {
                backoff = Duration::ZERO;
                lock().ready.push(r);
            }
            // The caller will prepare its own instance and see the error;
            // retry later without spinning.
            Err(e) => {
                tracing::debug!(target: "kiln::serving", "pool refill failed: {e}");
                backoff = Duration::from_millis(100);
            }
        }
    }
}

/// Upper bounds of the latency histogram buckets, in seconds (the last
/// bucket, above 10 s, is implicit).
pub const LATENCY_BUCKETS: [f64; 22] = [
    1e-6, 2e-6, 5e-6, 10e-6, 20e-6, 50e-6, 100e-6, 200e-6, 500e-6, 1e-3, 2e-3, 5e-3, 10e-3, 20e-3,
    50e-3, 100e-3, 200e-3, 500e-3, 1.0, 2.0, 5.0, 10.0,
];

#[derive(Default)]
struct Metrics {
    calls: AtomicU64,
    errors: AtomicU64,
    rows_in: AtomicU64,
    rows_out: AtomicU64,
    reloads: AtomicU64,
    cold_instances: AtomicU64,
    latency_nanos: AtomicU64,
    buckets: [AtomicU64; LATENCY_BUCKETS.len() + 1],
}

impl Metrics {
    fn record(&self, elapsed: Duration, rows_in: usize, out: Option<&RecordBatch>) {
        self.calls.fetch_add(1, Ordering::Relaxed);
        self.rows_in.fetch_add(rows_in as u64, Ordering::Relaxed);
        match out {
            Some(b) => self
                .rows_out
                .fetch_add(b.num_rows() as u64, Ordering::Relaxed),
            None => self.errors.fetch_add(1, Ordering::Relaxed),
        };
        let nanos = u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX);
        self.latency_nanos.fetch_add(nanos, Ordering::Relaxed);
        let secs = elapsed.as_secs_f64();
        let i = LATENCY_BUCKETS.partition_point(|&b| b < secs);
        self.buckets[i].fetch_add(1, Ordering::Relaxed);
    }

    fn snapshot(&self) -> MetricsSnapshot {
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        MetricsSnapshot {
            calls: get(&self.calls),
            errors: get(&self.errors),
            rows_in: get(&self.rows_in),
            rows_out: get(&self.rows_out),
            reloads: get(&self.reloads),
            cold_instances: get(&self.cold_instances),
            latency: Histogram {
                counts: self.buckets.iter().map(get).collect(),
                sum: Duration::from_nanos(get(&self.latency_nanos)),
            },
        }
    }
}

/// Counters of one [`ServingTransform`], read with [`ServingTransform::metrics`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct MetricsSnapshot {
    /// Calls to `apply`, successful or not.
    pub calls: u64,
    /// Calls that returned an error.
    pub errors: u64,
    /// Rows given to `apply`.
    pub rows_in: u64,
    /// Rows returned by successful calls.
    pub rows_out: u64,
    /// Successful reloads.
    pub reloads: u64,
    /// Calls that found the warm pool empty and prepared their own instance
    /// (a sign the pool is too shallow or calls come faster than it refills).
    pub cold_instances: u64,
    /// Latency of `apply`, successful or not.
    pub latency: Histogram,
}

/// A latency histogram over the fixed buckets [`LATENCY_BUCKETS`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Histogram {
    /// Calls per bucket: `counts[i]` counts latencies in
    /// `(LATENCY_BUCKETS[i-1], LATENCY_BUCKETS[i]]`; the last entry counts
    /// those above the last bound.
    pub counts: Vec<u64>,
    /// Sum of all latencies.
    pub sum: Duration,
}

impl Histogram {
    /// Number of calls recorded.
    pub fn count(&self) -> u64 {
        self.counts.iter().sum()
    }

    /// Upper bound of the bucket holding quantile `q` (0..=1), or `None`
    /// with no calls or when it falls above the last bound.
    pub fn quantile(&self, q: f64) -> Option<Duration> {
        let n = self.count();
        if n == 0 {
            return None;
        }
        let rank = ((q.clamp(0.0, 1.0) * n as f64).ceil() as u64).max(1);
        let mut seen = 0;
        for (i, c) in self.counts.iter().enumerate() {
            seen += c;
            if seen >= rank {
                return LATENCY_BUCKETS.get(i).map(|&s| Duration::from_secs_f64(s));
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latencies_land_in_the_right_bucket() {
        let m = Metrics::default();
        for (micros, _) in [(0.5, 0), (1.0, 0), (1.5, 1), (7.0, 3), (60_000_000.0, 22)] {
            m.record(Duration::from_secs_f64(micros * 1e-6), 1, None);
        }
        let s = m.snapshot();
        let expect: Vec<u64> = (0..23)
            .map(|i| match i {
                0 => 2,
                1 | 3 | 22 => 1,
                _ => 0,
            })
            .collect();
        assert_eq!(s.latency.counts, expect);
        assert_eq!(s.calls, 5);
        assert_eq!(s.errors, 5);
        assert_eq!(s.rows_in, 5);
        assert_eq!(s.latency.quantile(0.5), Some(Duration::from_micros(2)));
        assert_eq!(s.latency.quantile(1.0), None);
        assert_eq!(
            Histogram {
                counts: vec![0; 23],
                sum: Duration::ZERO
            }
            .quantile(0.5),
            None
        );
    }
}
