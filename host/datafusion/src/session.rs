//! A SQL session over a Kiln store: [`SqlSession`], what `kiln sql` runs.
//!
//! It holds a DataFusion context with the generic `kiln('NAME@TAG', ...)`
//! function bound to the store, optional named functions for single
//! versions, and Kiln-read tables; [`SqlSession::write`] runs a query into
//! a file and records it as a `sql` run, with the same lineage a
//! `kiln run` gets: every input file's fingerprint, the output's, and each
//! pinned version the query called.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use datafusion::execution::context::SessionContext;
use datafusion::prelude::SessionConfig;
use kiln_io::WriteSummary;

use kiln_store::{
    DatasetRecord, Permission, Registry, RunKind, RunRecord, RunStatus, SqlFunction, SqlRecord,
    SqlTable, TransformParts, VerifyReport,
};

use crate::query::stream_to_file;
use crate::{block_on, register, register_files, Error, KilnFunction, Result, Transform};

/// The SQL name of the generic function [`SqlSession`] registers.
pub const KILN_FUNCTION: &str = "kiln";

/// A DataFusion session bound to a Kiln registry (or to none: then only
/// bundles and plugin files can be functions, and nothing is recorded).
///
/// `kiln('scaler@prod', age, income)` resolves the version in the store
/// (the registry's actor needs `run` on the name; column policies apply),
/// once per query plan. Tables are files read by `kiln-io`.
pub struct SqlSession {
    registry: Option<Arc<Registry>>,
    ctx: SessionContext,
    kiln: KilnFunction,
    named: Vec<(String, Transform)>,
    /// Every table file, by table name, in registration order.
    tables: Vec<(String, PathBuf)>,
}

impl std::fmt::Debug for SqlSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqlSession")
            .field("store", &self.registry.as_ref().map(|r| r.store().dir()))
            .field(
                "named",
                &self.named.iter().map(|(n, _)| n).collect::<Vec<_>>(),
            )
            .field("tables", &self.tables)
            .finish_non_exhaustive()
    }
}

impl SqlSession {
    /// A session with `config` (partitions, batch size) over `registry`,
    /// with `kiln(...)` registered.
    ///
    /// # Errors
    /// None in practice (the function name is valid); typed for the future.
    pub fn new(registry: Option<Arc<Registry>>, config: SessionConfig) -> Result<SqlSession> {
        let kiln = match &registry {
            Some(registry) => {
                let scope = registry.store().dir().display().to_string();
                let r = registry.clone();
                KilnFunction::new(KILN_FUNCTION, scope, move |spec| {
                    Transform::from_registry(&r, spec)
                })?
            }
            None => KilnFunction::new(KILN_FUNCTION, "", |spec| {
                Err(Error::Usage(format!(
                    "{KILN_FUNCTION}('{spec}', ...) needs a Kiln store: pass --store DIR or set KILN_HOME (or register a .kiln bundle as a named function)"
                )))
            })?,
        };
        Ok(SqlSession::with_function(registry, config, kiln))
    }

    fn with_function(
        registry: Option<Arc<Registry>>,
        config: SessionConfig,
        kiln: KilnFunction,
    ) -> SqlSession {
        let ctx = SessionContext::new_with_config(config);
        ctx.register_udf(kiln.clone().into_udf());
        SqlSession {
            registry,
            ctx,
            kiln,
            named: Vec::new(),
            tables: Vec::new(),
        }
    }

    /// The DataFusion context (to register more tables or functions).
    pub fn context(&self) -> &SessionContext {
        &self.ctx
    }

    /// Register `spec` (`NAME@TAG` or a version id in the store) as the
    /// SQL function `name`, so queries can call `name(age, income)`.
    ///
    /// # Errors
    /// As [`Transform::from_registry`] and [`register`].
    pub fn register_version(&mut self, name: &str, spec: &str) -> Result<()> {
        let Some(registry) = &self.registry else {
            return Err(Error::Usage(format!(
                "function {name} = {spec} needs a Kiln store: pass --store DIR or set KILN_HOME, or give a .kiln bundle"
            )));
        };
        let t = Transform::from_registry(registry, spec)?;
        self.register_transform(name, t)
    }

    /// Register `transform` (e.g. from a `.kiln` bundle) as the SQL
    /// function `name`; recorded with every run of this session.
    ///
    /// # Errors
    /// As [`register`].
    pub fn register_transform(&mut self, name: &str, transform: Transform) -> Result<()> {
        register(&self.ctx, name, transform.clone())?;
        self.named.push((name.to_owned(), transform));
        Ok(())
    }

    /// Register `(name, path)` pairs as tables (see
    /// [`crate::register_tables`]); their files are the run's inputs.
    ///
    /// # Errors
    /// As [`register_files`].
    pub fn register_tables(&mut self, tables: &[(&str, &Path)]) -> Result<()> {
        for (name, paths) in crate::table::group_tables(tables) {
            register_files(&self.ctx, name, &paths)?;
            self.tables
                .extend(paths.into_iter().map(|p| (name.to_owned(), p)));
        }
        Ok(())
    }

    /// Run `query` and collect the result (not recorded: nothing is
    /// written).
    ///
    /// # Errors
    /// As [`crate::collect`].
    pub fn collect(&self, query: &str) -> Result<(SchemaRef, Vec<RecordBatch>)> {
        block_on(&self.ctx, crate::collect(&self.ctx, query))
    }

    /// Run `query` into `output` (format by extension; replaced only when
    /// the whole query succeeds) and, with a registry, record it as a
    /// `sql` run: inputs, output, the query and every version it called.
    /// A failed query is recorded as failed and leaves `output` untouched.
    ///
    /// # Errors
    /// As [`crate::write()`]; store errors.
    pub fn write(&self, query: &str, output: &Path) -> Result<(Option<RunRecord>, WriteSummary)> {
        let Some(registry) = &self.registry else {
            let (summary, _, _) =
                block_on(&self.ctx, write_fingerprinted(&self.ctx, query, output))?;
            return Ok((None, summary));
        };
        let batch_size = self.ctx.copied_config().batch_size();
        let placeholder = TransformParts {
            version_id: String::new(),
            plugin_id: String::new(),
            plugin: "kiln sql".into(),
            params: String::new(),
            state_id: None,
        };
        let mut record = registry.new_record(RunKind::Sql, placeholder, batch_size);
        record.sql = Some(self.sql_record(query));
        let (run, summary) = registry.record_run(record, |r| {
            r.inputs = self.input_records()?;
            let written = block_on(&self.ctx, write_fingerprinted(&self.ctx, query, output));
            // What the plan resolved is known even when execution failed.
            self.fill(r, query);
            let (summary, fp, schema) = written?;
            r.outputs.push(DatasetRecord::new(output, &fp, &schema));
            Ok::<_, Error>(summary)
        })?;
        Ok((Some(run), summary))
    }

    /// Each table file's record (fingerprinted now).
    fn input_records(&self) -> Result<Vec<DatasetRecord>> {
        self.tables
            .iter()
            .map(|(_, path)| {
                let fp = kiln_io::fingerprint_file(path)?;
                let schema = kiln_io::open(path, &kiln_io::ReadOptions { batch_size: 1 })?.schema();
                Ok(DatasetRecord::new(path, &fp, &schema))
            })
            .collect()
    }

    /// The query, tables and the functions called so far, as recorded.
    fn sql_record(&self, query: &str) -> SqlRecord {
        let generic = self
            .kiln
            .used()
            .into_iter()
            .map(|(spec, t)| (KILN_FUNCTION.to_owned(), Some(spec), t));
        let named = self.named.iter().map(|(n, t)| (n.clone(), None, t.clone()));
        let mut functions: Vec<SqlFunction> = generic
            .chain(named)
            .map(|(function, spec, t)| SqlFunction {
                function,
                spec,
                transform: TransformParts::of(t.plugin(), t.params(), t.state()),
                masked: t.masking().masks(),
            })
            .collect();
        functions.sort_by(|a, b| (&a.function, &a.spec).cmp(&(&b.function, &b.spec)));
        SqlRecord {
            query: query.to_owned(),
            tables: self
                .tables
                .iter()
                .map(|(name, path)| SqlTable {
                    name: name.clone(),
                    path: std::path::absolute(path)
                        .unwrap_or_else(|_| path.clone())
                        .display()
                        .to_string(),
                })
                .collect(),
            functions,
            partitions: self.ctx.copied_config().target_partitions(),
        }
    }

    /// Fill the record with what the plan resolved; a query calling one
    /// version also has it as the run's `transform` and `target`, as a
    /// `kiln run` of that version has.
    fn fill(&self, r: &mut RunRecord, query: &str) {
        let sql = self.sql_record(query);
        if let [only] = sql.functions.as_slice() {
            r.transform = only.transform.clone();
            r.masked = only.masked.clone();
            r.target = only.spec.clone().filter(|s| s.contains('@'));
        }
        r.sql = Some(sql);
    }
}

/// Re-run the recorded SQL run `run_id` with the versions it pinned (not
/// where their tags point now), the same masks, tables and batch size, and
/// report whether the output is bit-identical (by fingerprint), or how it
/// differs; recorded as a `verify` run, as `kiln verify` of a `kiln run`.
/// The output file is not touched (the re-run writes a temporary file
/// beside it).
///
/// # Errors
/// [`Error::Usage`] for a run that is not a successful SQL run; the
/// store's errors (unknown run, `run` denied on a version, a missing
/// blob); a re-run that fails (a missing input file) after recording it.
pub fn verify(registry: &Arc<Registry>, run_id: &str) -> Result<VerifyReport> {
    let store = registry.store();
    let run = store.run(run_id)?;
    let sql = match (&run.kind, &run.sql) {
        (RunKind::Sql, Some(sql)) => sql.clone(),
        _ => {
            return Err(Error::Usage(format!(
                "run {} is a {} run, not a SQL run: verify it with `kiln verify` (kiln_store::Registry::verify)",
                run.id,
                kiln_store::run_kind_label(run.kind)
            )))
        }
    };
    if run.status != RunStatus::Ok {
        return Err(Error::Usage(format!(
            "run {} ended {:?}; only successful runs can be verified",
            run.id, run.status
        )));
    }
    let access = store.access()?;
    let mut pinned: Vec<(SqlFunction, Transform)> = Vec::new();
    for f in &sql.functions {
        let id = &f.transform.version_id;
        store.authorize_spec(f.spec.as_deref().unwrap_or(id), id, Permission::Run)?;
        let version = store.version(id)?;
        let (plugin, params, state) = registry.load_version(&version)?;
        let t =
            Transform::from_parts(plugin, params, state)?.with_masking(access.replay(&f.masked));
        pinned.push((f.clone(), t));
    }
    let by_spec: BTreeMap<String, Transform> = pinned
        .iter()
        .filter(|(f, _)| f.function == KILN_FUNCTION)
        .filter_map(|(f, t)| f.spec.clone().map(|s| (s, t.clone())))
        .collect();
    let kiln = KilnFunction::new(KILN_FUNCTION, format!("verify {}", run.id), move |spec| {
        by_spec.get(spec).cloned().ok_or_else(|| {
            Error::Usage(format!(
                "the re-run called {KILN_FUNCTION}('{spec}'), which the recorded run did not"
            ))
        })
    })?;
    let config = SessionConfig::new()
        .with_batch_size(run.batch_size.max(1))
        .with_target_partitions(sql.partitions.max(1));
    let mut session = SqlSession::with_function(Some(registry.clone()), config, kiln);
    for (f, t) in &pinned {
        if f.function != KILN_FUNCTION {
            session.register_transform(&f.function, t.clone())?;
        }
    }
    let tables: Vec<(&str, &Path)> = sql
        .tables
        .iter()
        .map(|t| (t.name.as_str(), Path::new(&t.path)))
        .collect();
    session.register_tables(&tables)?;

    let recorded_out = run.outputs.first().ok_or_else(|| {
        Error::Usage(format!("run {} recorded no output to compare with", run.id))
    })?;
    let out_path = PathBuf::from(&recorded_out.path);
    let dir = out_path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let ext = out_path
        .extension()
        .map(|e| format!(".{}", e.to_string_lossy()))
        .unwrap_or_default();
    let tmp = tempfile::Builder::new()
        .prefix(".kiln-verify-")
        .suffix(&ext)
        .tempfile_in(dir)
        .map_err(|e| kiln_runtime::Error::io(dir, e))?;

    let mut record = registry.new_record(RunKind::Verify, run.transform.clone(), run.batch_size);
    record.verifies = Some(run.id.clone());
    record.target = run.target.clone();
    record.masked = run.masked.clone();
    record.sql = Some(sql.clone());
    let (vrun, differences) = registry.record_run_outcome(record, |r| {
        let mut differences = Vec::new();
        r.inputs = session.input_records()?;
        for (now, then) in r.inputs.iter().zip(&run.inputs) {
            if now.fingerprint != then.fingerprint {
                differences.push(format!(
                    "input {} changed: fingerprint {} instead of the recorded {}",
                    now.path, now.fingerprint, then.fingerprint
                ));
            }
        }
        if differences.is_empty() {
            let (_, fp, schema) = block_on(
                &session.ctx,
                write_fingerprinted(&session.ctx, &sql.query, tmp.path()),
            )?;
            r.outputs.push(DatasetRecord::new(&out_path, &fp, &schema));
            if fp.id != recorded_out.fingerprint {
                differences.push(format!(
                    "output differs: fingerprint {} instead of the recorded {}",
                    fp.id, recorded_out.fingerprint
                ));
            }
        }
        let failed = (!differences.is_empty())
            .then(|| format!("not reproduced: {}", differences.join("; ")));
        Ok::<_, Error>((differences, failed))
    })?;
    Ok(VerifyReport {
        run: run.id,
        verify_run: vrun.id,
        identical: differences.is_empty(),
        differences,
    })
}

/// [`crate::write()`], fingerprinting the batches written.
async fn write_fingerprinted(
    ctx: &SessionContext,
    query: &str,
    output: &Path,
) -> Result<(WriteSummary, kiln_io::Fingerprint, SchemaRef)> {
    let (summary, fp) = stream_to_file(ctx, query, output, true).await?;
    let (fp, schema) = fp.expect("asked to fingerprint");
    Ok((summary, fp, schema))
}
