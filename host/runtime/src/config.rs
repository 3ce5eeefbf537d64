//! Engine settings: limits, the disk cache, and the flags that affect results.

use std::path::PathBuf;
use std::time::Duration;

/// Settings of an [`Engine`]: limits, and the flags that affect results.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EngineConfig {
    /// Longest a single plugin call may run (default 30 s).
    pub deadline: Duration,
    /// Largest linear memory a plugin instance may have, in bytes (default 1 GiB).
    pub memory_limit: usize,
    /// Largest output batch, as a multiple of the input rows (default 16; a
    /// plugin returning more rows is refused). Zero-row inputs allow this many rows.
    pub max_output_ratio: u64,
    /// Directory of the compiled-component cache on disk, or `None` for no
    /// disk cache (the default; the `kiln` CLI uses
    /// [`EngineConfig::default_cache_dir`]). Compiled plugins are kept there
    /// by plugin id and engine settings, so a new process loads them in
    /// milliseconds instead of compiling them again.
    pub cache_dir: Option<PathBuf>,
    /// Bytes of each instance's linear memory kept mapped when the instance
    /// is dropped (default [`EngineConfig::DEFAULT_KEEP_RESIDENT`]). The
    /// next instance in the slot finds those pages resident: only the pages
    /// a call dirtied are reset (found with `PAGEMAP_SCAN`), instead of
    /// every page a call touches faulting in zeroed. Size it to a call's
    /// working set (about four times the batch's bytes: input, output and
    /// the canonical-ABI copies); memory above it is returned to the kernel.
    pub keep_resident: usize,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            deadline: Duration::from_secs(30),
            memory_limit: 1 << 30,
            max_output_ratio: 16,
            cache_dir: None,
            keep_resident: EngineConfig::DEFAULT_KEEP_RESIDENT,
        }
    }
}

impl EngineConfig {
    /// The default of [`EngineConfig::keep_resident`]: 64 MiB, the working
    /// set of a call on a 1M-row column of doubles.
    pub const DEFAULT_KEEP_RESIDENT: usize = 64 << 20;

    /// Set [`EngineConfig::keep_resident`] in bytes.
    pub fn with_keep_resident(mut self, bytes: usize) -> Self {
        self.keep_resident = bytes;
        self
    }

    /// Set the per-call deadline.
    pub fn with_deadline(mut self, deadline: Duration) -> Self {
        self.deadline = deadline;
        self
    }

    /// Set the per-instance memory cap in bytes.
    pub fn with_memory_limit(mut self, bytes: usize) -> Self {
        self.memory_limit = bytes;
        self
    }

    /// Set the output-rows cap as a multiple of input rows.
    pub fn with_max_output_ratio(mut self, ratio: u64) -> Self {
        self.max_output_ratio = ratio;
        self
    }

    /// Keep compiled plugins in this directory (created when first
    /// written), or `None` to compile in every process.
    pub fn with_cache_dir(mut self, dir: Option<PathBuf>) -> Self {
        self.cache_dir = dir;
        self
    }

    /// The usual cache directory: `$KILN_HOME/cache`, else
    /// `$XDG_CACHE_HOME/kiln`, else `~/.cache/kiln` (`None` without a home).
    pub fn default_cache_dir() -> Option<PathBuf> {
        crate::cache::default_dir()
    }

    /// The engine flags that can affect results, as recorded in lineage.
    pub fn determinism_flags() -> &'static [&'static str] {
        &[
            "nan_canonicalization",
            "relaxed_simd_deterministic",
            "no_threads",
            "fixed_clocks",
            "constant_random",
        ]
    }
}
