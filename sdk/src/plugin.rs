//! The traits a plugin author implements.

use arrow_array::RecordBatch;
use arrow_schema::Schema;
use serde::{de::DeserializeOwned, Serialize};

use crate::{Error, Result};

/// Whether a plugin needs a fitted state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PluginKind {
    /// Configured by parameters alone.
    Stateless,
    /// Needs a state produced by fitting on data.
    Fitted,
    /// Needs a fit for some parameters only (see [`FittedTransform::needs_fit`]).
    OptionallyFitted,
}

/// Static description of a plugin, reported by `describe`.
#[derive(Debug, Clone, PartialEq)]
pub struct PluginInfo {
    /// Stable name, e.g. `standard-scaler`.
    pub name: String,
    /// Semantic version of the plugin.
    pub version: String,
    /// One or two sentences for `kiln inspect`.
    pub description: String,
    /// JSON Schema of the parameters object.
    pub params_schema: String,
    /// Whether the same input always gives the same output.
    pub deterministic: bool,
    /// Set by the trait (stateless, fitted, optionally fitted).
    pub kind: PluginKind,
}

impl PluginInfo {
    /// A deterministic plugin with an empty (`{}`) parameter schema.
    pub fn new(name: &str, version: &str, description: &str) -> Self {
        PluginInfo {
            name: name.to_owned(),
            version: version.to_owned(),
            description: description.to_owned(),
            params_schema: r#"{"type":"object"}"#.to_owned(),
            deterministic: true,
            kind: PluginKind::Fitted,
        }
    }

    /// Set the JSON Schema of the parameters object.
    pub fn with_params_schema(mut self, schema: &str) -> Self {
        self.params_schema = schema.to_owned();
        self
    }

    /// Set the plugin kind (the traits set it; override for optionally fitted plugins).
    pub fn with_kind(mut self, kind: PluginKind) -> Self {
        self.kind = kind;
        self
    }
}

/// A transform whose output depends only on its parameters and the batch.
///
/// Implementing it also implements [`FittedTransform`] with an empty fit.
pub trait StatelessTransform: Sized + 'static {
    /// Parameters, deserialized from the JSON object the operator passes.
    /// Use `#[serde(deny_unknown_fields)]` so typos are reported.
    type Params: DeserializeOwned;
    /// Name, version, description and parameter schema.
    fn info() -> PluginInfo;
    /// Validate parameters and build the transform once per run.
    fn new(params: Self::Params) -> Result<Self>;
    /// The output schema for an input schema; the host checks every output
    /// batch against it.
    fn output_schema(&self, input: &Schema) -> Result<Schema>;
    /// Transform one batch.
    fn transform(&self, batch: &RecordBatch) -> Result<RecordBatch>;
    /// Transform one batch the plugin owns. The guest calls this one; the
    /// default borrows and calls [`StatelessTransform::transform`].
    /// Override it to reuse input buffers for the output (see
    /// [`crate::output::unary_mut`] and [`crate::columns::replace_with`]):
    /// a column replaced in place then costs no new memory and no copy.
    fn transform_owned(&self, batch: RecordBatch) -> Result<RecordBatch> {
        self.transform(&batch)
    }
}

/// A transform fitted on data: partial state per batch, merge, finish, then
/// apply with the finished state.
///
/// States cross the boundary serialized as JSON by serde; use ordered
/// containers (`BTreeMap`, `Vec`) so the bytes, and so the state id, are
/// deterministic.
pub trait FittedTransform: Sized + 'static {
    /// Parameters, deserialized from the JSON object the operator passes.
    type Params: DeserializeOwned;
    /// Partial state fitted on some batches; merged associatively.
    type Partial: Serialize + DeserializeOwned;
    /// Finished state, stored by the host and passed to [`FittedTransform::new`].
    type State: Serialize + DeserializeOwned;

    /// Name, version, description and parameter schema.
    fn info() -> PluginInfo;
    /// Whether these parameters need a fitted state (default: always).
    fn needs_fit(_params: &Self::Params) -> bool {
        true
    }
    /// A partial state from one batch.
    fn fit_partial(params: &Self::Params, batch: &RecordBatch) -> Result<Self::Partial>;
    /// Merge two partial states. Must be associative.
    fn merge(params: &Self::Params, a: Self::Partial, b: Self::Partial) -> Result<Self::Partial>;
    /// Turn the merged partial state into the final state.
    fn finish(params: &Self::Params, partial: Self::Partial) -> Result<Self::State>;
    /// Build the transform from parameters and, when fitted, the state.
    fn new(params: Self::Params, state: Option<Self::State>) -> Result<Self>;
    /// The output schema for an input schema.
    fn output_schema(&self, input: &Schema) -> Result<Schema>;
    /// Transform one batch.
    fn transform(&self, batch: &RecordBatch) -> Result<RecordBatch>;
    /// Transform one batch the plugin owns. The guest calls this one; the
    /// default borrows and calls [`FittedTransform::transform`]. Override
    /// it to reuse input buffers for the output (see
    /// [`crate::output::unary_mut`] and [`crate::columns::replace_with`]).
    fn transform_owned(&self, batch: RecordBatch) -> Result<RecordBatch> {
        self.transform(&batch)
    }
}

impl<T: StatelessTransform> FittedTransform for T {
    type Params = T::Params;
    type Partial = ();
    type State = ();

    fn info() -> PluginInfo {
        T::info().with_kind(PluginKind::Stateless)
    }
    fn needs_fit(_params: &Self::Params) -> bool {
        false
    }
    fn fit_partial(_: &Self::Params, _: &RecordBatch) -> Result<()> {
        Err(Error::InvalidParams(
            "this plugin is stateless: run it without fitting".into(),
        ))
    }
    fn merge(_: &Self::Params, _: (), _: ()) -> Result<()> {
        Ok(())
    }
    fn finish(_: &Self::Params, _: ()) -> Result<()> {
        Ok(())
    }
    fn new(params: Self::Params, _state: Option<()>) -> Result<Self> {
        <T as StatelessTransform>::new(params)
    }
    fn output_schema(&self, input: &Schema) -> Result<Schema> {
        <T as StatelessTransform>::output_schema(self, input)
    }
    fn transform(&self, batch: &RecordBatch) -> Result<RecordBatch> {
        <T as StatelessTransform>::transform(self, batch)
    }
    fn transform_owned(&self, batch: RecordBatch) -> Result<RecordBatch> {
        <T as StatelessTransform>::transform_owned(self, batch)
    }
}

/// Parse parameters from JSON text (an empty string means `{}`).
pub(crate) fn parse_params<P: DeserializeOwned>(json: &str) -> Result<P> {
    let json = if json.trim().is_empty() { "{}" } else { json };
    serde_json::from_str(json).map_err(|e| Error::InvalidParams(e.to_string()))
}

/// Serialize a state or partial state.
pub(crate) fn encode_state<S: Serialize>(state: &S) -> Result<Vec<u8>> {
    serde_json::to_vec(state).map_err(|e| Error::Internal(format!("cannot serialize state: {e}")))
}

/// Deserialize a state or partial state.
pub(crate) fn decode_state<S: DeserializeOwned>(bytes: &[u8]) -> Result<S> {
    serde_json::from_slice(bytes).map_err(|e| {
        Error::InvalidState(format!(
            "state does not decode ({e}); was it fitted by this plugin and version?"
        ))
    })
}

/// Fit over batches the way the host does: partial per batch, merge, finish,
/// with every state through its serialized form.
pub(crate) fn fit_bytes<T: FittedTransform>(
    params: &str,
    batches: &[RecordBatch],
) -> Result<Vec<u8>> {
    let p: T::Params = parse_params(params)?;
    let mut merged: Option<T::Partial> = None;
    for b in batches {
        let part: T::Partial = decode_state(&encode_state(&T::fit_partial(&p, b)?)?)?;
        merged = Some(match merged {
            None => part,
            Some(acc) => T::merge(&p, acc, part)?,
        });
    }
    let merged = merged.ok_or_else(|| Error::column("", "cannot fit on no batches"))?;
    encode_state(&T::finish(&p, merged)?)
}
