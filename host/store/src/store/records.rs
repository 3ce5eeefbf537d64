//! What the store keeps: plugins, states, transform versions, names with
//! tags and their history, and run records. All are serde JSON values.

use std::collections::BTreeMap;

use arrow::datatypes::Schema;
use serde::{Deserialize, Serialize};

use kiln_io::Fingerprint;
use kiln_runtime::{EngineConfig, PluginInfo, PluginKind};
use sha2::{Digest, Sha256};

/// A registered plugin (its bytes are stored beside, under its id).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PluginRecord {
    /// sha256 of the component bytes.
    pub id: String,
    /// Name from `describe`.
    pub name: String,
    /// Version from `describe`.
    pub version: String,
    /// Description from `describe`.
    pub description: String,
    /// Stateless, fitted or optionally fitted.
    pub kind: PluginKind,
    /// The parameter JSON Schema from `describe`.
    pub params_schema: serde_json::Value,
    /// The WIT contract version the plugin was built against.
    pub wit_version: String,
    /// Size of the component in bytes.
    pub size: u64,
    /// When it was first added (RFC 3339).
    pub added_at: String,
}

impl PluginRecord {
    /// The record of a loaded plugin of `size` bytes.
    pub fn from_info(info: &PluginInfo, size: u64) -> PluginRecord {
        PluginRecord {
            id: info.id.clone(),
            name: info.name.clone(),
            version: info.version.clone(),
            description: info.description.clone(),
            kind: info.kind,
            params_schema: info.params_schema.clone(),
            wit_version: info.wit_version.clone(),
            size,
            added_at: super::now(),
        }
    }
}

/// A fitted state (its bytes are stored beside, under its id).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StateRecord {
    /// sha256 of the state bytes.
    pub id: String,
    /// The plugin that fitted it.
    pub plugin_id: String,
    /// The canonical parameters it was fitted with.
    pub params: String,
    /// Size in bytes.
    pub size: u64,
    /// When it was stored (RFC 3339).
    pub created_at: String,
}

/// A transform version: a plugin, canonical parameters and an optional state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VersionRecord {
    /// [`version_id`] of the three parts.
    pub id: String,
    /// The plugin id.
    pub plugin_id: String,
    /// The plugin's name (for display).
    pub plugin_name: String,
    /// Canonical parameters JSON.
    pub params: String,
    /// The fitted state id, for fitted versions.
    pub state_id: Option<String>,
    /// When it was created (RFC 3339).
    pub created_at: String,
}

/// A named feature transform: metadata, tags and every tag move.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NameRecord {
    /// The name, e.g. `scaler`.
    pub name: String,
    /// What the feature means.
    pub description: String,
    /// Who owns it.
    pub owner: String,
    /// When it was created (RFC 3339).
    pub created_at: String,
    /// Tag → version id.
    pub tags: BTreeMap<String, String>,
    /// Every tag move, oldest first.
    pub history: Vec<TagMove>,
}

/// One move of a tag.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TagMove {
    /// When (RFC 3339).
    pub time: String,
    /// The tag.
    pub tag: String,
    /// Its previous target, if it had one.
    pub from: Option<String>,
    /// Its new target.
    pub to: String,
    /// `fit`, `tag`, `promote` or `rollback`.
    pub action: String,
    /// Why, as the operator said.
    pub reason: String,
}

/// What a run did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RunKind {
    /// Fitted a state.
    Fit,
    /// Applied a version to files.
    Run,
    /// Re-executed a recorded run.
    Verify,
    /// Wrote a pipeline's features to a feature table (kiln-table).
    Materialize,
    /// Joined feature tables to a spine, point in time (kiln-table).
    TrainingSet,
    /// Ran a SQL query calling Kiln versions (kiln-datafusion, `kiln sql`).
    Sql,
}

/// How a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RunStatus {
    /// Started and not finished: still running, or the process was killed.
    Running,
    /// Finished successfully.
    Ok,
    /// Finished with an error.
    Failed,
}

/// The transform a run used, part by part.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TransformParts {
    /// The version id (for a fit: of the version it created).
    pub version_id: String,
    /// The plugin id.
    pub plugin_id: String,
    /// The plugin's name and version.
    pub plugin: String,
    /// Canonical parameters JSON.
    pub params: String,
    /// The state used (run) or produced (fit).
    pub state_id: Option<String>,
}

/// Engine settings that can affect results, recorded with each run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EngineSettings {
    /// wasmtime version.
    pub wasmtime: String,
    /// Determinism switches of the engine.
    pub determinism: Vec<String>,
    /// Deadline per call in milliseconds.
    pub deadline_ms: u64,
    /// Memory cap per instance in bytes.
    pub memory_limit: u64,
    /// Cap on output rows as a multiple of input rows.
    pub max_output_ratio: u64,
}

impl From<&EngineConfig> for EngineSettings {
    fn from(c: &EngineConfig) -> Self {
        EngineSettings {
            wasmtime: kiln_runtime::WASMTIME_VERSION.into(),
            determinism: EngineConfig::determinism_flags()
                .iter()
                .map(|s| s.to_string())
                .collect(),
            deadline_ms: c.deadline.as_millis() as u64,
            memory_limit: c.memory_limit as u64,
            max_output_ratio: c.max_output_ratio,
        }
    }
}

/// One column of a recorded schema.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FieldRecord {
    /// Column name.
    pub name: String,
    /// Arrow type, as Arrow prints it.
    #[serde(rename = "type")]
    pub data_type: String,
    /// Whether nulls are allowed.
    pub nullable: bool,
}

/// A dataset a run read or wrote.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DatasetRecord {
    /// The file, absolute when it was recorded.
    pub path: String,
    /// Its content fingerprint.
    pub fingerprint: String,
    /// Rows.
    pub rows: u64,
    /// Columns.
    pub schema: Vec<FieldRecord>,
}

impl DatasetRecord {
    /// A record of `path` with fingerprint `fp` and `schema`.
    pub fn new(path: &std::path::Path, fp: &Fingerprint, schema: &Schema) -> DatasetRecord {
        let path = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
        DatasetRecord {
            path: path.display().to_string(),
            fingerprint: fp.id.clone(),
            rows: fp.rows,
            schema: FieldRecord::all(schema),
        }
    }

    /// A record of a dataset that is not one file, e.g. a feature table
    /// version: `label` (`/tables/txn@3`) and its lineage id
    /// (`delta:TABLE_ID@v3`).
    pub fn dataset(label: String, id: String, rows: u64, schema: &Schema) -> DatasetRecord {
        DatasetRecord {
            path: label,
            fingerprint: id,
            rows,
            schema: FieldRecord::all(schema),
        }
    }
}

impl FieldRecord {
    /// Every column of `schema`.
    pub fn all(schema: &Schema) -> Vec<FieldRecord> {
        schema
            .fields()
            .iter()
            .map(|f| FieldRecord {
                name: f.name().clone(),
                data_type: f.data_type().to_string(),
                nullable: f.is_nullable(),
            })
            .collect()
    }
}

impl RunRecord {
    /// Whether the run was started as a tag of transform `name` (any run
    /// when `name` is `None`).
    pub fn is_of(&self, name: Option<&str>) -> bool {
        name.is_none_or(|n| {
            self.target
                .as_deref()
                .is_some_and(|t| t.split('@').next() == Some(n))
        })
    }
}

/// Everything about one `fit`, `run` or `verify`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunRecord {
    /// Run id (a UUIDv7: sorts by start time).
    pub id: String,
    /// Fit, run or verify.
    pub kind: RunKind,
    /// When it started (RFC 3339).
    pub started_at: String,
    /// When it ended.
    pub finished_at: Option<String>,
    /// Wall time in milliseconds.
    pub wall_ms: Option<f64>,
    /// How it ended.
    pub status: RunStatus,
    /// The error, if it failed.
    pub error: Option<String>,
    /// The name and tag it was started by, if any (`scaler@prod`).
    pub target: Option<String>,
    /// The transform, part by part.
    pub transform: TransformParts,
    /// WIT contract version of the host.
    pub wit_version: String,
    /// kiln-host version.
    pub host_version: String,
    /// Engine settings that affect results.
    pub engine: EngineSettings,
    /// Rows per batch.
    pub batch_size: usize,
    /// Input files, in order.
    pub inputs: Vec<DatasetRecord>,
    /// Output files.
    pub outputs: Vec<DatasetRecord>,
    /// For a verify: the run verified.
    pub verifies: Option<String>,
    /// Columns of the output masked by a column policy, and how (the
    /// actor was not cleared for them); a verify masks them the same way.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub masked: BTreeMap<String, crate::Mask>,
    /// For a SQL run: the query and every version it called.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sql: Option<SqlRecord>,
}

/// What a SQL run ran: the query, its tables and the pinned versions its
/// Kiln functions called (a run's `transform` holds one version; a query
/// may call several). Enough to run it again (`kiln verify`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SqlRecord {
    /// The query, as given.
    pub query: String,
    /// Each table's name and file, in registration order (a table of
    /// several files has several entries).
    pub tables: Vec<SqlTable>,
    /// Each Kiln function call, sorted by function, then spec.
    pub functions: Vec<SqlFunction>,
    /// DataFusion's target partitions (float aggregates can depend on
    /// them, so a verify uses the same number).
    #[serde(default)]
    pub partitions: usize,
}

/// One file of a SQL run's table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SqlTable {
    /// The table's SQL name.
    pub name: String,
    /// The file, absolute when it was recorded.
    pub path: String,
}

/// One version a SQL run called.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SqlFunction {
    /// The SQL function: `kiln` (the generic one) or the name a version
    /// was registered under.
    pub function: String,
    /// For `kiln('scaler@prod', ...)`: the spec it was given.
    pub spec: Option<String>,
    /// The version, part by part.
    pub transform: TransformParts,
    /// Masks applied to its output columns for the actor (and replayed
    /// by a verify).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub masked: BTreeMap<String, crate::Mask>,
}

/// A registered pipeline version: every step pinned to a transform version,
/// with the pipeline file (documentation, contracts, gates).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PipelineRecord {
    /// [`pipeline_id`] of the steps and the file's contracts and gates.
    pub id: String,
    /// The step versions, in order.
    pub steps: Vec<String>,
    /// The pipeline file as fitted.
    pub spec: kiln_pipeline::PipelineSpec,
    /// When it was created (RFC 3339).
    pub created_at: String,
}

/// The id of a pipeline version: sha256 over its step version ids, its
/// contracts and its gates (and, when set, its entity, event time and
/// windows).
pub fn pipeline_id(steps: &[String], spec: &kiln_pipeline::PipelineSpec) -> String {
    let mut h = Sha256::new();
    h.update(b"kiln-pipeline-v1\n");
    for s in steps {
        h.update(s.as_bytes());
        h.update(b"\n");
    }
    h.update(serde_json::to_vec(&spec.contracts).expect("contracts serialize"));
    h.update(serde_json::to_vec(&spec.gates).expect("gates serialize"));
    // Feature-table fields count only when set, so older pipelines keep their ids.
    let fs = &spec.feature_set;
    if !spec.windows.is_empty() || !fs.entity.is_empty() || fs.timestamp.is_some() {
        h.update(b"\nfeature-table\n");
        h.update(
            serde_json::to_vec(&(&fs.entity, &fs.timestamp, &spec.windows))
                .expect("windows serialize"),
        );
    }
    hex::encode(h.finalize())
}
