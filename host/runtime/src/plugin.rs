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
use kiln_wire::{PluginError, Prepared, WireError};
use sha2::{Digest, Sha256};
use wasmtime::component::{InstancePre, ResourceAny};
use wasmtime::{Store, Trap};

use crate::abi::{Exports, Keeper, KindRecord, Session, LEND_FROM_BYTES, TRANSFORM_INTERFACE};
use crate::engine::{Compiled, Engine};
use crate::identity::plugin_id;
use crate::sandbox::{new_store, HostState, MemoryCapHit};
use crate::{Error, Params, PluginRef, Result, WIT_VERSION};

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
    /// How errors name the plugin, made once (and again once `describe`
    /// has named it): calls borrow it, and clone it (an `Arc`) only into an
    /// error or into what keeps one, such as a [`Transformer`].
    reference: PluginRef,
    pre: InstancePre<HostState>,
    exports: Exports,
    /// The plugin promises that `apply`'s post-return leaves its output's
    /// buffers intact ([`crate::abi::promises_intact_outputs`]): large
    /// outputs may then stay in the instance's memory (see
    /// [`Plugin::apply_ready`]).
    outputs_intact: bool,
}

impl std::fmt::Debug for Plugin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Plugin")
            .field("info", &self.inner.info)
            .finish()
    }
}

/// Loading lives beside [`Plugin`] (not in `engine.rs`) so that the engine
/// does not depend on what it loads.
impl Engine {
    /// Load a plugin from a `.wasm` file: hash it, compile it (or take it
    /// from the cache), check it implements `kiln:transform@0.1.x`, and ask
    /// it to describe itself.
    ///
    /// # Errors
    /// [`Error::Io`] if the file cannot be read; [`Error::Load`] if it is not a
    /// compatible Kiln component; a trap or limit error if `describe` fails.
    pub fn load(&self, path: &Path) -> Result<Plugin> {
        let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
        self.load_bytes(&bytes, path)
    }

    /// Load a plugin from bytes; `label` names it in errors (a path or `<memory>`).
    ///
    /// # Errors
    /// As [`Engine::load`].
    pub fn load_bytes(&self, bytes: &[u8], label: &Path) -> Result<Plugin> {
        let id = plugin_id(bytes);
        let compiled = self.compile(bytes, &id, label)?;
        Plugin::new(self.clone(), id, compiled, label)
    }
}

impl Plugin {
    pub(crate) fn new(
        engine: Engine,
        id: String,
        compiled: Compiled,
        label: &Path,
    ) -> Result<Plugin> {
        let Compiled {
            component,
            outputs_intact,
        } = compiled;
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
        let exports = Exports::find(&component).map_err(load_err)?;
        let file_name = label
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| "<memory>".into());
        let reference = PluginRef::new(&file_name, "", &id);
        let mut plugin = Plugin {
            inner: Arc::new(PluginInner {
                engine,
                reference,
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
                exports,
                outputs_intact,
            }),
        };
        // Typed function signatures are checked now, so a plugin with a
        // mismatched contract fails at load, not at its first batch.
        let mut s = plugin.session()?;
        exports
            .check(&mut s)
            .map_err(|e| load_err(format!("{e:#}")))?;
        let d = call(&mut s, plugin.pref(), |s| exports.describe(s))?;
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
            KindRecord::Stateless => PluginKind::Stateless,
            KindRecord::Fitted => PluginKind::Fitted,
            KindRecord::OptionallyFitted => PluginKind::OptionallyFitted,
        };
        inner.info.params_schema = params_schema;
        inner.info.deterministic = d.deterministic;
        inner.reference = PluginRef::new(&inner.info.name, &inner.info.version, &inner.info.id);
        Ok(plugin)
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
        self.pref().clone()
    }

    /// [`Plugin::plugin_ref`], borrowed (the per-call paths only need it on
    /// failure).
    fn pref(&self) -> &PluginRef {
        &self.inner.reference
    }

    /// A fresh store and instance: every call gets one.
    fn session(&self) -> Result<Session> {
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
        Ok(Session::new(store, instance))
    }

    /// Whether these parameters need a fitted state.
    ///
    /// # Errors
    /// [`Error::InvalidParams`] if the plugin rejects the parameters; trap
    /// and limit errors.
    pub fn needs_fit(&self, params: &Params) -> Result<bool> {
        let pref = self.pref();
        let mut s = self.session()?;
        let r = call(&mut s, pref, |s| {
            self.inner.exports.needs_fit(s, params.as_str())
        })?;
        r.map_err(|e| plugin_error(pref, e))
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
        self.ready(params, state)?;
        Ok(Transformer {
            plugin: self.clone(),
            params: params.clone(),
            state: state.cloned(),
            signature: None,
        })
    }

    /// A fresh instance configured with parameters and state, ready for one
    /// [`Plugin::apply_ready`]. Serving pools prepare these ahead of calls.
    ///
    /// # Errors
    /// [`Error::InvalidParams`] / [`Error::InvalidState`] if the plugin
    /// rejects them; trap and limit errors.
    pub fn ready(&self, params: &Params, state: Option<&State>) -> Result<Ready> {
        let pref = self.pref();
        let mut session = self.session()?;
        let r = call(&mut session, pref, |s| {
            self.inner
                .exports
                .configure(s, params.as_str(), state.map(|st| st.as_bytes()))
        })?;
        let res = r.map_err(|e| plugin_error(pref, e))?;
        Ok(Ready { session, res })
    }

    /// The output schema the plugin declares for `input`, with what a call
    /// needs to send batches of that schema (asked of a fresh configured
    /// instance; compute it once per input schema).
    ///
    /// # Errors
    /// [`Error::InvalidInput`] for an input type the contract cannot carry;
    /// what the plugin reports; [`Error::InvalidOutput`] for a malformed
    /// declared schema; traps.
    pub fn signature(
        &self,
        params: &Params,
        state: Option<&State>,
        input: &SchemaRef,
    ) -> Result<Signature> {
        let pref = self.pref();
        let wire = input_wire_schema(pref, input)?;
        let Ready { mut session, res } = self.ready(params, state)?;
        let out = call(&mut session, pref, |s| {
            self.inner.exports.output_schema(s, res, &wire)
        })?
        .map_err(|e| plugin_error(pref, e))?;
        let output_wire = out.clone();
        let output = Arc::new(kiln_wire::import_schema(out).map_err(|e| wire_error(pref, e))?);
        Ok(Signature(Arc::new(SignatureInner {
            input: input.clone(),
            wire,
            output,
            output_wire,
        })))
    }

    /// Apply a configured instance to one batch of `sig`'s input schema,
    /// validating the output against the declared output schema. The
    /// instance must not be used again unless the caller accepts that it
    /// carries state from this call.
    ///
    /// Large output buffers (64 KiB or more) of a plugin that promises to
    /// leave them intact (every kiln-sdk plugin does) are not copied out:
    /// the returned arrays point into the instance's memory, and the
    /// instance lives until the last of them is dropped (at most 16 such
    /// instances per engine; beyond that, outputs are copied). That
    /// instance is then spent: calling this again with `ready` is an error.
    ///
    /// # Errors
    /// What the plugin reports; [`Error::InvalidOutput`] for malformed
    /// output; traps and limits; [`Error::Internal`] for a spent `ready`.
    pub fn apply_ready(
        &self,
        ready: &mut Ready,
        batch: &RecordBatch,
        sig: &Signature,
    ) -> Result<RecordBatch> {
        let pref = self.pref();
        if ready.session.is_spent() {
            return Err(Error::Internal(format!(
                "{pref}: this Ready's instance holds the previous call's output; prepare another with Plugin::ready"
            )));
        }
        let prepared = Prepared::new(batch, sig.0.wire.clone());
        let res = ready.res;
        let input_bytes = batch.get_array_memory_size();
        let engine = &self.inner.engine;
        ready.session.drop_off_thread(input_bytes, engine);
        let keeper = (self.inner.outputs_intact && input_bytes >= LEND_FROM_BYTES)
            .then(|| Keeper::reserve(engine))
            .flatten();
        let (exports, declared) = (&self.inner.exports, &sig.0.output_wire);
        let out = call(&mut ready.session, pref, |s| match &keeper {
            Some(k) => exports.apply_lending(s, res, prepared.view(), declared, k),
            None => exports.apply(s, res, prepared.view(), declared),
        })?;
        let out = out.map_err(|e| plugin_error(pref, e))?;
        let ratio = engine.config().max_output_ratio;
        let max_rows = (batch.num_rows() as u64).max(1).saturating_mul(ratio);
        if out.num_rows > max_rows {
            return Err(wire_error(
                pref,
                WireError {
                    column: None,
                    message: format!("{} rows returned, more than the cap of {max_rows} for this input (see EngineConfig::max_output_ratio)", out.num_rows),
                },
            ));
        }
        let out = kiln_wire::import_batch_declared(out, &sig.0.output, &sig.0.output_wire)
            .map_err(|e| wire_error(pref, e))?;
        // Validated: if any buffer of the accepted output points into the
        // instance's memory (each holds a clone of the keeper), the store
        // goes with them.
        if let Some(k) = keeper.filter(|k| Arc::strong_count(k) > 1) {
            k.keep(&mut ready.session);
        }
        Ok(out)
    }
}

/// A fresh instance of a plugin, configured with parameters and state: the
/// unit a serving pool keeps warm. Used for one call, then dropped.
pub struct Ready {
    session: Session,
    res: ResourceAny,
}

impl Ready {
    /// Whether this instance's memory holds the output of the call it ran
    /// (a large output is not copied out, see [`Plugin::apply_ready`]): it
    /// cannot be called again and is only to be dropped.
    pub fn is_spent(&self) -> bool {
        self.session.is_spent()
    }
}

impl std::fmt::Debug for Ready {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ready").finish_non_exhaustive()
    }
}

/// An input schema, its wire form and the output schema a plugin declares
/// for it ([`Plugin::signature`]). Cheap to clone.
#[derive(Debug, Clone)]
pub struct Signature(Arc<SignatureInner>);

#[derive(Debug)]
struct SignatureInner {
    input: SchemaRef,
    wire: kiln_wire::Schema,
    output: SchemaRef,
    /// `output` as the plugin declared it on the wire: an output batch
    /// carrying exactly this schema needs no schema conversion.
    output_wire: kiln_wire::Schema,
}

impl Signature {
    /// The input schema this signature was computed for.
    pub fn input(&self) -> &SchemaRef {
        &self.0.input
    }

    /// The output schema the plugin declared for it.
    pub fn output(&self) -> &SchemaRef {
        &self.0.output
    }

    /// Whether a batch of `schema` can use this signature.
    pub fn matches(&self, schema: &SchemaRef) -> bool {
        Arc::ptr_eq(&self.0.input, schema) || self.0.input.as_ref() == schema.as_ref()
    }
}

/// Run one call with a fresh deadline, turning traps into typed errors
/// and forwarding the plugin's stderr to the log.
fn call<R>(
    s: &mut Session,
    plugin: &PluginRef,
    f: impl FnOnce(&mut Session) -> wasmtime::Result<R>,
) -> Result<R> {
    let ticks = s.store().data().deadline_ticks;
    s.store_mut().set_epoch_deadline(ticks);
    let r = f(s);
    let stderr = s.store().data().stderr.take();
    for line in stderr.lines() {
        tracing::info!(target: "kiln::plugin", plugin = %plugin, "{line}");
    }
    r.map_err(|e| classify_with(plugin, e, s.store_mut(), stderr))
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

fn plugin_error(plugin: &PluginRef, e: PluginError) -> Error {
    let plugin = plugin.clone();
    match e {
        PluginError::InvalidParams(message) => Error::InvalidParams { plugin, message },
        PluginError::InvalidInput(i) => Error::InvalidInput {
            plugin,
            column: i.column,
            row: i.row,
            message: i.message,
        },
        PluginError::InvalidState(message) => Error::InvalidState { plugin, message },
        PluginError::Internal(message) => Error::PluginInternal { plugin, message },
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
fn input_wire_schema(plugin: &PluginRef, schema: &Schema) -> Result<kiln_wire::Schema> {
    kiln_wire::export_schema(schema).map_err(|e| Error::InvalidInput {
        plugin: plugin.clone(),
        column: e.column,
        row: None,
        message: e.message,
    })
}

/// A partial fit state: what one `fit-partial` or `fit-merge` returns,
/// opaque bytes to merge with others ([`Plugin::fit_merge`]) and finish
/// ([`Plugin::fit_finish`]). Engines that fit partitions in parallel ship
/// them between tasks or processes with [`PartialState::as_bytes`] /
/// [`PartialState::from_bytes`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartialState {
    bytes: Vec<u8>,
}

impl PartialState {
    /// Wrap partial-state bytes (e.g. received from another process).
    pub fn from_bytes(bytes: Vec<u8>) -> PartialState {
        PartialState { bytes }
    }

    /// The partial-state bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }
}

/// The contract's three fit steps, one fresh instance per call, for
/// engines that fit batches in parallel; a [`Fitter`] runs them in order.
impl Plugin {
    /// `fit-partial`: the partial state of one batch. Row numbers in
    /// errors count within `batch`.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] for a schema the contract cannot carry;
    /// what the plugin reports; traps and limits.
    pub fn fit_partial(&self, params: &Params, batch: &RecordBatch) -> Result<PartialState> {
        let wire = input_wire_schema(&self.plugin_ref(), batch.schema_ref())?;
        self.fit_partial_wire(params, batch, wire)
    }

    fn fit_partial_wire(
        &self,
        params: &Params,
        batch: &RecordBatch,
        wire: kiln_wire::Schema,
    ) -> Result<PartialState> {
        let pref = self.pref();
        let prepared = Prepared::new(batch, wire);
        let exports = self.inner.exports;
        let mut s = self.session()?;
        s.drop_off_thread(batch.get_array_memory_size(), &self.inner.engine);
        let part = call(&mut s, pref, |s| {
            exports.fit_partial(s, params.as_str(), prepared.view())
        })?;
        Ok(PartialState {
            bytes: part.map_err(|e| plugin_error(pref, e))?,
        })
    }

    /// `fit-merge`: merge partial states left to right in one call.
    /// Floating-point merges are not associative: merge in the order the
    /// batches were read to get the bytes a [`Fitter`] gives.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] for no states; what the plugin reports
    /// (states from another plugin or parameters); traps and limits.
    pub fn fit_merge(&self, params: &Params, parts: &[PartialState]) -> Result<PartialState> {
        let pref = self.pref();
        if parts.is_empty() {
            return Err(Error::InvalidInput {
                plugin: pref.clone(),
                column: None,
                row: None,
                message: "no partial states to merge".into(),
            });
        }
        let states: Vec<Vec<u8>> = parts.iter().map(|p| p.bytes.clone()).collect();
        let mut s = self.session()?;
        let r = call(&mut s, pref, |s| {
            self.inner.exports.fit_merge(s, params.as_str(), &states)
        })?;
        Ok(PartialState {
            bytes: r.map_err(|e| plugin_error(pref, e))?,
        })
    }

    /// `fit-finish`: the fitted state from the merged partial state.
    ///
    /// # Errors
    /// What the plugin reports; traps and limits.
    pub fn fit_finish(&self, params: &Params, merged: &PartialState) -> Result<State> {
        let pref = self.pref();
        let mut s = self.session()?;
        let r = call(&mut s, pref, |s| {
            self.inner
                .exports
                .fit_finish(s, params.as_str(), &merged.bytes)
        })?;
        Ok(State::from_bytes(r.map_err(|e| plugin_error(pref, e))?))
    }
}

/// Fits a plugin batch by batch: one partial state per batch, merged as it
/// goes (memory stays bounded by one partial state), then finished.
pub struct Fitter {
    plugin: Plugin,
    params: Params,
    merged: Option<PartialState>,
    wire_schema: Option<(SchemaRef, kiln_wire::Schema)>,
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
        let part = self
            .plugin
            .fit_partial_wire(&self.params, batch, wire_schema)
            .map_err(|e| e.with_row_offset(self.rows))?;
        self.rows += batch.num_rows() as u64;
        self.merged = Some(match self.merged.take() {
            None => part,
            Some(acc) => self.plugin.fit_merge(&self.params, &[acc, part])?,
        });
        Ok(())
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
        let merged = self.merged.take().ok_or_else(|| Error::InvalidInput {
            plugin: self.plugin.plugin_ref(),
            column: None,
            row: None,
            message: "no input batches to fit on".into(),
        })?;
        self.plugin.fit_finish(&self.params, &merged)
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
    /// The signature for the last input schema.
    signature: Option<Signature>,
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
        Ok(self.signature_for(input)?.output().clone())
    }

    fn signature_for(&mut self, input: &SchemaRef) -> Result<Signature> {
        if let Some(s) = &self.signature {
            if s.matches(input) {
                return Ok(s.clone());
            }
        }
        let sig = self
            .plugin
            .signature(&self.params, self.state.as_ref(), input)?;
        self.signature = Some(sig.clone());
        Ok(sig)
    }

    /// Transform one batch. The output is validated against the declared
    /// output schema before it is returned. Large output buffers stay in
    /// the call's instance, which lives until they are dropped (see
    /// [`Plugin::apply_ready`]).
    ///
    /// # Errors
    /// What the plugin reports; [`Error::InvalidOutput`] for malformed
    /// output; traps and limits.
    pub fn apply(&mut self, batch: &RecordBatch) -> Result<RecordBatch> {
        let sig = self.signature_for(batch.schema_ref())?;
        let mut ready = self.plugin.ready(&self.params, self.state.as_ref())?;
        self.plugin.apply_ready(&mut ready, batch, &sig)
    }
}
