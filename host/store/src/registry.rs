//! The registry: fit, run and verify transforms with every run recorded in
//! the [`Store`], resolve `name@tag`, trace a file back to raw inputs, draw
//! the lineage graph and export bundles. What `kiln fit --name`, `kiln run
//! NAME@TAG`, `kiln verify`, `kiln lineage` and `kiln export` do.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use arrow::array::RecordBatch;
use serde::Serialize;

use crate::bundle::{Bundle, BundleManifest};
use crate::lineage::LineageGraph;
use crate::openlineage::Sink;
use crate::store::{
    now, pipeline_id, DatasetRecord, EngineSettings, Permission, PipelineRecord, PluginRecord,
    Resolved, RunKind, RunRecord, RunStatus, Store, TagMove, TagRef, TransformParts, VersionRecord,
};
use crate::{Error, Masking, Result};

/// A version loaded with its plugin's component bytes:
/// [`Registry::load_version_with_bytes`].
pub type LoadedVersion = (Arc<[u8]>, Plugin, Params, Option<State>);
use kiln_io::job::{self, JobOptions};
use kiln_io::{self as io, ReadOptions};
use kiln_pipeline::{Gates, Pipeline, PipelineSpec};
use kiln_quality::{self as quality, Contract, Severity};
use kiln_runtime::{Engine, Params, Plugin, State, WIT_VERSION};

/// An engine and a store, used together.
#[derive(Debug)]
pub struct Registry {
    engine: Engine,
    store: Store,
    lineage: Vec<Sink>,
}

/// Where a fit's result goes in the registry.
#[derive(Debug, Clone, Default)]
pub struct FitTarget {
    /// The transform name (created if new).
    pub name: String,
    /// The tag to move to the new version (`dev` if empty).
    pub tag: String,
    /// Why (recorded with the tag move).
    pub reason: String,
    /// Description of the feature (kept if `None`).
    pub description: Option<String>,
    /// Owner (kept if `None`).
    pub owner: Option<String>,
}

/// What a recorded fit produced.
#[derive(Debug, Clone, Serialize)]
pub struct FitOutcome {
    /// The run record.
    pub run: RunRecord,
    /// The version created (or found, if identical).
    pub version: VersionRecord,
    /// `name@tag` moved to it, if any.
    pub tagged: Option<String>,
}

/// The outcome of `kiln verify`.
#[derive(Debug, Clone, Serialize)]
pub struct VerifyReport {
    /// The run verified.
    pub run: String,
    /// The verify run's own record id.
    pub verify_run: String,
    /// True if the re-execution reproduced the recorded result bit for bit.
    pub identical: bool,
    /// Every difference found, most specific first (empty when identical).
    pub differences: Vec<String>,
}

/// One dataset in a trace, with the run that produced it (if Kiln made it).
#[derive(Debug, Clone, Serialize)]
pub struct TraceNode {
    /// The dataset's fingerprint.
    pub fingerprint: String,
    /// Where it was seen.
    pub path: String,
    /// The run that wrote it; `None` for a raw input.
    pub produced_by: Option<TraceRun>,
}

/// A producing run in a trace.
#[derive(Debug, Clone, Serialize)]
pub struct TraceRun {
    /// Run id.
    pub run: String,
    /// When.
    pub started_at: String,
    /// `name@tag` it ran as, if any.
    pub target: Option<String>,
    /// The transform's parts.
    pub transform: TransformParts,
    /// Its inputs, traced further back.
    pub inputs: Vec<TraceNode>,
}

/// A run being recorded: written as `running` first, then finished.
struct Recording<'a> {
    reg: &'a Registry,
    record: RunRecord,
    start: Instant,
}

impl<'a> Recording<'a> {
    fn begin(reg: &'a Registry, mut record: RunRecord) -> Result<Recording<'a>> {
        record.status = RunStatus::Running;
        reg.store.put_run(&record)?;
        reg.emit(&record);
        Ok(Recording {
            reg,
            record,
            start: Instant::now(),
        })
    }

    fn finish<T>(self, result: Result<T>) -> Result<(RunRecord, T)> {
        match result {
            Ok(v) => Ok((self.end(None)?, v)),
            Err(e) => {
                self.end(Some(e.to_string()))?;
                Err(e)
            }
        }
    }

    /// Record the end: ok without an error, failed with one.
    fn end(mut self, error: Option<String>) -> Result<RunRecord> {
        self.record.finished_at = Some(now());
        self.record.wall_ms = Some(self.start.elapsed().as_secs_f64() * 1e3);
        self.record.status = if error.is_none() {
            RunStatus::Ok
        } else {
            RunStatus::Failed
        };
        self.record.error = error;
        self.reg.store.put_run(&self.record)?;
        self.reg.emit(&self.record);
        Ok(self.record)
    }
}

fn plugin_label(p: &Plugin) -> String {
    format!("{}@{}", p.info().name, p.info().version)
}

impl TransformParts {
    /// The parts of the version `plugin` + `params` + `state` makes, as a
    /// run records them (for runs another crate carries out, e.g. SQL).
    pub fn of(plugin: &Plugin, params: &Params, state: Option<&State>) -> TransformParts {
        let state_id = state.map(State::id);
        TransformParts {
            version_id: kiln_runtime::version_id(plugin.id(), params, state_id.as_deref()),
            plugin_id: plugin.id().into(),
            plugin: plugin_label(plugin),
            params: params.as_str().into(),
            state_id,
        }
    }
}

impl Registry {
    /// Use `engine` with `store`.
    pub fn new(engine: Engine, store: Store) -> Registry {
        Registry {
            engine,
            store,
            lineage: Vec::new(),
        }
    }

    /// Also emit every run as OpenLineage events to `sink`.
    pub fn with_openlineage(mut self, sink: Sink) -> Registry {
        self.lineage.push(sink);
        self
    }

    /// The store.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The engine.
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    fn emit(&self, run: &RunRecord) {
        for s in &self.lineage {
            s.emit(run);
        }
    }

    /// Record a run that another crate carries out (a feature-table write,
    /// a training set): `record` is stored as running, `work` fills its
    /// inputs and outputs, and the end is stored as ok or failed (with the
    /// error) before this returns. Emitted to the OpenLineage sinks like
    /// every run.
    ///
    /// # Errors
    /// `work`'s error (after recording it); store errors.
    pub fn record_run<T, E>(
        &self,
        record: RunRecord,
        work: impl FnOnce(&mut RunRecord) -> std::result::Result<T, E>,
    ) -> std::result::Result<(RunRecord, T), E>
    where
        E: From<Error> + std::fmt::Display,
    {
        self.record_run_outcome(record, |r| work(r).map(|v| (v, None)))
    }

    /// [`Registry::record_run`] for work that can end without an error
    /// and still fail as a run (a verify that did not reproduce): `work`
    /// returns its value and, if the run failed, the error to record.
    ///
    /// # Errors
    /// `work`'s error (after recording it); store errors.
    pub fn record_run_outcome<T, E>(
        &self,
        record: RunRecord,
        work: impl FnOnce(&mut RunRecord) -> std::result::Result<(T, Option<String>), E>,
    ) -> std::result::Result<(RunRecord, T), E>
    where
        E: From<Error> + std::fmt::Display,
    {
        let mut rec = Recording::begin(self, record)?;
        match work(&mut rec.record) {
            Ok((v, failed)) => Ok((rec.end(failed)?, v)),
            Err(e) => {
                rec.end(Some(e.to_string()))?;
                Err(e)
            }
        }
    }

    /// A new run record of `kind` for `transform`, with this host's
    /// versions and engine settings, to pass to [`Registry::record_run`].
    pub fn new_record(
        &self,
        kind: RunKind,
        transform: TransformParts,
        batch_size: usize,
    ) -> RunRecord {
        RunRecord {
            id: uuid::Uuid::now_v7().to_string(),
            kind,
            started_at: now(),
            finished_at: None,
            wall_ms: None,
            status: RunStatus::Running,
            error: None,
            target: None,
            transform,
            wit_version: WIT_VERSION.into(),
            host_version: env!("CARGO_PKG_VERSION").into(),
            engine: EngineSettings::from(self.engine.config()),
            batch_size,
            inputs: Vec::new(),
            outputs: Vec::new(),
            verifies: None,
            masked: Default::default(),
            sql: None,
        }
    }

    /// Load a plugin file and register it (bytes and `describe` metadata).
    ///
    /// # Errors
    /// As [`Engine::load_bytes`]; [`Error::Io`] if the file is unreadable.
    pub fn add_plugin(&self, path: &Path) -> Result<(Plugin, PluginRecord)> {
        let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
        let plugin = self.engine.load_bytes(&bytes, path)?;
        let rec = self.store.add_plugin(
            &bytes,
            &PluginRecord::from_info(plugin.info(), bytes.len() as u64),
        )?;
        Ok((plugin, rec))
    }

    /// Load a registered plugin by id (or unique prefix), bytes checked.
    ///
    /// # Errors
    /// [`Error::NotFound`]; [`Error::Store`] for tampered bytes; load errors.
    pub fn plugin(&self, id: &str) -> Result<Plugin> {
        let rec = self.store.plugin(id)?;
        let bytes = self.store.plugin_bytes(&rec.id)?;
        Ok(self
            .engine
            .load_bytes(&bytes, Path::new(&format!("store:{}", &rec.id[..12])))?)
    }

    /// A plugin given as a file path, a transform name (its `dev` tag, else
    /// any tag) or a plugin id prefix; with the version it came from, for names.
    ///
    /// # Errors
    /// [`Error::NotFound`] if it is none of these.
    pub fn plugin_for(&self, spec: &str) -> Result<(Plugin, Option<VersionRecord>)> {
        let path = Path::new(spec);
        if path.exists() {
            return Ok((self.add_plugin(path)?.0, None));
        }
        if let Ok(name) = self.store.name(spec) {
            let v = name
                .tags
                .get("dev")
                .or_else(|| name.tags.values().next())
                .ok_or_else(|| Error::NotFound(format!("'{spec}' has no tagged version")))?;
            let v = self.store.version(v)?;
            return Ok((self.plugin(&v.plugin_id)?, Some(v)));
        }
        self.plugin(spec).map(|p| (p, None)).map_err(|_| {
            Error::NotFound(format!(
                "'{spec}' is not a plugin file, a transform name or a registered plugin id"
            ))
        })
    }

    /// Fit `plugin` with `params` on `inputs`, store the state, create the
    /// version and, with a target, move `name@tag` to it. The run is recorded
    /// (also when it fails).
    ///
    /// # Errors
    /// As [`job::fit_files`]; store errors.
    pub fn fit(
        &self,
        plugin: &Plugin,
        params: &Params,
        inputs: &[PathBuf],
        target: Option<&FitTarget>,
        opts: &JobOptions,
        progress: &mut dyn FnMut(u64),
    ) -> Result<FitOutcome> {
        let parts = TransformParts {
            version_id: String::new(),
            plugin_id: plugin.id().into(),
            plugin: plugin_label(plugin),
            params: params.as_str().into(),
            state_id: None,
        };
        if let Some(t) = target {
            // Check before the work: the fit would end in a tag move.
            self.store.authorize(&t.name, Permission::Promote)?;
        }
        let mut record = self.new_record(RunKind::Fit, parts, opts.batch_size);
        let tag = target.map(|t| TagRef {
            name: t.name.clone(),
            tag: if t.tag.is_empty() {
                "dev".into()
            } else {
                t.tag.clone()
            },
        });
        record.target = tag.as_ref().map(ToString::to_string);
        let rec = Recording::begin(self, record)?;
        let opts = JobOptions {
            fingerprint: true,
            ..opts.clone()
        };
        let result = (|| {
            let needs_fit = plugin.needs_fit(params)?;
            let (state, summary) = if needs_fit {
                let (s, summary) = job::fit_files(plugin, params, inputs, &opts, progress)?;
                (Some(s), Some(summary))
            } else {
                (None, None)
            };
            let state_id = match &state {
                Some(s) => Some(self.store.put_state(s, plugin.id(), params)?),
                None => None,
            };
            let version = self
                .store
                .put_version(plugin.id(), params, state_id.as_deref())?;
            Ok((summary, version))
        })();
        let mut rec = rec;
        if let Ok((summary, version)) = &result {
            rec.record.transform.version_id = version.id.clone();
            rec.record.transform.state_id = version.state_id.clone();
            if let Some(s) = summary {
                rec.record.inputs = inputs
                    .iter()
                    .zip(&s.input_fingerprints)
                    .map(|(p, fp)| DatasetRecord::new(p, fp, &s.input_schema))
                    .collect();
            }
        }
        let (run, (_, version)) = rec.finish(result)?;
        // The training profile, for `kiln drift` (histogram edges frozen here).
        if !inputs.is_empty() {
            let profile = kiln_quality::profile_files(inputs, None)?;
            self.store.put_profile(&version.id, &profile)?;
        }
        let mut tagged = None;
        if let (Some(t), Some(tag)) = (target, &tag) {
            self.store
                .ensure_name(&t.name, t.description.as_deref(), t.owner.as_deref())?;
            let reason = if t.reason.is_empty() {
                format!("fit run {}", run.id)
            } else {
                t.reason.clone()
            };
            self.store.set_tag(tag, &version.id, "fit", &reason)?;
            tagged = Some(tag.to_string());
        }
        self.store.flush()?;
        Ok(FitOutcome {
            run,
            version,
            tagged,
        })
    }

    /// The plugin, parameters and state of a version, all checked.
    ///
    /// # Errors
    /// [`Error::NotFound`]; [`Error::Store`] for tampered bytes.
    pub fn load_version(&self, v: &VersionRecord) -> Result<(Plugin, Params, Option<State>)> {
        let (_, plugin, params, state) = self.load_version_with_bytes(v)?;
        Ok((plugin, params, state))
    }

    /// As [`Registry::load_version`], with the plugin's component bytes
    /// (checked against the plugin id by the store): for callers that ship
    /// the version to other processes (Ballista executors, Python workers).
    ///
    /// # Errors
    /// As [`Registry::load_version`].
    pub fn load_version_with_bytes(&self, v: &VersionRecord) -> Result<LoadedVersion> {
        let rec = self.store.plugin(&v.plugin_id)?;
        let bytes: Arc<[u8]> = self.store.plugin_bytes(&rec.id)?.into();
        let label = format!("store:{}", &rec.id[..rec.id.len().min(12)]);
        let plugin = self.engine.load_bytes(&bytes, Path::new(&label))?;
        let params = Params::from_json(&v.params)?;
        let state = v
            .state_id
            .as_deref()
            .map(|s| self.store.state(s))
            .transpose()?;
        Ok((bytes, plugin, params, state))
    }

    /// Register a plugin, parameters and state given as files (the
    /// file-based `kiln run`), so that the run can be recorded and verified.
    ///
    /// # Errors
    /// Store errors.
    pub fn register_parts(
        &self,
        plugin: &Plugin,
        plugin_bytes: &[u8],
        params: &Params,
        state: Option<&State>,
    ) -> Result<VersionRecord> {
        self.store.add_plugin(
            plugin_bytes,
            &PluginRecord::from_info(plugin.info(), plugin_bytes.len() as u64),
        )?;
        let state_id = match state {
            Some(s) => Some(self.store.put_state(s, plugin.id(), params)?),
            None => None,
        };
        self.store
            .put_version(plugin.id(), params, state_id.as_deref())
    }

    /// Run `version` over `inputs` into `output`, recording the run with the
    /// fingerprints of every input and of the output. `target` (`name@tag`,
    /// else every name that tagged the version) decides the permission
    /// needed (`run`) and the column policies: columns the store's actor is
    /// not cleared for are masked before anything is written, and the run
    /// records which.
    ///
    /// # Errors
    /// [`Error::Denied`] without `run` on the name; [`Error::Policy`]
    /// (inside a data error naming the output) for a policy the output's
    /// column cannot take; as [`job::run_files`]; store errors. A failed run
    /// is recorded as failed.
    #[allow(clippy::too_many_arguments)]
    pub fn run(
        &self,
        version: &VersionRecord,
        target: Option<&str>,
        inputs: &[PathBuf],
        output: &Path,
        opts: &JobOptions,
        progress: &mut dyn FnMut(u64),
    ) -> Result<(RunRecord, job::RunSummary)> {
        let masking = self.store.authorize_spec(
            target.unwrap_or(&version.id),
            &version.id,
            Permission::Run,
        )?;
        let (plugin, params, state) = self.load_version(version)?;
        self.run_loaded(
            RunKind::Run,
            version,
            (&plugin, &params, state.as_ref()),
            target,
            inputs,
            output,
            opts,
            &masking,
            progress,
        )
    }

    #[allow(clippy::too_many_arguments)]
    fn run_loaded(
        &self,
        kind: RunKind,
        version: &VersionRecord,
        (plugin, params, state): (&Plugin, &Params, Option<&State>),
        target: Option<&str>,
        inputs: &[PathBuf],
        output: &Path,
        opts: &JobOptions,
        masking: &Masking,
        progress: &mut dyn FnMut(u64),
    ) -> Result<(RunRecord, job::RunSummary)> {
        let parts = TransformParts {
            version_id: version.id.clone(),
            plugin_id: plugin.id().into(),
            plugin: plugin_label(plugin),
            params: params.as_str().into(),
            state_id: version.state_id.clone(),
        };
        let mut record = self.new_record(kind, parts, opts.batch_size);
        record.target = target.map(Into::into);
        let mut rec = Recording::begin(self, record)?;
        let opts = JobOptions {
            fingerprint: true,
            output_stage: (!masking.is_empty())
                .then(|| Arc::new(masking.clone()) as Arc<dyn job::OutputStage>),
            ..opts.clone()
        };
        let result = job::run_files(plugin, params, state, inputs, output, &opts, progress);
        if let Ok(s) = &result {
            rec.record.masked = masking.applied(&s.output_schema);
            rec.record.inputs = inputs
                .iter()
                .zip(&s.input_fingerprints)
                .map(|(p, fp)| DatasetRecord::new(p, fp, &s.input_schema))
                .collect();
            rec.record.outputs = s
                .output_fingerprint
                .iter()
                .map(|fp| DatasetRecord::new(output, fp, &s.output_schema))
                .collect();
        }
        rec.finish(result.map_err(Error::from))
    }

    /// Re-execute a recorded run with its pinned plugin, parameters and
    /// state on its recorded inputs; report bit-identical, or where it differs.
    ///
    /// # Errors
    /// [`Error::NotFound`] for an unknown run; errors that stop the
    /// re-execution (a missing input file, a plugin error). Differences are
    /// reported, not returned as errors.
    pub fn verify(&self, run_id: &str) -> Result<VerifyReport> {
        let run = self.store.run(run_id)?;
        self.store.authorize_spec(
            run.target.as_deref().unwrap_or(&run.transform.version_id),
            &run.transform.version_id,
            Permission::Run,
        )?;
        if run.kind == RunKind::Sql {
            return Err(Error::Verify {
                run: run.id,
                message: "it is a SQL run: `kiln verify` re-runs it through kiln-datafusion (kiln_datafusion::verify from a library)".into(),
            });
        }
        if matches!(run.kind, RunKind::Materialize | RunKind::TrainingSet) {
            return Err(Error::Verify {
                run: run.id,
                message: "it is a feature-table run; verify the transform runs it lists as inputs (`kiln lineage show`), or run it again: it is idempotent".into(),
            });
        }
        if run.status != RunStatus::Ok {
            return Err(Error::Verify {
                run: run.id,
                message: format!(
                    "its status is {:?}; only successful runs can be verified",
                    run.status
                ),
            });
        }
        let version = self.store.version(&run.transform.version_id)?;
        let plugin = self.plugin(&version.plugin_id)?;
        let params = Params::from_json(&version.params)?;
        let mut differences = Vec::new();
        let inputs: Vec<PathBuf> = run.inputs.iter().map(|d| PathBuf::from(&d.path)).collect();
        for d in &run.inputs {
            let fp = kiln_io::fingerprint_file(Path::new(&d.path))?;
            if fp.id != d.fingerprint {
                differences.push(format!(
                    "input {} changed since the run (fingerprint {} instead of {})",
                    d.path, fp.id, d.fingerprint
                ));
            }
        }
        // The same masks as the run (the salt is the store's), so a masked
        // output re-executes bit for bit.
        let masking = Masking::replay(&run.masked, self.store.access()?.salt());
        let opts = JobOptions {
            batch_size: run.batch_size,
            fingerprint: true,
            output_stage: (!masking.is_empty())
                .then(|| Arc::new(masking) as Arc<dyn job::OutputStage>),
        };
        let tmp = tempfile::tempdir().map_err(|e| Error::io(std::env::temp_dir(), e))?;
        let mut vrec = self.new_record(RunKind::Verify, run.transform.clone(), run.batch_size);
        vrec.verifies = Some(run.id.clone());
        vrec.target = run.target.clone();
        let rec = Recording::begin(self, vrec)?;
        let result: Result<()> = (|| {
            match run.kind {
                RunKind::Fit => {
                    let (state, _) = job::fit_files(&plugin, &params, &inputs, &opts, &mut |_| {})?;
                    if Some(state.id()) != run.transform.state_id {
                        differences.push(format!(
                            "refitting gives state {} instead of the recorded {}",
                            state.id(),
                            run.transform.state_id.as_deref().unwrap_or("(none)")
                        ));
                    }
                }
                RunKind::Run | RunKind::Verify => {
                    let state = match &version.state_id {
                        Some(id) => {
                            let s = self.store.state_unchecked(id)?;
                            if &s.id() != id {
                                differences.push(format!(
                                    "stored state bytes hash to {} but the version pins state {id}: the state was swapped or corrupted",
                                    s.id()
                                ));
                            }
                            Some(s)
                        }
                        None => None,
                    };
                    let recorded = run.outputs.first().ok_or_else(|| {
                        Error::NotFound(format!("run {} recorded no output", run.id))
                    })?;
                    let ext = Path::new(&recorded.path)
                        .extension()
                        .map(|e| e.to_string_lossy().into_owned())
                        .unwrap_or_else(|| "parquet".into());
                    let out = tmp.path().join(format!("verify.{ext}"));
                    let summary = job::run_files(
                        &plugin,
                        &params,
                        state.as_ref(),
                        &inputs,
                        &out,
                        &opts,
                        &mut |_| {},
                    )?;
                    let fp = summary.output_fingerprint.expect("fingerprinting was on");
                    if fp.id != recorded.fingerprint {
                        let detail = first_difference(
                            Path::new(&recorded.path),
                            &recorded.fingerprint,
                            &out,
                        )
                        .unwrap_or_else(|e| {
                            format!("(cannot compare with the recorded file: {e})")
                        });
                        differences.push(format!(
                            "output differs: fingerprint {} instead of the recorded {}; {detail}",
                            fp.id, recorded.fingerprint
                        ));
                    }
                }
                RunKind::Materialize | RunKind::TrainingSet | RunKind::Sql => {
                    unreachable!("feature-table and SQL runs are refused above")
                }
            }
            Ok(())
        })();
        let error = match result {
            Err(e) => Some(e.to_string()),
            Ok(()) if differences.is_empty() => None,
            Ok(()) => Some(format!("not reproduced: {}", differences.join("; "))),
        };
        let identical = error.is_none();
        let failed = error.clone();
        let verify_run = rec.end(error)?.id;
        if let (Some(e), true) = (failed, differences.is_empty()) {
            // The re-execution itself failed (e.g. a missing input file).
            return Err(Error::Verify {
                run: run.id,
                message: e,
            });
        }
        Ok(VerifyReport {
            run: run.id,
            verify_run,
            identical,
            differences,
        })
    }

    /// Trace a data file back through the runs that made it to raw inputs.
    ///
    /// # Errors
    /// If the file cannot be read.
    pub fn trace(&self, file: &Path) -> Result<TraceNode> {
        let fp = kiln_io::fingerprint_file(file)?;
        let mut seen = BTreeSet::new();
        self.trace_fp(&fp.id, &file.display().to_string(), &mut seen)
    }

    /// Trace a dataset known by fingerprint (a file's, or a feature-table
    /// version's `delta:TABLE_ID@vN`) back to raw inputs; `path` labels it.
    ///
    /// # Errors
    /// Store errors.
    pub fn trace_fingerprint(&self, fp: &str, path: &str) -> Result<TraceNode> {
        self.trace_fp(fp, path, &mut BTreeSet::new())
    }

    fn trace_fp(&self, fp: &str, path: &str, seen: &mut BTreeSet<String>) -> Result<TraceNode> {
        let producer = self.store.runs_producing(fp)?.into_iter().next();
        let produced_by = match producer {
            Some(run) if seen.insert(run.id.clone()) => {
                let inputs = run
                    .inputs
                    .iter()
                    .map(|d| self.trace_fp(&d.fingerprint, &d.path, seen))
                    .collect::<Result<Vec<_>>>()?;
                Some(TraceRun {
                    run: run.id,
                    started_at: run.started_at,
                    target: run.target,
                    transform: run.transform,
                    inputs,
                })
            }
            _ => None,
        };
        Ok(TraceNode {
            fingerprint: fp.into(),
            path: path.into(),
            produced_by,
        })
    }

    /// The lineage graph of every recorded successful run, in Graphviz
    /// `dot` or `mermaid` syntax: dataset → run → dataset (or → state for fits).
    ///
    /// # Errors
    /// [`Error::NotFound`] for an unknown format; store errors.
    pub fn graph(&self, format: &str, name: Option<&str>) -> Result<String> {
        let runs: Vec<RunRecord> = self
            .store
            .runs()?
            .into_iter()
            .filter(|r| r.status == RunStatus::Ok && r.kind != RunKind::Verify)
            .filter(|r| r.is_of(name))
            .collect();
        let graph = LineageGraph::from_runs(&runs);
        match format {
            "dot" => Ok(graph.to_dot()),
            "mermaid" => Ok(graph.to_mermaid()),
            other => Err(Error::NotFound(format!(
                "unknown graph format '{other}': use dot or mermaid"
            ))),
        }
    }

    /// Write `name@tag` as a self-contained `.kiln` bundle.
    ///
    /// # Errors
    /// [`Error::NotFound`]; [`Error::Store`] for tampered bytes; write errors.
    pub fn export(&self, tag: &TagRef, path: &Path) -> Result<BundleManifest> {
        let v = self.store.resolve(&tag.to_string())?;
        // A bundle runs anywhere without the store's column policies.
        self.store.authorize_unmasked(
            &tag.to_string(),
            &v.id,
            Permission::Run,
            "a bundle carries no column policies",
        )?;
        let plugin = self.store.plugin(&v.plugin_id)?;
        let bytes = self.store.plugin_bytes(&v.plugin_id)?;
        let state = v
            .state_id
            .as_deref()
            .map(|s| self.store.state(s))
            .transpose()?;
        let bundle = Bundle::new(
            BundleManifest {
                kind: String::new(),
                format: 0,
                name: tag.name.clone(),
                tag: tag.tag.clone(),
                version_id: String::new(),
                plugin_id: String::new(),
                plugin: format!("{}@{}", plugin.name, plugin.version),
                params: v.params.clone(),
                state_id: None,
                wit_version: plugin.wit_version,
                exported_by: env!("CARGO_PKG_VERSION").into(),
                exported_at: now(),
            },
            bytes,
            state,
        );
        debug_assert_eq!(bundle.manifest.version_id, v.id);
        bundle.write(path)?;
        Ok(bundle.manifest)
    }
}

/// Where two files first differ, as "column 'c', row r: a vs b". The
/// recorded file must still have its recorded fingerprint.
fn first_difference(recorded: &Path, recorded_fp: &str, new: &Path) -> Result<String> {
    let now_fp = kiln_io::fingerprint_file(recorded)?;
    if now_fp.id != recorded_fp {
        return Ok(format!(
            "the recorded output {} has changed since, so the rows cannot be compared",
            recorded.display()
        ));
    }
    let whole = |p: &Path| -> Result<RecordBatch> {
        let reader = io::open(p, &ReadOptions::default())?;
        let schema = reader.schema();
        let batches = reader.collect::<kiln_runtime::Result<Vec<_>>>()?;
        arrow::compute::concat_batches(&schema, &batches)
            .map_err(|e| Error::internal(e.to_string()))
    };
    if let Some(d) =
        kiln_quality::parity::diff_batches(&whole(recorded)?, &whole(new)?, ("recorded", "now"))
    {
        return Ok(format!("first difference: {d}"));
    }
    Ok("the values are equal but the fingerprints differ (file types differ?)".into())
}

/// What a pipeline fit produced.
#[derive(Debug, Clone, Serialize)]
pub struct PipelineFit {
    /// The registered pipeline version.
    pub pipeline: PipelineRecord,
    /// The fit run of each step.
    pub fits: Vec<RunRecord>,
    /// `name@tag` moved to it, if any.
    pub tagged: Option<String>,
}

/// What a pipeline run did.
#[derive(Debug, Clone, Serialize)]
pub struct PipelineRun {
    /// The run of each step (the last one wrote the output).
    pub runs: Vec<RunRecord>,
    /// Rows read.
    pub rows_in: u64,
    /// Rows written.
    pub rows_out: u64,
}

fn check_contract(path: &Path, contract: Option<&Contract>, stage: &str) -> Result<()> {
    let Some(c) = contract else { return Ok(()) };
    let report = quality::check_file(path, c)?;
    for v in report
        .violations
        .iter()
        .filter(|v| v.severity == Severity::Warn)
    {
        tracing::warn!("{} ({stage} contract): {v}", path.display());
    }
    if report.passed {
        return Ok(());
    }
    Err(Error::Contract {
        path: path.to_path_buf(),
        stage: stage.into(),
        violations: report
            .violations
            .iter()
            .filter(|v| v.severity == Severity::Fail)
            .map(ToString::to_string)
            .collect(),
    })
}

impl Registry {
    /// The plugin of a pipeline step, and default parameters for `NAME@TAG` steps.
    fn step_plugin(&self, spec: &str) -> Result<(Plugin, Option<Params>)> {
        if spec.ends_with(".wasm") {
            return Ok((self.add_plugin(Path::new(spec))?.0, None));
        }
        if spec.contains('@') {
            let v = self.store.resolve(spec)?;
            return Ok((
                self.plugin(&v.plugin_id)?,
                Some(Params::from_json(&v.params)?),
            ));
        }
        Ok((self.plugin(spec)?, None))
    }

    /// Fit a pipeline: check the input contract, fit every step in order on
    /// the previous steps' output, register the pipeline with each step
    /// pinned, keep the inputs' profile, and with a target move `name@tag`.
    ///
    /// # Errors
    /// [`Error::Contract`] if an input breaks the input contract (nothing is
    /// fitted); as [`Registry::fit`] for each step.
    pub fn fit_pipeline(
        &self,
        spec: &PipelineSpec,
        inputs: &[PathBuf],
        target: Option<&FitTarget>,
        opts: &JobOptions,
        progress: &mut dyn FnMut(u64),
    ) -> Result<PipelineFit> {
        for i in inputs {
            check_contract(i, spec.contracts.input.as_ref(), "input")?;
        }
        let tmp = tempfile::tempdir().map_err(|e| Error::io(std::env::temp_dir(), e))?;
        let mut current = inputs.to_vec();
        let mut steps = Vec::new();
        let mut fits = Vec::new();
        for (i, step) in spec.steps.iter().enumerate() {
            let (plugin, default) = self.step_plugin(&step.plugin)?;
            let params = spec
                .step_params(i)?
                .or(default)
                .unwrap_or_else(Params::empty);
            let fit = self.fit(&plugin, &params, &current, None, opts, progress)?;
            if i + 1 < spec.steps.len() {
                let out = tmp.path().join(format!("step{i}.arrow"));
                self.run(&fit.version, None, &current, &out, opts, progress)?;
                current = vec![out];
            }
            steps.push(fit.version.id.clone());
            fits.push(fit.run);
        }
        let rec = PipelineRecord {
            id: pipeline_id(&steps, spec),
            steps,
            spec: spec.clone(),
            created_at: now(),
        };
        self.store.put_pipeline(&rec)?;
        if !inputs.is_empty() {
            self.store
                .put_profile(&rec.id, &quality::profile_files(inputs, None)?)?;
        }
        let mut tagged = None;
        if let Some(t) = target {
            let name = if t.name.is_empty() {
                &spec.feature_set.name
            } else {
                &t.name
            };
            let tag = TagRef {
                name: name.clone(),
                tag: if t.tag.is_empty() {
                    "dev".into()
                } else {
                    t.tag.clone()
                },
            };
            self.store.ensure_name(
                name,
                Some(
                    t.description
                        .as_deref()
                        .unwrap_or(&spec.feature_set.description),
                ),
                Some(t.owner.as_deref().unwrap_or(&spec.feature_set.owner)),
            )?;
            let reason = if t.reason.is_empty() {
                "pipeline fit".into()
            } else {
                t.reason.clone()
            };
            self.store.set_tag(&tag, &rec.id, "fit", &reason)?;
            tagged = Some(tag.to_string());
        }
        self.store.flush()?;
        Ok(PipelineFit {
            pipeline: rec,
            fits,
            tagged,
        })
    }

    /// Load a pipeline version for embedding: every step's plugin,
    /// parameters and state, checked.
    ///
    /// # Errors
    /// As [`Registry::load_version`] for each step.
    pub fn load_pipeline(&self, rec: &PipelineRecord) -> Result<Pipeline> {
        let steps = rec
            .steps
            .iter()
            .map(|s| self.load_version(&self.store.version(s)?))
            .collect::<Result<Vec<_>>>()?;
        let pipeline = Pipeline::new(steps).with_id(rec.id.clone());
        Ok(match rec.spec.compiled_windows() {
            Ok(Some(w)) => pipeline.with_windows(w),
            Ok(None) => pipeline,
            // Checked when the file was read at fit time.
            Err(e) => {
                return Err(Error::internal(format!(
                    "pipeline {}: stored windows do not compile: {e}",
                    rec.id
                )))
            }
        })
    }

    /// Run a pipeline version: the input contract on every input, each step
    /// in order (each a recorded run), the output contract on the result;
    /// `output` is written only if all of that passed.
    ///
    /// # Errors
    /// [`Error::Contract`] (nothing written); as [`Registry::run`] per step.
    pub fn run_pipeline(
        &self,
        rec: &PipelineRecord,
        target: Option<&str>,
        inputs: &[PathBuf],
        output: &Path,
        opts: &JobOptions,
        progress: &mut dyn FnMut(u64),
    ) -> Result<PipelineRun> {
        io::Format::from_path(output)?;
        let masking =
            self.store
                .authorize_spec(target.unwrap_or(&rec.id), &rec.id, Permission::Run)?;
        for i in inputs {
            check_contract(i, rec.spec.contracts.input.as_ref(), "input")?;
        }
        let dir = match output.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        };
        let tmp = tempfile::Builder::new()
            .prefix(".kiln-pipeline-")
            .tempdir_in(dir)
            .map_err(|e| Error::io(dir, e))?;
        let ext = output
            .extension()
            .map(|e| e.to_string_lossy().into_owned())
            .unwrap_or_default();
        let mut current = inputs.to_vec();
        let mut runs = Vec::new();
        let (mut rows_in, mut rows_out) = (0, 0);
        for (i, step) in rec.steps.iter().enumerate() {
            let version = self.store.version(step)?;
            let last = i + 1 == rec.steps.len();
            let out = if last {
                tmp.path().join(format!("output.{ext}"))
            } else {
                tmp.path().join(format!("step{i}.arrow"))
            };
            // Only what leaves the pipeline is masked: later steps see the
            // values as they are.
            let (plugin, params, state) = self.load_version(&version)?;
            let none = Masking::default();
            let (run, summary) = self.run_loaded(
                RunKind::Run,
                &version,
                (&plugin, &params, state.as_ref()),
                target,
                &current,
                &out,
                opts,
                if last { &masking } else { &none },
                progress,
            )?;
            if i == 0 {
                rows_in = summary.rows_in;
            }
            rows_out = summary.rows_out;
            runs.push(run);
            current = vec![out];
        }
        let produced = &current[0];
        let mut last = runs.pop().expect("a pipeline has at least one step");
        if let Err(e) = check_contract(produced, rec.spec.contracts.output.as_ref(), "output") {
            last.status = RunStatus::Failed;
            last.error = Some(e.to_string().replace(
                &produced.display().to_string(),
                &output.display().to_string(),
            ));
            self.store.put_run(&last)?;
            return Err(match e {
                Error::Contract {
                    violations, stage, ..
                } => Error::Contract {
                    path: output.to_path_buf(),
                    stage,
                    violations,
                },
                other => other,
            });
        }
        std::fs::rename(produced, output).map_err(|e| Error::io(output, e))?;
        for o in &mut last.outputs {
            o.path = std::path::absolute(output)
                .unwrap_or_else(|_| output.to_path_buf())
                .display()
                .to_string();
        }
        self.store.put_run(&last)?;
        runs.push(last);
        Ok(PipelineRun {
            runs,
            rows_in,
            rows_out,
        })
    }

    /// Move `name@to` to where `name@from` points, after the candidate passes
    /// the gates of its pipeline file (contracts on the gate dataset, the
    /// golden output, drift against the current `name@to` on the dataset).
    /// Single transforms have no gates.
    ///
    /// # Errors
    /// [`Error::Gate`] naming the gate that failed; [`Error::NotFound`].
    pub fn promote(&self, name: &str, from: &str, to: &str, reason: &str) -> Result<TagMove> {
        let candidate = self.store.resolve_any(&format!("{name}@{from}"))?;
        if let Resolved::Pipeline(p) = &candidate {
            if let Some(g) = &p.spec.gates {
                self.check_gates(name, to, p, g)?;
            }
        }
        let mv = self.store.promote(name, from, to, reason)?;
        self.store.flush()?;
        Ok(mv)
    }

    fn check_gates(&self, name: &str, to: &str, cand: &PipelineRecord, g: &Gates) -> Result<()> {
        let tmp = tempfile::tempdir().map_err(|e| Error::io(std::env::temp_dir(), e))?;
        let opts = JobOptions::default();
        let gate = |gate: &str, e: Error| Error::Gate {
            gate: gate.into(),
            message: e.to_string(),
        };
        let candidate_out = tmp.path().join("candidate.arrow");
        if let Some(data) = &g.dataset {
            self.run_pipeline(
                cand,
                None,
                std::slice::from_ref(data),
                &candidate_out,
                &opts,
                &mut |_| {},
            )
            .map_err(|e| gate("contracts", e))?;
        }
        if let (Some(input), Some(golden)) = (&g.golden_input, &g.golden_output) {
            let ext = golden
                .extension()
                .map(|e| e.to_string_lossy().into_owned())
                .unwrap_or_default();
            let out = tmp.path().join(format!("golden.{ext}"));
            self.run_pipeline(
                cand,
                None,
                std::slice::from_ref(input),
                &out,
                &opts,
                &mut |_| {},
            )
            .map_err(|e| gate("golden", e))?;
            let want = kiln_io::fingerprint_file(golden)?;
            let got = kiln_io::fingerprint_file(&out)?;
            if want.id != got.id {
                let detail = first_difference(golden, &want.id, &out)?;
                return Err(Error::Gate {
                    gate: "golden".into(),
                    message: format!("output differs from {}: {detail}", golden.display()),
                });
            }
        }
        if let Some(data) = &g.dataset {
            let out = &candidate_out;
            if let (Some(max), Ok(Resolved::Pipeline(current))) =
                (g.max_psi, self.store.resolve_any(&format!("{name}@{to}")))
            {
                let cur = tmp.path().join("current.arrow");
                self.run_pipeline(
                    &current,
                    None,
                    std::slice::from_ref(data),
                    &cur,
                    &opts,
                    &mut |_| {},
                )
                .map_err(|e| gate("drift", e))?;
                let base = quality::profile_file(&cur, None)?;
                let live = quality::profile_file(out, Some(&base))?;
                let t = quality::Thresholds {
                    warn: max,
                    fail: max,
                };
                let report = quality::drift(&base, &live, t, &|_| None);
                let bad: Vec<String> = report
                    .features
                    .iter()
                    .filter(|f| f.psi > max)
                    .map(|f| format!("{} PSI {:.4} > {max}", f.name, f.psi))
                    .collect();
                if !bad.is_empty() {
                    return Err(Error::Gate {
                        gate: "drift".into(),
                        message: format!(
                            "against {name}@{to} on {}: {}",
                            data.display(),
                            bad.join(", ")
                        ),
                    });
                }
            }
        }
        Ok(())
    }
}

/// The outcome of replaying a parity log.
#[derive(Debug, Clone, Serialize)]
pub struct ParityReport {
    /// The version or pipeline id replayed.
    pub id: String,
    /// Logged calls replayed.
    pub calls: usize,
    /// Calls whose replay differs from what was served.
    pub mismatches: Vec<kiln_quality::parity::Mismatch>,
}

impl Registry {
    /// Replay a parity log's inputs through the pinned version (or pipeline)
    /// it names and compare every output with what was served, bit for bit.
    ///
    /// # Errors
    /// A missing or corrupt log; [`Error::NotFound`] if the store lacks the
    /// version. Differences are reported, not returned as errors.
    pub fn parity(&self, log_dir: &Path) -> Result<ParityReport> {
        let log = kiln_quality::parity::ParityLog::read(log_dir)?;
        type Apply = Box<dyn FnMut(&RecordBatch) -> kiln_runtime::Result<RecordBatch>>;
        let mut apply: Apply = match self.store.resolve_any(&log.meta.id)? {
            Resolved::Version(v) => {
                let (plugin, params, state) = self.load_version(&v)?;
                let mut t = plugin.transformer(&params, state.as_ref())?;
                Box::new(move |b| t.apply(b))
            }
            Resolved::Pipeline(p) => {
                let mut t = self.load_pipeline(&p)?.transformer()?;
                Box::new(move |b| t.apply(b))
            }
        };
        let mut mismatches = Vec::new();
        for (call, (input, served)) in log.inputs.iter().zip(&log.outputs).enumerate() {
            match apply(input) {
                Ok(out) => mismatches.extend(kiln_quality::parity::compare(call, served, &out)),
                Err(e) => mismatches.push(kiln_quality::parity::Mismatch {
                    call,
                    message: format!("the pinned version fails on this input: {e}"),
                }),
            }
        }
        Ok(ParityReport {
            id: log.meta.id,
            calls: log.inputs.len(),
            mismatches,
        })
    }
}
