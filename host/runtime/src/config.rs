//! Engine settings: limits, the disk cache, and the flags that affect results.

use std::path::PathBuf;
use std::time::Duration;

/// Settings of an [`Engine`](crate::Engine): limits, and the flags that affect results.
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
    /// How compiled plugin code keeps memory accesses inside the instance's
    /// linear memory (default [`MemoryChecks::GuardPages`]). Either way an
    /// access outside it traps; results are the same bit for bit.
    pub memory_checks: MemoryChecks,
}

/// How a plugin's loads and stores are confined to its linear memory: a
/// speed trade between small and very large calls, never a safety one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum MemoryChecks {
    /// Guard pages (the default): compiled code checks nothing and an access
    /// past the memory faults on an inaccessible page. The price is paid when
    /// an instance slot is reused: wasmtime `mprotect`s the memory a previous
    /// call grew back to the plugin's initial size, and the next call grows
    /// it again, page table entry by page table entry (about a fifth of a
    /// million-row call). Cheapest for the small calls of a service.
    #[default]
    GuardPages,
    /// An explicit bounds check before every access and no guard pages: a
    /// reused slot keeps its grown memory accessible, so whole-table calls
    /// of a million rows or more skip both `mprotect`s (a 1M-row scaler call
    /// about 20 % faster). Each access pays a compare, about 5 % of a 1-row
    /// call; batches of tens of thousands of rows see no difference.
    Explicit,
}

impl MemoryChecks {
    /// The name used on the command line: `guard-pages` or `explicit`.
    pub fn name(self) -> &'static str {
        match self {
            MemoryChecks::GuardPages => "guard-pages",
            MemoryChecks::Explicit => "explicit",
        }
    }
}

impl std::fmt::Display for MemoryChecks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for MemoryChecks {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "guard-pages" => Ok(MemoryChecks::GuardPages),
            "explicit" => Ok(MemoryChecks::Explicit),
            other => Err(format!(
                "unknown memory checks '{other}'; use guard-pages (small calls, the default) or explicit (whole-table calls)"
            )),
        }
    }
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            deadline: Duration::from_secs(30),
            memory_limit: 1 << 30,
            max_output_ratio: 16,
            cache_dir: None,
            keep_resident: EngineConfig::DEFAULT_KEEP_RESIDENT,
            memory_checks: MemoryChecks::default(),
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

    /// Set [`EngineConfig::memory_checks`].
    pub fn with_memory_checks(mut self, checks: MemoryChecks) -> Self {
        self.memory_checks = checks;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_checks_parse_their_names_and_refuse_others_with_the_choices() {
        for c in [MemoryChecks::GuardPages, MemoryChecks::Explicit] {
            assert_eq!(c.name().parse::<MemoryChecks>(), Ok(c));
        }
        assert_eq!(MemoryChecks::default(), MemoryChecks::GuardPages);
        let e = "guard".parse::<MemoryChecks>().unwrap_err();
        assert!(e.contains("guard-pages") && e.contains("explicit"), "{e}");
    }
}
