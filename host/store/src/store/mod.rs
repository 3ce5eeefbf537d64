//! The registry store: plugins and states by content id, transform
//! versions, names with tags and their full history, and run records.
//!
//! One directory (`--store DIR`, else `$KILN_HOME`, else `./.kiln`) holds a
//! sled database behind a small storage trait, and a lock file: one process
//! uses a store at a time, and a second one is told who holds it. Every
//! change is one atomic commit, so a process killed at any moment leaves a
//! store that opens and passes [`Store::check`]. Blobs (plugin and state
//! bytes) are checked against their sha256 whenever they are read.
//!
//! Key space (one ordered space, so one commit can span kinds):
//! `meta/format`, `blob/<sha256>`, `plugin/<id>`, `state/<id>`,
//! `version/<id>`, `pipeline/<id>`, `profile/<version>`, `name/<name>`, `run/<uuid7>`,
//! `produced/<fp>/<run>`, `audit/<seq>`, `audit-head`, and access control's
//! `access/config`, `access/salt`, `role/<name>`, `token/<hash>`, `policy/<name>`,
//! and `drift/<name>`: the latest drift report of a name (reports.rs).

mod access;
mod audit;
mod lock;
mod records;
mod reports;
mod storage;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;
use serde::Serialize;
use sha2::{Digest, Sha256};

pub use access::{
    pattern_matches, Access, AccessConfig, ColumnPolicy, Permission, Role, TokenRecord, ADMIN_ROLE,
};
pub use audit::{default_actor, AuditEntry, AuditHead, AuditReport, GENESIS};
pub use kiln_runtime::version_id;
pub use records::{
    pipeline_id, DatasetRecord, EngineSettings, FieldRecord, NameRecord, PipelineRecord,
    PluginRecord, RunKind, RunRecord, RunStatus, SqlFunction, SqlRecord, SqlTable, StateRecord,
    TagMove, TransformParts, VersionRecord,
};
pub use reports::DriftRecord;
use storage::{Op, Storage};

use crate::{Error, Result};
use kiln_runtime::{Params, State};

/// The store format this build reads and writes.
pub const STORE_FORMAT: u64 = 1;

/// The current time, RFC 3339 with microseconds, UTC.
pub(crate) fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}

/// How to open a store.
#[derive(Debug, Clone, Default)]
pub struct OpenOptions {
    /// Create the store if the directory has none.
    pub create: bool,
    /// Wait for another process to release the store instead of failing.
    pub wait: bool,
}

/// An open store. Holds the store's lock until dropped.
pub struct Store {
    dir: PathBuf,
    db: Box<dyn Storage>,
    _lock: Option<lock::Lock>,
    /// Who acts through this handle, for the audit log.
    actor: String,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").field("dir", &self.dir).finish()
    }
}

/// A tag reference: `name@tag`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TagRef {
    /// The transform name.
    pub name: String,
    /// The tag.
    pub tag: String,
}

impl TagRef {
    /// Parse `name@tag`.
    ///
    /// # Errors
    /// [`Error::NotFound`] if there is no `@` or either side is empty.
    pub fn parse(s: &str) -> Result<TagRef> {
        match s.split_once('@') {
            Some((n, t)) if !n.is_empty() && !t.is_empty() => Ok(TagRef {
                name: n.into(),
                tag: t.into(),
            }),
            _ => Err(Error::NotFound(format!(
                "'{s}' is not NAME@TAG (e.g. scaler@prod)"
            ))),
        }
    }
}

impl std::fmt::Display for TagRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}@{}", self.name, self.tag)
    }
}

/// What `name@tag` or an id points at.
#[derive(Debug, Clone, PartialEq)]
pub enum Resolved {
    /// A transform version.
    Version(VersionRecord),
    /// A pipeline version.
    Pipeline(Box<PipelineRecord>),
}

/// What [`Store::check`] found.
#[derive(Debug, Clone, Default, Serialize)]
pub struct CheckReport {
    /// Records of each kind.
    pub counts: BTreeMap<String, usize>,
    /// Runs still marked running (killed or in progress): not an error.
    pub interrupted_runs: Vec<String>,
    /// Problems; empty means the store is sound.
    pub problems: Vec<String>,
}

/// What [`Store::gc`] removes (or would remove, on a dry run).
#[derive(Debug, Clone, Default, Serialize)]
pub struct GcReport {
    /// Whether anything was removed.
    pub applied: bool,
    /// Run ids.
    pub runs: Vec<String>,
    /// Version ids.
    pub versions: Vec<String>,
    /// Pipeline ids.
    pub pipelines: Vec<String>,
    /// State ids.
    pub states: Vec<String>,
    /// Plugin ids.
    pub plugins: Vec<String>,
    /// Bytes of blobs freed.
    pub bytes: u64,
}

fn key(kind: &str, id: &str) -> Vec<u8> {
    format!("{kind}/{id}").into_bytes()
}

fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

impl Store {
    /// The store directory to use: `explicit`, else `$KILN_HOME`, else `./.kiln`.
    pub fn resolve_dir(explicit: Option<&Path>) -> PathBuf {
        if let Some(d) = explicit {
            return d.to_path_buf();
        }
        match std::env::var_os("KILN_HOME") {
            Some(h) if !h.is_empty() => PathBuf::from(h),
            _ => PathBuf::from(".kiln"),
        }
    }

    /// Open (or with `create`, create) the store in `dir`. `waiting` is
    /// called once with the holder's description if `wait` is set and
    /// another process holds the store.
    ///
    /// # Errors
    /// [`Error::NotFound`] if there is no store and `create` is off;
    /// [`Error::StoreBusy`] if another process holds it and `wait` is off;
    /// [`Error::StoreFormat`] if it was written by a newer Kiln;
    /// [`Error::Store`] if the database cannot be opened.
    pub fn open(dir: &Path, opts: &OpenOptions, waiting: &mut dyn FnMut(&str)) -> Result<Store> {
        let db_dir = dir.join("db");
        if !db_dir.exists() {
            if !opts.create {
                return Err(Error::NotFound(format!(
                    "no Kiln store in {}; `kiln fit … --name NAME` or `kiln add PLUGIN` creates one, or pass --store DIR / set KILN_HOME",
                    dir.display()
                )));
            }
            std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        }
        let lock = lock::acquire(dir, opts.wait, waiting)?;
        let db = storage::Sled::open(&db_dir)?;
        let store = Store {
            dir: dir.to_path_buf(),
            db: Box::new(db),
            _lock: Some(lock),
            actor: default_actor(),
        };
        store.check_format()?;
        Ok(store)
    }

    /// A store in memory, for tests.
    #[doc(hidden)]
    pub fn in_memory() -> Store {
        let store = Store {
            dir: PathBuf::from("<memory>"),
            db: Box::new(storage::Memory::default()),
            _lock: None,
            actor: default_actor(),
        };
        store
            .check_format()
            .expect("an empty in-memory store takes the current format");
        store
    }

    fn check_format(&self) -> Result<()> {
        match self.db.get(b"meta/format")? {
            None => self.db.commit(vec![Op::Put(
                b"meta/format".to_vec(),
                STORE_FORMAT.to_string().into_bytes(),
            )]),
            Some(v) => {
                let found: u64 = std::str::from_utf8(&v)
                    .ok()
                    .and_then(|s| s.parse().ok())
                    .ok_or_else(|| self.corrupt("meta/format is not a number"))?;
                if found > STORE_FORMAT {
                    return Err(Error::StoreFormat {
                        dir: self.dir.clone(),
                        found,
                        supported: STORE_FORMAT,
                    });
                }
                Ok(())
            }
        }
    }

    /// The store directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The same store, acting as `actor` in the audit log (default:
    /// [`default_actor`]).
    pub fn with_actor(mut self, actor: impl Into<String>) -> Store {
        self.actor = actor.into();
        self
    }

    /// Who acts through this handle.
    pub fn actor(&self) -> &str {
        &self.actor
    }

    /// Make everything written so far durable.
    ///
    /// # Errors
    /// [`Error::Store`] if the database cannot flush.
    pub fn flush(&self) -> Result<()> {
        self.db.flush()
    }

    fn corrupt(&self, what: impl std::fmt::Display) -> Error {
        Error::Store {
            dir: self.dir.clone(),
            message: format!("{what}; run `kiln store check`"),
        }
    }

    fn get_json<T: DeserializeOwned>(&self, kind: &str, id: &str) -> Result<Option<T>> {
        match self.db.get(&key(kind, id))? {
            None => Ok(None),
            Some(v) => serde_json::from_slice(&v)
                .map(Some)
                .map_err(|e| self.corrupt(format!("record {kind}/{id} is unreadable: {e}"))),
        }
    }

    fn scan_json<T: DeserializeOwned>(&self, kind: &str) -> Result<Vec<T>> {
        self.db
            .scan(format!("{kind}/").as_bytes())?
            .into_iter()
            .map(|(k, v)| {
                serde_json::from_slice(&v).map_err(|e| {
                    self.corrupt(format!(
                        "record {} is unreadable: {e}",
                        String::from_utf8_lossy(&k)
                    ))
                })
            })
            .collect()
    }

    fn put_json(kind: &str, id: &str, value: &impl Serialize) -> Op {
        Op::Put(
            key(kind, id),
            serde_json::to_vec(value).expect("records serialize to JSON"),
        )
    }

    /// Ids of `kind` starting with `prefix` (unique-prefix lookup, like git).
    fn resolve_prefix(&self, kind: &str, what: &str, prefix: &str) -> Result<String> {
        if prefix.is_empty() {
            return Err(Error::NotFound(format!("empty {what} id")));
        }
        let hits: Vec<String> = self
            .db
            .scan(format!("{kind}/{prefix}").as_bytes())?
            .into_iter()
            .map(|(k, _)| String::from_utf8_lossy(&k[kind.len() + 1..]).into_owned())
            .collect();
        match hits.len() {
            1 => Ok(hits.into_iter().next().expect("one hit")),
            0 => Err(Error::NotFound(format!("no {what} with id {prefix}"))),
            n => Err(Error::NotFound(format!(
                "{n} {what}s start with {prefix}; give more digits"
            ))),
        }
    }

    /// The record of `kind` whose id is `id_or_prefix` or starts with it.
    fn find<T: DeserializeOwned>(&self, kind: &str, id_or_prefix: &str) -> Result<T> {
        let id = self.resolve_prefix(kind, kind, id_or_prefix)?;
        self.get_json(kind, &id)?
            .ok_or_else(|| Error::NotFound(format!("no {kind} {id}")))
    }

    fn blob(&self, id: &str, what: &str) -> Result<Vec<u8>> {
        let bytes = self
            .db
            .get(&key("blob", id))?
            .ok_or_else(|| self.corrupt(format!("the bytes of {what} {id} are missing")))?;
        if sha256_hex(&bytes) != id {
            return Err(self.corrupt(format!(
                "the bytes of {what} {id} do not match their sha256 (tampered or corrupt)"
            )));
        }
        Ok(bytes)
    }

    // ---- plugins and states ------------------------------------------

    /// Register a plugin's bytes and metadata (no-op if already present).
    ///
    /// # Errors
    /// [`Error::Store`] on a database error.
    pub fn add_plugin(&self, bytes: &[u8], record: &PluginRecord) -> Result<PluginRecord> {
        debug_assert_eq!(sha256_hex(bytes), record.id);
        if let Some(existing) = self.get_json::<PluginRecord>("plugin", &record.id)? {
            return Ok(existing);
        }
        self.db.commit(vec![
            Op::Put(key("blob", &record.id), bytes.to_vec()),
            Self::put_json("plugin", &record.id, record),
        ])?;
        Ok(record.clone())
    }

    /// A plugin's record by id or unique id prefix.
    ///
    /// # Errors
    /// [`Error::NotFound`] if none or several match.
    pub fn plugin(&self, id_or_prefix: &str) -> Result<PluginRecord> {
        self.find("plugin", id_or_prefix)
    }

    /// All plugin records.
    ///
    /// # Errors
    /// [`Error::Store`] on a database error or an unreadable record.
    pub fn plugins(&self) -> Result<Vec<PluginRecord>> {
        self.scan_json("plugin")
    }

    /// A plugin's bytes, checked against its id.
    ///
    /// # Errors
    /// [`Error::Store`] if they are missing or do not match the id.
    pub fn plugin_bytes(&self, id: &str) -> Result<Vec<u8>> {
        self.blob(id, "plugin")
    }

    /// Store a fitted state (no-op if present).
    ///
    /// # Errors
    /// [`Error::Store`] on a database error.
    pub fn put_state(&self, state: &State, plugin_id: &str, params: &Params) -> Result<String> {
        let id = state.id();
        if self.get_json::<StateRecord>("state", &id)?.is_none() {
            let rec = StateRecord {
                id: id.clone(),
                plugin_id: plugin_id.into(),
                params: params.as_str().into(),
                size: state.as_bytes().len() as u64,
                created_at: now(),
            };
            self.db.commit(vec![
                Op::Put(key("blob", &id), state.as_bytes().to_vec()),
                Self::put_json("state", &id, &rec),
            ])?;
        }
        Ok(id)
    }

    /// A state by id, its bytes checked against the id.
    ///
    /// # Errors
    /// [`Error::NotFound`] if unknown; [`Error::Store`] if its bytes are
    /// missing or do not match.
    pub fn state(&self, id: &str) -> Result<State> {
        if self.get_json::<StateRecord>("state", id)?.is_none() {
            return Err(Error::NotFound(format!("no state {id}")));
        }
        Ok(State::from_bytes(self.blob(id, "state")?))
    }

    /// A state's bytes *without* the integrity check (for `kiln verify`,
    /// which reports a mismatch instead of refusing).
    ///
    /// # Errors
    /// [`Error::Store`] if missing.
    pub fn state_unchecked(&self, id: &str) -> Result<State> {
        self.db
            .get(&key("blob", id))?
            .map(State::from_bytes)
            .ok_or_else(|| self.corrupt(format!("the bytes of state {id} are missing")))
    }

    #[doc(hidden)]
    /// Overwrite stored blob bytes: only for tests that simulate tampering.
    pub fn overwrite_blob_for_test(&self, id: &str, bytes: &[u8]) -> Result<()> {
        self.db
            .commit(vec![Op::Put(key("blob", id), bytes.to_vec())])
    }

    // ---- training profiles -------------------------------------------------

    /// Keep the profile of the data a version was fitted on.
    ///
    /// # Errors
    /// [`Error::Store`] on a database error.
    pub fn put_profile(&self, version_id: &str, profile: &kiln_quality::Profile) -> Result<()> {
        self.db
            .commit(vec![Self::put_json("profile", version_id, profile)])
    }

    /// The training profile of a version, if its fit recorded one.
    ///
    /// # Errors
    /// [`Error::Store`] on a database error or an unreadable record.
    pub fn profile(&self, version_id: &str) -> Result<Option<kiln_quality::Profile>> {
        self.get_json("profile", version_id)
    }

    // ---- versions --------------------------------------------------------

    /// Create (or find) the version of these parts.
    ///
    /// # Errors
    /// [`Error::NotFound`] if the plugin or state is not in the store.
    pub fn put_version(
        &self,
        plugin_id: &str,
        params: &Params,
        state_id: Option<&str>,
    ) -> Result<VersionRecord> {
        let plugin = self.plugin(plugin_id)?;
        if let Some(s) = state_id {
            if self.get_json::<StateRecord>("state", s)?.is_none() {
                return Err(Error::NotFound(format!("no state {s}")));
            }
        }
        let id = version_id(&plugin.id, params, state_id);
        if let Some(v) = self.get_json::<VersionRecord>("version", &id)? {
            return Ok(v);
        }
        let rec = VersionRecord {
            id: id.clone(),
            plugin_id: plugin.id,
            plugin_name: plugin.name,
            params: params.as_str().into(),
            state_id: state_id.map(Into::into),
            created_at: now(),
        };
        self.db.commit(vec![Self::put_json("version", &id, &rec)])?;
        Ok(rec)
    }

    /// A version by id or unique prefix.
    ///
    /// # Errors
    /// [`Error::NotFound`] if none or several match.
    pub fn version(&self, id_or_prefix: &str) -> Result<VersionRecord> {
        self.find("version", id_or_prefix)
    }

    /// Resolve `name@tag` or a version id (prefix) to a version.
    ///
    /// # Errors
    /// [`Error::NotFound`] naming what is missing and what exists.
    pub fn resolve(&self, spec: &str) -> Result<VersionRecord> {
        match self.resolve_any(spec)? {
            Resolved::Version(v) => Ok(v),
            Resolved::Pipeline(p) => Err(Error::NotFound(format!(
                "{spec} is pipeline {}; use `kiln pipeline run`",
                &p.id[..12]
            ))),
        }
    }

    /// All versions.
    ///
    /// # Errors
    /// [`Error::Store`] on a database error.
    pub fn versions(&self) -> Result<Vec<VersionRecord>> {
        self.scan_json("version")
    }

    // ---- pipelines ---------------------------------------------------------

    /// Register a pipeline version (no-op if present).
    ///
    /// # Errors
    /// [`Error::NotFound`] if a step version is unknown.
    pub fn put_pipeline(&self, rec: &PipelineRecord) -> Result<()> {
        for s in &rec.steps {
            self.version(s)?;
        }
        if self
            .get_json::<PipelineRecord>("pipeline", &rec.id)?
            .is_none()
        {
            self.db
                .commit(vec![Self::put_json("pipeline", &rec.id, rec)])?;
        }
        Ok(())
    }

    /// A pipeline version by id or unique prefix.
    ///
    /// # Errors
    /// [`Error::NotFound`] if none or several match.
    pub fn pipeline(&self, id_or_prefix: &str) -> Result<PipelineRecord> {
        self.find("pipeline", id_or_prefix)
    }

    /// All pipeline versions.
    ///
    /// # Errors
    /// [`Error::Store`] on a database error.
    pub fn pipelines(&self) -> Result<Vec<PipelineRecord>> {
        self.scan_json("pipeline")
    }

    /// Resolve `name@tag` or an id (prefix) to a transform or pipeline version.
    ///
    /// # Errors
    /// [`Error::NotFound`] naming what is missing and what exists.
    pub fn resolve_any(&self, spec: &str) -> Result<Resolved> {
        let id = if spec.contains('@') {
            let r = TagRef::parse(spec)?;
            let name = self.name(&r.name)?;
            name.tags.get(&r.tag).cloned().ok_or_else(|| {
                Error::NotFound(format!(
                    "'{}' has no tag '{}' (tags: {})",
                    r.name,
                    r.tag,
                    if name.tags.is_empty() {
                        "none".into()
                    } else {
                        name.tags.keys().cloned().collect::<Vec<_>>().join(", ")
                    }
                ))
            })?
        } else {
            spec.to_string()
        };
        match self.version(&id) {
            Ok(v) => Ok(Resolved::Version(v)),
            Err(Error::NotFound(m)) => self.pipeline(&id).map(|p| Resolved::Pipeline(Box::new(p))).map_err(|_| {
                Error::NotFound(format!(
                    "{m}; give NAME@TAG (e.g. scaler@prod) or a version id from `kiln versions NAME`"
                ))
            }),
            Err(e) => Err(e),
        }
    }

    // ---- names and tags --------------------------------------------------

    /// A name's record.
    ///
    /// # Errors
    /// [`Error::NotFound`] listing the known names.
    pub fn name(&self, name: &str) -> Result<NameRecord> {
        self.get_json("name", name)?.ok_or_else(|| {
            let known: Vec<String> = self
                .names()
                .unwrap_or_default()
                .into_iter()
                .map(|n| n.name)
                .collect();
            Error::NotFound(format!(
                "no transform named '{name}' (known: {})",
                if known.is_empty() {
                    "none yet; `kiln fit PLUGIN --input … --name NAME` registers one".into()
                } else {
                    known.join(", ")
                }
            ))
        })
    }

    /// All names.
    ///
    /// # Errors
    /// [`Error::Store`] on a database error.
    pub fn names(&self) -> Result<Vec<NameRecord>> {
        self.scan_json("name")
    }

    /// Create `name` if new (keeping an existing description/owner unless
    /// new ones are given).
    ///
    /// # Errors
    /// [`Error::NotFound`] for an invalid name.
    pub fn ensure_name(
        &self,
        name: &str,
        description: Option<&str>,
        owner: Option<&str>,
    ) -> Result<NameRecord> {
        if name.is_empty()
            || !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
        {
            return Err(Error::NotFound(format!(
                "'{name}' is not a valid name: use letters, digits, '-', '_' and '.'"
            )));
        }
        self.authorize(name, Permission::Promote)?;
        let mut rec = self
            .get_json::<NameRecord>("name", name)?
            .unwrap_or(NameRecord {
                name: name.into(),
                description: String::new(),
                owner: String::new(),
                created_at: now(),
                tags: BTreeMap::new(),
                history: Vec::new(),
            });
        if let Some(d) = description {
            rec.description = d.into();
        }
        if let Some(o) = owner {
            rec.owner = o.into();
        }
        self.db.commit(vec![Self::put_json("name", name, &rec)])?;
        Ok(rec)
    }

    /// Point `name@tag` at `version_id` and record the move.
    ///
    /// # Errors
    /// [`Error::NotFound`] if the name or version is unknown.
    pub fn set_tag(
        &self,
        tag: &TagRef,
        version_id: &str,
        action: &str,
        reason: &str,
    ) -> Result<TagMove> {
        let target = match self.version(version_id) {
            Ok(v) => v.id,
            Err(Error::NotFound(_)) => self.pipeline(version_id)?.id,
            Err(e) => return Err(e),
        };
        self.authorize(&tag.name, Permission::Promote)?;
        let mut rec = self.name(&tag.name)?;
        let mv = TagMove {
            time: now(),
            tag: tag.tag.clone(),
            from: rec.tags.get(&tag.tag).cloned(),
            to: target.clone(),
            action: action.into(),
            reason: reason.into(),
        };
        rec.tags.insert(tag.tag.clone(), target);
        rec.history.push(mv.clone());
        let (_, mut ops) = self.audit_ops(
            action,
            &tag.to_string(),
            serde_json::json!({"from": mv.from, "to": mv.to, "reason": mv.reason}),
        )?;
        ops.push(Self::put_json("name", &tag.name, &rec));
        self.db.commit(ops)?;
        Ok(mv)
    }

    /// Move `name@to` to where `name@from` points.
    ///
    /// # Errors
    /// [`Error::NotFound`] if `name@from` does not exist.
    pub fn promote(&self, name: &str, from: &str, to: &str, reason: &str) -> Result<TagMove> {
        let target = match self.resolve_any(&format!("{name}@{from}"))? {
            Resolved::Version(v) => v.id,
            Resolved::Pipeline(p) => p.id,
        };
        self.set_tag(
            &TagRef {
                name: name.into(),
                tag: to.into(),
            },
            &target,
            "promote",
            reason,
        )
    }

    /// Move `name@tag` back to the target it had before its last move.
    ///
    /// # Errors
    /// [`Error::NotFound`] if the tag never had an earlier target.
    pub fn rollback(&self, tag: &TagRef, reason: &str) -> Result<TagMove> {
        let rec = self.name(&tag.name)?;
        let previous = rec
            .history
            .iter()
            .rev()
            .find(|m| m.tag == tag.tag)
            .and_then(|m| m.from.clone())
            .ok_or_else(|| {
                Error::NotFound(format!(
                    "{tag} has no earlier target to roll back to (see `kiln versions {}`)",
                    tag.name
                ))
            })?;
        self.set_tag(tag, &previous, "rollback", reason)
    }

    // ---- runs --------------------------------------------------------------

    /// Record a run (insert or update), indexing its outputs' fingerprints.
    ///
    /// # Errors
    /// [`Error::Store`] on a database error.
    pub fn put_run(&self, run: &RunRecord) -> Result<()> {
        let mut ops = vec![Self::put_json("run", &run.id, run)];
        for o in &run.outputs {
            let k = format!("produced/{}/{}", o.fingerprint, run.id).into_bytes();
            let produces = matches!(
                run.kind,
                RunKind::Run | RunKind::Materialize | RunKind::TrainingSet | RunKind::Sql
            );
            if run.status == RunStatus::Ok && produces {
                ops.push(Op::Put(k, Vec::new()));
            } else {
                ops.push(Op::Delete(k));
            }
        }
        self.db.commit(ops)?;
        self.db.flush()
    }

    /// A run by id or unique prefix.
    ///
    /// # Errors
    /// [`Error::NotFound`] if none or several match.
    pub fn run(&self, id_or_prefix: &str) -> Result<RunRecord> {
        self.find("run", id_or_prefix)
    }

    /// All runs, oldest first.
    ///
    /// # Errors
    /// [`Error::Store`] on a database error.
    pub fn runs(&self) -> Result<Vec<RunRecord>> {
        self.scan_json("run")
    }

    /// Successful runs that wrote a dataset with fingerprint `fp`, newest first.
    ///
    /// # Errors
    /// [`Error::Store`] on a database error.
    pub fn runs_producing(&self, fp: &str) -> Result<Vec<RunRecord>> {
        let prefix = format!("produced/{fp}/");
        let mut runs = Vec::new();
        for (k, _) in self.db.scan(prefix.as_bytes())?.into_iter().rev() {
            let id = String::from_utf8_lossy(&k[prefix.len()..]).into_owned();
            if let Some(r) = self.get_json::<RunRecord>("run", &id)? {
                runs.push(r);
            }
        }
        Ok(runs)
    }

    // ---- maintenance -----------------------------------------------------

    /// Check every record and blob: records parse, blobs match their ids,
    /// references resolve.
    ///
    /// # Errors
    /// [`Error::Store`] on a database error (problems in the data are
    /// reported, not returned as errors).
    pub fn check(&self) -> Result<CheckReport> {
        let mut report = CheckReport::default();
        let mut problems = Vec::new();
        macro_rules! load {
            ($kind:literal, $t:ty) => {{
                let mut out: Vec<$t> = Vec::new();
                for (k, v) in self.db.scan(concat!($kind, "/").as_bytes())? {
                    match serde_json::from_slice::<$t>(&v) {
                        Ok(r) => out.push(r),
                        Err(e) => problems.push(format!(
                            "{} is unreadable: {e}",
                            String::from_utf8_lossy(&k)
                        )),
                    }
                }
                report.counts.insert($kind.into(), out.len());
                out
            }};
        }
        let plugins = load!("plugin", PluginRecord);
        let states = load!("state", StateRecord);
        let versions = load!("version", VersionRecord);
        let names = load!("name", NameRecord);
        let runs = load!("run", RunRecord);
        let pipelines = load!("pipeline", PipelineRecord);
        let blob_ids: BTreeSet<String> = self
            .db
            .scan(b"blob/")?
            .into_iter()
            .map(|(k, v)| {
                let id = String::from_utf8_lossy(&k[5..]).into_owned();
                if sha256_hex(&v) != id {
                    problems.push(format!("blob {id} does not match its sha256"));
                }
                id
            })
            .collect();
        report.counts.insert("blob".into(), blob_ids.len());
        let plugin_ids: BTreeSet<&str> = plugins.iter().map(|p| p.id.as_str()).collect();
        let state_ids: BTreeSet<&str> = states.iter().map(|s| s.id.as_str()).collect();
        let version_ids: BTreeSet<&str> = versions.iter().map(|v| v.id.as_str()).collect();
        for p in &pipelines {
            for step in &p.steps {
                if !version_ids.contains(step.as_str()) {
                    problems.push(format!("pipeline {} names missing version {step}", p.id));
                }
            }
        }
        let pipeline_ids: BTreeSet<&str> = pipelines.iter().map(|p| p.id.as_str()).collect();
        for p in &plugins {
            if !blob_ids.contains(&p.id) {
                problems.push(format!("plugin {} has no bytes", p.id));
            }
        }
        for s in &states {
            if !blob_ids.contains(&s.id) {
                problems.push(format!("state {} has no bytes", s.id));
            }
        }
        for v in &versions {
            if !plugin_ids.contains(v.plugin_id.as_str()) {
                problems.push(format!(
                    "version {} names missing plugin {}",
                    v.id, v.plugin_id
                ));
            }
            if let Some(s) = &v.state_id {
                if !state_ids.contains(s.as_str()) {
                    problems.push(format!("version {} names missing state {s}", v.id));
                }
            }
            let params = Params::from_json(&v.params);
            let expect = params
                .as_ref()
                .map(|p| version_id(&v.plugin_id, p, v.state_id.as_deref()));
            if expect.as_deref().ok() != Some(v.id.as_str()) {
                problems.push(format!("version {} does not match its parts", v.id));
            }
        }
        for n in &names {
            for (tag, v) in &n.tags {
                if !version_ids.contains(v.as_str()) && !pipeline_ids.contains(v.as_str()) {
                    problems.push(format!("{}@{tag} points at missing version {v}", n.name));
                }
            }
        }
        for r in &runs {
            if r.status == RunStatus::Running {
                report.interrupted_runs.push(r.id.clone());
            }
        }
        let audit = self.verify_audit()?;
        problems.extend(audit.problems.iter().map(|p| format!("audit log: {p}")));
        report.counts.insert("audit".into(), audit.entries as usize);
        report.problems = problems;
        Ok(report)
    }

    /// Remove runs older than `keep_days` and whatever no tag (current or
    /// past target), kept version or kept run references. Only reports
    /// unless `apply`.
    ///
    /// # Errors
    /// [`Error::Store`] on a database error.
    pub fn gc(&self, keep_days: u64, apply: bool) -> Result<GcReport> {
        self.authorize("*", Permission::Admin)?;
        let cutoff = chrono::Utc::now() - chrono::Duration::days(keep_days as i64);
        let recent = |t: &str| {
            chrono::DateTime::parse_from_rfc3339(t)
                .map(|t| t >= cutoff)
                .unwrap_or(true)
        };
        let names = self.names()?;
        let versions = self.versions()?;
        let runs = self.runs()?;
        let mut keep_versions: BTreeSet<String> = BTreeSet::new();
        for n in &names {
            keep_versions.extend(n.tags.values().cloned());
            for m in &n.history {
                keep_versions.insert(m.to.clone());
                keep_versions.extend(m.from.clone());
            }
        }
        let mut report = GcReport {
            applied: apply,
            ..Default::default()
        };
        for p in self.pipelines()? {
            if keep_versions.contains(&p.id) || recent(&p.created_at) {
                keep_versions.extend(p.steps.iter().cloned());
            } else {
                report.pipelines.push(p.id);
            }
        }
        let mut keep_states = BTreeSet::new();
        let mut keep_plugins = BTreeSet::new();
        for r in &runs {
            let keep = recent(&r.started_at) || keep_versions.contains(&r.transform.version_id);
            if keep {
                keep_versions.insert(r.transform.version_id.clone());
                keep_plugins.insert(r.transform.plugin_id.clone());
                keep_states.extend(r.transform.state_id.clone());
            } else {
                report.runs.push(r.id.clone());
            }
        }
        for v in &versions {
            if keep_versions.contains(&v.id) || recent(&v.created_at) {
                keep_plugins.insert(v.plugin_id.clone());
                keep_states.extend(v.state_id.clone());
            } else {
                report.versions.push(v.id.clone());
            }
        }
        for s in self.scan_json::<StateRecord>("state")? {
            if !keep_states.contains(&s.id) && !recent(&s.created_at) {
                report.bytes += s.size;
                report.states.push(s.id);
            }
        }
        for p in self.plugins()? {
            if !keep_plugins.contains(&p.id) && !recent(&p.added_at) {
                report.bytes += p.size;
                report.plugins.push(p.id);
            }
        }
        if apply {
            let mut ops = Vec::new();
            for r in &runs {
                if report.runs.contains(&r.id) {
                    ops.push(Op::Delete(key("run", &r.id)));
                    for o in &r.outputs {
                        ops.push(Op::Delete(
                            format!("produced/{}/{}", o.fingerprint, r.id).into_bytes(),
                        ));
                    }
                }
            }
            ops.extend(
                report
                    .versions
                    .iter()
                    .map(|v| Op::Delete(key("version", v))),
            );
            for s in &report.states {
                ops.push(Op::Delete(key("state", s)));
                ops.push(Op::Delete(key("blob", s)));
            }
            for p in &report.plugins {
                ops.push(Op::Delete(key("plugin", p)));
                ops.push(Op::Delete(key("blob", p)));
            }
            let (_, audit) = self.audit_ops(
                "gc",
                "store",
                serde_json::json!({
                    "keep_days": keep_days,
                    "runs": report.runs.len(),
                    "versions": report.versions,
                    "pipelines": report.pipelines,
                    "states": report.states,
                    "plugins": report.plugins,
                    "bytes": report.bytes,
                }),
            )?;
            ops.extend(audit);
            self.db.commit(ops)?;
            self.db.flush()?;
        }
        Ok(report)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plugin_record(bytes: &[u8], name: &str) -> PluginRecord {
        PluginRecord {
            id: sha256_hex(bytes),
            name: name.into(),
            version: "1.0.0".into(),
            description: String::new(),
            kind: kiln_runtime::PluginKind::Fitted,
            params_schema: serde_json::Value::Null,
            wit_version: "0.1.0".into(),
            size: bytes.len() as u64,
            added_at: now(),
        }
    }

    /// A store with one plugin and two fitted versions of it.
    fn fixture() -> (Store, String, String) {
        let s = Store::in_memory();
        let p = s
            .add_plugin(b"wasm", &plugin_record(b"wasm", "scaler"))
            .unwrap();
        let params = Params::from_json(r#"{"columns":["x"]}"#).unwrap();
        let s1 = s
            .put_state(&State::from_bytes(b"one".to_vec()), &p.id, &params)
            .unwrap();
        let s2 = s
            .put_state(&State::from_bytes(b"two".to_vec()), &p.id, &params)
            .unwrap();
        let v1 = s.put_version(&p.id, &params, Some(&s1)).unwrap().id;
        let v2 = s.put_version(&p.id, &params, Some(&s2)).unwrap().id;
        s.ensure_name("scaler", Some("z-scores"), Some("ml"))
            .unwrap();
        (s, v1, v2)
    }

    #[test]
    fn tags_promote_and_roll_back_with_history() {
        let (s, v1, v2) = fixture();
        let dev = TagRef::parse("scaler@dev").unwrap();
        s.set_tag(&dev, &v1, "fit", "first").unwrap();
        s.promote("scaler", "dev", "prod", "ship").unwrap();
        s.set_tag(&dev, &v2, "fit", "refit").unwrap();
        s.promote("scaler", "dev", "prod", "ship 2").unwrap();
        assert_eq!(s.resolve("scaler@prod").unwrap().id, v2);
        let mv = s
            .rollback(&TagRef::parse("scaler@prod").unwrap(), "bad")
            .unwrap();
        assert_eq!(
            (mv.from.as_deref(), mv.to.as_str()),
            (Some(v2.as_str()), v1.as_str())
        );
        assert_eq!(s.resolve("scaler@prod").unwrap().id, v1);
        let n = s.name("scaler").unwrap();
        let actions: Vec<&str> = n.history.iter().map(|m| m.action.as_str()).collect();
        assert_eq!(actions, ["fit", "promote", "fit", "promote", "rollback"]);
        // Rolling back the rollback returns to v2: history is a log, not a stack.
        s.rollback(&TagRef::parse("scaler@prod").unwrap(), "undo")
            .unwrap();
        assert_eq!(s.resolve("scaler@prod").unwrap().id, v2);
    }

    #[test]
    fn resolve_errors_say_what_exists() {
        let (s, v1, _) = fixture();
        s.set_tag(&TagRef::parse("scaler@dev").unwrap(), &v1, "fit", "")
            .unwrap();
        let e = s.resolve("scaler@prod").unwrap_err().to_string();
        assert!(e.contains("no tag 'prod'") && e.contains("dev"), "{e}");
        let e = s.resolve("nope@prod").unwrap_err().to_string();
        assert!(e.contains("known: scaler"), "{e}");
        assert_eq!(s.resolve(&v1[..8]).unwrap().id, v1);
        let e = s
            .rollback(&TagRef::parse("scaler@dev").unwrap(), "")
            .unwrap_err();
        assert!(e.to_string().contains("no earlier target"), "{e}");
    }

    #[test]
    fn version_ids_cover_every_part() {
        let p = Params::from_json(r#"{"a":1}"#).unwrap();
        let q = Params::from_json(r#"{"a":2}"#).unwrap();
        let base = version_id("p", &p, Some("s"));
        assert_ne!(base, version_id("p2", &p, Some("s")));
        assert_ne!(base, version_id("p", &q, Some("s")));
        assert_ne!(base, version_id("p", &p, Some("s2")));
        assert_ne!(base, version_id("p", &p, None));
    }

    #[test]
    fn check_finds_tampered_blobs_and_gc_keeps_tagged_history() {
        let (s, v1, v2) = fixture();
        assert!(s.check().unwrap().problems.is_empty());
        let state1 = s.version(&v1).unwrap().state_id.unwrap();
        s.overwrite_blob_for_test(&state1, b"evil").unwrap();
        let report = s.check().unwrap();
        assert_eq!(report.problems.len(), 1, "{:?}", report.problems);
        assert!(s
            .state(&state1)
            .unwrap_err()
            .to_string()
            .contains("tampered"));

        let (s, v1, _) = fixture();
        s.set_tag(&TagRef::parse("scaler@prod").unwrap(), &v1, "tag", "")
            .unwrap();
        // Within the last 30 days everything is kept.
        let r = s.gc(30, true).unwrap();
        assert!(r.versions.is_empty() && r.states.is_empty() && r.plugins.is_empty());
        // With no grace period the untagged v2 and its state go; the tagged v1
        // and the shared plugin stay. A dry run removes nothing.
        let dry = s.gc(0, false).unwrap();
        assert_eq!(dry.versions, vec![v2.clone()]);
        assert_eq!(dry.states.len(), 1);
        assert!(dry.plugins.is_empty());
        assert!(s.version(&v2).is_ok());
        s.gc(0, true).unwrap();
        assert!(s.version(&v2).is_err());
        assert_eq!(s.resolve("scaler@prod").unwrap().id, v1);
        assert!(s.check().unwrap().problems.is_empty());
    }

    #[test]
    fn newer_format_is_refused() {
        let s = Store::in_memory();
        s.db.commit(vec![Op::Put(b"meta/format".to_vec(), b"99".to_vec())])
            .unwrap();
        let e = s.check_format().unwrap_err().to_string();
        assert!(e.contains("99") && e.contains("upgrade"), "{e}");
    }
}
