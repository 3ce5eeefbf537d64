//! Declarative feature pipelines: one TOML file describes a feature set (its
//! meaning, owner, inputs with units and sources), the steps that compute it
//! (plugins with parameters, applied in order), the output features, data
//! contracts on inputs and outputs, and promotion gates. See
//! `docs/pipelines.md` for every field.
//!
//! `Registry::fit_pipeline` (kiln-store) fits each step
//! on the previous steps' output and registers the whole pipeline as one
//! version with every step pinned; [`Pipeline`] applies a loaded pipeline to
//! batches, exactly like a single [`Transformer`].

use std::path::{Path, PathBuf};

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use serde::{Deserialize, Serialize};

use kiln_quality::Contract;
use kiln_runtime::{Error, Params, Plugin, Result, State, Transformer};
use kiln_temporal::{WindowSpec, Windows};

/// A pipeline file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PipelineSpec {
    /// What the feature set is.
    pub feature_set: FeatureSet,
    /// The raw input columns.
    #[serde(default)]
    pub inputs: Vec<ColumnDoc>,
    /// The steps, applied in order.
    pub steps: Vec<StepSpec>,
    /// The output features.
    #[serde(default)]
    pub outputs: Vec<ColumnDoc>,
    /// Contracts checked on inputs and outputs of every run.
    #[serde(default)]
    pub contracts: Contracts,
    /// What `kiln promote` requires of a candidate.
    #[serde(default)]
    pub gates: Option<Gates>,
    /// Windowed aggregations of raw input columns per entity, written to a
    /// feature table beside the steps' output by `kiln materialize`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub windows: Vec<WindowSpec>,
}

/// Name, meaning and owner of a feature set.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FeatureSet {
    /// The name it is registered under (`NAME@TAG`).
    pub name: String,
    /// The business meaning.
    #[serde(default)]
    pub description: String,
    /// Who owns it.
    #[serde(default)]
    pub owner: String,
    /// The entity key column(s) of its events (`entity = "customer_id"` or
    /// a list): what a feature table is keyed by.
    #[serde(
        default,
        deserialize_with = "one_or_many",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub entity: Vec<String>,
    /// The event time column of its events.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timestamp: Option<String>,
}

/// `"a"` or `["a", "b"]`.
fn one_or_many<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> std::result::Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany {
        One(String),
        Many(Vec<String>),
    }
    Ok(match OneOrMany::deserialize(d)? {
        OneOrMany::One(s) => vec![s],
        OneOrMany::Many(v) => v,
    })
}

/// Documentation of an input column or output feature.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ColumnDoc {
    /// Column name.
    pub name: String,
    /// Arrow type, as Arrow prints it (`Int64`, `Float64`, `Utf8`).
    #[serde(rename = "type", default)]
    pub data_type: Option<String>,
    /// Unit (`years`, `EUR`, `z-score`).
    #[serde(default)]
    pub unit: Option<String>,
    /// Where it comes from (inputs).
    #[serde(default)]
    pub source: Option<String>,
    /// What it means.
    #[serde(default)]
    pub description: Option<String>,
}

/// One step: a plugin and its parameters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StepSpec {
    /// A `.wasm` path (relative to the pipeline file), a plugin id, or
    /// `NAME@TAG` (that version's plugin).
    pub plugin: String,
    /// Parameters (a table); `NAME@TAG` steps default to that version's.
    #[serde(default)]
    pub params: Option<serde_json::Value>,
}

/// Input and output contracts.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Contracts {
    /// Checked on every input file before anything runs.
    #[serde(default)]
    pub input: Option<Contract>,
    /// Checked on the output before it is written.
    #[serde(default)]
    pub output: Option<Contract>,
}

/// Promotion gates: checks a candidate version must pass before `kiln
/// promote` moves a tag to it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Gates {
    /// A dataset the candidate runs on; its input and output contracts must pass.
    #[serde(default)]
    pub dataset: Option<PathBuf>,
    /// An input whose output must reproduce `golden_output` bit for bit.
    #[serde(default)]
    pub golden_input: Option<PathBuf>,
    /// The expected output for `golden_input`.
    #[serde(default)]
    pub golden_output: Option<PathBuf>,
    /// Largest PSI allowed between the candidate's and the current target's
    /// outputs on `dataset`, per output feature.
    #[serde(default)]
    pub max_psi: Option<f64>,
}

impl PipelineSpec {
    /// Read a pipeline file; relative paths in it (plugins, gates) are
    /// resolved against the file's directory.
    ///
    /// # Errors
    /// [`Error::Io`]; [`Error::Data`] naming the bad field.
    pub fn from_file(path: &Path) -> Result<PipelineSpec> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        let mut spec: PipelineSpec = toml::from_str(&text)
            .map_err(|e| Error::data(path, format!("not a valid pipeline file: {e}")))?;
        if spec.steps.is_empty() {
            return Err(Error::data(
                path,
                "a pipeline needs at least one [[steps]] entry",
            ));
        }
        let base = path.parent().unwrap_or(Path::new("."));
        let rebase = |p: &mut PathBuf| {
            if p.is_relative() {
                *p = base.join(&*p);
            }
        };
        for s in &mut spec.steps {
            if s.plugin.ends_with(".wasm") && Path::new(&s.plugin).is_relative() {
                s.plugin = base.join(&s.plugin).display().to_string();
            }
        }
        if !spec.windows.is_empty() {
            spec.compiled_windows()
                .map_err(|e| Error::data(path, format!("[[windows]]: {e}")))?;
        }
        if let Some(g) = &mut spec.gates {
            for p in [&mut g.dataset, &mut g.golden_input, &mut g.golden_output]
                .into_iter()
                .flatten()
            {
                rebase(p);
            }
        }
        Ok(spec)
    }

    /// The `[[windows]]` compiled for the feature set's entity and event
    /// time (`None` when the file declares no windows).
    ///
    /// # Errors
    /// [`kiln_temporal::Error::Spec`] for a bad window, or when the file has
    /// windows but no `[feature_set]` `entity` and `timestamp`.
    pub fn compiled_windows(&self) -> std::result::Result<Option<Windows>, kiln_temporal::Error> {
        if self.windows.is_empty() {
            return Ok(None);
        }
        let Some(time) = &self.feature_set.timestamp else {
            return Err(kiln_temporal::Error::Spec {
                what: "windows".into(),
                value: self.feature_set.name.clone(),
                hint: "windows need the events' time and key: set `timestamp` and `entity` in [feature_set]".into(),
            });
        };
        if self.feature_set.entity.is_empty() {
            return Err(kiln_temporal::Error::Spec {
                what: "windows".into(),
                value: self.feature_set.name.clone(),
                hint: "windows need the events' key: set `entity` in [feature_set]".into(),
            });
        }
        Windows::new(&self.windows, &self.feature_set.entity, time).map(Some)
    }

    /// Parameters of step `i`, canonical.
    ///
    /// # Errors
    /// [`Error::ParamsSyntax`] if they are not a table.
    pub fn step_params(&self, i: usize) -> Result<Option<Params>> {
        self.steps[i]
            .params
            .clone()
            .map(Params::from_value)
            .transpose()
    }
}

/// A loaded pipeline: each step's plugin, parameters and state, applied in
/// order. Cheap to clone; `Send + Sync`.
#[derive(Debug, Clone)]
pub struct Pipeline {
    steps: Vec<(Plugin, Params, Option<State>)>,
    id: Option<String>,
    windows: Option<Windows>,
}

impl Pipeline {
    /// A pipeline of these steps.
    pub fn new(steps: Vec<(Plugin, Params, Option<State>)>) -> Pipeline {
        Pipeline {
            steps,
            id: None,
            windows: None,
        }
    }

    /// The same pipeline, identified by `id` (the registry's pipeline id,
    /// which `ServingTransform::version` (kiln-serve) then reports).
    pub fn with_id(mut self, id: impl Into<String>) -> Pipeline {
        self.id = Some(id.into());
        self
    }

    /// The same pipeline with its file's `[[windows]]` (see
    /// [`PipelineSpec::compiled_windows`]), which serving computes per
    /// request from an entity's recent events.
    pub fn with_windows(mut self, windows: Windows) -> Pipeline {
        self.windows = Some(windows);
        self
    }

    /// The windowed aggregations of the feature set, if it declares any.
    pub fn windows(&self) -> Option<&Windows> {
        self.windows.as_ref()
    }

    /// The registry's pipeline id, for a pipeline loaded from the store.
    pub fn id(&self) -> Option<&str> {
        self.id.as_deref()
    }

    /// The steps.
    pub fn steps(&self) -> &[(Plugin, Params, Option<State>)] {
        &self.steps
    }

    /// Configured transformers for every step, to apply batch after batch.
    ///
    /// # Errors
    /// As [`Plugin::transformer`], for the first step that fails.
    pub fn transformer(&self) -> Result<PipelineTransformer> {
        let steps = self
            .steps
            .iter()
            .map(|(p, params, s)| p.transformer(params, s.as_ref()))
            .collect::<Result<Vec<_>>>()?;
        Ok(PipelineTransformer { steps })
    }
}

/// A configured pipeline; like [`Transformer`], one per thread.
pub struct PipelineTransformer {
    steps: Vec<Transformer>,
}

impl std::fmt::Debug for PipelineTransformer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PipelineTransformer")
            .field("steps", &self.steps.len())
            .finish()
    }
}

impl PipelineTransformer {
    /// The output schema for an input schema.
    ///
    /// # Errors
    /// As [`Transformer::output_schema`], for the first step that refuses.
    pub fn output_schema(&mut self, input: &SchemaRef) -> Result<SchemaRef> {
        let mut schema = input.clone();
        for t in &mut self.steps {
            schema = t.output_schema(&schema)?;
        }
        Ok(schema)
    }

    /// Apply every step in order.
    ///
    /// # Errors
    /// As [`Transformer::apply`], for the first step that fails.
    pub fn apply(&mut self, batch: &RecordBatch) -> Result<RecordBatch> {
        let mut b = batch.clone();
        for t in &mut self.steps {
            b = t.apply(&b)?;
        }
        Ok(b)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pipeline_file_parses_and_rebases_paths() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("kiln.toml");
        std::fs::write(
            &p,
            r#"
[feature_set]
name = "customers"
description = "customer features"
owner = "ml"

[[inputs]]
name = "age"
type = "Int64"
unit = "years"
source = "CRM"

[[steps]]
plugin = "plugins/impute.wasm"
params = { columns = ["age"], strategy = "median" }

[[steps]]
plugin = "scaler@prod"

[contracts.input.columns.age]
min = 0
max = 130

[gates]
dataset = "holdout.csv"
max_psi = 0.25
"#,
        )
        .unwrap();
        let s = PipelineSpec::from_file(&p).unwrap();
        assert_eq!(
            s.steps[0].plugin,
            dir.path().join("plugins/impute.wasm").display().to_string()
        );
        assert_eq!(s.steps[1].plugin, "scaler@prod");
        assert_eq!(
            s.step_params(0).unwrap().unwrap().as_str(),
            r#"{"columns":["age"],"strategy":"median"}"#
        );
        assert_eq!(
            s.contracts.input.as_ref().unwrap().columns["age"].max,
            Some(130.0)
        );
        assert_eq!(
            s.gates.unwrap().dataset.unwrap(),
            dir.path().join("holdout.csv")
        );

        std::fs::write(
            &p,
            "[feature_set]\nname='x'\nbogus=1\n[[steps]]\nplugin='a.wasm'\n",
        )
        .unwrap();
        let e = PipelineSpec::from_file(&p).unwrap_err().to_string();
        assert!(e.contains("bogus"), "{e}");
    }
}
