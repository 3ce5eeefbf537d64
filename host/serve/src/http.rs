//! The HTTP feature server behind `kiln serve` (cargo feature `serve`).
//!
//! A [`Catalog`] holds the transforms served, each under a route name and
//! loaded from a [`Source`]: a plugin file (with parameters and state), a
//! `.kiln` bundle, or `NAME@TAG` / a version id resolved in the store. The
//! store is opened only to resolve and closed again, so `kiln tag`,
//! `kiln promote` and `kiln rollback` keep working in other processes while
//! the server runs; [`Catalog::reload`] re-resolves every store source and
//! swaps the transforms whose tag moved ([`ServingTransform::reload`]:
//! requests already running finish on the old version).
//!
//! A [`Server`] answers over HTTP/1.1:
//! - `POST /v1/transform/{name}`: the body is rows as JSON (an array of
//!   objects, or JSON-lines) or an Arrow IPC stream, by `Content-Type`
//!   (`application/json`, `application/x-ndjson`,
//!   `application/vnd.apache.arrow.stream`); the reply is in the same format.
//! - `POST /v1/windows/{name}?at=TIME`: for a pipeline with `[[windows]]`,
//!   the body is ONE entity's recent events (same formats) and the reply
//!   one row of window aggregates as of `at` (RFC 3339 or epoch
//!   microseconds; now when absent), equal bit for bit to what
//!   `kiln materialize` writes for an event at that time.
//! - `GET /v1/transforms`: each name with its source, plugin and versions.
//! - `POST /v1/reload`: re-resolve store sources (also on `SIGHUP`).
//! - `GET /healthz`: `{"status":"ok"}`.
//! - `GET /ui`: the dashboard (`kiln ui`): names, tags and versions, the
//!   lineage graph, feature-table freshness, usage, the latest drift
//!   reports: one HTML page, CSS and SVG inline, nothing from any other
//!   host. With access control on it needs a token, also as `?token=`.
//! - `GET /metrics`: Prometheus text: per transform, counters and the
//!   latency histogram; replies by HTTP status.
//!
//! Access control (`kiln access`, see docs/governance.md): when the
//! store has it on, every request but `/healthz` needs
//! `Authorization: Bearer TOKEN` (a token from `kiln access token create`;
//! 401 without one or with a revoked one) and the token's principal needs
//! `run` on the route's names to `POST` (`read` to see them in
//! `GET /v1/transforms`, `read` on `*` for `/metrics`, `admin` on `*` for
//! `/v1/reload`), else 403. Column policies mask the output for principals
//! without clearance, with access control on or off. Grants, tokens and
//! policies are read at start and on every reload (`SIGHUP`).
//!
//! Errors are JSON, `{"error": {"kind": ..., "message": ...}}`: 400 for a
//! body that does not parse, 401/403 as above, 404 for an unknown
//! transform, 413 for a body
//! over the limit, 415 for an unknown content type, 422 when the plugin
//! rejects the input, 500 when it traps or returns bad data, 503 when the
//! engine is out of instances or the store stays busy. A bad request never
//! stops the server.
//!
//! # Examples
//! ```no_run
//! use kiln_serve::http::{Catalog, ServeOptions, Server, TransformSpec};
//! # fn main() -> kiln_serve::Result<()> {
//! let engine = kiln_runtime::Engine::new()?;
//! let options = ServeOptions::default();
//! let specs = [
//!     TransformSpec::from_store("scaler@prod")?,
//!     TransformSpec::parse("frozen=scaler.kiln")?,
//! ];
//! let catalog = Catalog::load(&engine, &specs, &options)?;
//! let server = Server::bind("127.0.0.1:8080".parse().unwrap(), catalog, &options)?;
//! println!("listening on http://{}", server.local_addr());
//! server.run()
//! # }
//! ```

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::future::Future;
use std::io::Cursor;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::{Duration, Instant};

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use axum::body::{Body, Bytes};
use axum::extract::{Path, State as AxState};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use serde::Serialize;

use kiln_runtime::{Engine, Params, State};
use kiln_store::{Access, Bundle, Masking, OpenOptions, Permission, Registry, Store};

use crate::{
    BundleServing, Error, RegistryServing, Result, ServingOptions, ServingTransform,
    LATENCY_BUCKETS,
};

mod ui;
pub use ui::dashboard_tag;

/// The Arrow IPC stream media type.
pub const ARROW_STREAM: &str = "application/vnd.apache.arrow.stream";

/// Options of a [`Catalog`] and a [`Server`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServeOptions {
    /// Largest request body in bytes (default 64 MiB); larger bodies get 413.
    pub max_body_bytes: usize,
    /// The store directory for `NAME@TAG` sources (default: `$KILN_HOME`,
    /// else `./.kiln`, as [`Store::resolve_dir`]).
    pub store_dir: Option<PathBuf>,
    /// How long to wait for another process holding the store when
    /// resolving (default 10 s); `None` waits as long as it takes.
    pub store_wait: Option<Duration>,
    /// How each transform gets its call instances.
    pub serving: ServingOptions,
}

impl Default for ServeOptions {
    fn default() -> Self {
        ServeOptions {
            max_body_bytes: 64 << 20,
            store_dir: None,
            store_wait: Some(Duration::from_secs(10)),
            serving: ServingOptions::default(),
        }
    }
}

impl ServeOptions {
    /// Set the largest request body in bytes.
    pub fn with_max_body_bytes(mut self, bytes: usize) -> Self {
        self.max_body_bytes = bytes;
        self
    }

    /// Set the store directory for `NAME@TAG` sources.
    pub fn with_store_dir(mut self, dir: Option<PathBuf>) -> Self {
        self.store_dir = dir;
        self
    }

    /// Set how long to wait for a busy store (`None`: as long as it takes).
    pub fn with_store_wait(mut self, wait: Option<Duration>) -> Self {
        self.store_wait = wait;
        self
    }

    /// Set the serving options of every transform.
    pub fn with_serving(mut self, serving: ServingOptions) -> Self {
        self.serving = serving;
        self
    }
}

/// Where a served transform comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// A plugin file with parameters and, for fitted plugins, a state file.
    Plugin {
        /// The plugin (`.wasm` component).
        plugin: PathBuf,
        /// The fitted state file.
        state: Option<PathBuf>,
        /// Parameters as a JSON object (default `{}`).
        params: Option<String>,
    },
    /// A `.kiln` bundle from `kiln export`.
    Bundle(PathBuf),
    /// `NAME@TAG` or a version id (prefix), resolved in the store; followed
    /// by [`Catalog::reload`].
    Store(String),
}

impl Source {
    /// `plugin`, `bundle` or `store`.
    pub fn kind(&self) -> &'static str {
        match self {
            Source::Plugin { .. } => "plugin",
            Source::Bundle(_) => "bundle",
            Source::Store(_) => "store",
        }
    }
}

impl std::fmt::Display for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Source::Plugin {
                plugin,
                state,
                params,
            } => {
                write!(f, "{}", plugin.display())?;
                if let Some(s) = state {
                    write!(f, ",state={}", s.display())?;
                }
                if let Some(p) = params {
                    write!(f, ",params={p}")?;
                }
                Ok(())
            }
            Source::Bundle(p) => write!(f, "{}", p.display()),
            Source::Store(spec) => f.write_str(spec),
        }
    }
}

/// A name to serve and where its transform comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransformSpec {
    /// The name served, as in `/v1/transform/{name}`.
    pub name: String,
    /// Where the transform comes from.
    pub source: Source,
}

const TRANSFORM_USAGE: &str =
    "expected NAME=PLUGIN.wasm[,state=FILE][,params=JSON] or NAME=BUNDLE.kiln";

fn check_name(name: &str) -> std::result::Result<(), &'static str> {
    if name.is_empty()
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
    {
        return Err("the name must be letters, digits, '-', '_' or '.'");
    }
    Ok(())
}

impl TransformSpec {
    /// Parse the `--transform` form: `NAME=PLUGIN.wasm[,state=FILE][,params=JSON]`
    /// (options in any order; the JSON may contain commas) or
    /// `NAME=BUNDLE.kiln`. `NAME=SPEC@TAG` is also accepted, as
    /// [`TransformSpec::from_store`].
    ///
    /// # Errors
    /// [`Error::Serve`] naming what is missing or unknown.
    ///
    /// # Examples
    /// ```
    /// use kiln_serve::http::{Source, TransformSpec};
    /// let s = TransformSpec::parse(
    ///     r#"city=hash_encode.wasm,params={"columns":["city"],"buckets":16}"#,
    /// ).unwrap();
    /// assert_eq!(s.name, "city");
    /// assert!(matches!(s.source, Source::Plugin { params: Some(_), .. }));
    /// let b = TransformSpec::parse("scaler=scaler.kiln").unwrap();
    /// assert_eq!(b.source, Source::Bundle("scaler.kiln".into()));
    /// ```
    pub fn parse(spec: &str) -> Result<TransformSpec> {
        let usage =
            |why: &str| Error::Serve(format!("--transform '{spec}': {why}; {TRANSFORM_USAGE}"));
        let (name, rest) = spec.split_once('=').ok_or_else(|| usage("no '='"))?;
        let name = name.trim();
        check_name(name).map_err(usage)?;
        // Split at ",state=" / ",params=", wherever they are.
        let mut cuts: Vec<(usize, &str)> = [",state=", ",params="]
            .iter()
            .filter_map(|k| rest.find(k).map(|i| (i, *k)))
            .collect();
        cuts.sort_unstable();
        let file = &rest[..cuts.first().map_or(rest.len(), |c| c.0)];
        if file.is_empty() {
            return Err(usage("no plugin or bundle file"));
        }
        let path = PathBuf::from(file);
        let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("");
        if cuts.is_empty() && ext == "kiln" {
            return Ok(TransformSpec {
                name: name.to_owned(),
                source: Source::Bundle(path),
            });
        }
        if cuts.is_empty() && ext != "wasm" && file.contains('@') && !path.exists() {
            return Ok(TransformSpec {
                name: name.to_owned(),
                source: Source::Store(file.to_owned()),
            });
        }
        if ext == "kiln" {
            return Err(usage("a bundle carries its own parameters and state"));
        }
        let (mut state, mut params) = (None, None);
        for (i, (at, key)) in cuts.iter().enumerate() {
            let end = cuts.get(i + 1).map_or(rest.len(), |c| c.0);
            let value = &rest[at + key.len()..end];
            match *key {
                ",state=" => state = Some(PathBuf::from(value)),
                _ => params = Some(value.to_owned()),
            }
        }
        Ok(TransformSpec {
            name: name.to_owned(),
            source: Source::Plugin {
                plugin: path,
                state,
                params,
            },
        })
    }

    /// Parse a store source: `[ALIAS=]NAME@TAG` or `[ALIAS=]VERSION_ID`.
    /// `NAME@TAG` is served as `NAME`, a version id as itself, unless an
    /// alias is given (to serve two tags of one name side by side).
    ///
    /// # Errors
    /// [`Error::Serve`] for an empty spec or a name that is not a URL segment.
    ///
    /// # Examples
    /// ```
    /// use kiln_serve::http::{Source, TransformSpec};
    /// let s = TransformSpec::from_store("scaler@prod").unwrap();
    /// assert_eq!((s.name.as_str(), s.source), ("scaler", Source::Store("scaler@prod".into())));
    /// let c = TransformSpec::from_store("canary=scaler@staging").unwrap();
    /// assert_eq!(c.name, "canary");
    /// ```
    pub fn from_store(spec: &str) -> Result<TransformSpec> {
        let usage = |why: &str| {
            Error::Serve(format!(
                "'{spec}': {why}; expected NAME@TAG, a version id, or ALIAS=NAME@TAG"
            ))
        };
        let (alias, target) = match spec.split_once('=') {
            Some((a, t)) => (Some(a.trim()), t.trim()),
            None => (None, spec.trim()),
        };
        if target.is_empty() {
            return Err(usage("nothing to resolve"));
        }
        if target.ends_with(".kiln") || target.ends_with(".wasm") {
            return Err(usage(
                "a file is served with --transform NAME=FILE.kiln or NAME=FILE.wasm",
            ));
        }
        let name = alias.unwrap_or_else(|| target.split('@').next().unwrap_or(target));
        check_name(name).map_err(usage)?;
        Ok(TransformSpec {
            name: name.to_owned(),
            source: Source::Store(target.to_owned()),
        })
    }
}

/// One served transform as `GET /v1/transforms` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TransformStatus {
    /// The route name.
    pub name: String,
    /// `plugin`, `bundle` or `store`.
    pub source_kind: &'static str,
    /// The source as given (`scaler@prod`, `scaler.kiln`, `p.wasm,params=...`).
    pub source: String,
    /// Whether [`Catalog::reload`] follows it (store sources only).
    pub reloadable: bool,
    /// Steps applied in order (1 for a transform; a pipeline's count, whose
    /// first step the plugin fields below describe).
    pub steps: usize,
    /// The plugin's name.
    pub plugin: String,
    /// The plugin's version.
    pub plugin_version: String,
    /// The plugin id (sha256 of the component).
    pub plugin_id: String,
    /// The canonical parameters.
    pub params: serde_json::Value,
    /// The fitted state id, for fitted plugins.
    pub state_id: Option<String>,
    /// The transform version id, as the store and `kiln versions` name it
    /// ([`kiln_runtime::version_id`]), or the pipeline id.
    pub version_id: String,
}

/// What [`Catalog::reload`] did to one name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum ReloadOutcome {
    /// The tag moved: the name now serves `to`.
    Changed {
        /// The route name.
        name: String,
        /// The store source.
        source: String,
        /// The version served before.
        from: String,
        /// The version served now.
        to: String,
    },
    /// The source still resolves to the version served.
    Unchanged {
        /// The route name.
        name: String,
        /// The store source.
        source: String,
        /// The version served.
        version_id: String,
    },
    /// Resolving or loading failed; the name keeps serving `version_id`.
    Failed {
        /// The route name.
        name: String,
        /// The store source.
        source: String,
        /// The version still served.
        version_id: String,
        /// Why.
        error: String,
    },
    /// A plugin file or a bundle: pinned, not reloaded (restart to change).
    NotReloadable {
        /// The route name.
        name: String,
        /// The file served.
        source: String,
    },
}

/// The outcome of [`Catalog::reload`], one entry per name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ReloadReport {
    /// Per name, in name order.
    pub transforms: Vec<ReloadOutcome>,
}

impl ReloadReport {
    /// The names whose version changed.
    pub fn changed(&self) -> Vec<&str> {
        self.transforms
            .iter()
            .filter_map(|o| match o {
                ReloadOutcome::Changed { name, .. } => Some(name.as_str()),
                _ => None,
            })
            .collect()
    }

    /// Whether any name failed to reload.
    pub fn has_failures(&self) -> bool {
        self.transforms
            .iter()
            .any(|o| matches!(o, ReloadOutcome::Failed { .. }))
    }
}

struct Entry {
    source: Source,
    transform: ServingTransform,
    /// The names whose grants and column policies govern this route (the
    /// store name, every name that tagged a version id, a bundle's name,
    /// else the route name); refreshed on reload.
    subjects: RwLock<Vec<String>>,
}

/// The transforms a server answers for, by route name, and how to reload
/// the ones that come from the store.
///
/// `Send + Sync`; reloads are serialized, requests are never blocked by them.
pub struct Catalog {
    engine: Engine,
    options: ServeOptions,
    entries: BTreeMap<String, Entry>,
    reloading: Mutex<()>,
    /// Grants, tokens and column policies, as of the last load or reload.
    access: RwLock<Arc<Access>>,
}

impl std::fmt::Debug for Catalog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Catalog")
            .field("names", &self.entries.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl Catalog {
    /// Load every spec. Store sources are resolved with the store opened
    /// once and closed before this returns.
    ///
    /// # Errors
    /// [`Error::Serve`] for no specs or a name given twice;
    /// [`Error::ServeLoad`] naming the spec that failed (an unknown
    /// `NAME@TAG`, a bad bundle, parameters the plugin rejects, ...).
    pub fn load(
        engine: &Engine,
        specs: &[TransformSpec],
        options: &ServeOptions,
    ) -> Result<Catalog> {
        if specs.is_empty() {
            return Err(Error::Serve(
                "nothing to serve: give NAME@TAG from the store or --transform NAME=FILE".into(),
            ));
        }
        Catalog::load_any(engine, specs, options)
    }

    /// As [`Catalog::load`], but no specs is a catalog that serves nothing
    /// (the dashboard of a store with no names yet). The store's access
    /// control is read when it exists.
    ///
    /// # Errors
    /// As [`Catalog::load`], but for no specs.
    pub fn load_any(
        engine: &Engine,
        specs: &[TransformSpec],
        options: &ServeOptions,
    ) -> Result<Catalog> {
        let mut seen: BTreeMap<&str, &Source> = BTreeMap::new();
        for s in specs {
            if let Some(first) = seen.insert(&s.name, &s.source) {
                return Err(Error::Serve(format!(
                    "two transforms are named '{}' ({first} and {}); name one with ALIAS=...",
                    s.name, s.source
                )));
            }
        }
        let registry = open_registry_if(
            engine,
            options,
            specs.iter().any(|s| matches!(s.source, Source::Store(_))),
        )?;
        let mut entries = BTreeMap::new();
        for spec in specs {
            let (transform, subjects) = load_one(engine, registry.as_ref(), spec, &options.serving)
                .map_err(|e| Error::ServeLoad {
                    name: spec.name.clone(),
                    from: spec.source.to_string(),
                    source: Box::new(e),
                })?;
            entries.insert(
                spec.name.clone(),
                Entry {
                    source: spec.source.clone(),
                    transform,
                    subjects: RwLock::new(subjects),
                },
            );
        }
        let access = match &registry {
            Some(r) => r.store().access()?,
            None => Access::default(),
        };
        // Close the store now: other kiln processes need it while we serve.
        drop(registry);
        Ok(Catalog {
            engine: engine.clone(),
            options: options.clone(),
            entries,
            reloading: Mutex::new(()),
            access: RwLock::new(Arc::new(access)),
        })
    }

    /// Grants, tokens and column policies as of the last load or reload.
    pub fn access(&self) -> Arc<Access> {
        self.access
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// The names whose grants and column policies govern route `name`.
    pub fn subjects(&self, name: &str) -> Vec<String> {
        self.entries
            .get(name)
            .map(|e| {
                e.subjects
                    .read()
                    .unwrap_or_else(PoisonError::into_inner)
                    .clone()
            })
            .unwrap_or_default()
    }

    /// The transform served as `name`.
    pub fn get(&self, name: &str) -> Option<&ServingTransform> {
        self.entries.get(name).map(|e| &e.transform)
    }

    /// The route names, in order.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.entries.keys().map(String::as_str)
    }

    /// Each name with its source, plugin and versions.
    pub fn status(&self) -> Vec<TransformStatus> {
        self.entries
            .iter()
            .map(|(name, e)| {
                let t = &e.transform;
                let plugin = t.plugin();
                let params = t.params();
                let state_id = t.state_id();
                TransformStatus {
                    name: name.clone(),
                    source_kind: e.source.kind(),
                    source: e.source.to_string(),
                    reloadable: matches!(e.source, Source::Store(_)),
                    steps: t.steps().len(),
                    plugin: plugin.info().name.clone(),
                    plugin_version: plugin.info().version.clone(),
                    plugin_id: plugin.id().to_owned(),
                    params: serde_json::from_str(params.as_str())
                        .expect("canonical parameters are a JSON object"),
                    version_id: t.version(),
                    state_id,
                }
            })
            .collect()
    }

    /// Re-resolve every store source (open the store, resolve, close it)
    /// and point each name whose tag moved at its new version. Plugin
    /// files and bundles are pinned and left alone. A name that fails to
    /// resolve or load keeps serving what it served. Requests running
    /// during the swap finish on the old version.
    ///
    /// # Errors
    /// As [`Store::open`] when the store cannot be opened within
    /// [`ServeOptions::store_wait`] (nothing is changed then).
    pub fn reload(&self) -> Result<ReloadReport> {
        let _one_at_a_time = self
            .reloading
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let registry = open_registry_if(
            &self.engine,
            &self.options,
            self.entries
                .values()
                .any(|e| matches!(e.source, Source::Store(_))),
        )?;
        if let Some(reg) = &registry {
            // Revoked tokens and changed grants or policies apply from now.
            let access = reg.store().access()?;
            *self.access.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(access);
        }
        let mut out = Vec::new();
        for (name, e) in &self.entries {
            let (Source::Store(spec), Some(reg)) = (&e.source, &registry) else {
                out.push(ReloadOutcome::NotReloadable {
                    name: name.clone(),
                    source: e.source.to_string(),
                });
                continue;
            };
            let current = e.transform.version();
            // Registry::reload handles transforms and pipelines alike.
            let step = || -> Result<Option<String>> {
                let changed = reg.reload(&e.transform, spec)?;
                let subjects = reg.store().subjects_of(spec, &e.transform.version())?;
                *e.subjects.write().unwrap_or_else(PoisonError::into_inner) = subjects;
                Ok(changed.then(|| e.transform.version()))
            };
            out.push(match step() {
                Ok(None) => ReloadOutcome::Unchanged {
                    name: name.clone(),
                    source: spec.clone(),
                    version_id: current,
                },
                Ok(Some(to)) => ReloadOutcome::Changed {
                    name: name.clone(),
                    source: spec.clone(),
                    from: current,
                    to,
                },
                Err(err) => ReloadOutcome::Failed {
                    name: name.clone(),
                    source: spec.clone(),
                    version_id: current,
                    error: err.to_string(),
                },
            });
        }
        drop(registry);
        Ok(ReloadReport { transforms: out })
    }
}

/// Open the store when a spec needs it, or when it exists (for its access
/// control); `None` when there is none to open.
fn open_registry_if(
    engine: &Engine,
    options: &ServeOptions,
    needed: bool,
) -> Result<Option<Registry>> {
    let dir = Store::resolve_dir(options.store_dir.as_deref());
    if needed || dir.join("db").exists() {
        Ok(Some(open_registry(engine, options)?))
    } else {
        Ok(None)
    }
}

/// Open the store to resolve, waiting at most `options.store_wait` for
/// another process that holds it.
fn open_registry(engine: &Engine, options: &ServeOptions) -> Result<Registry> {
    let dir = Store::resolve_dir(options.store_dir.as_deref());
    let t0 = Instant::now();
    loop {
        let wait = options.store_wait.is_none();
        match Store::open(
            &dir,
            &OpenOptions {
                create: false,
                wait,
            },
            &mut |_| {},
        ) {
            Ok(store) => return Ok(Registry::new(engine.clone(), store)),
            Err(kiln_store::Error::StoreBusy { .. })
                if options.store_wait.is_some_and(|limit| t0.elapsed() < limit) =>
            {
                std::thread::sleep(Duration::from_millis(25));
            }
            Err(e) => return Err(e.into()),
        }
    }
}

fn load_one(
    engine: &Engine,
    registry: Option<&Registry>,
    spec: &TransformSpec,
    options: &ServingOptions,
) -> Result<(ServingTransform, Vec<String>)> {
    let route = vec![spec.name.clone()];
    match &spec.source {
        Source::Plugin {
            plugin,
            state,
            params,
        } => {
            let plugin = engine.load(plugin)?;
            let params = match params {
                Some(json) => Params::from_json(json)?,
                None => Params::empty(),
            };
            let state = match state {
                Some(p) => Some(State::from_bytes(
                    std::fs::read(p).map_err(|e| Error::io(p, e))?,
                )),
                None => None,
            };
            Ok((
                ServingTransform::with_options(&spec.name, plugin, params, state, options.clone())?,
                route,
            ))
        }
        Source::Bundle(path) => {
            let bundle = Bundle::read(path)?;
            let name = vec![bundle.manifest.name.clone()];
            Ok((bundle.serving(engine, options.clone())?, name))
        }
        Source::Store(s) => {
            let reg = registry.expect("the store is open when a spec comes from it");
            let t = reg.serving(s, options.clone())?;
            let subjects = reg.store().subjects_of(s, &t.version())?;
            Ok((t, subjects))
        }
    }
}

/// An HTTP server bound to an address, serving a [`Catalog`].
pub struct Server {
    runtime: tokio::runtime::Runtime,
    listener: std::net::TcpListener,
    addr: SocketAddr,
    router: Router,
    app: Arc<App>,
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server").field("addr", &self.addr).finish()
    }
}

struct App {
    catalog: Catalog,
    /// Largest request body accepted.
    max_body_bytes: usize,
    /// Replies to `POST /v1/transform/{name}` by status code.
    replies: Mutex<BTreeMap<u16, u64>>,
    reloads_failed: AtomicU64,
}

/// Who sent a request: the principal of its bearer token, or `anonymous`.
const ANONYMOUS: &str = "anonymous";

impl App {
    /// The principal of a request. With access control on, a request needs
    /// a token; a token that is not (or no longer) valid is refused either way.
    fn principal(&self, access: &Access, headers: &HeaderMap) -> Result<String, ApiError> {
        let auth = headers
            .get(header::AUTHORIZATION)
            .map(|v| v.to_str().unwrap_or(""));
        match auth {
            None if !access.enabled() => Ok(ANONYMOUS.into()),
            None => Err(ApiError::new(
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                "this server needs a bearer token: an admin makes one with `kiln access token create PRINCIPAL`; send it as `Authorization: Bearer TOKEN`",
            )),
            Some(v) => {
                let token = v
                    .strip_prefix("Bearer ")
                    .or_else(|| v.strip_prefix("bearer "))
                    .map(str::trim)
                    .unwrap_or("");
                access
                    .principal_of_token(token)
                    .map(str::to_owned)
                    .ok_or_else(|| {
                        ApiError::new(
                            StatusCode::UNAUTHORIZED,
                            "unauthorized",
                            "the bearer token is not valid (revoked, mistyped, or from another store); ask an admin for a new one (`kiln access token create`)",
                        )
                    })
            }
        }
    }

    /// Authenticate and check `need` on `subjects`; the masks the
    /// principal gets on their output.
    fn authorize(
        &self,
        headers: &HeaderMap,
        subjects: &[String],
        need: Permission,
    ) -> Result<Masking, ApiError> {
        let access = self.catalog.access();
        let who = self.principal(&access, headers)?;
        access
            .check_any(&who, subjects, need)
            .map_err(|e| ApiError::new(StatusCode::FORBIDDEN, "forbidden", e.to_string()))?;
        Ok(access.masking(subjects, &who))
    }

    fn count(&self, status: StatusCode) {
        *self
            .replies
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .entry(status.as_u16())
            .or_default() += 1;
    }
}

impl Server {
    /// Bind `addr` (port 0 picks a free port; see [`Server::local_addr`]).
    ///
    /// # Errors
    /// [`Error::Serve`] if the address cannot be bound or the runtime
    /// cannot start.
    pub fn bind(addr: SocketAddr, catalog: Catalog, options: &ServeOptions) -> Result<Server> {
        let listener = std::net::TcpListener::bind(addr).map_err(|e| {
            Error::Serve(format!(
                "cannot listen on {addr}: {e}; pick another address with --bind"
            ))
        })?;
        let addr = listener
            .local_addr()
            .map_err(|e| Error::Serve(format!("cannot listen on {addr}: {e}")))?;
        listener
            .set_nonblocking(true)
            .map_err(|e| Error::Serve(format!("cannot listen on {addr}: {e}")))?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .thread_name("kiln-http")
            .enable_all()
            .build()
            .map_err(|e| Error::Serve(format!("cannot start the HTTP runtime: {e}")))?;
        let app = Arc::new(App {
            catalog,
            max_body_bytes: options.max_body_bytes,
            replies: Mutex::default(),
            reloads_failed: AtomicU64::new(0),
        });
        let router = Router::new()
            .route("/healthz", get(healthz))
            .route("/metrics", get(metrics))
            .route("/ui", get(ui::page))
            .route("/v1/transforms", get(list))
            .route("/v1/reload", post(reload).fallback(method_not_allowed))
            .route(
                "/v1/transform/{name}",
                post(transform).fallback(method_not_allowed),
            )
            .route(
                "/v1/windows/{name}",
                post(windows).fallback(method_not_allowed),
            )
            .fallback(not_found)
            .with_state(app.clone());
        Ok(Server {
            runtime,
            listener,
            addr,
            router,
            app,
        })
    }

    /// The address actually bound.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// The transforms served.
    pub fn catalog(&self) -> &Catalog {
        &self.app.catalog
    }

    /// Serve until the process gets SIGINT (Ctrl-C) or SIGTERM; on Unix,
    /// SIGHUP reloads store sources as `POST /v1/reload` does.
    ///
    /// # Errors
    /// As [`Server::run_until`].
    pub fn run(self) -> Result<()> {
        #[cfg(unix)]
        {
            let app = self.app.clone();
            let _guard = self.runtime.enter();
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()) {
                Ok(mut hup) => {
                    tokio::spawn(async move {
                        while hup.recv().await.is_some() {
                            let app = app.clone();
                            let r = tokio::task::spawn_blocking(move || app.catalog.reload()).await;
                            log_reload(r);
                        }
                    });
                }
                Err(e) => tracing::warn!("SIGHUP will not reload: {e}"),
            }
        }
        self.run_until(async {
            #[cfg(unix)]
            {
                let term = async {
                    match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
                    {
                        Ok(mut s) => {
                            s.recv().await;
                        }
                        Err(_) => std::future::pending().await,
                    }
                };
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term => {}
                }
            }
            #[cfg(not(unix))]
            {
                let _ = tokio::signal::ctrl_c().await;
            }
        })
    }

    /// Serve until `shutdown` completes, then finish requests in flight.
    ///
    /// # Errors
    /// [`Error::Serve`] if the listener fails.
    pub fn run_until(self, shutdown: impl Future<Output = ()> + Send + 'static) -> Result<()> {
        let Server {
            runtime,
            listener,
            addr,
            router,
            app: _,
        } = self;
        runtime.block_on(async move {
            let listener = tokio::net::TcpListener::from_std(listener)
                .map_err(|e| Error::Serve(format!("cannot listen on {addr}: {e}")))?;
            axum::serve(listener, router)
                .with_graceful_shutdown(shutdown)
                .await
                .map_err(|e| Error::Serve(format!("server on {addr} failed: {e}")))
        })
    }
}

#[cfg(unix)]
fn log_reload(r: std::result::Result<Result<ReloadReport>, tokio::task::JoinError>) {
    match r {
        Ok(Ok(report)) => {
            for o in &report.transforms {
                match o {
                    ReloadOutcome::Changed { name, from, to, .. } => {
                        tracing::warn!(
                            "SIGHUP: {name} now serves {} (was {})",
                            short(to),
                            short(from)
                        )
                    }
                    ReloadOutcome::Failed { name, error, .. } => {
                        tracing::warn!("SIGHUP: {name} not reloaded: {error}")
                    }
                    _ => {}
                }
            }
        }
        Ok(Err(e)) => tracing::warn!("SIGHUP: reload failed: {e}"),
        Err(e) => tracing::warn!("SIGHUP: reload failed: {e}"),
    }
}

fn short(id: &str) -> &str {
    id.get(..12).unwrap_or(id)
}

/// A JSON error reply.
#[derive(Debug)]
struct ApiError {
    status: StatusCode,
    kind: &'static str,
    message: String,
    column: Option<String>,
    row: Option<u64>,
}

impl ApiError {
    fn new(status: StatusCode, kind: &'static str, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            kind,
            message: message.into(),
            column: None,
            row: None,
        }
    }

    fn bad_body(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, "bad_request", message)
    }

    fn from_error(e: &kiln_runtime::Error) -> ApiError {
        use kiln_runtime::Error;
        let (status, kind) = match e {
            Error::InvalidInput { .. } => (StatusCode::UNPROCESSABLE_ENTITY, "invalid_input"),
            Error::Busy { .. } => (StatusCode::SERVICE_UNAVAILABLE, "busy"),
            Error::Trap { .. } => (StatusCode::INTERNAL_SERVER_ERROR, "trap"),
            Error::DeadlineExceeded { .. } => {
                (StatusCode::INTERNAL_SERVER_ERROR, "deadline_exceeded")
            }
            Error::MemoryLimit { .. } => (StatusCode::INTERNAL_SERVER_ERROR, "memory_limit"),
            Error::InvalidOutput { .. } => (StatusCode::INTERNAL_SERVER_ERROR, "invalid_output"),
            Error::PluginInternal { .. } => (StatusCode::INTERNAL_SERVER_ERROR, "plugin_internal"),
            _ => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
        };
        let (column, row) = match e {
            Error::InvalidInput { column, row, .. } => (column.clone(), *row),
            Error::InvalidOutput { column, .. } => (column.clone(), None),
            _ => (None, None),
        };
        ApiError {
            status,
            kind,
            message: e.to_string(),
            column,
            row,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = serde_json::json!({"error": {
            "kind": self.kind,
            "message": self.message,
            "column": self.column,
            "row": self.row,
        }});
        (
            self.status,
            [(header::CONTENT_TYPE, "application/json")],
            body.to_string(),
        )
            .into_response()
    }
}

async fn healthz() -> Response {
    (
        [(header::CONTENT_TYPE, "application/json")],
        r#"{"status":"ok"}"#,
    )
        .into_response()
}

async fn method_not_allowed() -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "use POST (GET /v1/transforms lists the transforms)",
    )
}

async fn not_found() -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "not_found",
        "no such route; POST /v1/transform/{name}, GET /v1/transforms, /healthz, /metrics, /ui",
    )
}

async fn list(AxState(app): AxState<Arc<App>>, headers: HeaderMap) -> Response {
    let access = app.catalog.access();
    let who = match app.principal(&access, &headers) {
        Ok(w) => w,
        Err(e) => return e.into_response(),
    };
    // Only the names this principal may read.
    let visible: Vec<TransformStatus> = app
        .catalog
        .status()
        .into_iter()
        .filter(|s| {
            access
                .check_any(&who, &app.catalog.subjects(&s.name), Permission::Read)
                .is_ok()
        })
        .collect();
    json_reply(StatusCode::OK, &visible)
}

fn json_reply(status: StatusCode, value: &impl Serialize) -> Response {
    match serde_json::to_string(value) {
        Ok(body) => (status, [(header::CONTENT_TYPE, "application/json")], body).into_response(),
        Err(e) => internal(e).into_response(),
    }
}

async fn reload(AxState(app): AxState<Arc<App>>, headers: HeaderMap) -> Response {
    if let Err(e) = app.authorize(&headers, &["*".into()], Permission::Admin) {
        return e.into_response();
    }
    let app2 = app.clone();
    match tokio::task::spawn_blocking(move || app2.catalog.reload()).await {
        Ok(Ok(report)) => {
            if report.has_failures() {
                app.reloads_failed.fetch_add(1, Ordering::Relaxed);
                let failed: Vec<String> = report
                    .transforms
                    .iter()
                    .filter_map(|o| match o {
                        ReloadOutcome::Failed { name, error, .. } => {
                            Some(format!("{name}: {error}"))
                        }
                        _ => None,
                    })
                    .collect();
                let body = serde_json::json!({
                    "error": {"kind": "reload_failed", "message": format!(
                        "some names were not reloaded and keep serving their version: {}",
                        failed.join("; ")
                    )},
                    "changed": report.changed(),
                    "transforms": report.transforms,
                });
                return json_reply(StatusCode::INTERNAL_SERVER_ERROR, &body);
            }
            let body = serde_json::json!({
                "changed": report.changed(),
                "transforms": report.transforms,
            });
            json_reply(StatusCode::OK, &body)
        }
        Ok(Err(e)) => {
            // The store could not be opened: nothing changed.
            app.reloads_failed.fetch_add(1, Ordering::Relaxed);
            let kind = match e {
                Error::Store(kiln_store::Error::StoreBusy { .. }) => "store_busy",
                _ => "store_unavailable",
            };
            ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                kind,
                format!("nothing reloaded, every name keeps its version: {e}"),
            )
            .into_response()
        }
        Err(e) => ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            format!("reload failed: {e}"),
        )
        .into_response(),
    }
}

async fn metrics(AxState(app): AxState<Arc<App>>, headers: HeaderMap) -> Response {
    if let Err(e) = app.authorize(&headers, &["*".into()], Permission::Read) {
        return e.into_response();
    }
    let transforms: Vec<(&str, &ServingTransform)> = app
        .catalog
        .entries
        .iter()
        .map(|(n, e)| (n.as_str(), &e.transform))
        .collect();
    let mut text = prometheus_text(&transforms);
    let _ = writeln!(
        text,
        "# HELP kiln_http_transform_replies_total Replies to POST /v1/transform/NAME by HTTP status."
    );
    let _ = writeln!(text, "# TYPE kiln_http_transform_replies_total counter");
    for (code, n) in app
        .replies
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .iter()
    {
        let _ = writeln!(
            text,
            "kiln_http_transform_replies_total{{code=\"{code}\"}} {n}"
        );
    }
    let _ = writeln!(
        text,
        "# HELP kiln_reload_failures_total Reloads that failed in whole or in part."
    );
    let _ = writeln!(text, "# TYPE kiln_reload_failures_total counter");
    let _ = writeln!(
        text,
        "kiln_reload_failures_total {}",
        app.reloads_failed.load(Ordering::Relaxed)
    );
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        text,
    )
        .into_response()
}

/// Metrics of transforms in the Prometheus text format: counters
/// `kiln_transform_{calls,errors,rows_in,rows_out,reloads,cold_instances}_total`,
/// the histogram `kiln_transform_latency_seconds` and `kiln_transform_info`,
/// each labelled `transform="<name>"` with the route name given.
pub fn prometheus_text(transforms: &[(&str, &ServingTransform)]) -> String {
    let mut out = String::new();
    let snaps: Vec<_> = transforms.iter().map(|(n, t)| (*n, t.metrics())).collect();
    type Counter = (
        &'static str,
        &'static str,
        fn(&crate::MetricsSnapshot) -> u64,
    );
    let counters: [Counter; 6] = [
        ("calls", "Calls to the transform.", |m| m.calls),
        ("errors", "Calls that failed.", |m| m.errors),
        ("rows_in", "Rows received.", |m| m.rows_in),
        ("rows_out", "Rows returned.", |m| m.rows_out),
        ("reloads", "Reloads of the transform.", |m| m.reloads),
        (
            "cold_instances",
            "Calls that found no warm instance and prepared one.",
            |m| m.cold_instances,
        ),
    ];
    for (name, help, get) in counters {
        let _ = writeln!(out, "# HELP kiln_transform_{name}_total {help}");
        let _ = writeln!(out, "# TYPE kiln_transform_{name}_total counter");
        for (t, m) in &snaps {
            let _ = writeln!(
                out,
                "kiln_transform_{name}_total{{transform=\"{}\"}} {}",
                escape(t),
                get(m)
            );
        }
    }
    let _ = writeln!(
        out,
        "# HELP kiln_transform_latency_seconds Latency of a call."
    );
    let _ = writeln!(out, "# TYPE kiln_transform_latency_seconds histogram");
    for (t, m) in &snaps {
        let t = escape(t);
        let mut cumulative = 0;
        for (i, c) in m.latency.counts.iter().enumerate() {
            cumulative += c;
            let le = LATENCY_BUCKETS
                .get(i)
                .map_or("+Inf".to_owned(), |b| format!("{b:e}"));
            let _ = writeln!(
                out,
                "kiln_transform_latency_seconds_bucket{{transform=\"{t}\",le=\"{le}\"}} {cumulative}"
            );
        }
        let _ = writeln!(
            out,
            "kiln_transform_latency_seconds_sum{{transform=\"{t}\"}} {}",
            m.latency.sum.as_secs_f64()
        );
        let _ = writeln!(
            out,
            "kiln_transform_latency_seconds_count{{transform=\"{t}\"}} {cumulative}"
        );
    }
    let _ = writeln!(out, "# HELP kiln_transform_info The target a name serves.");
    let _ = writeln!(out, "# TYPE kiln_transform_info gauge");
    for (name, t) in transforms {
        let p = t.plugin();
        let _ = writeln!(
            out,
            "kiln_transform_info{{transform=\"{}\",plugin=\"{}\",plugin_version=\"{}\",version_id=\"{}\"}} 1",
            escape(name),
            escape(&p.info().name),
            escape(&p.info().version),
            t.version()
        );
    }
    out
}

/// Escape a Prometheus label value.
fn escape(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// How a request body is encoded (and so the reply).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    JsonArray,
    JsonLines,
    Arrow,
}

fn format_of(headers: &HeaderMap, body: &[u8]) -> Result<Format, ApiError> {
    let ct = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let media = ct
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    match media.as_str() {
        ARROW_STREAM => Ok(Format::Arrow),
        "application/json" => Ok(
            match body.iter().find(|b| !b.is_ascii_whitespace()) {
                Some(b'[') => Format::JsonArray,
                _ => Format::JsonLines,
            },
        ),
        "application/x-ndjson" | "application/jsonl" | "application/json-lines" => {
            Ok(Format::JsonLines)
        }
        _ => Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            format!(
                "Content-Type '{ct}' is not supported; send application/json (an array of objects, or one object per line), application/x-ndjson, or {ARROW_STREAM}"
            ),
        )),
    }
}

async fn transform(
    AxState(app): AxState<Arc<App>>,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let response = reply(&app, &name, &headers, body, handle).await;
    app.count(response.status());
    response
}

async fn windows(
    AxState(app): AxState<Arc<App>>,
    Path(name): Path<String>,
    uri: axum::http::Uri,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let at = match at_of(uri.query().unwrap_or("")) {
        Ok(at) => at,
        Err(e) => {
            // Drain the body so the connection can carry the next request.
            let _ = read_body(body, &headers, app.max_body_bytes).await;
            app.count(e.status);
            return e.into_response();
        }
    };
    let response = reply(
        &app,
        &name,
        &headers,
        body,
        move |t, format, body, masking| handle_windows(t, at, format, body, masking),
    )
    .await;
    app.count(response.status());
    response
}

/// `at=` of a windows request: RFC 3339 (`2026-12-01T10:00:00Z`) or
/// microseconds since the epoch; the server's clock when absent.
fn at_of(query: &str) -> Result<i64, ApiError> {
    let raw = query
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .find(|(k, _)| *k == "at")
        .map(|(_, v)| {
            v.replace("%3A", ":")
                .replace("%3a", ":")
                .replace("%2B", "+")
                .replace("%2b", "+")
        });
    let Some(raw) = raw else {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_err(internal)?;
        return Ok(now.as_micros() as i64);
    };
    if let Ok(us) = raw.parse::<i64>() {
        return Ok(us);
    }
    arrow::compute::kernels::cast_utils::string_to_timestamp_nanos(&raw)
        .map(|ns| ns.div_euclid(1000))
        .map_err(|_| {
            ApiError::bad_body(format!(
                "at={raw} is not a time: give RFC 3339 (2026-12-01T10:00:00Z) or microseconds since the epoch"
            ))
        })
}

/// How far past the limit a body is still read (and dropped) so that the
/// client, still sending, gets the 413 instead of a reset connection.
const DRAIN_FACTOR: usize = 8;

/// The request body, at most `limit` bytes. A larger body is answered 413;
/// up to [`DRAIN_FACTOR`] times the limit it is read to the end first, so a
/// client that sends the whole body before reading the reply sees it.
async fn read_body(body: Body, headers: &HeaderMap, limit: usize) -> Result<Bytes, ApiError> {
    use futures_util::StreamExt;
    let too_large = |n: String| {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            format!(
                "the body is {n} bytes, over the limit of {limit}; send fewer rows per request or start the server with a larger --max-body"
            ),
        )
    };
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if let Some(n) = declared.filter(|&n| n > limit.saturating_mul(DRAIN_FACTOR)) {
        return Err(too_large(n.to_string()));
    }
    let mut stream = body.into_data_stream();
    let mut buf = Vec::with_capacity(declared.unwrap_or(0).min(limit));
    let mut seen = 0usize;
    while let Some(chunk) = stream.next().await {
        let chunk =
            chunk.map_err(|e| ApiError::bad_body(format!("cannot read the request body: {e}")))?;
        seen = seen.saturating_add(chunk.len());
        if seen <= limit {
            buf.extend_from_slice(&chunk);
        } else if seen > limit.saturating_mul(DRAIN_FACTOR) {
            break;
        }
    }
    if seen > limit {
        return Err(too_large(format!("at least {seen}")));
    }
    Ok(Bytes::from(buf))
}

/// Read the body, find the transform `name`, and run `job` on them off the
/// async workers (plugin calls are CPU work).
async fn reply<F>(app: &App, name: &str, headers: &HeaderMap, body: Body, job: F) -> Response
where
    F: FnOnce(
            &ServingTransform,
            Format,
            &[u8],
            &Masking,
        ) -> Result<(&'static str, Vec<u8>), ApiError>
        + Send
        + 'static,
{
    // The body is read (or drained) before any reply, so the connection can
    // carry the client's next request; when it could not be read to its
    // end, the reply says `Connection: close` so no client reuses it.
    let body = read_body(body, headers, app.max_body_bytes).await;
    let closing = |mut r: Response| {
        r.headers_mut().insert(
            header::CONNECTION,
            header::HeaderValue::from_static("close"),
        );
        r
    };
    let Some(t) = app.catalog.get(name).cloned() else {
        let known: Vec<&str> = app.catalog.names().collect();
        let r = ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("no transform named '{name}'; serving: {}", known.join(", ")),
        )
        .into_response();
        return if body.is_ok() { r } else { closing(r) };
    };
    let body = match body {
        Ok(b) => b,
        Err(e) => return closing(e.into_response()),
    };
    // Who asks, whether they may run it, and what they may not see.
    let masking = match app.authorize(headers, &app.catalog.subjects(name), Permission::Run) {
        Ok(m) => m,
        Err(e) => return e.into_response(),
    };
    let format = match format_of(headers, &body) {
        Ok(f) => f,
        Err(e) => return e.into_response(),
    };
    match tokio::task::spawn_blocking(move || job(&t, format, &body, &masking)).await {
        Ok(Ok((ct, bytes))) => ([(header::CONTENT_TYPE, ct)], bytes).into_response(),
        Ok(Err(e)) => e.into_response(),
        Err(e) => ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            format!("request handler failed: {e}"),
        )
        .into_response(),
    }
}

fn handle(
    t: &ServingTransform,
    format: Format,
    body: &[u8],
    masking: &Masking,
) -> Result<(&'static str, Vec<u8>), ApiError> {
    let (input, batches) = decode(format, body)?;
    let outputs = batches
        .iter()
        .map(|b| {
            let out = t.apply(b).map_err(|e| ApiError::from_error(&e))?;
            masking.apply(&out).map_err(policy_error)
        })
        .collect::<Result<Vec<_>, _>>()?;
    let schema = match outputs.first() {
        Some(o) => o.schema(),
        None => {
            let unmasked = t
                .output_schema(&input)
                .map_err(|e| ApiError::from_error(&e))?;
            masking.schema(&unmasked).map_err(policy_error)?
        }
    };
    encode(format, &schema, &outputs)
}

/// A column policy that cannot apply: nothing is sent.
fn policy_error(e: kiln_store::Error) -> ApiError {
    ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "policy", e.to_string())
}

/// The windows of `t` as of `at_us` over the body's rows: one entity's
/// recent events. The reply is one row.
fn handle_windows(
    t: &ServingTransform,
    at_us: i64,
    format: Format,
    body: &[u8],
    masking: &Masking,
) -> Result<(&'static str, Vec<u8>), ApiError> {
    let (schema, batches) = decode(format, body)?;
    let events = arrow::compute::concat_batches(&schema, &batches)
        .map_err(|e| ApiError::bad_body(format!("bad rows: {e}")))?;
    let out = t.windows_at(&events, at_us).map_err(|e| {
        let kind = match e {
            kiln_temporal::Error::Spec { .. } => "no_windows",
            _ => "invalid_input",
        };
        let status = match e {
            kiln_temporal::Error::Spec { .. } => StatusCode::NOT_FOUND,
            _ => StatusCode::UNPROCESSABLE_ENTITY,
        };
        ApiError::new(status, kind, format!("{}: {e}", t.name()))
    })?;
    let out = masking.apply(&out).map_err(policy_error)?;
    encode(format, &out.schema(), &[out])
}

/// The body's batches: an Arrow IPC stream, or JSON rows as one batch.
fn decode(format: Format, body: &[u8]) -> Result<(SchemaRef, Vec<RecordBatch>), ApiError> {
    match format {
        Format::Arrow => {
            let reader = arrow::ipc::reader::StreamReader::try_new(Cursor::new(body), None)
                .map_err(|e| ApiError::bad_body(format!("not an Arrow IPC stream: {e}")))?;
            let schema = reader.schema();
            let batches = reader
                .map(|b| b.map_err(|e| ApiError::bad_body(format!("bad Arrow IPC stream: {e}"))))
                .collect::<Result<Vec<_>, _>>()?;
            Ok((schema, batches))
        }
        Format::JsonArray | Format::JsonLines => {
            let batch = rows_to_batch(&parse_rows(format, body)?)?;
            Ok((batch.schema(), vec![batch]))
        }
    }
}

/// The reply body in the request's format.
fn encode(
    format: Format,
    schema: &SchemaRef,
    outputs: &[RecordBatch],
) -> Result<(&'static str, Vec<u8>), ApiError> {
    let mut buf = Vec::new();
    let builder = arrow::json::WriterBuilder::new().with_explicit_nulls(true);
    match format {
        Format::Arrow => {
            let mut w = arrow::ipc::writer::StreamWriter::try_new(buf, schema).map_err(internal)?;
            for o in outputs {
                w.write(o).map_err(internal)?;
            }
            Ok((ARROW_STREAM, w.into_inner().map_err(internal)?))
        }
        Format::JsonArray => {
            let mut w = builder.build::<_, arrow::json::writer::JsonArray>(&mut buf);
            for o in outputs {
                w.write(o).map_err(internal)?;
            }
            w.finish().map_err(internal)?;
            drop(w);
            if buf.is_empty() {
                buf.extend_from_slice(b"[]");
            }
            Ok(("application/json", buf))
        }
        Format::JsonLines => {
            let mut w = builder.build::<_, arrow::json::writer::LineDelimited>(&mut buf);
            for o in outputs {
                w.write(o).map_err(internal)?;
            }
            w.finish().map_err(internal)?;
            drop(w);
            Ok(("application/x-ndjson", buf))
        }
    }
}

fn internal(e: impl std::fmt::Display) -> ApiError {
    ApiError::new(
        StatusCode::INTERNAL_SERVER_ERROR,
        "internal",
        format!("cannot encode the reply: {e}"),
    )
}

/// The rows of a JSON body: objects, in an array or one per line.
fn parse_rows(format: Format, body: &[u8]) -> Result<Vec<serde_json::Value>, ApiError> {
    let rows: Vec<serde_json::Value> = if format == Format::JsonArray {
        serde_json::from_slice(body)
            .map_err(|e| ApiError::bad_body(format!("body is not a JSON array of objects: {e}")))?
    } else {
        // One object per line, or objects one after another however they
        // are laid out (a pretty-printed single object included).
        serde_json::Deserializer::from_slice(body)
            .into_iter::<serde_json::Value>()
            .map(|r| r.map_err(|e| ApiError::bad_body(format!("line {}: not JSON: {e}", e.line()))))
            .collect::<Result<_, _>>()?
    };
    if let Some(i) = rows.iter().position(|r| !r.is_object()) {
        return Err(ApiError::bad_body(format!(
            "row {i} is not a JSON object: each row must be {{\"column\": value, ...}}"
        )));
    }
    if rows.is_empty() {
        return Err(ApiError::bad_body(
            "no rows: column types are inferred from the rows, so send at least one (or an Arrow IPC stream)",
        ));
    }
    Ok(rows)
}

/// One batch from JSON rows, with types inferred as `kiln run` infers them
/// for JSON-lines files (integers Int64, other numbers Float64, strings Utf8).
fn rows_to_batch(rows: &[serde_json::Value]) -> Result<RecordBatch, ApiError> {
    let schema = arrow::json::reader::infer_json_schema_from_iterator(rows.iter().map(Ok))
        .map_err(|e| ApiError::bad_body(format!("cannot infer column types: {e}")))?;
    let mut decoder = arrow::json::ReaderBuilder::new(Arc::new(schema))
        .with_batch_size(rows.len().max(1))
        .build_decoder()
        .map_err(|e| ApiError::bad_body(format!("cannot read the rows: {e}")))?;
    decoder
        .serialize(rows)
        .map_err(|e| ApiError::bad_body(format!("cannot read the rows: {e}")))?;
    decoder
        .flush()
        .map_err(|e| ApiError::bad_body(format!("cannot read the rows: {e}")))?
        .ok_or_else(|| ApiError::bad_body("no rows"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plugin(p: &str, state: Option<&str>, params: Option<&str>) -> Source {
        Source::Plugin {
            plugin: PathBuf::from(p),
            state: state.map(PathBuf::from),
            params: params.map(str::to_owned),
        }
    }

    #[test]
    fn transform_specs_parse_in_any_order_with_commas_in_json() {
        let cases = [
            ("a=p.wasm", "a", plugin("p.wasm", None, None)),
            (
                r#"a=dir/p.wasm,params={"c":["x","y"]},state=s.state"#,
                "a",
                plugin("dir/p.wasm", Some("s.state"), Some(r#"{"c":["x","y"]}"#)),
            ),
            (
                r#"b-1=p.wasm,state=s,params={}"#,
                "b-1",
                plugin("p.wasm", Some("s"), Some("{}")),
            ),
            (
                "s=out/scaler.kiln",
                "s",
                Source::Bundle("out/scaler.kiln".into()),
            ),
            ("c=scaler@prod", "c", Source::Store("scaler@prod".into())),
        ];
        for (spec, name, source) in cases {
            let s = TransformSpec::parse(spec).unwrap();
            assert_eq!((s.name.as_str(), &s.source), (name, &source), "{spec}");
            // What /v1/transforms shows parses back to the same source.
            let again = TransformSpec::parse(&format!("{name}={}", s.source)).unwrap();
            assert_eq!(again.source, source, "{spec}");
        }
        for bad in [
            "",
            "p.wasm",
            "=p.wasm",
            "a b=p.wasm",
            "a=",
            "a=,state=x",
            "a=s.kiln,params={}",
        ] {
            let e = TransformSpec::parse(bad).unwrap_err().to_string();
            assert!(e.contains("expected NAME=PLUGIN.wasm"), "{bad:?}: {e}");
        }
    }

    #[test]
    fn store_specs_name_the_route() {
        let cases = [
            ("scaler@prod", "scaler", "scaler@prod"),
            ("canary=scaler@staging", "canary", "scaler@staging"),
            ("3f2a9c1e", "3f2a9c1e", "3f2a9c1e"),
            ("v1 = 3f2a9c1e", "v1", "3f2a9c1e"),
        ];
        for (spec, name, target) in cases {
            let s = TransformSpec::from_store(spec).unwrap();
            assert_eq!(s.name, name, "{spec}");
            assert_eq!(s.source, Source::Store(target.into()), "{spec}");
        }
        for bad in ["", "a=", "a/b@prod", "x y=s@prod", "s.kiln", "s=p.wasm"] {
            assert!(TransformSpec::from_store(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn json_rows_become_one_batch_and_bad_rows_are_refused() {
        let rows: Vec<serde_json::Value> =
            serde_json::from_str(r#"[{"x":1,"s":"a"},{"x":2.5,"s":null}]"#).unwrap();
        let b = rows_to_batch(&rows).unwrap();
        assert_eq!(b.num_rows(), 2);
        assert_eq!(
            b.schema().field_with_name("x").unwrap().data_type(),
            &arrow::datatypes::DataType::Float64
        );
        assert!(parse_rows(Format::JsonArray, b"[1,2]").is_err());
        assert!(parse_rows(Format::JsonArray, b"[]").is_err());
        assert!(parse_rows(Format::JsonArray, b"{\"x\":").is_err());
        assert!(parse_rows(Format::JsonLines, b"{\"x\":1}\nnope").is_err());
        // A pretty-printed object is one row.
        assert_eq!(
            parse_rows(Format::JsonLines, b"{\n  \"x\": 1\n}\n")
                .unwrap()
                .len(),
            1
        );
        assert_eq!(
            parse_rows(Format::JsonLines, b"{\"x\":1}\n\n{\"x\":2}\n")
                .unwrap()
                .len(),
            2
        );
    }
}
