//! A pinned transform version, ready to apply inside a query: the plugin,
//! its parameters, its fitted state and the version id they make, from a
//! registry (`NAME@TAG` or a version id), a `.kiln` bundle, or loose parts.

use std::path::Path;
use std::sync::Arc;

use kiln_runtime::{Engine, Params, Plugin, State};
use kiln_store::{Bundle, Masking, Permission, Registry, Resolved};

use crate::{Error, Result};

/// One transform version, pinned: what a [`crate::KilnUdf`] applies.
///
/// Cheap to clone (the plugin and its bytes are shared, the state is
/// bytes). Built by [`Transform::from_registry`], [`Transform::from_bundle`],
/// [`Transform::from_files`] or [`Transform::from_parts`]; each checks up
/// front that the parameters are accepted and that a plugin needing a fit
/// has a state, so a query never starts with a transform that cannot run.
///
/// The first three also keep the plugin's component bytes
/// ([`Transform::wasm`]), so that the transform can be shipped to the
/// workers of a distributed engine ([`crate::encode_udf`]).
#[derive(Clone)]
pub struct Transform {
    label: String,
    plugin: Plugin,
    params: Params,
    state: Option<State>,
    version_id: String,
    masking: Masking,
    wasm: Option<Arc<[u8]>>,
}

impl std::fmt::Debug for Transform {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Transform")
            .field("label", &self.label)
            .field("plugin", &self.plugin)
            .field("params", &self.params)
            .field("state", &self.state.as_ref().map(State::id))
            .field("version_id", &self.version_id)
            .field("masking", &self.masking)
            .field("wasm_bytes", &self.wasm.as_ref().map(|w| w.len()))
            .finish()
    }
}

impl Transform {
    /// Resolve `spec` (`NAME@TAG`, or a version id or unique prefix) in the
    /// registry's store and load that version, as `kiln run NAME@TAG` does:
    /// the store's actor needs `run` on the name, and the column policies
    /// it gets are applied to the UDF's output fields, so the UDF returns
    /// what `kiln run` would write. The store is only read here; the
    /// transform does not keep it open.
    ///
    /// # Errors
    /// [`kiln_store::Error::NotFound`] for an unknown name, tag or id;
    /// [`Error::Usage`] for a pipeline (a UDF applies one version);
    /// [`kiln_store::Error::Denied`]; tampered bytes; as
    /// [`Transform::from_parts`].
    pub fn from_registry(registry: &Registry, spec: &str) -> Result<Transform> {
        let version = match registry.store().resolve_any(spec)? {
            Resolved::Version(v) => v,
            Resolved::Pipeline(p) => {
                return Err(Error::Usage(format!(
                    "{spec} is pipeline {}; a Kiln UDF applies one transform version: register each step's NAME@TAG as its own function",
                    &p.id[..p.id.len().min(12)]
                )))
            }
        };
        let masking = registry
            .store()
            .authorize_spec(spec, &version.id, Permission::Run)?;
        // The plugin's bytes too, for `encode_udf`.
        let (bytes, plugin, params, state) = registry.load_version_with_bytes(&version)?;
        let mut t = Transform::checked(spec.to_owned(), plugin, params, state)?;
        t.wasm = Some(bytes);
        if t.version_id != version.id {
            return Err(Error::Runtime(kiln_runtime::Error::Internal(format!(
                "version {} loaded as {}",
                version.id, t.version_id
            ))));
        }
        t.masking = masking;
        Ok(t)
    }

    /// The version in a `.kiln` bundle (no store needed), labelled
    /// `name@tag` from its manifest.
    ///
    /// # Errors
    /// As [`Bundle::load`] and [`Transform::from_parts`].
    pub fn from_bundle(engine: &Engine, bundle: &Bundle) -> Result<Transform> {
        let plugin = bundle.load(engine)?;
        let label = format!("{}@{}", bundle.manifest.name, bundle.manifest.tag);
        let mut t = Transform::checked(label, plugin, bundle.params(), bundle.state().cloned())?;
        t.wasm = Some(bundle.plugin_bytes().into());
        Ok(t)
    }

    /// A plugin file, parameters and an optional state file (written by
    /// `kiln fit --state-out`): the file-based `kiln run`.
    ///
    /// # Errors
    /// As [`Engine::load`]; [`kiln_runtime::Error::Io`] for an unreadable
    /// state file; as [`Transform::from_parts`].
    pub fn from_files(
        engine: &Engine,
        plugin: &Path,
        params: Params,
        state: Option<&Path>,
    ) -> Result<Transform> {
        let bytes: Arc<[u8]> = std::fs::read(plugin)
            .map_err(|e| kiln_runtime::Error::io(plugin, e))?
            .into();
        let plugin = engine.load_bytes(&bytes, plugin)?;
        let state = state
            .map(|p| {
                std::fs::read(p)
                    .map(State::from_bytes)
                    .map_err(|e| kiln_runtime::Error::io(p, e))
            })
            .transpose()?;
        let mut t = Transform::from_parts(plugin, params, state)?;
        t.wasm = Some(bytes);
        Ok(t)
    }

    /// A loaded plugin with parameters and, for fitted plugins, a state.
    ///
    /// A loaded [`Plugin`] does not keep its component bytes, so such a
    /// transform runs anywhere in this process but cannot be shipped to
    /// another one ([`crate::encode_udf`] refuses it): build it with
    /// [`Transform::from_files`], [`Transform::from_bundle`] or
    /// [`Transform::from_registry`] for that.
    ///
    /// # Errors
    /// [`kiln_runtime::Error::InvalidParams`] /
    /// [`kiln_runtime::Error::InvalidState`] if the plugin rejects them,
    /// or if it needs a fitted state and none is given.
    pub fn from_parts(plugin: Plugin, params: Params, state: Option<State>) -> Result<Transform> {
        let label = plugin.info().name.clone();
        Transform::checked(label, plugin, params, state)
    }

    fn checked(
        label: String,
        plugin: Plugin,
        params: Params,
        state: Option<State>,
    ) -> Result<Transform> {
        // The same checks, and the same messages, as `kiln run`.
        if state.is_none() && plugin.needs_fit(&params)? {
            return Err(Error::Runtime(kiln_runtime::Error::InvalidState {
                plugin: plugin.plugin_ref(),
                message: "these parameters need a fitted state: run `kiln fit` first and pass its --state-out file with --state".into(),
            }));
        }
        plugin.ready(&params, state.as_ref())?;
        let state_id = state.as_ref().map(State::id);
        let version_id = kiln_runtime::version_id(plugin.id(), &params, state_id.as_deref());
        Ok(Transform {
            label,
            plugin,
            params,
            state,
            version_id,
            masking: Masking::default(),
            wasm: None,
        })
    }

    /// A transform decoded from its wire form ([`crate::UdfDecoder`]): the
    /// parts were checked where the transform was built, and the decoder
    /// has checked the bytes against their ids; only the version id is
    /// recomputed here (the decoder compares it with the one it was sent).
    pub(crate) fn from_wire(
        label: String,
        plugin: Plugin,
        params: Params,
        state: Option<State>,
        masking: Masking,
        wasm: Arc<[u8]>,
    ) -> Transform {
        let state_id = state.as_ref().map(State::id);
        let version_id = kiln_runtime::version_id(plugin.id(), &params, state_id.as_deref());
        Transform {
            label,
            plugin,
            params,
            state,
            version_id,
            masking,
            wasm: Some(wasm),
        }
    }

    /// Apply these column masks to the output (what
    /// [`Transform::from_registry`] does with the store's policies).
    pub fn with_masking(mut self, masking: Masking) -> Transform {
        self.masking = masking;
        self
    }

    /// How the transform was named: `NAME@TAG`, the version id given, or
    /// the plugin's name.
    pub fn label(&self) -> &str {
        &self.label
    }

    /// The transform version id: sha256 over (plugin id, canonical
    /// parameters, state id), as in the registry.
    pub fn version_id(&self) -> &str {
        &self.version_id
    }

    /// The plugin.
    pub fn plugin(&self) -> &Plugin {
        &self.plugin
    }

    /// The canonical parameters.
    pub fn params(&self) -> &Params {
        &self.params
    }

    /// The fitted state, for fitted versions.
    pub fn state(&self) -> Option<&State> {
        self.state.as_ref()
    }

    /// The column masks applied to the output (empty unless set).
    pub fn masking(&self) -> &Masking {
        &self.masking
    }

    /// The plugin's component bytes (their sha256 is the plugin id), kept
    /// by [`Transform::from_files`], [`Transform::from_bundle`] and
    /// [`Transform::from_registry`]; `None` for [`Transform::from_parts`].
    pub fn wasm(&self) -> Option<&[u8]> {
        self.wasm.as_deref()
    }
}
