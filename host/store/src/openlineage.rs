//! OpenLineage run events for Kiln runs (START, then COMPLETE or FAIL), for
//! teams that collect lineage in Marquez or another OpenLineage backend.
//!
//! Events use the `openlineage-client` event model: the job is the transform
//! (`kiln` namespace, `NAME` or the plugin name, plus the run kind), inputs
//! and outputs are files (`file` namespace, absolute path) with a schema
//! facet, and a custom `kiln` run facet carries the plugin id, state id,
//! version id, WIT version and engine settings. They go to a JSON-lines file
//! or are POSTed to an HTTP endpoint. Emitting never fails a run: a lost
//! event is logged as a warning.

use std::io::Write;
use std::path::PathBuf;

use openlineage_client::facets::{BaseFacet, DatasetFacets, SchemaDatasetFacet, SchemaField};
use openlineage_client::{Dataset, Job, Run, RunEvent, RunEventType};

use crate::store::{DatasetRecord, RunRecord, RunStatus};

const PRODUCER: &str = concat!(
    "https://example.invalid/kiln/tree/",
    env!("CARGO_PKG_VERSION")
);
const RUN_EVENT_SCHEMA: &str = "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent";
const SCHEMA_FACET: &str =
    "https://openlineage.io/spec/facets/1-1-1/SchemaDatasetFacet.json#/$defs/SchemaDatasetFacet";
const KILN_FACET: &str = "https://example.invalid/kiln/spec/KilnRunFacet.json";

/// Where OpenLineage events go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Sink {
    /// Append one JSON event per line to this file.
    File(PathBuf),
    /// POST each event as JSON to this URL (e.g. `http://marquez:5000/api/v1/lineage`).
    Http(String),
}

impl Sink {
    /// Send the event for `run`: START while it is running, COMPLETE or
    /// FAIL once it has ended. Failures are logged, never returned.
    pub fn emit(&self, run: &RunRecord) {
        let event = event(run);
        let body = serde_json::to_string(&event).expect("events serialize to JSON");
        let result = match self {
            Sink::File(path) => std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .and_then(|mut f| f.write_all(format!("{body}\n").as_bytes()))
                .map_err(|e| format!("{}: {e}", path.display())),
            Sink::Http(url) => ureq::post(url)
                .header("Content-Type", "application/json")
                .send(body.as_str())
                .map(|_| ())
                .map_err(|e| format!("POST {url}: {e}")),
        };
        if let Err(e) = result {
            tracing::warn!("OpenLineage event for run {} not delivered: {e}", run.id);
        }
    }
}

/// The OpenLineage event describing `run` in its current status.
pub fn event(run: &RunRecord) -> RunEvent {
    let (event_type, time) = match run.status {
        RunStatus::Running => (RunEventType::Start, run.started_at.clone()),
        RunStatus::Ok => (
            RunEventType::Complete,
            run.finished_at
                .clone()
                .unwrap_or_else(|| run.started_at.clone()),
        ),
        RunStatus::Failed => (
            RunEventType::Fail,
            run.finished_at
                .clone()
                .unwrap_or_else(|| run.started_at.clone()),
        ),
    };
    let job_name = match &run.target {
        Some(t) => format!("{}.{}", t.split('@').next().unwrap_or(t), kind(run)),
        None => format!(
            "{}.{}",
            run.transform.plugin.split('@').next().unwrap_or("plugin"),
            kind(run)
        ),
    };
    let mut facets = openlineage_client::facets::RunFacets::default();
    facets.extra.insert(
        "kiln".into(),
        serde_json::json!({
            "_producer": PRODUCER,
            "_schemaURL": KILN_FACET,
            "runKind": kind(run),
            "target": run.target,
            "versionId": run.transform.version_id,
            "pluginId": run.transform.plugin_id,
            "plugin": run.transform.plugin,
            "params": serde_json::from_str::<serde_json::Value>(&run.transform.params).unwrap_or_default(),
            "stateId": run.transform.state_id,
            "witVersion": run.wit_version,
            "hostVersion": run.host_version,
            "engine": run.engine,
        }),
    );
    if let Some(err) = &run.error {
        facets.error_message = serde_json::from_value(serde_json::json!({
            "_producer": PRODUCER,
            "_schemaURL": "https://openlineage.io/spec/facets/1-0-1/ErrorMessageRunFacet.json#/$defs/ErrorMessageRunFacet",
            "message": err,
            "programmingLanguage": "rust",
        }))
        .ok();
    }
    RunEvent {
        event_type,
        event_time: time,
        run: Run {
            run_id: run.id.parse().unwrap_or_else(|_| uuid::Uuid::nil()),
            facets,
        },
        job: Job {
            namespace: "kiln".into(),
            name: job_name,
            facets: Default::default(),
        },
        inputs: run.inputs.iter().map(dataset).collect(),
        outputs: run.outputs.iter().map(dataset).collect(),
        producer: PRODUCER.into(),
        schema_url: RUN_EVENT_SCHEMA.into(),
    }
}

fn kind(run: &RunRecord) -> &'static str {
    match run.kind {
        crate::store::RunKind::Fit => "fit",
        crate::store::RunKind::Run => "run",
        crate::store::RunKind::Verify => "verify",
        crate::store::RunKind::Materialize => "materialize",
        crate::store::RunKind::TrainingSet => "training-set",
        crate::store::RunKind::Sql => "sql",
    }
}

fn dataset(d: &DatasetRecord) -> Dataset {
    let mut facets = DatasetFacets {
        schema: Some(SchemaDatasetFacet {
            base: BaseFacet::new(PRODUCER, SCHEMA_FACET),
            fields: d
                .schema
                .iter()
                .map(|f| SchemaField {
                    name: f.name.clone(),
                    type_: f.data_type.clone(),
                    description: None,
                })
                .collect(),
        }),
        ..Default::default()
    };
    facets.extra.insert(
        "kilnFingerprint".into(),
        serde_json::json!({
            "_producer": PRODUCER,
            "_schemaURL": KILN_FACET,
            "fingerprint": d.fingerprint,
            "rows": d.rows,
        }),
    );
    Dataset {
        namespace: "file".into(),
        name: d.path.clone(),
        facets,
        input_facets: None,
        output_facets: None,
    }
}
