//! The compiled-component cache on disk: a component compiled once is kept
//! as a file keyed by plugin id and by the engine settings that affect code
//! generation, so a new process loads it in milliseconds instead of
//! compiling it again.
//!
//! File layout: `KILNCWA1` (8 bytes), the key (32 bytes: sha256 of plugin id,
//! kiln version and wasmtime's compatibility hash of the engine settings),
//! sha256 of the payload (32 bytes), then the payload (wasmtime's serialized
//! component). A file whose magic, key or checksum does not match (foreign,
//! truncated, corrupt, from another engine configuration) is ignored and
//! rewritten after compiling. Files are written to a temporary name in the
//! same directory and renamed, so readers never see a partial file.

use std::hash::{Hash, Hasher};
use std::io::Write;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use wasmtime::component::Component;

const MAGIC: &[u8; 8] = b"KILNCWA1";
const HEADER: usize = 8 + 32 + 32;

/// A directory of compiled components for one engine configuration.
pub(crate) struct DiskCache {
    dir: PathBuf,
    /// sha256 over kiln's version and the engine's compatibility hash.
    settings: [u8; 32],
}

/// Feeds `Hash` output into sha256 (stable, unlike `DefaultHasher`'s
/// unspecified algorithm).
struct ShaHasher(Sha256);

impl Hasher for ShaHasher {
    fn finish(&self) -> u64 {
        let d = self.0.clone().finalize();
        u64::from_le_bytes([d[0], d[1], d[2], d[3], d[4], d[5], d[6], d[7]])
    }
    fn write(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }
}

impl DiskCache {
    pub(crate) fn new(dir: PathBuf, engine: &wasmtime::Engine) -> DiskCache {
        let mut h = ShaHasher(Sha256::new());
        h.write(b"kiln-host ");
        h.write(env!("CARGO_PKG_VERSION").as_bytes());
        engine.precompile_compatibility_hash().hash(&mut h);
        DiskCache {
            dir,
            settings: h.0.finalize().into(),
        }
    }

    pub(crate) fn dir(&self) -> &Path {
        &self.dir
    }

    fn key(&self, plugin_id: &str) -> [u8; 32] {
        let mut h = Sha256::new();
        h.update(plugin_id.as_bytes());
        h.update(b"\n");
        h.update(self.settings);
        h.finalize().into()
    }

    /// Where a plugin's compiled form lives.
    pub(crate) fn path(&self, plugin_id: &str) -> PathBuf {
        let settings = hex::encode(&self.settings[..8]);
        let id = plugin_id.get(..32).unwrap_or(plugin_id);
        self.dir.join(format!("{id}-{settings}.cwasm"))
    }

    /// The cached component, or `None` (with the reason logged) when there
    /// is no usable file.
    pub(crate) fn load(&self, engine: &wasmtime::Engine, plugin_id: &str) -> Option<Component> {
        let path = self.path(plugin_id);
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return None,
            Err(e) => {
                tracing::warn!(target: "kiln::cache", "cannot read {}: {e}; compiling", path.display());
                return None;
            }
        };
        let why = match self.check(&bytes, plugin_id) {
            Ok(payload) => {
                // SAFETY: `deserialize` runs the native code in `payload`, so
                // the bytes must be a component serialized by this wasmtime.
                // They are: the file carries our magic, the key of this
                // plugin id and engine configuration, and a sha256 of the
                // payload that matches, so they are exactly what
                // `DiskCache::store` wrote from `Component::serialize` in an
                // engine with these settings (the cache directory is trusted
                // like the kiln binary itself). wasmtime checks its own
                // version and configuration header on top of that.
                match unsafe { Component::deserialize(engine, payload) } {
                    Ok(c) => {
                        tracing::info!(target: "kiln::cache", "loaded compiled plugin {plugin_id} from {}", path.display());
                        return Some(c);
                    }
                    Err(e) => format!("wasmtime refused it ({e})"),
                }
            }
            Err(why) => why,
        };
        tracing::warn!(target: "kiln::cache", "ignoring cache file {}: {why}; compiling again", path.display());
        None
    }

    /// The payload of a cache file, if the header and checksum match.
    fn check<'a>(&self, bytes: &'a [u8], plugin_id: &str) -> Result<&'a [u8], String> {
        if bytes.len() < HEADER || &bytes[..8] != MAGIC {
            return Err(format!("not a kiln cache file ({} bytes)", bytes.len()));
        }
        if bytes[8..40] != self.key(plugin_id) {
            return Err("written for another plugin or engine configuration".into());
        }
        let payload = &bytes[HEADER..];
        if bytes[40..72] != Sha256::digest(payload)[..] {
            return Err("checksum mismatch (truncated or corrupt)".into());
        }
        Ok(payload)
    }

    /// Write a compiled component; failures are logged, not returned (the
    /// cache is an optimization).
    pub(crate) fn store(&self, plugin_id: &str, component: &Component) {
        if let Err(e) = self.try_store(plugin_id, component) {
            tracing::warn!(target: "kiln::cache", "cannot write the compiled plugin to {}: {e}", self.dir.display());
        }
    }

    fn try_store(&self, plugin_id: &str, component: &Component) -> Result<(), String> {
        let payload = component.serialize().map_err(|e| e.to_string())?;
        std::fs::create_dir_all(&self.dir).map_err(|e| e.to_string())?;
        let mut tmp = tempfile::Builder::new()
            .prefix(".tmp-")
            .suffix(".cwasm")
            .tempfile_in(&self.dir)
            .map_err(|e| e.to_string())?;
        let f = tmp.as_file_mut();
        f.write_all(MAGIC).map_err(|e| e.to_string())?;
        f.write_all(&self.key(plugin_id))
            .map_err(|e| e.to_string())?;
        f.write_all(&Sha256::digest(&payload))
            .map_err(|e| e.to_string())?;
        f.write_all(&payload).map_err(|e| e.to_string())?;
        f.sync_all().map_err(|e| e.to_string())?;
        let path = self.path(plugin_id);
        tmp.persist(&path).map_err(|e| e.to_string())?;
        tracing::info!(target: "kiln::cache", "wrote compiled plugin {plugin_id} to {}", path.display());
        Ok(())
    }
}

/// The default cache directory: `$KILN_HOME/cache`, else
/// `$XDG_CACHE_HOME/kiln`, else `~/.cache/kiln`; `None` if none is set.
pub(crate) fn default_dir() -> Option<PathBuf> {
    let var = |k: &str| {
        std::env::var_os(k)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    if let Some(home) = var("KILN_HOME") {
        return Some(home.join("cache"));
    }
    if let Some(xdg) = var("XDG_CACHE_HOME") {
        return Some(xdg.join("kiln"));
    }
    var("HOME").map(|h| h.join(".cache").join("kiln"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cache() -> (tempfile::TempDir, DiskCache) {
        let dir = tempfile::tempdir().expect("temp dir");
        let engine = wasmtime::Engine::default();
        let c = DiskCache::new(dir.path().to_path_buf(), &engine);
        (dir, c)
    }

    fn file(c: &DiskCache, id: &str, payload: &[u8]) -> Vec<u8> {
        let mut v = MAGIC.to_vec();
        v.extend_from_slice(&c.key(id));
        v.extend_from_slice(&Sha256::digest(payload));
        v.extend_from_slice(payload);
        v
    }

    #[test]
    fn only_intact_files_for_this_plugin_pass_the_check() {
        let (_d, c) = cache();
        let good = file(&c, "abc", b"payload bytes");
        assert_eq!(c.check(&good, "abc"), Ok(&b"payload bytes"[..]));
        let cases: Vec<(&str, Vec<u8>)> = vec![
            ("empty", vec![]),
            ("header only", good[..HEADER - 1].to_vec()),
            ("truncated payload", good[..good.len() - 1].to_vec()),
            ("flipped payload byte", {
                let mut b = good.clone();
                let last = b.len() - 1;
                b[last] ^= 1;
                b
            }),
            ("other magic", {
                let mut b = good.clone();
                b[0] = b'X';
                b
            }),
            ("raw wasmtime artifact", b"\x7fELF\x02\x01\x01".repeat(20)),
        ];
        for (what, bytes) in cases {
            assert!(c.check(&bytes, "abc").is_err(), "{what}");
        }
        assert!(c.check(&good, "abd").is_err(), "another plugin's file");
    }

    #[test]
    fn file_names_differ_by_plugin_and_settings() {
        let (_d, c) = cache();
        assert_ne!(c.path("a"), c.path("b"));
        let mut other = wasmtime::Config::new();
        other.cranelift_nan_canonicalization(true);
        let e2 = wasmtime::Engine::new(&other).expect("engine");
        let c2 = DiskCache::new(c.dir().to_path_buf(), &e2);
        assert_ne!(c.path("a"), c2.path("a"));
    }
}
