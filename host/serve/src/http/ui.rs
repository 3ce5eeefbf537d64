//! `GET /ui`: the dashboard of `kiln ui` (and of every `kiln serve`).
//!
//! One server-rendered HTML page, with its CSS and its lineage graph (SVG)
//! inline: no scripts, no fonts, no images, no URL of any other host, so
//! it works offline and a `Content-Security-Policy` of `default-src 'none'`
//! holds. It shows
//! - each transform name with its description, owner, tags → version ids
//!   and number of versions;
//! - the lineage graph of the most recent [`MAX_RUNS`] successful runs:
//!   input datasets → runs → outputs (and fitted states);
//! - the freshness of each feature table: its last `kiln materialize`, how
//!   long ago, the table version, the transform version, the rows;
//! - usage: per served route the calls, errors, rows and p50 / p99 latency
//!   since the server started, and the runs recorded per name;
//! - the latest drift report of each name (`kiln drift NAME@TAG` saves it).
//!
//! The store is opened for each page and closed before it is sent, as
//! [`Catalog::reload`](super::Catalog::reload) does, so other `kiln`
//! processes keep working. With access control on, the page needs a token
//! (`Authorization: Bearer TOKEN`, or `?token=TOKEN` since a browser
//! cannot set the header), checked against the store's tokens as of this
//! request, and shows only the names the principal may `read`.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::State as AxState;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};

use kiln_quality::{drift_sections_html, drift_status_html, drift_table_html};
use kiln_store::{
    run_kind_label, Access, DriftRecord, LineageGraph, NameRecord, NodeKind, Permission, RunKind,
    RunRecord, RunStatus, Store,
};

use super::{open_registry_if, App, Catalog, ServeOptions, TransformSpec};
use crate::{Error, MetricsSnapshot, Result};
use kiln_runtime::Engine;

/// The lineage graph shows at most this many runs, the most recent.
const MAX_RUNS: usize = 50;

/// The tag of `name` the dashboard serves: `prod` when it has one, else
/// the tag moved last; `None` for a name without tags.
pub fn dashboard_tag(name: &NameRecord) -> Option<&str> {
    if name.tags.contains_key("prod") {
        return Some("prod");
    }
    name.history
        .iter()
        .rev()
        .find(|m| name.tags.contains_key(&m.tag))
        .map(|m| m.tag.as_str())
        .or_else(|| name.tags.keys().next().map(String::as_str))
}

impl Catalog {
    /// The catalog of `kiln ui`: every name of the store served at its
    /// [`dashboard_tag`] (`NAME@prod`, else its newest tag), as
    /// [`Catalog::load_any`]. A name that cannot be loaded is left out and
    /// returned with why, so one broken name does not hide the dashboard;
    /// no store, or a store without names, serves nothing.
    ///
    /// # Errors
    /// As [`Catalog::load_any`], for what is not a load of one name (the
    /// store cannot be opened within [`ServeOptions::store_wait`]).
    pub fn for_dashboard(
        engine: &Engine,
        options: &ServeOptions,
    ) -> Result<(Catalog, Vec<(String, Error)>)> {
        let mut specs = Vec::new();
        if let Some(registry) = open_registry_if(engine, options, false)? {
            for n in registry.store().names()? {
                if let Some(tag) = dashboard_tag(&n) {
                    specs.push(TransformSpec::from_store(&format!("{}@{tag}", n.name))?);
                }
            }
        }
        let mut skipped = Vec::new();
        loop {
            match Catalog::load_any(engine, &specs, options) {
                Ok(catalog) => return Ok((catalog, skipped)),
                Err(Error::ServeLoad { name, from, source }) => {
                    let before = specs.len();
                    specs.retain(|s| s.name != name);
                    if specs.len() == before {
                        return Err(Error::ServeLoad { name, from, source });
                    }
                    skipped.push((name.clone(), Error::ServeLoad { name, from, source }));
                }
                Err(e) => return Err(e),
            }
        }
    }
}

/// `GET /ui`.
pub(super) async fn page(
    AxState(app): AxState<Arc<App>>,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    let headers = match with_query_token(headers, uri.query().unwrap_or("")) {
        Ok(h) => h,
        Err(why) => return unauthorized(&why),
    };
    // A first check against what the server holds, so that a request
    // without a valid token never makes the server open the store.
    if let Err(e) = app.principal(&app.catalog.access(), &headers) {
        return unauthorized(&e.message);
    }
    let app2 = app.clone();
    match tokio::task::spawn_blocking(move || build(&app2, &headers, Utc::now())).await {
        Ok(Ok(html)) => html_reply(StatusCode::OK, html),
        Ok(Err(why)) => unauthorized(&why),
        Err(e) => html_reply(
            StatusCode::INTERNAL_SERVER_ERROR,
            shell(
                "Kiln dashboard",
                &format!("<p>the page failed: {}</p>", esc(&e.to_string())),
            ),
        ),
    }
}

/// The request's headers, with `?token=TOKEN` as its bearer token when it
/// has no `Authorization` header.
fn with_query_token(mut headers: HeaderMap, query: &str) -> Result<HeaderMap, String> {
    if headers.contains_key(header::AUTHORIZATION) {
        return Ok(headers);
    }
    if let Some(token) = query_param(query, "token") {
        let value = HeaderValue::from_str(&format!("Bearer {token}"))
            .map_err(|_| "the token in ?token= is not valid".to_string())?;
        headers.insert(header::AUTHORIZATION, value);
    }
    Ok(headers)
}

/// The first value of `key` in a query string, percent-decoded.
fn query_param(query: &str, key: &str) -> Option<String> {
    query
        .split('&')
        .map(|kv| kv.split_once('=').unwrap_or((kv, "")))
        .find(|(k, _)| *k == key)
        .map(|(_, v)| percent_decode(v))
}

/// `%XX` escapes and `+` (a space in a form) decoded; bad escapes kept.
fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => {
                match std::str::from_utf8(&bytes[i + 1..i + 3])
                    .ok()
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
                {
                    Some(b) => {
                        out.push(b);
                        i += 3;
                    }
                    None => {
                        out.push(b'%');
                        i += 1;
                    }
                }
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn html_reply(status: StatusCode, html: String) -> Response {
    (
        status,
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-store"),
            // The page loads nothing: say so, so a browser refuses to.
            (
                header::CONTENT_SECURITY_POLICY,
                "default-src 'none'; style-src 'unsafe-inline'; img-src data:",
            ),
            // The URL may carry ?token=.
            (header::REFERRER_POLICY, "no-referrer"),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        ],
        html,
    )
        .into_response()
}

/// 401 with a page that says how to get in.
fn unauthorized(why: &str) -> Response {
    let body = format!(
        "<h1>Kiln dashboard</h1><p class=\"error\" id=\"unauthorized\">{}</p>\
         <p>This store has access control on. Ask an admin for a token \
         (<code>kiln access token create PRINCIPAL</code>) and open \
         <code>/ui?token=TOKEN</code>, or send <code>Authorization: Bearer TOKEN</code>.</p>",
        esc(why)
    );
    let mut r = html_reply(StatusCode::UNAUTHORIZED, shell("Kiln dashboard", &body));
    r.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static("Bearer realm=\"kiln\""),
    );
    r
}

/// Everything read from the store for one page.
#[derive(Debug, Default)]
struct Snapshot {
    /// The store directory.
    dir: PathBuf,
    /// `None` when the store was read; else why not.
    problem: Option<StoreProblem>,
    access: Option<Access>,
    names: Vec<NameRecord>,
    /// Version id → what it is (`plugin_name`, or `pipeline of N steps`).
    kinds: BTreeMap<String, String>,
    runs: Vec<RunRecord>,
    drifts: Vec<DriftRecord>,
}

#[derive(Debug, Clone, PartialEq)]
enum StoreProblem {
    /// No store in the directory.
    Missing,
    /// It could not be opened or read (busy, unreadable).
    Unavailable(String),
}

/// Open the store, read what the page shows, close it.
fn read_store(catalog: &Catalog) -> Snapshot {
    let dir = Store::resolve_dir(catalog.options.store_dir.as_deref());
    let mut snap = Snapshot {
        dir,
        ..Snapshot::default()
    };
    let registry = match open_registry_if(&catalog.engine, &catalog.options, false) {
        Ok(Some(r)) => r,
        Ok(None) => {
            snap.problem = Some(StoreProblem::Missing);
            return snap;
        }
        Err(e) => {
            snap.problem = Some(StoreProblem::Unavailable(e.to_string()));
            return snap;
        }
    };
    let store = registry.store();
    let read = |snap: &mut Snapshot| -> kiln_store::Result<()> {
        snap.access = Some(store.access()?);
        snap.names = store.names()?;
        for v in store.versions()? {
            snap.kinds.insert(v.id, v.plugin_name);
        }
        for p in store.pipelines()? {
            snap.kinds
                .insert(p.id, format!("pipeline of {} steps", p.steps.len()));
        }
        snap.runs = store.runs()?;
        snap.drifts = store.latest_drifts()?;
        Ok(())
    };
    if let Err(e) = read(&mut snap) {
        snap.problem = Some(StoreProblem::Unavailable(e.to_string()));
    }
    // Closed here: other kiln processes need it.
    drop(registry);
    snap
}

/// The page for this request, or why it is refused (401).
fn build(app: &App, headers: &HeaderMap, now: DateTime<Utc>) -> Result<String, String> {
    let catalog = &app.catalog;
    let snap = read_store(catalog);
    // Tokens and grants as the store has them now (a token revoked since
    // the server started no longer opens the page).
    let access = match &snap.access {
        Some(a) => Arc::new(a.clone()),
        None => catalog.access(),
    };
    let who = app.principal(&access, headers).map_err(|e| e.message)?;
    let routes = catalog
        .status()
        .into_iter()
        .filter(|s| {
            access
                .check_any(&who, &catalog.subjects(&s.name), Permission::Read)
                .is_ok()
        })
        .filter_map(|s| {
            let t = catalog.get(&s.name)?;
            Some(RouteView {
                name: s.name,
                source: s.source,
                plugin: format!("{} {}", s.plugin, s.plugin_version),
                version_id: s.version_id,
                metrics: t.metrics(),
            })
        })
        .collect();
    let view = View::new(snap, &access, &who, routes, now);
    Ok(render(&view))
}

/// One served route and its metrics.
#[derive(Debug, Clone)]
struct RouteView {
    name: String,
    source: String,
    plugin: String,
    version_id: String,
    metrics: MetricsSnapshot,
}

/// The last materialization of one feature table.
#[derive(Debug, Clone, PartialEq)]
struct TableView {
    /// The table directory.
    path: String,
    /// The table version written (Delta version).
    table_version: Option<u64>,
    /// When (RFC 3339).
    time: String,
    /// Seconds since then.
    age_secs: Option<i64>,
    /// The transform or pipeline version written.
    version_id: String,
    /// `NAME@TAG` materialized.
    target: Option<String>,
    /// Rows written.
    rows: u64,
    /// Successful materializations of the table recorded.
    materializations: usize,
}

/// Recorded runs of one name by kind.
#[derive(Debug, Clone, Default, PartialEq)]
struct RunCounts {
    by_kind: BTreeMap<&'static str, usize>,
    failed: usize,
    total: usize,
    last: String,
}

/// What the page shows, filtered for the principal.
#[derive(Debug)]
struct View {
    /// Who asks; `None` when access control is off.
    principal: Option<String>,
    dir: PathBuf,
    problem: Option<StoreProblem>,
    now: DateTime<Utc>,
    names: Vec<NameRecord>,
    kinds: BTreeMap<String, String>,
    graph: LineageGraph,
    /// Successful runs (not verifies) visible, and how many the graph shows.
    graph_runs: (usize, usize),
    tables: Vec<TableView>,
    routes: Vec<RouteView>,
    run_counts: BTreeMap<String, RunCounts>,
    drifts: Vec<DriftRecord>,
}

/// The runs of no name (plugin files run with a store) are listed under this.
const NO_NAME: &str = "(no name)";

impl View {
    fn new(
        snap: Snapshot,
        access: &Access,
        who: &str,
        routes: Vec<RouteView>,
        now: DateTime<Utc>,
    ) -> View {
        let may_read = |name: &str| access.allows(who, name, Permission::Read);
        let everything = may_read("*");
        let run_name = |r: &RunRecord| {
            r.target
                .as_deref()
                .map(|t| t.split('@').next().unwrap_or(t).to_string())
        };
        let mut runs: Vec<RunRecord> = snap
            .runs
            .into_iter()
            .filter(|r| match run_name(r) {
                Some(n) => may_read(&n),
                None => everything,
            })
            .collect();
        // Run ids are UUIDv7: they sort by start time.
        runs.sort_by(|a, b| a.id.cmp(&b.id));

        let mut run_counts: BTreeMap<String, RunCounts> = BTreeMap::new();
        for r in &runs {
            let c = run_counts
                .entry(run_name(r).unwrap_or_else(|| NO_NAME.into()))
                .or_default();
            *c.by_kind.entry(run_kind_label(r.kind)).or_default() += 1;
            c.total += 1;
            if r.status == RunStatus::Failed {
                c.failed += 1;
            }
            if r.started_at > c.last {
                c.last = r.started_at.clone();
            }
        }

        let drawn: Vec<&RunRecord> = runs
            .iter()
            .filter(|r| r.status == RunStatus::Ok && r.kind != RunKind::Verify)
            .collect();
        let shown = &drawn[drawn.len().saturating_sub(MAX_RUNS)..];
        let graph = LineageGraph::from_runs(shown.iter().copied());

        let mut tables: BTreeMap<String, TableView> = BTreeMap::new();
        for r in &runs {
            if r.kind != RunKind::Materialize || r.status != RunStatus::Ok {
                continue;
            }
            let time = r
                .finished_at
                .clone()
                .unwrap_or_else(|| r.started_at.clone());
            for o in &r.outputs {
                let (path, table_version) = split_table_label(&o.path);
                let t = TableView {
                    path: path.clone(),
                    table_version,
                    age_secs: age_secs(&time, now),
                    time: time.clone(),
                    version_id: r.transform.version_id.clone(),
                    target: r.target.clone(),
                    rows: o.rows,
                    materializations: 1,
                };
                match tables.get_mut(&path) {
                    // Runs are in time order: the later one is fresher.
                    Some(old) => {
                        let n = old.materializations + 1;
                        *old = TableView {
                            materializations: n,
                            ..t
                        };
                    }
                    None => {
                        tables.insert(path, t);
                    }
                }
            }
        }

        View {
            principal: access.enabled().then(|| who.to_string()),
            dir: snap.dir,
            problem: snap.problem,
            now,
            names: snap
                .names
                .into_iter()
                .filter(|n| may_read(&n.name))
                .collect(),
            kinds: snap.kinds,
            graph,
            graph_runs: (drawn.len(), shown.len()),
            tables: tables.into_values().collect(),
            routes,
            run_counts,
            drifts: snap
                .drifts
                .into_iter()
                .filter(|d| may_read(&d.name))
                .collect(),
        }
    }
}

/// A feature table's dataset label `DIR@VERSION` as (DIR, VERSION).
fn split_table_label(label: &str) -> (String, Option<u64>) {
    match label.rsplit_once('@') {
        Some((dir, v)) if !dir.is_empty() => match v.parse() {
            Ok(v) => (dir.to_string(), Some(v)),
            Err(_) => (label.to_string(), None),
        },
        _ => (label.to_string(), None),
    }
}

/// Seconds from an RFC 3339 time to `now`.
fn age_secs(time: &str, now: DateTime<Utc>) -> Option<i64> {
    DateTime::parse_from_rfc3339(time)
        .ok()
        .map(|t| (now - t.with_timezone(&Utc)).num_seconds())
}

/// `42 s ago`, `5 min ago`, `3 h ago`, `12 d ago`.
fn ago(secs: i64) -> String {
    match secs {
        s if s < 0 => "in the future (clock skew)".into(),
        s if s < 60 => format!("{s} s ago"),
        s if s < 3600 => format!("{} min ago", s / 60),
        s if s < 48 * 3600 => format!("{} h ago", s / 3600),
        s => format!("{} d ago", s / 86_400),
    }
}

/// Escape text for HTML content and attribute values.
fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// The first 12 characters of an id.
fn short(id: &str) -> &str {
    id.get(..12).unwrap_or(id)
}

/// At most `n` characters, with `…` when cut.
fn clip(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_string()
    } else {
        let mut t: String = s.chars().take(n.saturating_sub(1)).collect();
        t.push('…');
        t
    }
}

fn latency(d: Option<Duration>, calls: u64) -> String {
    match d {
        Some(d) if d < Duration::from_millis(1) => format!("≤ {} µs", d.as_micros()),
        Some(d) if d < Duration::from_secs(1) => format!("≤ {} ms", d.as_millis()),
        Some(d) => format!("≤ {} s", d.as_secs_f64()),
        None if calls == 0 => "–".into(),
        None => format!(
            "> {} s",
            crate::LATENCY_BUCKETS.last().copied().unwrap_or(0.0)
        ),
    }
}

const CSS: &str = "\
body{font-family:system-ui,sans-serif;margin:0;color:#1d2330;background:#f6f7f9}\
header{background:#1d2330;color:#fff;padding:14px 28px;display:flex;gap:24px;align-items:baseline;flex-wrap:wrap}\
header h1{font-size:20px;margin:0}header .who{margin-left:auto}\
nav a{color:#cfd8ff;margin-right:14px;text-decoration:none}\
main{padding:8px 28px 40px}\
section.card{background:#fff;border:1px solid #dde1e8;border-radius:8px;padding:12px 18px;margin:18px 0}\
h2{font-size:17px;margin:4px 0 10px}h3{font-size:15px;margin:10px 0 6px}\
table{border-collapse:collapse;font-size:13px}td,th{border:1px solid #dde1e8;padding:4px 9px;text-align:left;vertical-align:top}\
th{background:#eef1f6}td.num{text-align:right;font-variant-numeric:tabular-nums}\
code{font-family:ui-monospace,monospace;font-size:12px;background:#eef1f6;padding:1px 4px;border-radius:3px}\
ul.tags{list-style:none;margin:0;padding:0}ul.tags li{margin:1px 0}\
.muted{color:#6b7385}.note{color:#6b7385;font-size:13px}.error{color:#c62828;font-weight:bold}\
.status{padding:1px 6px;border-radius:4px;background:#f3f4f6}\
.drift{border-left:4px solid #ccc;padding-left:12px;margin:12px 0}\
.drift[data-status=pass]{border-color:#2e7d32}.drift[data-status=warn]{border-color:#ef6c00}.drift[data-status=fail]{border-color:#c62828}\
.drift details h2{font-size:14px}.drift section{margin-top:1em}\
.graph{overflow-x:auto}\
";

/// A complete document around `body`.
fn shell(title: &str, body: &str) -> String {
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{}</title><style>{CSS}</style></head><body>\n{body}\n</body></html>\n",
        esc(title)
    )
}

/// The dashboard page.
fn render(v: &View) -> String {
    let mut b = String::new();
    let who = match &v.principal {
        Some(p) => format!(
            "<span class=\"who\" id=\"principal\" data-principal=\"{p}\">signed in as <b>{p}</b></span>",
            p = esc(p)
        ),
        None => "<span class=\"who\" id=\"principal\" data-principal=\"\">access control off: everyone who reaches this address sees everything</span>".into(),
    };
    let _ = write!(
        b,
        "<header><h1>Kiln dashboard</h1><nav><a href=\"#names\">names</a><a href=\"#lineage\">lineage</a>\
         <a href=\"#tables\">feature tables</a><a href=\"#usage\">usage</a><a href=\"#drift\">drift</a></nav>{who}</header>\n<main>\n\
         <p class=\"note\" id=\"store\">store <code>{}</code> · page made {} · reload the page for fresh numbers</p>\n",
        esc(&v.dir.display().to_string()),
        v.now.format("%Y-%m-%d %H:%M:%S UTC"),
    );
    match &v.problem {
        None => {}
        Some(StoreProblem::Missing) => {
            let _ = writeln!(
                b,
                "<p class=\"error\" id=\"no-store\">No store: there is no Kiln store in <code>{}</code>. \
                 <code>kiln fit PLUGIN.wasm --input train.parquet --name NAME</code> creates one \
                 (or start with <code>--store DIR</code> / <code>KILN_HOME</code>). Only what this server serves is shown.</p>",
                esc(&v.dir.display().to_string())
            );
        }
        Some(StoreProblem::Unavailable(why)) => {
            let _ = writeln!(
                b,
                "<p class=\"error\" id=\"store-unavailable\">The store could not be read just now ({}); \
                 only what this server serves is shown. Reload the page.</p>",
                esc(why)
            );
        }
    }
    names_section(&mut b, v);
    lineage_section(&mut b, v);
    tables_section(&mut b, v);
    usage_section(&mut b, v);
    drift_section(&mut b, v);
    b.push_str("</main>");
    shell("Kiln dashboard", &b)
}

fn names_section(b: &mut String, v: &View) {
    b.push_str("<section class=\"card\" id=\"names\"><h2>Names, versions and tags</h2>\n");
    if v.names.is_empty() {
        let _ = write!(
            b,
            "<p id=\"no-names\">{}</p>",
            if v.problem.is_none() {
                "No transform names yet. Register one with \
                 <code>kiln fit PLUGIN.wasm --input train.parquet --name NAME</code> \
                 (it is tagged <code>NAME@dev</code>), promote it with \
                 <code>kiln promote NAME --from dev --to prod</code>, then restart \
                 <code>kiln ui</code> to serve it."
            } else {
                "No names to show."
            }
        );
        b.push_str("</section>\n");
        return;
    }
    b.push_str(
        "<table><tr><th>name</th><th>description</th><th>owner</th><th>tags → version</th><th>versions</th><th>created</th></tr>\n",
    );
    for n in &v.names {
        let versions: BTreeSet<&str> = n.history.iter().map(|m| m.to.as_str()).collect();
        let mut tags = String::from("<ul class=\"tags\">");
        for (tag, id) in &n.tags {
            let what = v
                .kinds
                .get(id)
                .map(|k| format!(" <span class=\"muted\">{}</span>", esc(k)))
                .unwrap_or_default();
            let _ = write!(
                tags,
                "<li class=\"tag\" data-tag=\"{t}\" data-version=\"{id}\"><b>{t}</b> → <code title=\"{id}\">{s}</code>{what}</li>",
                t = esc(tag),
                id = esc(id),
                s = esc(short(id)),
            );
        }
        tags.push_str("</ul>");
        let _ = writeln!(
            b,
            "<tr class=\"name\" id=\"name-{n}\" data-name=\"{n}\" data-versions=\"{nv}\"><td><b>{n}</b></td><td>{d}</td><td>{o}</td><td>{tags}</td><td class=\"num versions\">{nv}</td><td>{c}</td></tr>",
            n = esc(&n.name),
            d = esc(&n.description),
            o = esc(&n.owner),
            nv = versions.len(),
            c = esc(n.created_at.get(..19).unwrap_or(&n.created_at)),
        );
    }
    b.push_str("</table></section>\n");
}

fn lineage_section(b: &mut String, v: &View) {
    let (total, shown) = v.graph_runs;
    let _ = write!(
        b,
        "<section class=\"card\" id=\"lineage\"><h2>Lineage</h2>\n<p class=\"note\" id=\"lineage-note\" data-runs=\"{total}\" data-shown=\"{shown}\">{}</p>\n",
        if total == 0 {
            "No successful runs recorded yet: <code>kiln fit</code>, <code>kiln run</code> and <code>kiln materialize</code> record them.".to_string()
        } else if shown < total {
            format!("The {shown} most recent of {total} successful runs (at most {MAX_RUNS} are drawn; <code>kiln lineage graph</code> prints them all). Inputs on the left, what runs wrote on the right.")
        } else {
            format!("All {total} successful runs. Inputs on the left, what runs wrote on the right; hover a node for its details.")
        }
    );
    if total > 0 {
        b.push_str("<div class=\"graph\">");
        b.push_str(&lineage_svg(&v.graph));
        b.push_str("</div>");
    }
    b.push_str("</section>\n");
}

fn tables_section(b: &mut String, v: &View) {
    b.push_str("<section class=\"card\" id=\"tables\"><h2>Feature table freshness</h2>\n");
    if v.tables.is_empty() {
        b.push_str("<p id=\"no-tables\">No feature tables materialized yet: <code>kiln materialize NAME@TAG --input events.parquet --table tables/NAME</code> writes one.</p></section>\n");
        return;
    }
    b.push_str("<table><tr><th>table</th><th>last materialized</th><th>age</th><th>table version</th><th>transform version</th><th>from</th><th>rows</th><th>materializations</th></tr>\n");
    for t in &v.tables {
        let _ = writeln!(
            b,
            "<tr class=\"table\" data-table=\"{p}\" data-table-version=\"{tv}\" data-version=\"{vid}\"><td><code>{p}</code></td><td>{time}</td><td class=\"age\">{age}</td><td class=\"num\">{tv}</td><td><code title=\"{vid}\">{vs}</code></td><td>{target}</td><td class=\"num rows\">{rows}</td><td class=\"num\">{m}</td></tr>",
            p = esc(&t.path),
            tv = t.table_version.map(|n| n.to_string()).unwrap_or_default(),
            vid = esc(&t.version_id),
            vs = esc(short(&t.version_id)),
            time = esc(t.time.get(..19).unwrap_or(&t.time)),
            age = t.age_secs.map(ago).unwrap_or_default(),
            target = esc(t.target.as_deref().unwrap_or("")),
            rows = t.rows,
            m = t.materializations,
        );
    }
    b.push_str("</table></section>\n");
}

fn usage_section(b: &mut String, v: &View) {
    b.push_str("<section class=\"card\" id=\"usage\"><h2>Usage</h2>\n<h3>Serving (since this server started)</h3>\n");
    if v.routes.is_empty() {
        b.push_str("<p id=\"no-routes\">Nothing is served. <code>kiln ui</code> serves each name's <code>prod</code> tag (else its newest tag) at <code>POST /v1/transform/NAME</code>.</p>\n");
    } else {
        b.push_str("<table><tr><th>route</th><th>source</th><th>plugin</th><th>version</th><th>calls</th><th>errors</th><th>rows in</th><th>rows out</th><th>p50</th><th>p99</th></tr>\n");
        for r in &v.routes {
            let m = &r.metrics;
            let _ = writeln!(
                b,
                "<tr class=\"route\" id=\"route-{n}\" data-route=\"{n}\" data-calls=\"{c}\" data-errors=\"{e}\"><td><code>/v1/transform/{n}</code></td><td>{src}</td><td>{p}</td><td><code title=\"{vid}\">{vs}</code></td><td class=\"num calls\">{c}</td><td class=\"num errors\">{e}</td><td class=\"num\">{ri}</td><td class=\"num\">{ro}</td><td class=\"num\">{p50}</td><td class=\"num\">{p99}</td></tr>",
                n = esc(&r.name),
                src = esc(&r.source),
                p = esc(&r.plugin),
                vid = esc(&r.version_id),
                vs = esc(short(&r.version_id)),
                c = m.calls,
                e = m.errors,
                ri = m.rows_in,
                ro = m.rows_out,
                p50 = latency(m.latency.quantile(0.5), m.calls),
                p99 = latency(m.latency.quantile(0.99), m.calls),
            );
        }
        b.push_str("</table>\n<p class=\"note\">Latencies are the upper bounds of the histogram buckets of <code>GET /metrics</code>.</p>\n");
    }
    b.push_str("<h3>Recorded runs per name</h3>\n");
    if v.run_counts.is_empty() {
        b.push_str("<p id=\"no-runs\">No runs recorded.</p></section>\n");
        return;
    }
    let kinds = ["fit", "run", "materialize", "training-set", "verify"];
    b.push_str("<table id=\"run-counts\"><tr><th>name</th>");
    for k in kinds {
        let _ = write!(b, "<th>{k}</th>");
    }
    b.push_str("<th>failed</th><th>total</th><th>last run</th></tr>\n");
    for (name, c) in &v.run_counts {
        let _ = write!(
            b,
            "<tr class=\"runs\" data-name=\"{n}\" data-runs=\"{t}\"><td>{n}</td>",
            n = esc(name),
            t = c.total
        );
        for k in kinds {
            let _ = write!(
                b,
                "<td class=\"num\">{}</td>",
                c.by_kind.get(k).copied().unwrap_or(0)
            );
        }
        let _ = writeln!(
            b,
            "<td class=\"num\">{}</td><td class=\"num\">{}</td><td>{}</td></tr>",
            c.failed,
            c.total,
            esc(c.last.get(..19).unwrap_or(&c.last))
        );
    }
    b.push_str("</table></section>\n");
}

fn drift_section(b: &mut String, v: &View) {
    b.push_str("<section class=\"card\" id=\"drift\"><h2>Latest drift reports</h2>\n");
    if v.drifts.is_empty() {
        b.push_str("<p id=\"no-drift\">No drift reports yet: <code>kiln drift NAME@TAG --input live.parquet</code> compares live data with the training profile and keeps the report here.</p></section>\n");
        return;
    }
    for d in &v.drifts {
        let r = &d.report;
        let status = serde_json::to_value(r.status)
            .ok()
            .and_then(|s| s.as_str().map(str::to_owned))
            .unwrap_or_default();
        let anchor = format!("drift-{}-", d.name);
        let _ = writeln!(
            b,
            "<div class=\"drift\" id=\"drift-{n}\" data-name=\"{n}\" data-status=\"{status}\">\
             <h3>{n} {badge}</h3>\
             <p>{time} ({age}) by {actor} · baseline <code>{target}</code> (version <code title=\"{vid}\">{vs}</code>) · live data {inputs} · rows: training {r0}, live {r1}</p>\
             {table}<details><summary>histograms per feature</summary>{sections}</details></div>",
            n = esc(&d.name),
            badge = drift_status_html(r.status),
            time = esc(d.time.get(..19).unwrap_or(&d.time)),
            age = age_secs(&d.time, v.now).map(ago).unwrap_or_default(),
            actor = esc(&d.actor),
            target = esc(&d.target),
            vid = esc(&d.version_id),
            vs = esc(short(&d.version_id)),
            inputs = d
                .inputs
                .iter()
                .map(|i| format!("<code>{}</code>", esc(i)))
                .collect::<Vec<_>>()
                .join(", "),
            r0 = r.rows[0],
            r1 = r.rows[1],
            table = drift_table_html(r, &anchor),
            sections = drift_sections_html(r, &anchor),
        );
    }
    b.push_str("</section>\n");
}

/// Where each node of a graph goes: a column and a row.
#[derive(Debug, Clone, PartialEq)]
struct Layout {
    /// Node id → (column, row).
    at: BTreeMap<String, (usize, usize)>,
    columns: usize,
    rows: usize,
}

/// Columns by the longest path from a source (inputs first, each run
/// right of what it read, each output right of its run); in a column,
/// nodes in the order of the first run that touches them.
fn layout(g: &LineageGraph) -> Layout {
    let ids: Vec<&String> = g.nodes.keys().collect();
    let index: BTreeMap<&str, usize> = ids
        .iter()
        .enumerate()
        .map(|(i, id)| (id.as_str(), i))
        .collect();
    let edges: Vec<(usize, usize)> = g
        .edges
        .iter()
        .filter_map(|(a, b)| Some((*index.get(a.as_str())?, *index.get(b.as_str())?)))
        .filter(|(a, b)| a != b)
        .collect();
    let mut col = vec![0usize; ids.len()];
    // At most n rounds: a cycle (a run whose output is its own input)
    // stops growing there instead of looping.
    for _ in 0..ids.len() {
        let mut changed = false;
        for &(a, b) in &edges {
            if col[b] < col[a] + 1 {
                col[b] = col[a] + 1;
                changed = true;
            }
        }
        if !changed {
            break;
        }
    }
    // The order of runs in time, then of everything by its first run.
    let mut runs: Vec<(&str, usize)> = g
        .nodes
        .values()
        .filter_map(|n| {
            n.run
                .as_ref()
                .map(|r| (r.id.as_str(), index[n.id.as_str()]))
        })
        .collect();
    runs.sort();
    let mut order = vec![usize::MAX; ids.len()];
    for (rank, &(_, i)) in runs.iter().enumerate() {
        order[i] = rank;
    }
    for &(a, b) in &edges {
        let (ra, rb) = (order[a], order[b]);
        let (ka, kb) = (
            g.nodes[ids[a]].kind == NodeKind::Run,
            g.nodes[ids[b]].kind == NodeKind::Run,
        );
        if ka && !kb {
            order[b] = order[b].min(ra);
        }
        if kb && !ka {
            order[a] = order[a].min(rb);
        }
    }
    let columns = col.iter().max().map_or(0, |m| m + 1);
    let mut per_column: Vec<Vec<usize>> = vec![Vec::new(); columns];
    for (i, &c) in col.iter().enumerate() {
        per_column[c].push(i);
    }
    let mut at = BTreeMap::new();
    let mut rows = 0;
    for nodes in &mut per_column {
        nodes.sort_by_key(|&i| (order[i], ids[i]));
        rows = rows.max(nodes.len());
        for (row, &i) in nodes.iter().enumerate() {
            at.insert(ids[i].clone(), (col[i], row));
        }
    }
    Layout { at, columns, rows }
}

const NODE_W: usize = 200;
const NODE_H: usize = 44;
const GAP_X: usize = 56;
const GAP_Y: usize = 16;
const PAD: usize = 12;

/// The graph as an inline SVG: datasets as grey pills, runs as blue boxes,
/// states as yellow notes; a `<title>` on each node with its details.
fn lineage_svg(g: &LineageGraph) -> String {
    let l = layout(g);
    let width = 2 * PAD + l.columns * NODE_W + l.columns.saturating_sub(1) * GAP_X;
    let height = 2 * PAD + l.rows * NODE_H + l.rows.saturating_sub(1) * GAP_Y;
    let xy = |id: &str| {
        l.at.get(id)
            .map(|&(c, r)| (PAD + c * (NODE_W + GAP_X), PAD + r * (NODE_H + GAP_Y)))
    };
    let mut s = format!(
        "<svg id=\"lineage-graph\" xmlns=\"http://www.w3.org/2000/svg\" width=\"{width}\" height=\"{height}\" viewBox=\"0 0 {width} {height}\" role=\"img\" aria-label=\"lineage graph\" font-family=\"system-ui,sans-serif\" font-size=\"11\">\
         <defs><marker id=\"arrow\" viewBox=\"0 0 10 10\" refX=\"10\" refY=\"5\" markerWidth=\"7\" markerHeight=\"7\" orient=\"auto-start-reverse\"><path d=\"M0,0L10,5L0,10z\" fill=\"#8a93a6\"/></marker></defs>"
    );
    let mut drawn = BTreeSet::new();
    for (a, b) in &g.edges {
        if !drawn.insert((a, b)) {
            continue;
        }
        let (Some(&(c1, r1)), Some(&(c2, _))) = (l.at.get(a.as_str()), l.at.get(b.as_str())) else {
            continue;
        };
        let (Some((x1, y1)), Some((x2, y2))) = (xy(a), xy(b)) else {
            continue;
        };
        let (x1, y1) = ((x1 + NODE_W) as f64, (y1 + NODE_H / 2) as f64);
        let (x2, y2) = (x2 as f64, (y2 + NODE_H / 2) as f64);
        let d = if c2 > c1 + 1 {
            // Across columns: along the empty gap below the source's row,
            // so the line never runs under a node it does not touch.
            let gy = (PAD + (r1 + 1) * (NODE_H + GAP_Y)) as f64 - GAP_Y as f64 / 2.0;
            let (ax, bx) = (x1 + GAP_X as f64 / 2.0, x2 - GAP_X as f64 / 2.0);
            format!(
                "M{x1},{y1} C{ax},{y1} {x1},{gy} {ax},{gy} L{bx},{gy} C{x2},{gy} {bx},{y2} {x2},{y2}"
            )
        } else {
            let mx = (x1 + x2) / 2.0;
            format!("M{x1},{y1} C{mx},{y1} {mx},{y2} {x2},{y2}")
        };
        let _ = write!(
            s,
            "<path class=\"edge\" data-from=\"{}\" data-to=\"{}\" d=\"{d}\" fill=\"none\" stroke=\"#8a93a6\" stroke-width=\"1.3\" marker-end=\"url(#arrow)\"/>",
            esc(a),
            esc(b)
        );
    }
    for n in g.nodes.values() {
        let Some((x, y)) = xy(&n.id) else { continue };
        let (fill, stroke, rx) = match n.kind {
            NodeKind::Run => ("#e7efff", "#3b6fd8", 4),
            NodeKind::Data => ("#f1f3f6", "#8a93a6", 20),
            NodeKind::State => ("#fff6da", "#c79a00", 2),
        };
        let (dom_id, line1, line2, title) = match (&n.run, &n.data) {
            (Some(r), _) => (
                format!("run-{}", r.id),
                format!("{} {}", run_kind_label(r.kind), r.plugin),
                format!(
                    "{}v {}",
                    r.target
                        .as_deref()
                        .map(|t| format!("{t} · "))
                        .unwrap_or_default(),
                    short(&r.version_id)
                ),
                format!(
                    "run {}\n{} at {}\ntarget {}\nversion {}",
                    r.id,
                    run_kind_label(r.kind),
                    r.started_at,
                    r.target.as_deref().unwrap_or("-"),
                    r.version_id
                ),
            ),
            (None, Some(d)) => (
                format!("data-{}", n.id),
                std::path::Path::new(&d.path)
                    .file_name()
                    .map(|f| f.to_string_lossy().into_owned())
                    .unwrap_or_else(|| d.path.clone()),
                format!(
                    "{} rows · {}",
                    d.rows,
                    short(d.fingerprint.trim_start_matches("fp1:"))
                ),
                format!("{}\n{} rows\n{}", d.path, d.rows, d.fingerprint),
            ),
            (None, None) => (
                format!("state-{}", n.id),
                n.label.clone(),
                "fitted state".into(),
                n.label.clone(),
            ),
        };
        let _ = write!(
            s,
            "<g class=\"node {kind}\" id=\"{id}\"><title>{title}</title>\
             <rect x=\"{x}\" y=\"{y}\" width=\"{NODE_W}\" height=\"{NODE_H}\" rx=\"{rx}\" fill=\"{fill}\" stroke=\"{stroke}\"/>\
             <text x=\"{tx}\" y=\"{t1}\" font-weight=\"600\">{l1}</text><text x=\"{tx}\" y=\"{t2}\" fill=\"#4b5263\">{l2}</text></g>",
            kind = n.kind.as_str(),
            id = esc(&dom_id),
            title = esc(&title),
            tx = x + 10,
            t1 = y + 18,
            t2 = y + 34,
            l1 = esc(&clip(&line1, 31)),
            l2 = esc(&clip(&line2, 34)),
        );
    }
    s.push_str("</svg>");
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use kiln_quality::{DriftReport, DriftStatus};
    use serde_json::json;

    fn run(
        id: &str,
        kind: &str,
        target: Option<&str>,
        inputs: &[&str],
        outputs: &[&str],
    ) -> RunRecord {
        let ds = |p: &&str| json!({"path": p, "fingerprint": format!("fp1:{}", p.replace(['/', '.', '@'], "")), "rows": 7, "schema": []});
        serde_json::from_value(json!({
            "id": id,
            "kind": kind,
            "started_at": "2026-01-01T10:00:00.000000Z",
            "finished_at": "2026-01-01T10:00:01.000000Z",
            "status": "ok",
            "target": target,
            "transform": {"version_id": format!("{id}-version-id-long"), "plugin_id": "p", "plugin": "scaler 1.0.0", "params": "{}"},
            "wit_version": "0.1.0",
            "host_version": "0.1.0",
            "engine": {"wasmtime": "48", "determinism": [], "deadline_ms": 1, "memory_limit": 1, "max_output_ratio": 1},
            "batch_size": 1,
            "inputs": inputs.iter().map(ds).collect::<Vec<_>>(),
            "outputs": outputs.iter().map(ds).collect::<Vec<_>>(),
        }))
        .unwrap()
    }

    fn name(n: &str, description: &str) -> NameRecord {
        serde_json::from_value(json!({
            "name": n, "description": description, "owner": "ml",
            "created_at": "2026-01-01T09:00:00Z",
            "tags": {"prod": "aaaaaaaaaaaaaaaa1"},
            "history": [
                {"time": "t", "tag": "dev", "to": "aaaaaaaaaaaaaaaa1", "action": "fit", "reason": ""},
                {"time": "t", "tag": "dev", "from": "aaaaaaaaaaaaaaaa1", "to": "bbbbbbbbbbbbbbbb2", "action": "fit", "reason": ""},
                {"time": "t", "tag": "prod", "to": "aaaaaaaaaaaaaaaa1", "action": "promote", "reason": ""},
            ],
        }))
        .unwrap()
    }

    fn now() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-01-01T13:00:01Z")
            .unwrap()
            .with_timezone(&Utc)
    }

    #[test]
    fn text_from_the_store_is_escaped() {
        let cases = [
            ("plain", "plain"),
            (
                "<script>alert(1)</script>",
                "&lt;script&gt;alert(1)&lt;/script&gt;",
            ),
            ("a & b", "a &amp; b"),
            (r#"" onmouseover="x"#, "&quot; onmouseover=&quot;x"),
            ("it's", "it&#39;s"),
        ];
        for (raw, want) in cases {
            assert_eq!(esc(raw), want, "{raw}");
        }
        // A hostile description and run target end up inert on the page.
        let snap = Snapshot {
            names: vec![name("scaler", "<img src=x onerror=alert(1)>")],
            runs: vec![run(
                "0001",
                "run",
                Some("scaler@<em>prod</em>"),
                &["in.csv"],
                &["out.csv"],
            )],
            ..Snapshot::default()
        };
        let html = render(&View::new(
            snap,
            &Access::default(),
            "anonymous",
            vec![],
            now(),
        ));
        assert!(!html.contains("<img"), "{html}");
        assert!(html.contains("&lt;img src=x onerror=alert(1)&gt;"));
        assert!(!html.contains("<em>"));
        assert!(html.contains("scaler@&lt;em&gt;prod&lt;/em&gt;"));
    }

    #[test]
    fn query_tokens_are_decoded_and_headers_win() {
        assert_eq!(
            query_param("a=1&token=kiln_ab%2Bc+d", "token").as_deref(),
            Some("kiln_ab+c d")
        );
        assert_eq!(query_param("token", "token").as_deref(), Some(""));
        assert_eq!(query_param("x=1", "token"), None);
        assert_eq!(percent_decode("%zz%4"), "%zz%4");
        let h = with_query_token(HeaderMap::new(), "token=kiln_1").unwrap();
        assert_eq!(h[header::AUTHORIZATION], "Bearer kiln_1");
        let mut given = HeaderMap::new();
        given.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("Bearer kiln_2"),
        );
        let h = with_query_token(given, "token=kiln_1").unwrap();
        assert_eq!(h[header::AUTHORIZATION], "Bearer kiln_2");
        assert!(with_query_token(HeaderMap::new(), "token=a%0Ab").is_err());
    }

    #[test]
    fn the_dashboard_serves_prod_else_the_tag_moved_last() {
        let mut n = name("scaler", "");
        assert_eq!(dashboard_tag(&n), Some("prod"));
        n.tags.remove("prod");
        n.tags.insert("dev".into(), "bbbbbbbbbbbbbbbb2".into());
        n.tags.insert("staging".into(), "aaaaaaaaaaaaaaaa1".into());
        // The last move was of prod (gone); before it, dev.
        assert_eq!(dashboard_tag(&n), Some("dev"));
        n.history.clear();
        assert_eq!(dashboard_tag(&n), Some("dev"), "no history: the first tag");
        n.tags.clear();
        assert_eq!(dashboard_tag(&n), None);
    }

    #[test]
    fn ages_read_like_a_person_would_say_them() {
        for (secs, want) in [
            (0, "0 s ago"),
            (59, "59 s ago"),
            (60, "1 min ago"),
            (3599, "59 min ago"),
            (3 * 3600 + 5, "3 h ago"),
            (47 * 3600, "47 h ago"),
            (3 * 86_400, "3 d ago"),
        ] {
            assert_eq!(ago(secs), want, "{secs}");
        }
        assert_eq!(age_secs("2026-01-01T10:00:01Z", now()), Some(3 * 3600));
        assert_eq!(age_secs("yesterday", now()), None);
        assert_eq!(split_table_label("/t/txn@3"), ("/t/txn".into(), Some(3)));
        assert_eq!(split_table_label("/t/a@b/txn"), ("/t/a@b/txn".into(), None));
    }

    #[test]
    fn layout_puts_inputs_left_of_runs_left_of_outputs() {
        // raw -> fit (-> state); raw -> run -> mid -> run2 -> out
        let runs = [
            run("0001", "fit", Some("s@dev"), &["raw.csv"], &[]),
            run("0002", "run", Some("s@dev"), &["raw.csv"], &["mid.csv"]),
            run("0003", "run", None, &["mid.csv"], &["out.csv"]),
        ];
        let mut fit = runs[0].clone();
        fit.transform.state_id = Some("feedfacecafe".into());
        let g = LineageGraph::from_runs([&fit, &runs[1], &runs[2]]);
        let l = layout(&g);
        let col = |id: &str| l.at[id].0;
        let (raw, mid, out) = ("d_rawcsv", "d_midcsv", "d_outcsv");
        let (r1, r2, r3) = ("r_0001", "r_0002", "r_0003");
        assert_eq!(col(raw), 0);
        assert_eq!((col(r1), col(r2)), (1, 1));
        assert_eq!(col("s_feedfaceca"), 2);
        assert_eq!(col(mid), 2);
        assert_eq!(col(r3), 3);
        assert_eq!(col(out), 4);
        assert_eq!((l.columns, l.rows), (5, 2));
        // Runs in a column keep their time order; no two nodes share a cell.
        assert!(l.at[r1].1 < l.at[r2].1);
        let cells: BTreeSet<_> = l.at.values().collect();
        assert_eq!(cells.len(), l.at.len());
        // Every run is drawn as a node with its id, every edge as a path.
        let svg = lineage_svg(&g);
        for r in ["0001", "0002", "0003"] {
            assert!(svg.contains(&format!("id=\"run-{r}\"")), "{r}: {svg}");
        }
        assert_eq!(svg.matches("class=\"edge\"").count(), 6);
        assert_eq!(svg.matches("class=\"node run\"").count(), 3);
        assert_eq!(svg.matches("class=\"node data\"").count(), 3);
        assert_eq!(svg.matches("class=\"node state\"").count(), 1);
    }

    #[test]
    fn a_run_that_writes_its_own_input_does_not_hang_the_layout() {
        let r = run("0001", "run", None, &["same.csv"], &["same.csv"]);
        let g = LineageGraph::from_runs([&r]);
        let l = layout(&g);
        assert_eq!(l.at.len(), 2);
        assert!(lineage_svg(&g).contains("id=\"run-0001\""));
    }

    #[test]
    fn the_page_shows_only_what_the_principal_may_read() {
        // Access control off: everything, and no principal.
        let snap = || Snapshot {
            names: vec![name("scaler", "z-scores"), name("secret", "hidden")],
            runs: vec![
                run("0001", "fit", Some("scaler@dev"), &["train.csv"], &[]),
                run(
                    "0002",
                    "materialize",
                    Some("scaler@prod"),
                    &["ev.csv"],
                    &["/t/txn@0"],
                ),
                run(
                    "0003",
                    "materialize",
                    Some("scaler@prod"),
                    &["ev2.csv"],
                    &["/t/txn@1"],
                ),
                run(
                    "0004",
                    "run",
                    Some("secret@prod"),
                    &["s.csv"],
                    &["s-out.csv"],
                ),
                run("0005", "run", None, &["loose.csv"], &["loose-out.csv"]),
            ],
            drifts: vec![DriftRecord::new(
                "secret",
                "secret@prod",
                "v",
                "alice",
                vec!["live.csv".into()],
                DriftReport {
                    rows: [1, 2],
                    features: vec![],
                    missing: vec!["age".into()],
                    status: DriftStatus::Warn,
                },
            )],
            ..Snapshot::default()
        };
        let v = View::new(snap(), &Access::default(), "anonymous", vec![], now());
        assert_eq!(v.principal, None);
        assert_eq!(v.names.len(), 2);
        assert_eq!(v.graph_runs, (5, 5));
        assert_eq!(v.run_counts[NO_NAME].total, 1);
        assert_eq!(v.tables.len(), 1);
        let t = &v.tables[0];
        assert_eq!(
            (
                t.path.as_str(),
                t.table_version,
                t.materializations,
                t.age_secs
            ),
            ("/t/txn", Some(1), 2, Some(3 * 3600))
        );
        let html = render(&v);
        assert!(html.contains("id=\"drift-secret\" data-name=\"secret\" data-status=\"warn\""));
        assert!(html.contains("data-table=\"/t/txn\" data-table-version=\"1\""));
        assert!(html.contains("<td class=\"age\">3 h ago</td>"));
        assert!(html.contains("data-tag=\"prod\" data-version=\"aaaaaaaaaaaaaaaa1\""));
        assert!(html.contains("<td class=\"num versions\">2</td>"));

        // On, and bob may read scaler only.
        let on = access_with_reader("bob", "scaler");
        let v = View::new(snap(), &on, "bob", vec![], now());
        assert_eq!(v.principal.as_deref(), Some("bob"));
        let names: Vec<&str> = v.names.iter().map(|n| n.name.as_str()).collect();
        assert_eq!(names, ["scaler"]);
        assert_eq!(v.graph_runs, (3, 3), "no secret run, no run of no name");
        assert!(v.drifts.is_empty());
        assert_eq!(v.run_counts.keys().collect::<Vec<_>>(), ["scaler"]);
        let html = render(&v);
        assert!(
            !html.contains("secret") && !html.contains("loose"),
            "{html}"
        );
        assert!(html.contains("data-principal=\"bob\""));
    }

    /// Access control on, with `who` a reader of `name` only.
    fn access_with_reader(who: &str, name: &str) -> Access {
        let s = Store::in_memory().with_actor("alice");
        s.enable_access(None).unwrap();
        s.grant("readers", name, Some(Permission::Read)).unwrap();
        s.set_member("readers", who, true).unwrap();
        s.access().unwrap()
    }

    #[test]
    fn the_graph_is_capped_to_the_most_recent_runs() {
        let runs: Vec<RunRecord> = (0..MAX_RUNS + 7)
            .map(|i| {
                run(
                    &format!("{i:04}"),
                    "run",
                    None,
                    &["in.csv"],
                    &[&format!("o{i}.csv")],
                )
            })
            .collect();
        let snap = Snapshot {
            runs,
            ..Snapshot::default()
        };
        let v = View::new(snap, &Access::default(), "anonymous", vec![], now());
        assert_eq!(v.graph_runs, (MAX_RUNS + 7, MAX_RUNS));
        let html = render(&v);
        assert!(html.contains(&format!(
            "The {MAX_RUNS} most recent of {} successful runs",
            MAX_RUNS + 7
        )));
        assert!(!html.contains("id=\"run-0006\"") && html.contains("id=\"run-0007\""));
        assert_eq!(html.matches("class=\"node run\"").count(), MAX_RUNS);
    }

    #[test]
    fn an_empty_store_says_how_to_add_a_name() {
        let v = View::new(
            Snapshot::default(),
            &Access::default(),
            "anonymous",
            vec![],
            now(),
        );
        let html = render(&v);
        assert!(html.contains("id=\"no-names\"") && html.contains("kiln fit PLUGIN.wasm"));
        let missing = Snapshot {
            problem: Some(StoreProblem::Missing),
            dir: "/nowhere/.kiln".into(),
            ..Snapshot::default()
        };
        let html = render(&View::new(
            missing,
            &Access::default(),
            "anonymous",
            vec![],
            now(),
        ));
        assert!(html.contains("id=\"no-store\"") && html.contains("/nowhere/.kiln"));
        for attr in ["href=\"", "src=\""] {
            for (i, _) in html.match_indices(attr) {
                assert!(
                    html[i + attr.len()..].starts_with('#'),
                    "{attr} not in-page at {i}"
                );
            }
        }
    }
}
