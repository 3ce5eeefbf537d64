//! `kiln materialize`: run a pinned pipeline (or transform) over event
//! files and write entity key, event time, windowed aggregations and
//! features to a feature table as one commit, recorded in lineage.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::array::{ArrayRef, Int64Array, RecordBatch, TimestampMicrosecondArray};
use arrow::compute::concat_batches;
use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit, TimestampMicrosecondType};
use serde::Serialize;
use serde_json::json;
use sha2::{Digest, Sha256};

use kiln_io::job::JobOptions;
use kiln_store::{
    DatasetRecord, Permission, Registry, Resolved, RunKind, RunRecord, TransformParts,
};
use kiln_temporal::{time_micros, Windows};

use crate::table::{self, FeatureTable, Layout, WriteMode, CREATED_AT, ROW};
use crate::{Error, Result};

/// How to materialize.
#[derive(Debug, Clone)]
pub struct MaterializeOptions {
    /// Batch size and the like for the transform runs.
    pub job: JobOptions,
    /// Entity key column(s); empty: the pipeline file's `[feature_set] entity`.
    pub entity: Vec<String>,
    /// Event time column; `None`: the pipeline file's `[feature_set] timestamp`.
    pub timestamp: Option<String>,
    /// Append (default) or replace the table's rows.
    pub mode: WriteMode,
}

impl Default for MaterializeOptions {
    fn default() -> Self {
        MaterializeOptions {
            job: JobOptions::default(),
            entity: Vec::new(),
            timestamp: None,
            mode: WriteMode::Append,
        }
    }
}

/// What a materialization did.
#[derive(Debug, Clone, Serialize)]
pub struct MaterializeReport {
    /// The table directory.
    pub table: PathBuf,
    /// The table version that holds these rows.
    pub version: i64,
    /// False when the same input and version were already written (the
    /// table is unchanged: materializing is idempotent).
    pub written: bool,
    /// Rows written (0 when nothing was written).
    pub rows: u64,
    /// `NAME@TAG` as given.
    pub target: String,
    /// The pipeline (or transform) version id written.
    pub version_id: String,
    /// The table's columns after key and time: window and step features.
    pub features: Vec<String>,
    /// The materialize run (when written).
    pub run: Option<RunRecord>,
}

/// Materialize `target` (`NAME@TAG` or a version id of a pipeline or a
/// transform) over `inputs` into the feature table `dir`.
///
/// The table's rows: the entity key column(s), the event time (as
/// `Timestamp(µs, UTC)`), the `[[windows]]` aggregations computed over the
/// raw inputs (each event sees `[t - w, t)` of its entity), the steps'
/// output features (the file's `[[outputs]]`, or every other output
/// column), then `_kiln_created_at` and `_kiln_row`. Each step is a
/// recorded run; the write is one more (kind `materialize`) whose output is
/// the table version, so `kiln lineage trace DIR@V` reaches the raw inputs.
///
/// Idempotent: the commit carries a token over the version id, the mode,
/// key and time columns and the inputs' fingerprints; a second call with
/// the same returns the version that has them and writes nothing.
///
/// # Errors
/// [`Error::Usage`] without key/time columns; [`Error::Table`] when the
/// table has another layout or schema; errors of the runs (contracts,
/// plugins, files). Nothing is committed on any error.
pub fn materialize(
    registry: &Registry,
    target: &str,
    inputs: &[PathBuf],
    dir: &Path,
    opts: &MaterializeOptions,
    progress: &mut dyn FnMut(u64),
) -> Result<MaterializeReport> {
    if inputs.is_empty() {
        return Err(Error::Usage(
            "materialize needs at least one --input".into(),
        ));
    }
    let resolved = registry.store().resolve_any(target)?;
    let (version_id, label, spec) = match &resolved {
        Resolved::Pipeline(p) => (
            p.id.clone(),
            format!("pipeline {}", p.spec.feature_set.name),
            Some(&p.spec),
        ),
        Resolved::Version(v) => {
            let plugin = registry.store().plugin(&v.plugin_id)?;
            (
                v.id.clone(),
                format!("{}@{}", plugin.name, plugin.version),
                None,
            )
        }
    };
    // A table keeps its columns as they are, so writing one needs `run`
    // and clearance for every sensitive column of the name.
    registry.store().authorize_unmasked(
        target,
        &version_id,
        Permission::Run,
        "a feature table stores them unmasked (training sets and serving mask them for readers without it)",
    )?;
    let entity = if opts.entity.is_empty() {
        spec.map(|s| s.feature_set.entity.clone())
            .unwrap_or_default()
    } else {
        opts.entity.clone()
    };
    let timestamp = opts
        .timestamp
        .clone()
        .or_else(|| spec.and_then(|s| s.feature_set.timestamp.clone()));
    let (false, Some(timestamp)) = (entity.is_empty(), timestamp) else {
        return Err(Error::Usage(format!(
            "say which columns identify the entity and the event time of {target}: --entity COL --timestamp COL, or `entity` and `timestamp` in the pipeline file's [feature_set]"
        )));
    };
    let layout = Layout { entity, timestamp };
    let windows = match spec {
        Some(s) if !s.windows.is_empty() => {
            Some(Windows::new(&s.windows, &layout.entity, &layout.timestamp)?)
        }
        _ => None,
    };
    let feature_set = target.split('@').next().unwrap_or(target).to_string();

    // The idempotency token: same version, layout, mode and input content.
    let mut prints = Vec::new();
    for i in inputs {
        prints.push(kiln_io::fingerprint_file(i)?);
    }
    let mut h = Sha256::new();
    h.update(b"kiln-materialize-v1\n");
    h.update(version_id.as_bytes());
    h.update(format!(
        "\n{:?}\n{}\n{}\n",
        opts.mode,
        layout.entity.join(","),
        layout.timestamp
    ));
    for p in &prints {
        h.update(p.id.as_bytes());
        h.update(b"\n");
    }
    let token = hex::encode(h.finalize());

    if table::is_table(dir) {
        let t = FeatureTable::open(dir)?;
        if let Some(have) = t.layout()? {
            if have != layout {
                return Err(Error::table(
                    dir,
                    format!(
                        "is keyed by [{}] at '{}', but this write is keyed by [{}] at '{}'; write to another table",
                        have.entity.join(", "),
                        have.timestamp,
                        layout.entity.join(", "),
                        layout.timestamp
                    ),
                ));
            }
        }
        if let Some(version) = t.find_token(&token)? {
            return Ok(MaterializeReport {
                table: dir.to_path_buf(),
                version,
                written: false,
                rows: 0,
                target: target.into(),
                version_id,
                features: Vec::new(),
                run: None,
            });
        }
    }

    // Run the steps (each a recorded run) into a temporary file.
    let tmp = tempfile::Builder::new()
        .prefix(".kiln-materialize-")
        .tempdir()
        .map_err(|e| Error::io(std::env::temp_dir(), e))?;
    let out = tmp.path().join("features.arrow");
    let last_run = match &resolved {
        Resolved::Pipeline(p) => {
            let mut r =
                registry.run_pipeline(p, Some(target), inputs, &out, &opts.job, progress)?;
            r.runs.pop().expect("a pipeline has at least one step")
        }
        Resolved::Version(v) => {
            registry
                .run(v, Some(target), inputs, &out, &opts.job, progress)?
                .0
        }
    };
    let features = whole(&out)?;
    let raw_schema = kiln_io::open(&inputs[0], &Default::default())?.schema();

    // Assemble the table's rows.
    let n = features.num_rows();
    let mut fields: Vec<Field> = Vec::new();
    let mut columns: Vec<ArrayRef> = Vec::new();
    for k in &layout.entity {
        let (f, c) = column(&features, k, &out)?;
        fields.push(f.as_ref().clone().with_nullable(true));
        columns.push(c);
    }
    let micros = time_micros(&features, &layout.timestamp, "steps' output")?;
    fields.push(Field::new(
        &layout.timestamp,
        DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
        true,
    ));
    columns.push(Arc::new(
        micros
            .reinterpret_cast::<TimestampMicrosecondType>()
            .with_timezone("UTC"),
    ));
    if let Some(w) = &windows {
        // The windows read the raw events, one output row per event.
        let raw = read_inputs(inputs, &opts.job)?;
        if raw.num_rows() != n {
            return Err(Error::Usage(format!(
                "{target} turns {} input rows into {n}; windows need one output row per event",
                raw.num_rows()
            )));
        }
        let agg = w.backfill(&raw)?;
        for (f, c) in agg.schema().fields().iter().zip(agg.columns()) {
            fields.push(f.as_ref().clone());
            columns.push(c.clone());
        }
    }
    let feature_names: Vec<String> = match spec {
        Some(s) if !s.outputs.is_empty() => s.outputs.iter().map(|o| o.name.clone()).collect(),
        _ => features
            .schema()
            .fields()
            .iter()
            .map(|f| f.name().clone())
            .filter(|n| !layout.entity.contains(n) && *n != layout.timestamp)
            .collect(),
    };
    for name in &feature_names {
        if fields.iter().any(|f| f.name() == name) {
            return Err(Error::Usage(format!(
                "feature '{name}' is written twice (a window output and a step output have that name); rename one"
            )));
        }
        let (f, c) = column(&features, name, &out)?;
        fields.push(f.as_ref().clone().with_nullable(true));
        columns.push(c);
    }
    let created = chrono::Utc::now().timestamp_micros();
    fields.push(Field::new(
        CREATED_AT,
        DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
        true,
    ));
    columns.push(Arc::new(
        TimestampMicrosecondArray::from(vec![created; n]).with_timezone("UTC"),
    ));
    fields.push(Field::new(ROW, DataType::Int64, true));
    columns.push(Arc::new(Int64Array::from_iter_values(0..n as i64)));
    let schema: SchemaRef = Arc::new(Schema::new(fields));
    let batch = RecordBatch::try_new(schema.clone(), columns)?;
    let written_features: Vec<String> = schema
        .fields()
        .iter()
        .skip(layout.entity.len() + 1)
        .map(|f| f.name().clone())
        .filter(|n| n != CREATED_AT && n != ROW)
        .collect();

    // Write and record.
    let parts = TransformParts {
        version_id: version_id.clone(),
        plugin_id: String::new(),
        plugin: label,
        params: json!({
            "mode": opts.mode,
            "entity": layout.entity,
            "timestamp": layout.timestamp,
            "windows": spec.map(|s| &s.windows),
        })
        .to_string(),
        state_id: None,
    };
    let mut record = registry.new_record(RunKind::Materialize, parts, opts.job.batch_size);
    record.target = Some(target.into());
    let run_id = record.id.clone();
    let abs = std::path::absolute(dir).unwrap_or_else(|_| dir.to_path_buf());
    let (run, version) = registry
        .record_run(record, |r| {
            r.inputs = inputs
                .iter()
                .zip(&prints)
                .map(|(p, fp)| DatasetRecord::new(p, fp, &raw_schema))
                .collect();
            r.inputs.extend(last_run.outputs.iter().cloned());
            let commit = json!({
                "token": token,
                "run": run_id,
                "target": target,
                "version_id": version_id,
                "mode": opts.mode,
                "rows": n,
                "inputs": r.inputs.iter().map(|d| json!({"path": d.path, "fingerprint": d.fingerprint})).collect::<Vec<_>>(),
            });
            let version = table::write(
                dir,
                &schema,
                std::slice::from_ref(&batch),
                opts.mode,
                &layout,
                &feature_set,
                commit,
            )?;
            let t = FeatureTable::open(dir)?;
            r.outputs = vec![DatasetRecord::dataset(
                format!("{}@{version}", abs.display()),
                t.dataset_id(version)?,
                n as u64,
                &schema,
            )];
            Ok::<_, Error>(version)
        })?;
    Ok(MaterializeReport {
        table: dir.to_path_buf(),
        version,
        written: true,
        rows: n as u64,
        target: target.into(),
        version_id,
        features: written_features,
        run: Some(run),
    })
}

/// Every row of a data file as one batch.
pub(crate) fn whole(path: &Path) -> Result<RecordBatch> {
    let (schema, batches) = kiln_io::read_all(path, &Default::default())?;
    Ok(concat_batches(&schema, &batches)?)
}

fn read_inputs(inputs: &[PathBuf], job: &JobOptions) -> Result<RecordBatch> {
    let opts = kiln_io::ReadOptions {
        batch_size: job.batch_size,
    };
    let mut reader = kiln_io::open_many(inputs, &opts)?;
    let schema = reader.schema();
    let mut batches = Vec::new();
    for b in &mut reader {
        batches.push(b?);
    }
    Ok(concat_batches(&schema, &batches)?)
}

fn column(
    batch: &RecordBatch,
    name: &str,
    file: &Path,
) -> Result<(arrow::datatypes::FieldRef, ArrayRef)> {
    let schema = batch.schema();
    let Ok((i, f)) = schema.column_with_name(name).ok_or(()) else {
        return Err(Error::Usage(format!(
            "column '{name}' is not in the steps' output {} (it has: {}); check the pipeline's [[outputs]] and --entity/--timestamp",
            file.display(),
            schema.fields().iter().map(|f| f.name().as_str()).collect::<Vec<_>>().join(", ")
        )));
    };
    Ok((Arc::new(f.clone()), batch.column(i).clone()))
}
