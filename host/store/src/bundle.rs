//! `.kiln` bundles: one self-describing file holding a pinned transform
//! version (manifest, component, state, hashes), which a serving process
//! loads without the store. Loading checks every hash and the version id,
//! and refuses a bundle that does not match them.
//!
//! A bundle is a tar archive (inspect it with `tar tvf`) of exactly
//! `manifest.json`, `plugin.wasm` and, for fitted versions, `state.bin`.

use std::io::Read;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::{Error, Result};
use kiln_runtime::{version_id, Engine, Params, Plugin, State};

/// The bundle format this build writes and reads.
pub const BUNDLE_FORMAT: u64 = 1;

/// Largest member accepted when reading a bundle (a component or a state).
const MAX_MEMBER: u64 = 1 << 30;

/// What a bundle says about itself.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BundleManifest {
    /// Always `kiln-bundle`.
    pub kind: String,
    /// [`BUNDLE_FORMAT`] of the writer.
    pub format: u64,
    /// The transform name it was exported from.
    pub name: String,
    /// The tag it was exported from.
    pub tag: String,
    /// The transform version id.
    pub version_id: String,
    /// sha256 of `plugin.wasm`.
    pub plugin_id: String,
    /// The plugin's name and version.
    pub plugin: String,
    /// Canonical parameters JSON.
    pub params: String,
    /// sha256 of `state.bin`, for fitted versions.
    pub state_id: Option<String>,
    /// WIT contract version of the exporting host.
    pub wit_version: String,
    /// kiln-host version of the exporter.
    pub exported_by: String,
    /// When it was exported (RFC 3339).
    pub exported_at: String,
}

/// A pinned transform version as one file.
#[derive(Debug, Clone)]
pub struct Bundle {
    /// The manifest.
    pub manifest: BundleManifest,
    plugin: Vec<u8>,
    state: Option<State>,
}

fn sha(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

impl Bundle {
    /// A bundle of these parts; the ids in `manifest` are recomputed.
    pub fn new(mut manifest: BundleManifest, plugin: Vec<u8>, state: Option<State>) -> Bundle {
        manifest.kind = "kiln-bundle".into();
        manifest.format = BUNDLE_FORMAT;
        manifest.plugin_id = sha(&plugin);
        manifest.state_id = state.as_ref().map(State::id);
        let params = Params::from_json(&manifest.params).unwrap_or_default();
        manifest.params = params.as_str().into();
        manifest.version_id =
            version_id(&manifest.plugin_id, &params, manifest.state_id.as_deref());
        Bundle {
            manifest,
            plugin,
            state,
        }
    }

    /// Write the bundle to `path` atomically.
    ///
    /// # Errors
    /// [`Error::Io`] if it cannot be written.
    pub fn write(&self, path: &Path) -> Result<()> {
        let dir = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        };
        let mut builder = tempfile::Builder::new();
        // Renamed into place: the mode `File::create` gives, not 0600.
        #[cfg(unix)]
        builder.permissions(std::os::unix::fs::PermissionsExt::from_mode(0o666));
        let tmp = builder.tempfile_in(dir).map_err(|e| Error::io(dir, e))?;
        let mut tar = tar::Builder::new(tmp);
        let mut add = |name: &str, bytes: &[u8]| -> std::io::Result<()> {
            let mut h = tar::Header::new_gnu();
            h.set_size(bytes.len() as u64);
            h.set_mode(0o644);
            h.set_cksum();
            tar.append_data(&mut h, name, bytes)
        };
        let manifest =
            serde_json::to_vec_pretty(&self.manifest).expect("manifest serializes to JSON");
        let io = |e| Error::io(path, e);
        add("manifest.json", &manifest).map_err(io)?;
        add("plugin.wasm", &self.plugin).map_err(io)?;
        if let Some(s) = &self.state {
            add("state.bin", s.as_bytes()).map_err(io)?;
        }
        let tmp = tar.into_inner().map_err(io)?;
        tmp.as_file().sync_all().map_err(io)?;
        tmp.persist(path).map_err(|e| Error::io(path, e.error))?;
        Ok(())
    }

    /// Read and check a bundle: the members, the plugin and state hashes,
    /// and the version id recomputed from the parts.
    ///
    /// # Errors
    /// [`Error::Io`] if unreadable; [`Error::Bundle`] naming the first
    /// mismatch for a malformed or tampered bundle.
    pub fn read(path: &Path) -> Result<Bundle> {
        let bad = |m: String| Error::Bundle {
            path: path.to_path_buf(),
            message: m,
        };
        let file = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
        let mut archive = tar::Archive::new(file);
        let (mut manifest, mut plugin, mut state) = (None, None, None);
        let entries = archive
            .entries()
            .map_err(|e| bad(format!("not a kiln bundle (tar): {e}")))?;
        for entry in entries {
            let entry = entry.map_err(|e| bad(format!("corrupt archive: {e}")))?;
            let name = entry
                .path()
                .map_err(|e| bad(format!("corrupt member name: {e}")))?
                .to_string_lossy()
                .into_owned();
            let size = entry.header().size().unwrap_or(u64::MAX);
            if size > MAX_MEMBER {
                return Err(bad(format!("member {name} is too large ({size} bytes)")));
            }
            let mut bytes = Vec::with_capacity(size as usize);
            entry
                .take(MAX_MEMBER)
                .read_to_end(&mut bytes)
                .map_err(|e| bad(format!("cannot read {name}: {e}")))?;
            let slot = match name.as_str() {
                "manifest.json" => &mut manifest,
                "plugin.wasm" => &mut plugin,
                "state.bin" => &mut state,
                other => return Err(bad(format!("unexpected member '{other}'"))),
            };
            if slot.replace(bytes).is_some() {
                return Err(bad(format!("member {name} appears twice")));
            }
        }
        let manifest: BundleManifest = serde_json::from_slice(
            &manifest.ok_or_else(|| bad("no manifest.json: not a kiln bundle".into()))?,
        )
        .map_err(|e| bad(format!("manifest.json is invalid: {e}")))?;
        if manifest.kind != "kiln-bundle" {
            return Err(bad("manifest kind is not kiln-bundle".into()));
        }
        if manifest.format > BUNDLE_FORMAT {
            return Err(bad(format!(
                "bundle format {} is newer than this kiln reads ({BUNDLE_FORMAT}); upgrade kiln",
                manifest.format
            )));
        }
        let plugin = plugin.ok_or_else(|| bad("no plugin.wasm".into()))?;
        if sha(&plugin) != manifest.plugin_id {
            return Err(bad(format!(
                "plugin.wasm does not match plugin id {} in the manifest (tampered or corrupt)",
                manifest.plugin_id
            )));
        }
        let state = match (&manifest.state_id, state) {
            (Some(id), Some(bytes)) => {
                if &sha(&bytes) != id {
                    return Err(bad(format!(
                        "state.bin does not match state id {id} in the manifest (tampered or corrupt)"
                    )));
                }
                Some(State::from_bytes(bytes))
            }
            (None, None) => None,
            (Some(_), None) => {
                return Err(bad(
                    "the manifest names a state but state.bin is missing".into()
                ))
            }
            (None, Some(_)) => {
                return Err(bad(
                    "state.bin is present but the manifest names no state".into()
                ))
            }
        };
        let params = Params::from_json(&manifest.params)
            .map_err(|e| bad(format!("manifest params: {e}")))?;
        let expect = version_id(&manifest.plugin_id, &params, manifest.state_id.as_deref());
        if expect != manifest.version_id || params.as_str() != manifest.params {
            return Err(bad(format!(
                "version id {} does not match the plugin, parameters and state (tampered manifest)",
                manifest.version_id
            )));
        }
        Ok(Bundle {
            manifest,
            plugin,
            state,
        })
    }

    /// The component bytes.
    pub fn plugin_bytes(&self) -> &[u8] {
        &self.plugin
    }

    /// The parameters.
    pub fn params(&self) -> Params {
        Params::from_json(&self.manifest.params)
            .expect("params were checked when the bundle was built or read")
    }

    /// The fitted state, for fitted versions.
    pub fn state(&self) -> Option<&State> {
        self.state.as_ref()
    }

    /// Compile (or fetch from the engine's cache) the bundled plugin.
    ///
    /// # Errors
    /// As [`Engine::load_bytes`].
    pub fn load(&self, engine: &Engine) -> Result<Plugin> {
        let label = PathBuf::from(format!("{}@{}.kiln", self.manifest.name, self.manifest.tag));
        Ok(engine.load_bytes(&self.plugin, &label)?)
    }
}
