//! The sandbox a plugin runs in: a store whose WASI (Kiln's own, in
//! [`wasi`]) grants nothing, whose
//! clocks and randomness are constant, whose stderr goes to the host log,
//! and whose memory is capped.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::config::EngineConfig;
use wasmtime::component::ResourceTable;
use wasmtime::{ResourceLimiter, Store};

mod wasi;

pub(crate) use wasi::add_to_linker;
use wasi::WasiState;

/// Most bytes of plugin stderr kept per call; the rest is dropped (not an
/// error: a chatty plugin must not fail because of its logging).
const STDERR_CAP: usize = 64 * 1024;

/// The fixed wall-clock time plugins see: 2000-01-01T00:00:00Z.
pub(crate) const FIXED_WALL_CLOCK: Duration = Duration::from_secs(946_684_800);

/// Per-store host state.
pub(crate) struct HostState {
    wasi: WasiState,
    table: ResourceTable,
    pub(crate) limiter: MemoryCap,
    pub(crate) stderr: StderrSink,
    /// The per-call deadline, in epoch ticks and as configured.
    pub(crate) deadline_ticks: u64,
    pub(crate) deadline: Duration,
}

/// A new store for one plugin instance: nothing granted, deterministic
/// clocks and randomness, memory capped, calls bounded by the deadline.
pub(crate) fn new_store(
    engine: &wasmtime::Engine,
    config: &EngineConfig,
    deadline_ticks: u64,
) -> Store<HostState> {
    let stderr = StderrSink::default();
    let state = HostState {
        wasi: WasiState::new(),
        table: ResourceTable::new(),
        limiter: MemoryCap {
            limit: config.memory_limit,
            hit: false,
        },
        stderr,
        deadline_ticks,
        deadline: config.deadline,
    };
    let mut store = Store::new(engine, state);
    store.limiter(|s| &mut s.limiter);
    // What a call may hand the host is bounded by the bytes lifted out of
    // the guest's memory per call (wasmtime's "hostcall fuel", 128 MiB by
    // default, which refused a single output column above that). Bound it
    // by the instance's memory cap instead: a plugin may return as much as
    // it may hold, and a guest that names the same bytes many times over
    // still gets no more than that lifted.
    store.set_hostcall_fuel(config.memory_limit.max(128 << 20));
    store
}

/// Bytes the deterministic "random" generators cycle through.
const SEED: [u8; 32] = *b"kiln: deterministic by design.\n\0";

/// Caps linear memory; remembers whether the cap was hit so the trap that
/// follows is reported as a memory error, not a generic trap.
pub(crate) struct MemoryCap {
    pub(crate) limit: usize,
    pub(crate) hit: bool,
}

/// The error a denied `memory.grow` raises inside wasmtime.
#[derive(Debug, thiserror::Error)]
#[error("memory cap of {limit} bytes hit (wanted {desired})")]
pub(crate) struct MemoryCapHit {
    pub(crate) limit: usize,
    pub(crate) desired: usize,
}

impl ResourceLimiter for MemoryCap {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > self.limit {
            self.hit = true;
            return Err(wasmtime::Error::new(MemoryCapHit {
                limit: self.limit,
                desired,
            }));
        }
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= 1_000_000)
    }
}

/// Plugin stderr: kept in memory (bounded), drained after each call into the
/// host log and into trap errors.
#[derive(Clone, Default)]
pub(crate) struct StderrSink(Arc<Mutex<Vec<u8>>>);

impl StderrSink {
    fn push(&self, bytes: &[u8]) {
        let mut buf = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let room = STDERR_CAP.saturating_sub(buf.len());
        buf.extend_from_slice(&bytes[..bytes.len().min(room)]);
    }

    /// Take what the plugin wrote since the last call.
    pub(crate) fn take(&self) -> String {
        let mut buf = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let text = String::from_utf8_lossy(&buf).into_owned();
        buf.clear();
        text
    }
}
