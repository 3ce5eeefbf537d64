//! `kiln training-set`: join feature tables to a spine of (entity, time,
//! labels) point in time, and `kiln table vacuum`, which never deletes a
//! version a recorded training set read.

use std::path::{Path, PathBuf};

use std::sync::Arc;

use arrow::array::{Array, RecordBatch, RecordBatchOptions};
use arrow::compute::{concat_batches, take};
use arrow::datatypes::{FieldRef, Schema};
use serde::Serialize;
use serde_json::json;

use kiln_store::{DatasetRecord, Registry, RunKind, RunRecord, RunStatus, Store, TransformParts};
use kiln_temporal::{asof_indices, AsOfOptions, AsOfSide};

use crate::materialize::whole;
use crate::table::{FeatureTable, Layout, TableRef, CREATED_AT, ROW};
use crate::{Error, Result};

/// How to join.
#[derive(Debug, Clone, Default)]
pub struct TrainingSetOptions {
    /// Only feature rows at most this old (microseconds, inclusive) match.
    pub ttl_us: Option<i64>,
    /// Only feature rows strictly before the spine time match.
    pub exclude_exact_matches: bool,
    /// Entity key column(s) of the spine, and of tables that do not record
    /// theirs (written by other tools); empty: each table's own.
    pub entity: Vec<String>,
    /// Time column of the spine, and of tables that do not record theirs;
    /// `None`: each table's own.
    pub timestamp: Option<String>,
}

/// One table as a training set read it.
#[derive(Debug, Clone, Serialize)]
pub struct TableUse {
    /// The table directory.
    pub table: PathBuf,
    /// The version read.
    pub version: i64,
    /// Its lineage id (`delta:TABLE_ID@vN`).
    pub dataset: String,
    /// The feature columns taken from it.
    pub features: Vec<String>,
    /// Spine rows that found a feature row in it.
    pub matched: u64,
}

/// What a training set run did.
#[derive(Debug, Clone, Serialize)]
pub struct TrainingSetReport {
    /// The file written.
    pub output: PathBuf,
    /// Rows (one per spine row).
    pub rows: u64,
    /// Each table, as read.
    pub tables: Vec<TableUse>,
    /// The recorded run.
    pub run: RunRecord,
}

/// Build a training set: every spine row, with each table's features as of
/// the spine row's time (see [`kiln_temporal::asof_indices`] for the exact
/// rule: same entity, latest event time `<= t` — or `< t` — and within the
/// TTL; ties by `_kiln_created_at`, then `_kiln_row`, then read order).
/// Written atomically to `output`; recorded as a run whose inputs are the
/// spine and each table version (which `vacuum` then keeps).
///
/// # Errors
/// [`Error::Usage`] for a table without key/time columns and none given,
/// or a feature name two sources share; [`Error::Table`]; file errors.
pub fn training_set(
    registry: &Registry,
    spine_path: &Path,
    tables: &[TableRef],
    output: &Path,
    opts: &TrainingSetOptions,
) -> Result<TrainingSetReport> {
    if tables.is_empty() {
        return Err(Error::Usage(
            "a training set needs at least one --features TABLE".into(),
        ));
    }
    kiln_io::Format::from_path(output)?;
    let spine = whole(spine_path)?;
    // The same fingerprint `fingerprint_file` gives, from the rows in hand.
    let spine_fp = {
        let mut f = kiln_io::Fingerprinter::new(&spine.schema());
        f.update(&spine)?;
        f.finish()
    };
    let parts = TransformParts {
        version_id: String::new(),
        plugin_id: String::new(),
        plugin: "kiln training-set (as-of join)".into(),
        params: json!({
            "ttl_us": opts.ttl_us,
            "exclude_exact_matches": opts.exclude_exact_matches,
            "tables": tables.iter().map(|t| t.dir.display().to_string()).collect::<Vec<_>>(),
        })
        .to_string(),
        state_id: None,
    };
    let record = registry.new_record(RunKind::TrainingSet, parts, 0);
    let (run, (rows, uses)) = registry.record_run(record, |r| {
        r.inputs.push(DatasetRecord::new(spine_path, &spine_fp, &spine.schema()));
        let mut current = spine.clone();
        let mut uses = Vec::new();
        for tref in tables {
            let t = FeatureTable::open(&tref.dir)?;
            let version = t.resolve(&tref.at)?;
            let (schema, batches) = t.read(version)?;
            let features = concat_batches(&schema, &batches)?;
            let layout = match (t.layout()?, opts.entity.is_empty(), &opts.timestamp) {
                (Some(l), _, _) => l,
                (None, false, Some(time)) => Layout {
                    entity: opts.entity.clone(),
                    timestamp: time.clone(),
                },
                (None, _, _) => {
                    return Err(Error::table(
                        &tref.dir,
                        format!(
                            "does not record its key and time columns (table properties {} and {}); name them with --entity COL --timestamp COL",
                            crate::table::ENTITY_PROPERTY,
                            crate::table::TIME_PROPERTY
                        ),
                    ))
                }
            };
            let spine_keys = if opts.entity.is_empty() {
                layout.entity.clone()
            } else {
                opts.entity.clone()
            };
            let spine_time = opts
                .timestamp
                .clone()
                .unwrap_or_else(|| layout.timestamp.clone());
            let tiebreak: Vec<String> = [CREATED_AT, ROW]
                .iter()
                .filter(|c| schema.field_with_name(c).is_ok())
                .map(|c| c.to_string())
                .collect();
            let columns: Vec<String> = schema
                .fields()
                .iter()
                .map(|f| f.name().clone())
                .filter(|n| {
                    !layout.entity.contains(n)
                        && *n != layout.timestamp
                        && n != CREATED_AT
                        && n != ROW
                })
                .collect();
            if let Some(c) = columns
                .iter()
                .find(|c| current.schema().field_with_name(c).is_ok())
            {
                return Err(Error::Usage(format!(
                    "column '{c}' of {} is already in the training set (from the spine or an earlier table); rename it in one of them",
                    tref.dir.display()
                )));
            }
            let idx = asof_indices(
                AsOfSide {
                    batch: &current,
                    keys: &spine_keys,
                    time: &spine_time,
                },
                AsOfSide {
                    batch: &features,
                    keys: &layout.entity,
                    time: &layout.timestamp,
                },
                &tiebreak,
                &AsOfOptions {
                    ttl_us: opts.ttl_us,
                    exclude_exact_matches: opts.exclude_exact_matches,
                },
            )?;
            let matched = (idx.len() - idx.null_count()) as u64;
            let mut taken_fields: Vec<FieldRef> = Vec::new();
            let mut taken_cols = Vec::new();
            for c in &columns {
                let (i, f) = schema.column_with_name(c).expect("columns come from this schema");
                taken_fields.push(Arc::new(f.clone().with_nullable(true)));
                taken_cols.push(take(features.column(i), &idx, None)?);
            }
            let taken = RecordBatch::try_new_with_options(
                Arc::new(Schema::new(taken_fields)),
                taken_cols,
                &RecordBatchOptions::new().with_row_count(Some(idx.len())),
            )?;
            // The column policies of the name that wrote the table, for
            // this principal: features leave masked unless it is cleared.
            let masking = t.masking(registry.store(), version)?;
            r.masked.extend(masking.applied(&taken.schema()));
            let taken = masking.apply(&taken)?;
            let mut out_fields: Vec<FieldRef> = current.schema().fields().iter().cloned().collect();
            out_fields.extend(taken.schema().fields().iter().cloned());
            let mut out_cols = current.columns().to_vec();
            out_cols.extend(taken.columns().iter().cloned());
            let joined = RecordBatch::try_new(Arc::new(Schema::new(out_fields)), out_cols)?;
            let dataset = t.dataset_id(version)?;
            let abs = std::path::absolute(&tref.dir).unwrap_or_else(|_| tref.dir.clone());
            r.inputs.push(DatasetRecord::dataset(
                format!("{}@{version}", abs.display()),
                dataset.clone(),
                features.num_rows() as u64,
                &schema,
            ));
            uses.push(TableUse {
                table: tref.dir.clone(),
                version,
                dataset,
                features: columns,
                matched,
            });
            current = joined;
        }
        let mut w = kiln_io::Writer::create(output, current.schema())?;
        w.write(&current)?;
        w.finish()?;
        let fp = kiln_io::fingerprint_file(output)?;
        r.outputs = vec![DatasetRecord::new(output, &fp, &current.schema())];
        Ok::<_, Error>((current.num_rows() as u64, uses))
    })?;
    Ok(TrainingSetReport {
        output: output.to_path_buf(),
        rows,
        tables: uses,
        run,
    })
}

/// What `kiln table vacuum` did.
#[derive(Debug, Clone, Serialize)]
pub struct VacuumReport {
    /// The table directory.
    pub table: PathBuf,
    /// Removed files older than this many days were candidates.
    pub keep_days: u64,
    /// Versions kept readable because a recorded training set read them.
    pub protected: Vec<i64>,
    /// Files deleted (or that would be, in a dry run).
    pub deleted: Vec<String>,
    /// Nothing was deleted.
    pub dry_run: bool,
}

/// The versions of the table in `dir` that recorded, successful training
/// set runs in `store` read.
///
/// # Errors
/// Store and table errors.
pub fn protected_versions(store: &Store, table: &FeatureTable) -> Result<Vec<i64>> {
    let prefix = format!("delta:{}@v", table.id()?);
    let mut versions: Vec<i64> = store
        .runs()?
        .iter()
        .filter(|r| r.kind == RunKind::TrainingSet && r.status == RunStatus::Ok)
        .flat_map(|r| r.inputs.iter())
        .filter_map(|d| d.fingerprint.strip_prefix(&prefix)?.parse().ok())
        .collect();
    versions.sort_unstable();
    versions.dedup();
    Ok(versions)
}

/// Delete the table's data files that were removed more than `keep_days`
/// ago, except those of any version a recorded training set read (and the
/// newest version's, which are live).
///
/// # Errors
/// Store and table errors.
pub fn vacuum(store: &Store, dir: &Path, keep_days: u64, dry_run: bool) -> Result<VacuumReport> {
    let mut t = FeatureTable::open(dir)?;
    let protected = protected_versions(store, &t)?;
    let deleted = t.vacuum(keep_days, &protected, dry_run)?;
    Ok(VacuumReport {
        table: dir.to_path_buf(),
        keep_days,
        protected,
        deleted,
        dry_run,
    })
}
