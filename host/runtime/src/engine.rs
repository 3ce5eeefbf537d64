//! The engine: one wasmtime `Engine` configured for determinism and limits,
//! the linker (WASI with nothing granted), the epoch ticker that enforces
//! deadlines, and the compiled-component cache keyed by plugin id.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{channel, sync_channel, RecvTimeoutError, Sender, SyncSender, TrySendError};
use std::sync::{Arc, Mutex, OnceLock};
use std::thread::JoinHandle;
use std::time::Duration;

use wasmtime::component::{Component, Linker};
use wasmtime::Store;

use crate::cache::DiskCache;
use crate::config::{EngineConfig, MemoryChecks};
use crate::sandbox::HostState;
use crate::{Error, Result};

/// Plugin instances that may be alive at once across all threads.
const MAX_CONCURRENT_INSTANCES: u32 = 256;

/// Bytes of each freed table slot reset in place rather than returned to
/// the kernel (see `table_keep_resident`).
const TABLE_KEEP_RESIDENT: usize = 4 << 20;

/// The wasmtime release this runtime is built with (recorded in lineage; a
/// unit test keeps it equal to the workspace's pin).
pub const WASMTIME_VERSION: &str = "48";

/// How often the deadline clock ticks; deadlines are rounded up to it.
const TICK: Duration = Duration::from_millis(10);

/// Owns the wasmtime engine, the linker and the compiled-component cache.
/// Cheap to clone; clones share everything.
#[derive(Clone)]
pub struct Engine {
    inner: Arc<EngineInner>,
}

pub(crate) struct EngineInner {
    pub(crate) wasmtime: wasmtime::Engine,
    pub(crate) linker: Linker<HostState>,
    pub(crate) config: EngineConfig,
    cache: Mutex<HashMap<String, Compiled>>,
    disk: Option<DiskCache>,
    /// Held for its `Drop`: the deadline thread stops with the engine.
    _ticker: Ticker,
    /// Where used stores go to be dropped; started at the first call.
    reaper: OnceLock<Reaper>,
    /// Stores kept alive by outputs that point into their memory
    /// (`abi::Keeper`), at most `abi::MAX_LENT_STORES`.
    pub(crate) lent_stores: std::sync::atomic::AtomicUsize,
}

/// Used stores waiting for the reaper thread, at most: a few, so a reaper
/// that gets no CPU holds only a few pool slots (the caller then drops its
/// store itself).
const REAPER_QUEUE: usize = 2;

/// A plugin compiled for this engine, with what its bytes say beyond the
/// code (read once, kept with the component in the memory cache).
#[derive(Clone)]
pub(crate) struct Compiled {
    pub(crate) component: Component,
    /// The plugin promises intact outputs ([`crate::abi::promises_intact_outputs`]).
    pub(crate) outputs_intact: bool,
}

/// Drops used stores on a thread of its own (`kiln-reaper`).
///
/// Dropping a store returns its instance's slot to the pooling allocator,
/// which resets every page the call dirtied (`memset` of up to
/// [`EngineConfig::keep_resident`] bytes): a tenth to a sixth of a 1M-row
/// call.
/// The caller does not wait for that; the next instance takes another warm
/// slot. When the queue is full or the thread could not start, the caller
/// drops the store itself, so nothing is ever kept longer than that.
#[derive(Clone)]
pub(crate) struct Reaper {
    tx: Option<SyncSender<Store<HostState>>>,
}

impl Reaper {
    fn start() -> Reaper {
        let (tx, rx) = sync_channel::<Store<HostState>>(REAPER_QUEUE);
        let started = std::thread::Builder::new()
            .name("kiln-reaper".into())
            // Ends when the engine (the last sender) is gone.
            .spawn(move || rx.iter().for_each(drop));
        match started {
            Ok(_) => Reaper { tx: Some(tx) },
            Err(e) => {
                tracing::debug!(target: "kiln::engine", "no reaper thread ({e}); stores are dropped by their callers");
                Reaper { tx: None }
            }
        }
    }

    /// Drop `store` on the reaper thread, or here if it is behind.
    pub(crate) fn retire(&self, store: Store<HostState>) {
        if let Some(tx) = &self.tx {
            if let Err(TrySendError::Full(s) | TrySendError::Disconnected(s)) = tx.try_send(store) {
                drop(s);
            }
        }
    }
}

/// The `kiln-epoch` thread, which advances the engine's epoch every
/// [`TICK`] until the ticker is dropped.
struct Ticker {
    /// Dropping it wakes the thread at once: it waits on the channel, not in
    /// a sleep, so dropping an engine (at the end of every `kiln` process)
    /// does not wait out the rest of a tick.
    stop: Option<Sender<()>>,
    handle: Option<JoinHandle<()>>,
}

impl Ticker {
    fn start(engine: wasmtime::Engine) -> Result<Ticker> {
        let (stop, stopped) = channel::<()>();
        let handle = std::thread::Builder::new()
            .name("kiln-epoch".into())
            .spawn(move || {
                while let Err(RecvTimeoutError::Timeout) = stopped.recv_timeout(TICK) {
                    engine.increment_epoch();
                }
            })
            .map_err(|e| Error::Internal(format!("cannot start the deadline thread: {e}")))?;
        Ok(Ticker {
            stop: Some(stop),
            handle: Some(handle),
        })
    }
}

impl Drop for Ticker {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("config", &self.inner.config)
            .finish()
    }
}

impl Engine {
    /// An engine with the default limits (30 s deadline, 1 GiB memory).
    ///
    /// # Errors
    /// [`Error::Internal`] if wasmtime rejects the configuration (a bug).
    pub fn new() -> Result<Engine> {
        Engine::with_config(EngineConfig::default())
    }

    /// An engine with the given limits.
    ///
    /// # Errors
    /// [`Error::Internal`] if wasmtime rejects the configuration (a bug).
    pub fn with_config(config: EngineConfig) -> Result<Engine> {
        let mut wc = wasmtime::Config::new();
        wc.wasm_component_model(true)
            // Determinism: one NaN bit pattern and deterministic relaxed
            // SIMD. Threads and shared memory are off because wasmtime is
            // built without its `threads` feature.
            .cranelift_nan_canonicalization(true)
            .relaxed_simd_deterministic(true)
            // Limits: epoch-based deadlines; a bounded stack.
            .epoch_interruption(true)
            .max_wasm_stack(1 << 20);
        if config.memory_checks == MemoryChecks::Explicit {
            // Without guard pages and signal handlers wasmtime compiles a
            // bounds check into every access, and a reused pool slot keeps
            // the memory a previous call grew accessible (its `instantiate`
            // skips the `mprotect` back to the initial size).
            wc.signals_based_traps(false).memory_guard_size(0);
        }
        // Every call runs in a fresh instance (so no output can depend on
        // call history); the pooling allocator with copy-on-write memory
        // images makes that cheap.
        let mut pool = wasmtime::PoolingAllocationConfig::default();
        pool.total_component_instances(MAX_CONCURRENT_INSTANCES)
            .total_core_instances(MAX_CONCURRENT_INSTANCES * 8)
            .total_memories(MAX_CONCURRENT_INSTANCES * 2)
            .total_tables(MAX_CONCURRENT_INSTANCES * 8)
            .max_memory_size(config.memory_limit.max(1 << 16))
            // A freed slot is reset by rewriting its dirty pages (found with
            // PAGEMAP_SCAN where the kernel has it) instead of `madvise`:
            // the next instance in the slot takes no page faults and no TLB
            // shootdowns, which were most of the cost of a fresh instance.
            .linear_memory_keep_resident(config.keep_resident)
            .table_keep_resident(TABLE_KEEP_RESIDENT)
            .pagemap_scan(wasmtime::Enabled::Auto);
        wc.allocation_strategy(wasmtime::InstanceAllocationStrategy::Pooling(pool));
        let wasmtime = wasmtime::Engine::new(&wc)
            .map_err(|e| Error::Internal(format!("wasmtime configuration rejected: {e}")))?;
        let mut linker = Linker::new(&wasmtime);
        crate::sandbox::add_to_linker(&mut linker)
            .map_err(|e| Error::Internal(format!("cannot link WASI: {e}")))?;

        let ticker = Ticker::start(wasmtime.clone())?;
        let disk = config
            .cache_dir
            .clone()
            .map(|dir| DiskCache::new(dir, &wasmtime));
        Ok(Engine {
            inner: Arc::new(EngineInner {
                disk,
                wasmtime,
                linker,
                config,
                cache: Mutex::new(HashMap::new()),
                reaper: OnceLock::new(),
                lent_stores: Default::default(),
                _ticker: ticker,
            }),
        })
    }

    /// Plugin instances kept alive because output arrays still point into
    /// their memory (large outputs are not copied out; see
    /// [`crate::Plugin::apply_ready`]), at most 16. Each holds its
    /// instance's whole linear memory until the last such array is dropped.
    pub fn lent_instances(&self) -> usize {
        self.inner
            .lent_stores
            .load(std::sync::atomic::Ordering::Acquire)
    }

    /// The engine's settings.
    pub fn config(&self) -> &EngineConfig {
        &self.inner.config
    }

    /// Deadline in epoch ticks (at least one).
    pub(crate) fn deadline_ticks(&self) -> u64 {
        let t = self
            .inner
            .config
            .deadline
            .as_nanos()
            .div_ceil(TICK.as_nanos());
        u64::try_from(t).unwrap_or(u64::MAX).max(1)
    }

    /// The engine's reaper (started on first use).
    pub(crate) fn reaper(&self) -> Reaper {
        self.inner.reaper.get_or_init(Reaper::start).clone()
    }

    pub(crate) fn inner(&self) -> &EngineInner {
        &self.inner
    }

    /// Compile `bytes` (id `id`), or take the component from the memory or
    /// disk cache.
    pub(crate) fn compile(&self, bytes: &[u8], id: &str, label: &Path) -> Result<Compiled> {
        let load_err = |message: String| Error::Load {
            path: label.to_path_buf(),
            message,
        };
        if let Some(c) = self.lock_cache().get(id) {
            return Ok(c.clone());
        }
        let disk = self.inner.disk.as_ref();
        let component = match disk.and_then(|d| d.load(&self.inner.wasmtime, id)) {
            Some(c) => c,
            None => {
                check_header(bytes).map_err(load_err)?;
                let c = Component::new(&self.inner.wasmtime, bytes)
                    .map_err(|e| load_err(compile_error(&e, self.inner.config.memory_limit)))?;
                if let Some(d) = disk {
                    d.store(id, &c);
                }
                c
            }
        };
        let compiled = Compiled {
            component,
            outputs_intact: crate::abi::promises_intact_outputs(bytes),
        };
        self.lock_cache().insert(id.to_owned(), compiled.clone());
        Ok(compiled)
    }

    fn lock_cache(&self) -> std::sync::MutexGuard<'_, HashMap<String, Compiled>> {
        self.inner.cache.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The directory of the compiled-component cache on disk, if any.
    pub fn cache_dir(&self) -> Option<&Path> {
        self.inner.disk.as_ref().map(DiskCache::dir)
    }

    /// Where the compiled form of a plugin is (or would be) cached on disk,
    /// if the engine has a disk cache.
    pub fn cache_file(&self, plugin_id: &str) -> Option<PathBuf> {
        self.inner.disk.as_ref().map(|d| d.path(plugin_id))
    }

    /// How many compiled components the cache holds.
    pub fn cached_components(&self) -> usize {
        self.lock_cache().len()
    }
}

/// Why wasmtime refused to compile a component, and what to do.
///
/// A memory whose *initial* size is above the per-instance cap can never be
/// instantiated; the pooling allocator says so at compile time, in terms of
/// its own configuration. Kiln's plugins start with about 1.1 MiB, but one
/// linked with `--initial-memory` (docs/performance.md) may start larger.
fn compile_error(e: &wasmtime::Error, memory_limit: usize) -> String {
    let text = format!("{e:#}");
    if !memory_above_cap(e) {
        return format!("not a valid WebAssembly component: {text}");
    }
    let start = text
        .split("minimum byte size of ")
        .nth(1)
        .and_then(|rest| rest.split(|c: char| !c.is_ascii_digit()).next())
        .and_then(|digits| digits.parse::<u64>().ok());
    let needs = match start {
        Some(bytes) => format!("starts with {} MiB of memory", bytes.div_ceil(1 << 20)),
        None => "starts with more memory".to_owned(),
    };
    format!(
        "the plugin {needs}, more than the memory cap of {} MiB per instance; raise the cap \
         (--memory-limit, or EngineConfig::memory_limit) or rebuild the plugin with a smaller \
         initial memory (-C link-arg=--initial-memory=BYTES). wasmtime: {text}",
        memory_limit >> 20
    )
}

/// Whether wasmtime refused a component because a memory starts above the
/// pooling allocator's per-instance cap (the memory limit): the one refusal
/// [`compile_error`] explains, and the disk cache leaves to it.
pub(crate) fn memory_above_cap(e: &wasmtime::Error) -> bool {
    format!("{e:#}").contains("pooling allocator")
}

/// Explain what a file is when it is not a component.
fn check_header(bytes: &[u8]) -> std::result::Result<(), String> {
    if bytes.len() < 8 || &bytes[..4] != b"\0asm" {
        return Err(format!(
            "not a WebAssembly file ({} bytes, no \\0asm header); build the plugin with `cargo build --release --target wasm32-wasip2`",
            bytes.len()
        ));
    }
    match bytes[4..8] {
        [1, 0, 0, 0] => Err("this is a core WebAssembly module, not a component; build with `--target wasm32-wasip2` (or wrap it with `wasm-tools component new`)".into()),
        [0x0d, 0x00, 0x01, 0x00] => Ok(()),
        _ => Err(format!("unsupported WebAssembly binary version {:?}", &bytes[4..8])),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn recorded_wasmtime_version_matches_the_workspace_pin() {
        let manifest = include_str!("../../../Cargo.toml");
        let pin = format!("wasmtime = {{ version = \"{}\"", super::WASMTIME_VERSION);
        assert!(manifest.contains(&pin), "update WASMTIME_VERSION: {pin}");
    }
}
