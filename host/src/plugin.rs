//! A loaded plugin, its fitter and its configured transformer.
//!
//! A [`Plugin`] is compiled once and cheap to clone. Every call into the
//! plugin (each fit step, each `apply`) runs in a fresh store and instance
//! (a *session*) from the pooling allocator, so no output can depend on what
//! earlier calls left in the plugin's memory, and an instance that trapped is
//! never used again.

use std::path::Path;
use std::sync::Arc;

use arrow::array::RecordBatch;
use arrow::datatypes::{Schema, SchemaRef};
use sha2::{Digest, Sha256};
use wasmtime::component::{
    Component, ComponentExportIndex, Func, InstancePre, ResourceAny, TypedFunc,
};
use wasmtime::{Store, Trap};

use crate::bindings::exports::kiln::transform::transform as t;
use crate::bindings::kiln::transform::types as w;
use crate::bindings::{self, TRANSFORM_INTERFACE};
use crate::engine::Engine;
use crate::sandbox::{new_store, HostState, MemoryCapHit};
use crate::wire::{self, BatchArg, Prepared, WireError};
use crate::{Error, Params, PluginRef, Result};

/// The version of the WIT contract this host speaks.
pub const WIT_VERSION: &str = "0.1.0";

/// Whether a plugin needs a fitted state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PluginKind {
    /// Configured by parameters alone.
    Stateless,
    /// Needs a state from `fit`.
    Fitted,
    /// Needs a fit for some parameters only.
    OptionallyFitted,
}

/// What a plugin says about itself, plus its identity.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct PluginInfo {
    /// sha256 of the component bytes (hex): the plugin's identity.
    pub id: String,
    /// Name, e.g. `standard-scaler`.
    pub name: String,
    /// The plugin's semantic version.
    pub version: String,
    /// What it does.
    pub description: String,
    /// Stateless, fitted or optionally fitted.
    pub kind: PluginKind,
    /// JSON Schema of the parameters.
    pub params_schema: serde_json::Value,
    /// Whether the plugin promises determinism.
    pub deterministic: bool,
    /// The WIT contract version the plugin was built against.
    pub wit_version: String,
}

/// A fitted state: opaque bytes produced by a plugin's fit, and their id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct State {
    bytes: Vec<u8>,
}

impl State {
    /// Wrap state bytes (e.g. read from a file written by `kiln fit`).
    pub fn from_bytes(bytes: Vec<u8>) -> State {
        State { bytes }
    }

    /// The state bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// The state id: sha256 of the bytes (hex).
    pub fn id(&self) -> String {
        hex::encode(Sha256::digest(&self.bytes))
    }
}

/// A compiled, validated plugin. Cheap to clone; `Send + Sync`.
#[derive(Clone)]
pub struct Plugin {
    inner: Arc<PluginInner>,
}

struct PluginInner {
    engine: Engine,
    info: PluginInfo,
    pre: InstancePre<HostState>,
    fit_partial: ComponentExportIndex,
    configure: ComponentExportIndex,
    apply: ComponentExportIndex,
}

/// `configure(params, state)`, called without per-instance type checks.
type ConfigureFn<'a> = TypedFunc<(&'a str, Option<&'a [u8]>), (Result<ResourceAny, w::Error>,)>;
/// `transformer.apply(batch)`, called without per-instance type checks.
type ApplyFn<'a> = TypedFunc<(ResourceAny, BatchArg<'a>), (Result<w::Batch, w::Error>,)>;

impl std::fmt::Debug for Plugin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Plugin")
            .field("info", &self.inner.info)
            .finish()
    }
}

/// One store and instance of a plugin. `bindings` (every export looked
/// up and type-checked, ~15% of an instantiation) is left out of the
/// sessions that serve calls, which only use `configure` and `apply`.
struct Session {
    store: Store<HostState>,
    bindings: Option<bindings::Plugin>,
    instance: wasmtime::component::Instance,
}

/// The error for a bindings call on a bare session: a Kiln bug.
fn no_bindings() -> wasmtime::Error {
    wasmtime::format_err!("internal: bindings used on a bare session")
}

impl Plugin {
    pub(crate) fn new(
        engine: Engine,
        id: String,
        component: Component,
        label: &Path,
    ) -> Result<Plugin> {
        let load_err = |message: String| Error::Load {
            path: label.to_path_buf(),
            message,
        };
        let wt = &engine.inner().wasmtime;
        let ty = component.component_type();
        let exports: Vec<String> = ty.exports(wt).map(|(n, _)| n.to_owned()).collect();
        if !exports.iter().any(|n| n == TRANSFORM_INTERFACE) {
            let found = exports
                .iter()
                .find(|n| n.starts_with("kiln:transform/transform@"));
            return Err(load_err(match found {
                Some(other) => format!(
                    "built against {other}, but this kiln speaks {TRANSFORM_INTERFACE}; rebuild the plugin with a kiln-sdk for contract {WIT_VERSION} or use a kiln that speaks its version"
                ),
                None => format!(
                    "does not export {TRANSFORM_INTERFACE} (exports: {}); is it a Kiln plugin built with kiln-sdk?",
                    if exports.is_empty() { "nothing".to_owned() } else { exports.join(", ") }
                ),
            }));
        }
        let pre = engine
            .inner()
            .linker
            .instantiate_pre(&component)
            .map_err(|e| {
                let imports: Vec<String> = ty.imports(wt).map(|(n, _)| n.to_owned()).collect();
                load_err(format!(
                    "needs imports this host does not provide ({e}); it imports: {}",
                    imports.join(", ")
                ))
            })?;
        let iface = component
            .get_export_index(None, TRANSFORM_INTERFACE)
            .ok_or_else(|| load_err(format!("missing export {TRANSFORM_INTERFACE}")))?;
        let func = |name: &str| {
            component
                .get_export_index(Some(&iface), name)
                .ok_or_else(|| {
                    load_err(format!("missing function {name} in {TRANSFORM_INTERFACE}"))
                })
        };
        let fit_partial = func("fit-partial")?;
        let configure = func("configure")?;
        let apply = func("[method]transformer.apply")?;
        let file_name = label
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| "<memory>".into());
        let mut plugin = Plugin {
            inner: Arc::new(PluginInner {
                engine,
                info: PluginInfo {
                    id,
                    name: file_name,
                    version: String::new(),
                    description: String::new(),
                    kind: PluginKind::Stateless,
                    params_schema: serde_json::Value::Null,
                    deterministic: false,
                    wit_version: WIT_VERSION.into(),
                },
                pre,
                fit_partial,
                configure,
                apply,
            }),
        };
        // Typed function signatures are checked now, so a plugin with a
        // mismatched contract fails at load, not at its first batch.
        let mut s = plugin.session()?;
        plugin
            .check_signatures(&mut s)
            .map_err(|e| load_err(format!("{e:#}")))?;
        let d = s.call(&plugin.plugin_ref(), |s| {
            s.bindings
                .as_ref()
                .ok_or_else(no_bindings)?
                .kiln_transform_transform()
                .call_describe(&mut s.store)
        })?;
        let params_schema = serde_json::from_str(&d.params_schema).map_err(|e| {
            load_err(format!(
                "describe() returned a parameter schema that is not JSON: {e}"
            ))
        })?;
        let inner = Arc::get_mut(&mut plugin.inner)
            .ok_or_else(|| Error::Internal("plugin shared during load".into()))?;
        inner.info.name = d.name;
        inner.info.version = d.version;
        inner.info.description = d.description;
        inner.info.kind = match d.kind {
            t::PluginKind::Stateless => PluginKind::Stateless,
            t::PluginKind::Fitted => PluginKind::Fitted,
            t::PluginKind::OptionallyFitted => PluginKind::OptionallyFitted,
        };
        inner.info.params_schema = params_schema;
        inner.info.deterministic = d.deterministic;
        Ok(plugin)
    }

    fn check_signatures(&self, s: &mut Session) -> wasmtime::Result<()> {
        let f = s.func(&self.inner.fit_partial)?;
        f.typed::<(&str, BatchArg<'_>), (Result<Vec<u8>, w::Error>,)>(&s.store)?;
        // The hot path calls these two with `TypedFunc::new_unchecked`:
        // this check, on the same component, is what makes that sound.
        let f = s.func(&self.inner.configure)?;
        f.typed::<(&str, Option<&[u8]>), (Result<ResourceAny, w::Error>,)>(&s.store)?;
        let f = s.func(&self.inner.apply)?;
        f.typed::<(ResourceAny, BatchArg<'_>), (Result<w::Batch, w::Error>,)>(&s.store)?;
        Ok(())
    }

    /// Name, version, kind, parameter schema and id.
    pub fn info(&self) -> &PluginInfo {
        &self.inner.info
    }

    /// The plugin id (sha256 of the component bytes, hex).
    pub fn id(&self) -> &str {
        &self.inner.info.id
    }

    /// How errors name this plugin.
    pub fn plugin_ref(&self) -> PluginRef {
        PluginRef::new(
            &self.inner.info.name,
            &self.inner.info.version,
            &self.inner.info.id,
        )
    }

    fn session(&self) -> Result<Session> {
        self.new_session(true)
    }

    /// A session without `bindings`, for `configure` and `apply` only.
    fn bare_session(&self) -> Result<Session> {
        self.new_session(false)
    }

    fn new_session(&self, with_bindings: bool) -> Result<Session> {
        let engine = &self.inner.engine;
        let mut store = new_store(
            &engine.inner().wasmtime,
            engine.config(),
            engine.deadline_ticks(),
        );
        store.epoch_deadline_trap();
        store.set_epoch_deadline(engine.deadline_ticks());
        let instance = self
            .inner
            .pre
            .instantiate(&mut store)
            .map_err(|e| classify(&self.plugin_ref(), e, &mut store))?;
        let bindings = with_bindings
            .then(|| bindings::Plugin::new(&mut store, &instance))
            .transpose()
            .map_err(|e| {
                Error::Internal(format!("bindings for a checked component failed: {e}"))
            })?;
        Ok(Session {
            store,
            bindings,
            instance,
        })
    }

    /// Whether these parameters need a fitted state.
    ///
    /// # Errors
    /// [`Error::InvalidParams`] if the plugin rejects the parameters; trap
    /// and limit errors.
    pub fn needs_fit(&self, params: &Params) -> Result<bool> {
        let mut s = self.session()?;
        let r = s.call(&self.plugin_ref(), |s| {
            s.bindings
                .as_ref()
                .ok_or_else(no_bindings)?
                .kiln_transform_transform()
                .call_needs_fit(&mut s.store, params.as_str())
        })?;
        r.map_err(|e| plugin_error(&self.plugin_ref(), e))
    }

    /// Start a fit with these parameters.
    ///
    /// # Errors
    /// Trap and limit errors while instantiating.
    pub fn fitter(&self, params: &Params) -> Result<Fitter> {
        Ok(Fitter {
            plugin: self.clone(),
            params: params.clone(),
            merged: None,
            wire_schema: None,
            rows: 0,
        })
    }

    /// Configure a transformer with parameters and, for fitted plugins, a state.
    ///
    /// # Errors
    /// [`Error::InvalidParams`] / [`Error::InvalidState`] if the plugin
    /// rejects them; trap and limit errors.
    pub fn transformer(&self, params: &Params, state: Option<&State>) -> Result<Transformer> {
        // Configure once now so bad parameters or state fail here, not at
        // the first batch.
        self.configure(params, state)?;
        Ok(Transformer {
            plugin: self.clone(),
            params: params.clone(),
            state: state.cloned(),
            schemas: None,
        })
    }

    fn configure(&self, params: &Params, state: Option<&State>) -> Result<(Session, ResourceAny)> {
        self.configure_in(self.session()?, params, state)
    }

    fn configure_in(
        &self,
        mut s: Session,
        params: &Params,
        state: Option<&State>,
    ) -> Result<(Session, ResourceAny)> {
        let pref = self.plugin_ref();
        let idx = self.inner.configure;
        let r = s.call(&pref, |s| {
            let f = s.func(&idx)?;
            // SAFETY: `check_signatures` checked this signature on this
            // component when the plugin was loaded.
            let typed: ConfigureFn<'_> = unsafe { TypedFunc::new_unchecked(f) };
            Ok(typed
                .call(
                    &mut s.store,
                    (params.as_str(), state.map(|st| st.as_bytes())),
                )?
                .0)
        })?;
        let res = r.map_err(|e| plugin_error(&pref, e))?;
        Ok((s, res))
    }

    /// A fresh instance configured with parameters and state, ready to apply.
    pub(crate) fn ready(&self, params: &Params, state: Option<&State>) -> Result<Ready> {
        let (session, res) = self.configure_in(self.bare_session()?, params, state)?;
        Ok(Ready { session, res })
    }

    /// The wire form of an input schema and the output schema the plugin
    /// declares for it (asked of a fresh configured instance).
    pub(crate) fn declared_schemas(
        &self,
        params: &Params,
        state: Option<&State>,
        input: &SchemaRef,
    ) -> Result<(w::Schema, SchemaRef)> {
        let pref = self.plugin_ref();
        let ws = input_wire_schema(&pref, input)?;
        let (mut session, res) = self.configure(params, state)?;
        let out = session
            .call(&pref, |s| {
                s.bindings
                    .as_ref()
                    .ok_or_else(no_bindings)?
                    .kiln_transform_transform()
                    .transformer()
                    .call_output_schema(&mut s.store, res, &ws)
            })?
            .map_err(|e| plugin_error(&pref, e))?;
        let out = Arc::new(wire::import_schema(out).map_err(|e| wire_error(&pref, e))?);
        Ok((ws, out))
    }

    /// Apply a configured instance to one batch whose wire schema is `ws`,
    /// validating the output against `declared`.
    pub(crate) fn apply_ready(
        &self,
        ready: &mut Ready,
        batch: &RecordBatch,
        ws: &w::Schema,
        declared: &SchemaRef,
    ) -> Result<RecordBatch> {
        let pref = self.plugin_ref();
        let prepared = Prepared::new(batch, ws);
        let idx = self.inner.apply;
        let res = ready.res;
        let out = ready
            .session
            .call(&pref, |s| {
                let f = s.func(&idx)?;
                // SAFETY: `check_signatures` checked this signature on this
                // component when the plugin was loaded.
                let typed: ApplyFn<'_> = unsafe { TypedFunc::new_unchecked(f) };
                Ok(typed.call(&mut s.store, (res, prepared.arg()))?.0)
            })?
            .map_err(|e| plugin_error(&pref, e))?;
        let ratio = self.inner.engine.config().max_output_ratio;
        let max_rows = (batch.num_rows() as u64).max(1).saturating_mul(ratio);
        wire::import_batch(out, declared, max_rows).map_err(|e| wire_error(&pref, e))
    }
}

/// A fresh instance of a plugin, configured with parameters and state: the
/// unit the serving pool keeps warm. Used for one call, then dropped.
pub(crate) struct Ready {
    session: Session,
    res: ResourceAny,
}

impl Session {
    fn func(&mut self, idx: &ComponentExportIndex) -> wasmtime::Result<Func> {
        self.instance
            .get_func(&mut self.store, idx)
            .ok_or_else(|| wasmtime::format_err!("export vanished"))
    }

    /// Run one call with a fresh deadline, turning traps into typed errors
    /// and forwarding the plugin's stderr to the log.
    fn call<R>(
        &mut self,
        plugin: &PluginRef,
        f: impl FnOnce(&mut Session) -> wasmtime::Result<R>,
    ) -> Result<R> {
        let ticks = self.store.data().deadline_ticks;
        self.store.set_epoch_deadline(ticks);
        let r = f(self);
        let stderr = self.store.data().stderr.take();
        for line in stderr.lines() {
            tracing::info!(target: "kiln::plugin", plugin = %plugin, "{line}");
        }
        r.map_err(|e| classify_with(plugin, e, &mut self.store, stderr))
    }
}

/// Turn a wasmtime error from a call into a Kiln error.
fn classify(plugin: &PluginRef, e: wasmtime::Error, store: &mut Store<HostState>) -> Error {
    let stderr = store.data().stderr.take();
    classify_with(plugin, e, store, stderr)
}

fn classify_with(
    plugin: &PluginRef,
    e: wasmtime::Error,
    store: &mut Store<HostState>,
    stderr: String,
) -> Error {
    if let Some(hit) = e.downcast_ref::<MemoryCapHit>() {
        return Error::MemoryLimit {
            plugin: plugin.clone(),
            limit: hit.limit,
        };
    }
    if store.data().limiter.hit {
        return Error::MemoryLimit {
            plugin: plugin.clone(),
            limit: store.data().limiter.limit,
        };
    }
    if let Some(limit) = e.downcast_ref::<wasmtime::PoolConcurrencyLimitError>() {
        return Error::Busy {
            plugin: plugin.clone(),
            message: limit.to_string(),
        };
    }
    if let Some(Trap::Interrupt) = e.downcast_ref::<Trap>() {
        return Error::DeadlineExceeded {
            plugin: plugin.clone(),
            limit: store.data().deadline,
        };
    }
    tracing::debug!(target: "kiln::plugin", plugin = %plugin, "trap: {e:?}");
    // The trap itself ("wasm trap: call stack exhausted"); the wasm
    // backtrace goes to the debug log, not into the message.
    let message = match e.downcast_ref::<Trap>() {
        Some(trap) => trap.to_string(),
        None => e.to_string(),
    };
    Error::Trap {
        plugin: plugin.clone(),
        message,
        stderr,
    }
}

fn plugin_error(plugin: &PluginRef, e: w::Error) -> Error {
    let plugin = plugin.clone();
    match e {
        w::Error::InvalidParams(message) => Error::InvalidParams { plugin, message },
        w::Error::InvalidInput(i) => Error::InvalidInput {
            plugin,
            column: i.column,
            row: i.row,
            message: i.message,
        },
        w::Error::InvalidState(message) => Error::InvalidState { plugin, message },
        w::Error::Internal(message) => Error::PluginInternal { plugin, message },
    }
}

fn wire_error(plugin: &PluginRef, e: WireError) -> Error {
    Error::InvalidOutput {
        plugin: plugin.clone(),
        column: e.column,
        message: e.message,
    }
}

/// An input schema the contract cannot carry is the caller's problem, not the plugin's.
fn input_wire_schema(plugin: &PluginRef, schema: &Schema) -> Result<w::Schema> {
    wire::export_schema(schema).map_err(|e| Error::InvalidInput {
        plugin: plugin.clone(),
        column: e.column,
        row: None,
        message: e.message,
    })
}

/// Fits a plugin batch by batch: one partial state per batch, merged as it
/// goes (memory stays bounded by one partial state), then finished.
pub struct Fitter {
    plugin: Plugin,
    params: Params,
    merged: Option<Vec<u8>>,
    wire_schema: Option<(SchemaRef, w::Schema)>,
    rows: u64,
}

impl Fitter {
    /// Fit on one more batch.
    ///
    /// # Errors
    /// What the plugin reports (row numbers are counted across all batches
    /// given so far), traps and limits.
    pub fn update(&mut self, batch: &RecordBatch) -> Result<()> {
        let pref = self.plugin.plugin_ref();
        let wire_schema = match &self.wire_schema {
            Some((s, ws)) if s == batch.schema_ref() => ws.clone(),
            _ => {
                let ws = input_wire_schema(&pref, batch.schema_ref())?;
                self.wire_schema = Some((batch.schema(), ws.clone()));
                ws
            }
        };
        let prepared = Prepared::new(batch, &wire_schema);
        let idx = self.plugin.inner.fit_partial;
        let params = self.params.as_str().to_owned();
        let part = self.plugin.session()?.call(&pref, |s| {
            let f = s.func(&idx)?;
            let typed = f.typed::<(&str, BatchArg<'_>), (Result<Vec<u8>, w::Error>,)>(&s.store)?;
            Ok(typed
                .call(&mut s.store, (params.as_str(), prepared.arg()))?
                .0)
        })?;
        let part = part.map_err(|e| shift_row(plugin_error(&pref, e), self.rows))?;
        self.rows += batch.num_rows() as u64;
        self.merged = Some(match self.merged.take() {
            None => part,
            Some(acc) => self.merge(vec![acc, part])?,
        });
        Ok(())
    }

    fn merge(&mut self, states: Vec<Vec<u8>>) -> Result<Vec<u8>> {
        let pref = self.plugin.plugin_ref();
        let params = self.params.clone();
        let r = self.plugin.session()?.call(&pref, |s| {
            s.bindings
                .as_ref()
                .ok_or_else(no_bindings)?
                .kiln_transform_transform()
                .call_fit_merge(&mut s.store, params.as_str(), &states)
        })?;
        r.map_err(|e| plugin_error(&pref, e))
    }

    /// Rows seen so far.
    pub fn rows(&self) -> u64 {
        self.rows
    }

    /// Finish the fit and return the state.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] if no batch was given; what the plugin reports.
    pub fn finish(mut self) -> Result<State> {
        let pref = self.plugin.plugin_ref();
        let merged = self.merged.take().ok_or_else(|| Error::InvalidInput {
            plugin: pref.clone(),
            column: None,
            row: None,
            message: "no input batches to fit on".into(),
        })?;
        let params = self.params.clone();
        let r = self.plugin.session()?.call(&pref, |s| {
            s.bindings
                .as_ref()
                .ok_or_else(no_bindings)?
                .kiln_transform_transform()
                .call_fit_finish(&mut s.store, params.as_str(), &merged)
        })?;
        Ok(State::from_bytes(r.map_err(|e| plugin_error(&pref, e))?))
    }
}

/// A plugin configured with parameters (and state): applies to batches.
///
/// Each call runs in a fresh instance configured from the parameters and
/// state, so a plugin cannot carry hidden state from one call to the next
/// and an instance that trapped is never reused.
pub struct Transformer {
    plugin: Plugin,
    params: Params,
    state: Option<State>,
    /// Last input schema, its wire form, and the declared output schema.
    schemas: Option<(SchemaRef, w::Schema, SchemaRef)>,
}

impl Transformer {
    /// The plugin.
    pub fn plugin(&self) -> &Plugin {
        &self.plugin
    }

    /// The output schema the plugin declares for this input schema.
    ///
    /// # Errors
    /// What the plugin reports (a missing column, a wrong type), traps.
    pub fn output_schema(&mut self, input: &SchemaRef) -> Result<SchemaRef> {
        Ok(self.schemas_for(input)?.2)
    }

    fn schemas_for(&mut self, input: &SchemaRef) -> Result<(SchemaRef, w::Schema, SchemaRef)> {
        if let Some(s) = &self.schemas {
            if Arc::ptr_eq(&s.0, input) || s.0.as_ref() == input.as_ref() {
                return Ok(s.clone());
            }
        }
        let (ws, out) = self
            .plugin
            .declared_schemas(&self.params, self.state.as_ref(), input)?;
        let entry = (input.clone(), ws, out);
        self.schemas = Some(entry.clone());
        Ok(entry)
    }

    /// Transform one batch. The output is validated against the declared
    /// output schema before it is returned.
    ///
    /// # Errors
    /// What the plugin reports; [`Error::InvalidOutput`] for malformed
    /// output; traps and limits.
    pub fn apply(&mut self, batch: &RecordBatch) -> Result<RecordBatch> {
        let (_, ws, declared) = self.schemas_for(batch.schema_ref())?;
        let mut ready = self.plugin.ready(&self.params, self.state.as_ref())?;
        self.plugin.apply_ready(&mut ready, batch, &ws, &declared)
    }
}

/// Add `by` to the row of an input error (rows count across batches).
pub(crate) fn shift_row(e: Error, by: u64) -> Error {
    match e {
        Error::InvalidInput {
            plugin,
            column,
            row,
            message,
        } => Error::InvalidInput {
            plugin,
            column,
            row: row.map(|r| r + by),
            message,
        },
        other => other,
    }
}
