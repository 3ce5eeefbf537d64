//! The compiled-component cache on disk: a component compiled once is kept
//! as a file keyed by plugin id and by the engine settings that affect code
//! generation, so a new process loads it in milliseconds instead of
//! compiling it again.
//!
//! File layout: the payload (wasmtime's serialized component, an ELF file)
//! first, then an 80-byte footer: the key (32 bytes: sha256 of plugin id,
//! kiln version, this layout and wasmtime's compatibility hash of the engine
//! settings), the BLAKE3 hash of the payload (32 bytes), the payload's
//! length (8 bytes, little-endian) and `KILNCWA2` (8 bytes). The payload
//! starts the file so that wasmtime can map it into memory
//! ([`Component::deserialize_file`]) instead of copying 2-3 MB into a fresh
//! allocation; the checksum is BLAKE3 because it hashes the file several
//! times faster than sha256 (this check is for corruption, not identity).
//! A file whose magic, key, length or checksum does not match (foreign,
//! truncated, corrupt, from another engine configuration) is ignored and
//! rewritten after compiling. Files are written to a temporary name in the
//! same directory, synced and renamed, so readers never see a partial file
//! and a file that is mapped is never changed in place.

use std::hash::{Hash, Hasher};
use std::io::Write;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use wasmtime::component::Component;

const MAGIC: &[u8; 8] = b"KILNCWA2";
const FOOTER: usize = 32 + 32 + 8 + 8;

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
        // The layout is part of the file name, so binaries that write
        // different layouts never rewrite each other's files.
        h.write(MAGIC);
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
        let file = match std::fs::File::open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return None,
            Err(e) => {
                tracing::warn!(target: "kiln::cache", "cannot read {}: {e}; compiling", path.display());
                return None;
            }
        };
        // SAFETY: the map is read-only and lives only for the check below.
        // Cache files are never changed in place (`try_store` writes a new
        // file and renames it over the old one), and the cache directory is
        // trusted like the kiln binary itself, which is mapped the same way.
        let checked = match unsafe { memmap2::Mmap::map(&file) } {
            Ok(map) => self.check(&map, plugin_id),
            Err(e) => Err(format!("cannot map it ({e})")),
        };
        let why = match checked {
            // SAFETY: `deserialize_file` runs the native code in the file,
            // so it must be a component serialized by this wasmtime. It is:
            // the file carries our magic, the key of this plugin id and
            // engine configuration, and a BLAKE3 hash of the payload that
            // matches, so the payload is exactly what `DiskCache::store`
            // wrote from `Component::serialize` in an engine with these
            // settings, and files are replaced only by rename. wasmtime
            // checks its own version and configuration header on top of
            // that; the footer after the ELF image is not part of any
            // section, so wasmtime does not read it.
            Ok(()) => match unsafe { Component::deserialize_file(engine, &path) } {
                Ok(c) => {
                    tracing::info!(target: "kiln::cache", "loaded compiled plugin {plugin_id} from {}", path.display());
                    return Some(c);
                }
                // The memory does not fit this engine's cap: compiling
                // again reports that, with what to do.
                Err(e) if crate::engine::memory_above_cap(&e) => {
                    tracing::debug!(target: "kiln::cache", "not using {}: {e:#}", path.display());
                    return None;
                }
                Err(e) => format!("wasmtime refused it ({e:#})"),
            },
            Err(why) => why,
        };
        tracing::warn!(target: "kiln::cache", "ignoring cache file {}: {why}; compiling again", path.display());
        None
    }

    /// Check a whole cache file: `Ok` if the footer names this plugin and
    /// engine and the payload's length and checksum match.
    fn check(&self, bytes: &[u8], plugin_id: &str) -> Result<(), String> {
        let not_ours = || format!("not a kiln cache file ({} bytes)", bytes.len());
        let Some(payload_len) = bytes.len().checked_sub(FOOTER) else {
            return Err(not_ours());
        };
        let (payload, footer) = bytes.split_at(payload_len);
        let (key, rest) = footer.split_at(32);
        let (sum, rest) = rest.split_at(32);
        let (len, magic) = rest.split_at(8);
        if magic != MAGIC {
            return Err(not_ours());
        }
        if key != self.key(plugin_id) {
            return Err("written for another plugin or engine configuration".into());
        }
        if len != (payload_len as u64).to_le_bytes() {
            return Err("length mismatch (truncated or corrupt)".into());
        }
        if sum != blake3::hash(payload).as_bytes() {
            return Err("checksum mismatch (truncated or corrupt)".into());
        }
        Ok(())
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
        f.write_all(&payload).map_err(|e| e.to_string())?;
        f.write_all(&footer(&self.key(plugin_id), &payload))
            .map_err(|e| e.to_string())?;
        f.sync_all().map_err(|e| e.to_string())?;
        let path = self.path(plugin_id);
        tmp.persist(&path).map_err(|e| e.to_string())?;
        tracing::info!(target: "kiln::cache", "wrote compiled plugin {plugin_id} to {}", path.display());
        Ok(())
    }
}

/// The footer that follows a payload in a cache file (see the module docs).
fn footer(key: &[u8; 32], payload: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(FOOTER);
    v.extend_from_slice(key);
    v.extend_from_slice(blake3::hash(payload).as_bytes());
    v.extend_from_slice(&(payload.len() as u64).to_le_bytes());
    v.extend_from_slice(MAGIC);
    v
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
        let mut v = payload.to_vec();
        v.extend_from_slice(&footer(&c.key(id), payload));
        v
    }

    #[test]
    fn only_intact_files_for_this_plugin_pass_the_check() {
        let (_d, c) = cache();
        let good = file(&c, "abc", b"payload bytes");
        assert_eq!(c.check(&good, "abc"), Ok(()));
        assert_eq!(good.len(), b"payload bytes".len() + FOOTER);
        let cases: Vec<(&str, Vec<u8>)> = vec![
            ("empty", vec![]),
            ("footer only", good[good.len() - FOOTER..].to_vec()),
            ("one byte short", good[1..].to_vec()),
            ("truncated footer", good[..good.len() - 1].to_vec()),
            ("flipped payload byte", {
                let mut b = good.clone();
                b[0] ^= 1;
                b
            }),
            ("other magic", {
                let mut b = good.clone();
                let last = b.len() - 1;
                b[last] = b'X';
                b
            }),
            ("other length", {
                let mut b = good.clone();
                let at = b.len() - 16;
                b[at] ^= 1;
                b
            }),
            ("old layout", {
                let mut v = b"KILNCWA1".to_vec();
                v.extend_from_slice(&c.key("abc"));
                v.extend_from_slice(&Sha256::digest(b"payload bytes"));
                v.extend_from_slice(b"payload bytes");
                v
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
