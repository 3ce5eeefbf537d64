//! A feature table: a Delta Lake table on the local filesystem whose rows
//! are (entity key, event time, features, `_kiln_created_at`, `_kiln_row`),
//! each commit carrying the Kiln run and pinned version that wrote it.
//!
//! Kiln reads the commit log itself (`_delta_log/*.json`) for history and
//! time travel: a commit's time is the `timestamp` its writer put in its
//! `commitInfo`, never a file's modification time, and a time before the
//! first commit is refused rather than clamped.

use std::collections::BTreeMap;
use std::future::IntoFuture as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, RecordBatch};
use arrow::compute::{cast_with_options, CastOptions};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use deltalake::kernel::engine::arrow_conversion::TryIntoKernel as _;
use deltalake::kernel::transaction::{CommitBuilder, CommitProperties};
use deltalake::kernel::{Action, StructType, Transaction};
use deltalake::protocol::{DeltaOperation, SaveMode};
use deltalake::writer::{DeltaWriter as _, RecordBatchWriter};
use deltalake::DeltaTable;
use serde::Serialize;
use serde_json::Value;

use crate::{Error, Result};

/// Table property naming the entity key column(s), comma separated.
pub const ENTITY_PROPERTY: &str = "kiln.entity";
/// Table property naming the event time column.
pub const TIME_PROPERTY: &str = "kiln.timestamp";
/// Table property naming the feature set that writes the table.
pub const FEATURE_SET_PROPERTY: &str = "kiln.featureSet";
/// Column: when Kiln wrote the row (UTC microseconds), the first tie-breaker.
pub const CREATED_AT: &str = "_kiln_created_at";
/// Column: the row's position in its commit, the second tie-breaker.
pub const ROW: &str = "_kiln_row";
/// Commit metadata key under which Kiln puts its own record of a commit.
pub const COMMIT_KEY: &str = "kiln";

/// Which state of a table to read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum AsOf {
    /// The newest version.
    Latest,
    /// This version.
    Version(i64),
    /// The newest version committed at or before this time (UTC
    /// milliseconds since the epoch).
    Time(i64),
}

/// A table directory and the state to read: `DIR`, `DIR@VERSION` or
/// `DIR@TIME` (RFC 3339, e.g. `2026-12-01T10:00:00Z`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TableRef {
    /// The table directory.
    pub dir: PathBuf,
    /// Which state.
    pub at: AsOf,
}

impl TableRef {
    /// Parse `DIR`, `DIR@VERSION` or `DIR@RFC3339`. A suffix after the last
    /// `@` that is neither is taken as part of the directory name.
    pub fn parse(s: &str) -> TableRef {
        if let Some((dir, at)) = s.rsplit_once('@') {
            if let Ok(v) = at.parse::<i64>() {
                return TableRef {
                    dir: dir.into(),
                    at: AsOf::Version(v),
                };
            }
            if let Ok(t) = chrono::DateTime::parse_from_rfc3339(at) {
                return TableRef {
                    dir: dir.into(),
                    at: AsOf::Time(t.timestamp_millis()),
                };
            }
        }
        TableRef {
            dir: s.into(),
            at: AsOf::Latest,
        }
    }
}

/// One commit of a table, as its log records it.
#[derive(Debug, Clone, Serialize)]
pub struct Commit {
    /// The table version it made.
    pub version: i64,
    /// When (UTC milliseconds since the epoch), from its `commitInfo`.
    pub timestamp_ms: i64,
    /// The same time, RFC 3339.
    pub time: String,
    /// The Delta operation (`WRITE`, `CREATE TABLE`, `VACUUM START`, …).
    pub operation: String,
    /// Kiln's record of the commit (run, version, inputs), if Kiln wrote it.
    pub kiln: Option<Value>,
}

/// Key and time columns of a table's rows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Layout {
    /// Entity key column(s).
    pub entity: Vec<String>,
    /// Event time column.
    pub timestamp: String,
}

/// An open feature table.
pub struct FeatureTable {
    dir: PathBuf,
    table: DeltaTable,
    rt: Arc<tokio::runtime::Runtime>,
}

impl std::fmt::Debug for FeatureTable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FeatureTable")
            .field("dir", &self.dir)
            .field("version", &self.table.version())
            .finish()
    }
}

fn runtime() -> Result<Arc<tokio::runtime::Runtime>> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map(Arc::new)
        .map_err(|e| Error::io("(tokio runtime)", e))
}

fn table_url(dir: &Path) -> Result<url::Url> {
    let abs = std::path::absolute(dir).map_err(|e| Error::io(dir, e))?;
    url::Url::from_directory_path(&abs)
        .map_err(|()| Error::table(dir, "cannot be written as a file URL; use an absolute path"))
}

/// Whether `dir` holds a Delta table (a `_delta_log` directory).
pub fn is_table(dir: &Path) -> bool {
    dir.join("_delta_log").is_dir()
}

impl FeatureTable {
    /// Open the table in `dir` at its newest version.
    ///
    /// # Errors
    /// [`Error::Table`] if `dir` is not a Delta table; [`Error::Delta`].
    pub fn open(dir: &Path) -> Result<FeatureTable> {
        if !is_table(dir) {
            return Err(Error::table(
                dir,
                "is not a feature table (no _delta_log); create it with `kiln materialize NAME@TAG --input FILE --table DIR`",
            ));
        }
        let rt = runtime()?;
        let url = table_url(dir)?;
        let table = rt
            .block_on(deltalake::open_table(url))
            .map_err(|e| Error::delta(dir, e))?;
        Ok(FeatureTable {
            dir: dir.to_path_buf(),
            table,
            rt,
        })
    }

    /// The table directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The newest version.
    pub fn version(&self) -> i64 {
        self.table.version().map_or(-1, |v| v as i64)
    }

    /// The table's id (Delta metadata id: stays the same across versions
    /// and moves of the directory).
    ///
    /// # Errors
    /// [`Error::Delta`] if the table has no snapshot.
    pub fn id(&self) -> Result<String> {
        Ok(self
            .table
            .snapshot()
            .map_err(|e| Error::delta(&self.dir, e))?
            .metadata()
            .id()
            .to_string())
    }

    /// The dataset id Kiln's lineage uses for a version of this table:
    /// `delta:TABLE_ID@vVERSION`.
    ///
    /// # Errors
    /// As [`FeatureTable::id`].
    pub fn dataset_id(&self, version: i64) -> Result<String> {
        Ok(format!("delta:{}@v{version}", self.id()?))
    }

    /// The key and time columns from the table's properties, if Kiln (or
    /// someone following its convention) set them.
    ///
    /// # Errors
    /// [`Error::Delta`] if the table has no snapshot.
    pub fn layout(&self) -> Result<Option<Layout>> {
        let snap = self
            .table
            .snapshot()
            .map_err(|e| Error::delta(&self.dir, e))?;
        let conf = snap.metadata().configuration();
        Ok(match (conf.get(ENTITY_PROPERTY), conf.get(TIME_PROPERTY)) {
            (Some(e), Some(t)) => Some(Layout {
                entity: e.split(',').map(str::to_string).collect(),
                timestamp: t.clone(),
            }),
            _ => None,
        })
    }

    /// Every commit still in the log, oldest first.
    ///
    /// # Errors
    /// [`Error::Io`](kiln_runtime::Error::Io) reading the log; [`Error::Table`]
    /// for a commit file that is not JSON lines.
    pub fn commits(&self) -> Result<Vec<Commit>> {
        let log = self.dir.join("_delta_log");
        let mut out = Vec::new();
        let entries = std::fs::read_dir(&log).map_err(|e| Error::io(&log, e))?;
        let mut files = BTreeMap::new();
        for e in entries {
            let e = e.map_err(|e| Error::io(&log, e))?;
            let name = e.file_name().to_string_lossy().into_owned();
            if let Some(v) = name
                .strip_suffix(".json")
                .filter(|s| s.len() == 20)
                .and_then(|s| s.parse::<i64>().ok())
            {
                files.insert(v, e.path());
            }
        }
        for (version, path) in files {
            let text = std::fs::read_to_string(&path).map_err(|e| Error::io(&path, e))?;
            let mut info = None;
            for line in text.lines().filter(|l| !l.trim().is_empty()) {
                let v: Value = serde_json::from_str(line).map_err(|e| {
                    Error::table(
                        &self.dir,
                        format!("{}: not JSON lines: {e}", path.display()),
                    )
                })?;
                if let Some(ci) = v.get("commitInfo") {
                    info = Some(ci.clone());
                }
            }
            let info = info.unwrap_or(Value::Null);
            let ts = info
                .get("inCommitTimestamp")
                .or_else(|| info.get("timestamp"))
                .and_then(Value::as_i64);
            let Some(timestamp_ms) = ts else {
                return Err(Error::table(
                    &self.dir,
                    format!("version {version} has no commitInfo timestamp, so it cannot be placed in time; read it by version"),
                ));
            };
            out.push(Commit {
                version,
                timestamp_ms,
                time: rfc3339_ms(timestamp_ms),
                operation: info
                    .get("operation")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_string(),
                kiln: info.get(COMMIT_KEY).cloned(),
            });
        }
        Ok(out)
    }

    /// What Kiln materialized into this table up to `version`: each
    /// distinct `NAME@TAG` (or version id) its commits record, oldest
    /// first. Its column policies govern who reads what.
    ///
    /// # Errors
    /// As [`FeatureTable::commits`].
    pub fn targets(&self, version: i64) -> Result<Vec<String>> {
        let mut out: Vec<String> = Vec::new();
        for c in self.commits()? {
            let target = c
                .kiln
                .as_ref()
                .and_then(|k| k.get("target"))
                .and_then(Value::as_str);
            if let (true, Some(t)) = (c.version <= version, target) {
                if !out.iter().any(|o| o == t) {
                    out.push(t.to_string());
                }
            }
        }
        Ok(out)
    }

    /// Check `store`'s actor may `read` what wrote this table up to
    /// `version`, and return the masks it gets on the table's rows (the
    /// column policies of those names, less its clearances). The files
    /// hold raw values: every read through Kiln applies this.
    ///
    /// # Errors
    /// [`kiln_store::Error::Denied`] (as [`Error::Store`]) without `read`.
    pub fn masking(&self, store: &kiln_store::Store, version: i64) -> Result<kiln_store::Masking> {
        let mut names = Vec::new();
        for target in self.targets(version)? {
            for n in store.subjects_of(&target, &target)? {
                if !names.contains(&n) {
                    names.push(n);
                }
            }
        }
        Ok(store.authorize_all(&names, kiln_store::Permission::Read)?)
    }

    /// The version `at` names.
    ///
    /// # Errors
    /// [`Error::Table`] for a version the table does not have, or a time
    /// before its first commit (nothing existed then).
    pub fn resolve(&self, at: &AsOf) -> Result<i64> {
        match at {
            AsOf::Latest => Ok(self.version()),
            AsOf::Version(v) if *v >= 0 && *v <= self.version() => Ok(*v),
            AsOf::Version(v) => Err(Error::table(
                &self.dir,
                format!(
                    "has no version {v}; its versions are 0 to {} (`kiln table history {}`)",
                    self.version(),
                    self.dir.display()
                ),
            )),
            AsOf::Time(t) => {
                let commits = self.commits()?;
                let first = commits.first().map(|c| c.timestamp_ms);
                commits
                    .iter()
                    .rev()
                    .find(|c| c.timestamp_ms <= *t)
                    .map(|c| c.version)
                    .ok_or_else(|| {
                        Error::table(
                            &self.dir,
                            format!(
                                "did not exist at {}: its first commit is at {}",
                                rfc3339_ms(*t),
                                first.map(rfc3339_ms).unwrap_or_else(|| "(none)".into())
                            ),
                        )
                    })
            }
        }
    }

    /// The rows of `version`, as one schema and its batches (files in path
    /// order, rows in file order).
    ///
    /// # Errors
    /// [`Error::Table`] for a missing version, a vacuumed data file, or a
    /// table feature Kiln does not read (partitions, deletion vectors,
    /// column mapping); [`Error::Delta`].
    pub fn read(&self, version: i64) -> Result<(SchemaRef, Vec<RecordBatch>)> {
        let version = self.resolve(&AsOf::Version(version))?;
        let mut t = self.table.clone();
        self.rt
            .block_on(t.load_version(version as u64))
            .map_err(|e| Error::delta(&self.dir, e))?;
        let snap = t.snapshot().map_err(|e| Error::delta(&self.dir, e))?;
        let meta = snap.metadata();
        if !meta.partition_columns().is_empty() {
            return Err(Error::table(
                &self.dir,
                format!(
                    "is partitioned by {:?}; Kiln reads unpartitioned tables only (rewrite it without partitions)",
                    meta.partition_columns()
                ),
            ));
        }
        if let Some(m) = meta.configuration().get("delta.columnMapping.mode") {
            if m != "none" {
                return Err(Error::table(
                    &self.dir,
                    format!("uses column mapping ({m}); Kiln reads tables without it"),
                ));
            }
        }
        let schema: arrow::datatypes::Schema = {
            use deltalake::kernel::engine::arrow_conversion::TryIntoArrow as _;
            let s: &StructType = &meta
                .parse_schema()
                .map_err(|e| Error::table(&self.dir, format!("schema: {e}")))?;
            s.try_into_arrow().map_err(|e: arrow::error::ArrowError| {
                Error::table(&self.dir, format!("schema: {e}"))
            })?
        };
        // Read every column as nullable: a file written by another tool may
        // hold nulls its metadata does not admit, and Kiln writes nullable.
        let schema = Arc::new(Schema::new(
            schema
                .fields()
                .iter()
                .map(|f| f.as_ref().clone().with_nullable(true))
                .collect::<Vec<_>>(),
        ));
        let base = table_url(&self.dir)?;
        let mut paths = Vec::new();
        for f in snap.log_data().iter() {
            if f.deletion_vector_descriptor().is_some() {
                return Err(Error::table(
                    &self.dir,
                    format!(
                        "version {version} has deletion vectors; Kiln reads tables without them (run OPTIMIZE/purge first)"
                    ),
                ));
            }
            let path = base
                .join(&f.path())
                .ok()
                .and_then(|u| u.to_file_path().ok())
                .ok_or_else(|| {
                    Error::table(
                        &self.dir,
                        format!("data file path '{}' is not a local file", f.path()),
                    )
                })?;
            paths.push(path);
        }
        paths.sort();
        let mut batches = Vec::new();
        for p in paths {
            if !p.exists() {
                return Err(Error::table(
                    &self.dir,
                    format!(
                        "version {version} needs {}, which is gone (vacuumed?); read a newer version",
                        p.display()
                    ),
                ));
            }
            let (_, bs) = kiln_io::read_all(&p, &Default::default())?;
            for b in bs {
                batches.push(
                    conform(&b, &schema)
                        .map_err(|e| Error::table(&self.dir, format!("{}: {e}", p.display())))?,
                );
            }
        }
        Ok((schema, batches))
    }

    /// Versions whose commit carries Kiln's record with `token` (the
    /// idempotency key of a materialization).
    ///
    /// # Errors
    /// As [`FeatureTable::commits`].
    pub fn find_token(&self, token: &str) -> Result<Option<i64>> {
        Ok(self
            .commits()?
            .into_iter()
            .find(|c| {
                c.kiln
                    .as_ref()
                    .and_then(|k| k.get("token"))
                    .and_then(Value::as_str)
                    == Some(token)
            })
            .map(|c| c.version))
    }

    /// Delete data files no longer needed: files removed from the table
    /// more than `keep_days` ago, except those any version in `keep` reads.
    /// The newest version's files are never touched. Returns the files
    /// deleted (or, with `dry_run`, that would be).
    ///
    /// # Errors
    /// [`Error::Delta`].
    pub fn vacuum(&mut self, keep_days: u64, keep: &[i64], dry_run: bool) -> Result<Vec<String>> {
        let keep: Vec<deltalake::kernel::Version> = keep.iter().map(|v| *v as _).collect();
        let builder = self
            .table
            .clone()
            .vacuum()
            .with_retention_period(chrono::Duration::days(keep_days as i64))
            .with_enforce_retention_duration(false)
            .with_keep_versions(&keep)
            .with_dry_run(dry_run);
        let (table, metrics) = self
            .rt
            .block_on(async move { builder.await })
            .map_err(|e| Error::delta(&self.dir, e))?;
        self.table = table;
        Ok(metrics.files_deleted)
    }
}

/// What to do with the rows already in the table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum WriteMode {
    /// Add the rows.
    Append,
    /// Replace every row (older versions stay readable until vacuumed).
    Overwrite,
}

/// Write `batches` to the table in `dir` as ONE commit (creating the table
/// with `layout` if there is none), with `record` as Kiln's commit
/// metadata. Returns the new version. Data files are written first and are
/// invisible until the commit lands: a failure leaves the table as it was.
///
/// # Errors
/// [`Error::Table`] if the table exists with other columns;
/// [`Error::Delta`].
pub(crate) fn write(
    dir: &Path,
    schema: &SchemaRef,
    batches: &[RecordBatch],
    mode: WriteMode,
    layout: &Layout,
    feature_set: &str,
    record: Value,
) -> Result<i64> {
    let rt = runtime()?;
    let url = table_url(dir)?;
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    let existing = if is_table(dir) {
        Some(FeatureTable::open(dir)?)
    } else {
        None
    };
    let delta_schema = delta_schema(schema);
    if let Some(t) = &existing {
        let have = t.current_schema()?;
        let same = have.fields().len() == delta_schema.fields().len()
            && have
                .fields()
                .iter()
                .zip(delta_schema.fields())
                .all(|(a, b)| a.name() == b.name() && a.data_type() == b.data_type());
        if !same {
            return Err(Error::table(
                dir,
                format!(
                    "has columns [{}] but this write has [{}]; write to a new table directory",
                    describe(&have),
                    describe(&delta_schema)
                ),
            ));
        }
    }
    let mut writer = RecordBatchWriter::try_new(url.as_str(), delta_schema.clone(), None, None)
        .map_err(|e| Error::delta(dir, e))?;
    let adds = rt
        .block_on(async {
            for b in batches {
                let b = conform(b, &delta_schema)
                    .map_err(|e| deltalake::DeltaTableError::Generic(e.to_string()))?;
                writer.write(b).await?;
            }
            writer.flush().await
        })
        .map_err(|e| Error::delta(dir, e))?;
    let token = record
        .get("token")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let props = CommitProperties::default()
        .with_metadata([(COMMIT_KEY.to_string(), record)])
        .with_application_transaction(Transaction::new(format!("kiln-{token}"), 0));
    let mut actions: Vec<Action> = adds.into_iter().map(Action::Add).collect();
    match existing {
        None => {
            let columns: StructType = delta_schema
                .as_ref()
                .try_into_kernel()
                .map_err(|e| Error::table(dir, format!("a column type Delta cannot store: {e}")))?;
            let mut conf = vec![
                (ENTITY_PROPERTY.to_string(), Some(layout.entity.join(","))),
                (TIME_PROPERTY.to_string(), Some(layout.timestamp.clone())),
                (
                    FEATURE_SET_PROPERTY.to_string(),
                    Some(feature_set.to_string()),
                ),
            ];
            conf.sort();
            // Not loaded: there is no log yet (loading would log an error).
            let table = deltalake::DeltaTableBuilder::from_url(url)
                .and_then(|b| b.build())
                .map_err(|e| Error::delta(dir, e))?;
            let created = rt
                .block_on(
                    table
                        .create()
                        .with_table_name(feature_set)
                        .with_columns(columns.fields().cloned())
                        .with_configuration(conf)
                        .with_raise_if_key_not_exists(false)
                        .with_save_mode(SaveMode::ErrorIfExists)
                        .with_actions(actions)
                        .with_commit_properties(props)
                        .into_future(),
                )
                .map_err(|e| Error::delta(dir, e))?;
            Ok(created.version().map_or(0, |v| v as i64))
        }
        Some(t) => {
            let snapshot = t.table.snapshot().map_err(|e| Error::delta(dir, e))?;
            if mode == WriteMode::Overwrite {
                for f in snapshot.log_data().iter() {
                    actions.push(Action::Remove(f.remove_action(true)));
                }
            }
            let operation = DeltaOperation::Write {
                mode: match mode {
                    WriteMode::Append => SaveMode::Append,
                    WriteMode::Overwrite => SaveMode::Overwrite,
                },
                partition_by: None,
                predicate: None,
            };
            let done = rt
                .block_on(
                    CommitBuilder::from(props)
                        .with_actions(actions)
                        .build(Some(snapshot), t.table.log_store(), operation)
                        .into_future(),
                )
                .map_err(|e| Error::delta(dir, e))?;
            Ok(done.version() as i64)
        }
    }
}

impl FeatureTable {
    fn current_schema(&self) -> Result<SchemaRef> {
        use deltalake::kernel::engine::arrow_conversion::TryIntoArrow as _;
        let snap = self
            .table
            .snapshot()
            .map_err(|e| Error::delta(&self.dir, e))?;
        let s: &StructType = &snap
            .metadata()
            .parse_schema()
            .map_err(|e| Error::table(&self.dir, format!("schema: {e}")))?;
        let schema: Schema = s.try_into_arrow().map_err(|e: arrow::error::ArrowError| {
            Error::table(&self.dir, format!("schema: {e}"))
        })?;
        Ok(Arc::new(schema))
    }
}

/// The schema Delta stores for `schema`: unsigned integers widened to the
/// next signed type (UInt64 to Int64, checked when cast), dictionaries
/// as their values, time stamps as microseconds (UTC when zoned), every
/// column nullable.
fn delta_schema(schema: &SchemaRef) -> SchemaRef {
    let fields: Vec<Field> = schema
        .fields()
        .iter()
        .map(|f| Field::new(f.name(), delta_type(f.data_type()), true))
        .collect();
    Arc::new(Schema::new(fields))
}

fn delta_type(t: &DataType) -> DataType {
    use arrow::datatypes::TimeUnit;
    match t {
        DataType::UInt8 => DataType::Int16,
        DataType::UInt16 => DataType::Int32,
        DataType::UInt32 | DataType::UInt64 => DataType::Int64,
        DataType::Dictionary(_, v) => delta_type(v),
        DataType::Timestamp(_, Some(_)) => {
            DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()))
        }
        DataType::Timestamp(_, None) => DataType::Timestamp(TimeUnit::Microsecond, None),
        DataType::LargeUtf8 | DataType::Utf8View => DataType::Utf8,
        DataType::LargeBinary | DataType::BinaryView => DataType::Binary,
        other => other.clone(),
    }
}

/// `b` with `schema`'s fields (same names and order; types cast where
/// they differ, e.g. a file written with another time stamp unit, or a
/// UInt64 stored as Int64). A value the target type cannot hold is an
/// error, never a silent null.
fn conform(
    b: &RecordBatch,
    schema: &SchemaRef,
) -> std::result::Result<RecordBatch, arrow::error::ArrowError> {
    let cols = schema
        .fields()
        .iter()
        .map(|f| {
            let c = b.column_by_name(f.name()).ok_or_else(|| {
                arrow::error::ArrowError::SchemaError(format!("column '{}' is missing", f.name()))
            })?;
            if c.data_type() == f.data_type() {
                Ok(c.clone())
            } else {
                let strict = CastOptions {
                    safe: false,
                    ..Default::default()
                };
                cast_with_options(c, f.data_type(), &strict).map_err(|e| {
                    arrow::error::ArrowError::CastError(format!("column '{}': {e}", f.name()))
                })
            }
        })
        .collect::<std::result::Result<Vec<ArrayRef>, _>>()?;
    RecordBatch::try_new(schema.clone(), cols)
}

fn describe(s: &SchemaRef) -> String {
    s.fields()
        .iter()
        .map(|f| format!("{} {}", f.name(), f.data_type()))
        .collect::<Vec<_>>()
        .join(", ")
}

/// `ms` as RFC 3339 (UTC, milliseconds).
pub(crate) fn rfc3339_ms(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
        .unwrap_or_else(|| format!("{ms} ms"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_refs_parse_version_time_or_plain_dir() {
        let cases = [
            ("t", "t", AsOf::Latest),
            ("dir/t@3", "dir/t", AsOf::Version(3)),
            ("t@2026-01-01T00:00:01Z", "t", AsOf::Time(1_767_225_601_000)),
            (
                "t@2026-01-01T01:00:00+01:00",
                "t",
                AsOf::Time(1_767_225_600_000),
            ),
            // Neither a version nor a time: part of the directory name.
            ("me@host/t", "me@host/t", AsOf::Latest),
            ("a@b@2", "a@b", AsOf::Version(2)),
        ];
        for (s, dir, at) in cases {
            assert_eq!(
                TableRef::parse(s),
                TableRef {
                    dir: dir.into(),
                    at
                },
                "{s}"
            );
        }
    }

    #[test]
    fn delta_types_widen_what_delta_cannot_store() {
        use arrow::datatypes::TimeUnit::*;
        let dict = DataType::Dictionary(Box::new(DataType::Int32), Box::new(DataType::LargeUtf8));
        let cases = [
            (DataType::UInt8, DataType::Int16),
            (DataType::UInt16, DataType::Int32),
            (DataType::UInt32, DataType::Int64),
            (dict, DataType::Utf8),
            (
                DataType::Timestamp(Second, Some("+02:00".into())),
                DataType::Timestamp(Microsecond, Some("UTC".into())),
            ),
            (
                DataType::Timestamp(Nanosecond, None),
                DataType::Timestamp(Microsecond, None),
            ),
            (DataType::Float64, DataType::Float64),
            (DataType::Boolean, DataType::Boolean),
        ];
        for (from, to) in cases {
            assert_eq!(delta_type(&from), to, "{from}");
        }
    }

    #[test]
    fn conforming_widens_and_refuses_values_that_do_not_fit() {
        use arrow::array::{Int64Array, UInt64Array};
        let to = delta_schema(&Arc::new(Schema::new(vec![Field::new(
            "n",
            DataType::UInt64,
            false,
        )])));
        let batch = |v: u64| {
            RecordBatch::try_from_iter([("n", Arc::new(UInt64Array::from(vec![v])) as ArrayRef)])
                .unwrap()
        };
        let ok = conform(&batch(5), &to).unwrap();
        assert_eq!(
            ok.column(0).as_ref(),
            &Int64Array::from(vec![5]) as &dyn Array
        );
        let e = conform(&batch(u64::MAX), &to).unwrap_err().to_string();
        assert!(
            e.contains("column 'n'"),
            "an overflow is an error, not a null: {e}"
        );
    }

    #[test]
    fn reading_a_missing_table_says_how_to_make_one() {
        let dir = tempfile::tempdir().unwrap();
        let e = FeatureTable::open(dir.path()).unwrap_err().to_string();
        assert!(
            e.contains("not a feature table") && e.contains("kiln materialize"),
            "{e}"
        );
    }
}
