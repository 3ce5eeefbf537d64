//! The dashboard (issue 17): `kiln ui` over a store built with the CLI. The
//! page shows what the CLI itself reports, value for value (tags and
//! version ids from `kiln versions --json`, runs from `kiln lineage log
//! --json`, the table version from `kiln materialize --json`, the drift
//! status from `kiln drift --json`, the call count from the requests sent
//! here); it loads nothing from another host; headless Chromium renders the
//! same elements and a screenshot that is not blank. With access control
//! on, it needs a token and shows only what the token's principal may read.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};

use serde_json::Value;

use crate::support::{
    chromium, customers_csv, dump_dom, halves, kiln, kiln_ok, plugin_path, s, screenshot,
};

fn json(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

/// A `kiln ui` child process, killed on drop.
struct Ui {
    child: Child,
    /// `http://ADDR/ui`.
    url: String,
    agent: ureq::Agent,
}

impl Drop for Ui {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `kiln ui --bind 127.0.0.1:0 --store STORE`; waits for its first line,
/// `dashboard at http://ADDR/ui`. Its stderr goes to `log`.
fn start(store: &str, log: &Path) -> Ui {
    let mut child = Command::new(env!("CARGO_BIN_EXE_kiln"))
        .args(["ui", "--bind", "127.0.0.1:0", "--store", store])
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(log).unwrap())
        .spawn()
        .expect("kiln ui starts");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let Some(url) = line.trim().strip_prefix("dashboard at ") else {
        let _ = child.kill();
        panic!(
            "the first line should name the page, got {line:?}; stderr:\n{}",
            std::fs::read_to_string(log).unwrap_or_default()
        );
    };
    assert!(
        url.starts_with("http://127.0.0.1:") && url.ends_with("/ui"),
        "{url}"
    );
    Ui {
        url: url.to_owned(),
        child,
        agent: ureq::Agent::config_builder()
            .http_status_as_error(false)
            .build()
            .into(),
    }
}

/// A reply: status, headers we look at, body.
struct Page {
    status: u16,
    headers: BTreeMap<String, String>,
    body: String,
}

impl Ui {
    fn base(&self) -> &str {
        self.url.trim_end_matches("/ui")
    }

    /// GET the page, with `query` and an optional bearer token header.
    fn get(&self, query: &str, bearer: Option<&str>) -> Page {
        let mut req = self.agent.get(format!("{}{query}", self.url));
        if let Some(t) = bearer {
            req = req.header("Authorization", format!("Bearer {t}"));
        }
        let mut r = req.call().unwrap();
        let headers = r
            .headers()
            .iter()
            .map(|(k, v)| (k.as_str().to_owned(), v.to_str().unwrap_or("").to_owned()))
            .collect();
        Page {
            status: r.status().as_u16(),
            headers,
            body: r.body_mut().read_to_string().unwrap(),
        }
    }

    /// POST JSON rows to a transform; the status.
    fn transform(&self, name: &str, rows: &str) -> u16 {
        self.agent
            .post(format!("{}/v1/transform/{name}", self.base()))
            .header("Content-Type", "application/json")
            .send(rows.as_bytes())
            .unwrap()
            .status()
            .as_u16()
    }
}

/// The attributes of the element whose `id` is `id`, or `None`.
fn element(html: &str, id: &str) -> Option<BTreeMap<String, String>> {
    let at = html.find(&format!(" id=\"{id}\""))?;
    let start = html[..at].rfind('<')?;
    let end = at + html[at..].find('>')?;
    Some(attributes(&html[start..end]))
}

/// `name="value"` pairs of one start tag.
fn attributes(tag: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut rest = tag;
    while let Some(eq) = rest.find("=\"") {
        let name = rest[..eq]
            .rsplit(|c: char| c.is_whitespace())
            .next()
            .unwrap_or("")
            .to_owned();
        let value_start = eq + 2;
        let Some(len) = rest[value_start..].find('"') else {
            break;
        };
        out.insert(name, rest[value_start..value_start + len].to_owned());
        rest = &rest[value_start + len + 1..];
    }
    out
}

/// The value of attribute `attr` of the element `id`, failing the test
/// with the page when either is missing.
fn attr(html: &str, id: &str, attr: &str) -> String {
    element(html, id)
        .unwrap_or_else(|| panic!("no element #{id} in:\n{html}"))
        .get(attr)
        .unwrap_or_else(|| panic!("#{id} has no {attr}"))
        .clone()
}

/// Every start tag `<tag ... class="...{class}..."...>` as attributes.
fn elements_with_class<'a>(html: &'a str, class: &'a str) -> Vec<BTreeMap<String, String>> {
    html.match_indices(&format!("class=\"{class}\""))
        .filter_map(|(at, _)| {
            let start = html[..at].rfind('<')?;
            let end = at + html[at..].find('>')?;
            Some(attributes(&html[start..end]))
        })
        .collect()
}

/// The page loads nothing from anywhere: every link and source is a
/// fragment of the page itself, there is no script, no stylesheet or font
/// from elsewhere.
fn assert_self_contained(html: &str) {
    for attr in ["href=", "src=", "action=", "srcset="] {
        for (i, _) in html.match_indices(attr) {
            let value = html[i + attr.len()..].trim_start_matches(['"', '\'']);
            assert!(
                value.starts_with('#'),
                "{attr} that leaves the page: {}",
                &html[i..(i + 80).min(html.len())]
            );
        }
    }
    let lower = html.to_ascii_lowercase();
    for banned in [
        "<script", "<link", "<img", "<iframe", "@import", "url(http", "url(//",
    ] {
        assert!(!lower.contains(banned), "the page has {banned}");
    }
    // The only absolute URL is the SVG namespace, which is a name, not a load.
    for (i, _) in lower.match_indices("http") {
        assert!(
            lower[i..].starts_with("http://www.w3.org/2000/svg\""),
            "an absolute URL: {}",
            &html[i..(i + 60).min(html.len())]
        );
    }
}

#[test]
fn kiln_ui_shows_names_lineage_tables_usage_and_drift_as_the_cli_reports_them() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let store = s(&dir.join("store")).to_owned();
    let k = |args: &[&str]| {
        let mut a = args.to_vec();
        a.extend(["--store", &store]);
        kiln_ok(&a)
    };
    let data = customers_csv();
    let (a, b) = halves(dir);
    let scaler = plugin_path("standard_scaler");

    // Two versions of `scaler`: prod on all customers, dev refitted on half.
    k(&[
        "fit",
        s(&scaler),
        "--input",
        s(&data),
        "--param",
        "columns=age,income",
        "--name",
        "scaler",
        "--description",
        "z-scores of <age> & income",
        "--owner",
        "ml-team",
    ]);
    k(&["promote", "scaler", "--from", "dev", "--to", "prod"]);
    k(&["fit", "scaler", "--input", s(&a)]);
    k(&[
        "run",
        "scaler@prod",
        "--input",
        s(&data),
        "--output",
        s(&dir.join("features.parquet")),
    ]);
    let table = dir.join("tables").join("customers");
    let m = json(&k(&[
        "materialize",
        "scaler@prod",
        "--input",
        s(&data),
        "--table",
        s(&table),
        "--entity",
        "customer_id",
        "--timestamp",
        "signup_at",
        "--json",
    ]));
    // Drift of prod against the other half: its exit code is its status's,
    // and the report is kept for the dashboard.
    let drift = kiln(&[
        "drift",
        "scaler@prod",
        "--input",
        s(&b),
        "--json",
        "--store",
        &store,
    ]);
    let report = json(&String::from_utf8_lossy(&drift.stdout));
    let status = report["status"].as_str().unwrap().to_owned();
    let code = match status.as_str() {
        "pass" => 0,
        "warn" => 3,
        "fail" => 4,
        other => panic!("status {other}"),
    };
    assert_eq!(drift.status.code(), Some(code), "{drift:?}");
    let stderr = String::from_utf8_lossy(&drift.stderr);
    assert!(
        !stderr.contains("warning"),
        "the report was not kept: {stderr}"
    );

    let versions = json(&k(&["versions", "scaler", "--json"]));
    let tags = versions["tags"].as_object().unwrap().clone();
    assert_eq!(tags.len(), 2, "dev and prod: {versions}");
    let version_count = versions["versions"].as_array().unwrap().len();
    assert_eq!(version_count, 2);
    let log = json(&k(&["lineage", "log", "--json", "--limit", "1000"]));
    let runs = log.as_array().unwrap();
    let drawn: Vec<&str> = runs
        .iter()
        .filter(|r| r["status"] == "ok" && r["kind"] != "verify")
        .map(|r| r["id"].as_str().unwrap())
        .collect();
    assert_eq!(drawn.len(), 5, "2 fits, a run, a materialize and its step");

    let ui = start(&store, &dir.join("ui.log"));
    // Calls that reach the transform: 4 good ones and 1 the plugin refuses.
    let sent = 5;
    for i in 0..sent - 1 {
        let rows = format!(
            r#"[{{"age":{},"income":{}}},{{"age":30,"income":1.5}}]"#,
            20 + i,
            1000 * i
        );
        assert_eq!(ui.transform("scaler", &rows), 200);
    }
    assert_eq!(ui.transform("scaler", r#"[{"name":"no age column"}]"#), 422);

    let page = ui.get("", None);
    assert_eq!(page.status, 200, "{}", page.body);
    assert_eq!(page.headers["content-type"], "text/html; charset=utf-8");
    assert!(
        page.headers["content-security-policy"].starts_with("default-src 'none'"),
        "{:?}",
        page.headers
    );
    let html = &page.body;
    assert_self_contained(html);

    // Names: description escaped, owner, tags -> the exact version ids.
    assert_eq!(attr(html, "name-scaler", "data-name"), "scaler");
    assert!(html.contains("z-scores of &lt;age&gt; &amp; income"));
    assert!(!html.contains("<age>"));
    assert!(html.contains("ml-team"));
    for (tag, id) in &tags {
        let id = id.as_str().unwrap();
        let li = elements_with_class(html, "tag")
            .into_iter()
            .find(|e| e["data-tag"] == *tag)
            .unwrap_or_else(|| panic!("no tag {tag}"));
        assert_eq!(li["data-version"], id, "{tag}");
        assert!(html.contains(&format!("<code title=\"{id}\">{}</code>", &id[..12])));
    }
    assert_ne!(tags["dev"], tags["prod"]);
    assert_eq!(
        attr(html, "name-scaler", "data-versions"),
        version_count.to_string()
    );

    // Lineage: one node per successful run, the note counts them.
    assert!(element(html, "lineage-graph").is_some());
    for id in &drawn {
        assert_eq!(attr(html, &format!("run-{id}"), "class"), "node run");
    }
    assert_eq!(elements_with_class(html, "node run").len(), drawn.len());
    assert_eq!(
        attr(html, "lineage-note", "data-runs"),
        drawn.len().to_string()
    );

    // Freshness: the table, its version and the version that wrote it.
    let row = elements_with_class(html, "table")
        .into_iter()
        .find(|e| e.contains_key("data-table"))
        .expect("a feature table row");
    assert_eq!(row["data-table"], s(&table));
    assert_eq!(row["data-table-version"], m["version"].to_string());
    assert_eq!(row["data-version"], m["version_id"].as_str().unwrap());
    assert_eq!(m["version_id"], tags["prod"]);
    assert!(
        html.contains(" s ago</td>") || html.contains(" min ago</td>"),
        "a fresh table is seconds or minutes old"
    );

    // Usage: the calls sent here, the one refused, the runs recorded.
    assert_eq!(attr(html, "route-scaler", "data-calls"), sent.to_string());
    assert_eq!(attr(html, "route-scaler", "data-errors"), "1");
    let counted = elements_with_class(html, "runs")
        .into_iter()
        .find(|e| e["data-name"] == "scaler")
        .expect("run counts of scaler");
    let logged = runs
        .iter()
        .filter(|r| {
            r["target"]
                .as_str()
                .is_some_and(|t| t.starts_with("scaler@"))
        })
        .count();
    assert_eq!(counted["data-runs"], logged.to_string());

    // Drift: the status `kiln drift --json` gave, each feature it compared.
    assert_eq!(attr(html, "drift-scaler", "data-status"), status);
    for f in report["features"].as_array().unwrap() {
        let name = f["name"].as_str().unwrap();
        assert!(
            element(html, &format!("drift-scaler-f-{name}")).is_some(),
            "no section for {name}"
        );
        assert!(html.contains(&format!("{:.4}", f["psi"].as_f64().unwrap())));
    }

    // Chromium renders the same elements, and the screenshot shows them.
    let Some(browser) = chromium("the dashboard in a browser") else {
        return;
    };
    let dom = dump_dom(browser, &ui.url);
    for id in [
        "names",
        "lineage-graph",
        "tables",
        "route-scaler",
        "drift-scaler",
        "principal",
    ] {
        assert!(element(&dom, id).is_some(), "#{id} missing after rendering");
    }
    for id in &drawn {
        assert!(element(&dom, &format!("run-{id}")).is_some(), "run {id}");
    }
    assert_eq!(attr(&dom, "drift-scaler", "data-status"), status);
    assert_eq!(attr(&dom, "route-scaler", "data-calls"), sent.to_string());
    let pixels = screenshot(browser, &ui.url, &dir.join("ui.png"), (1400, 1300));
    let count = |f: &dyn Fn(&[u8; 3]) -> bool| pixels.iter().filter(|p| f(p)).count();
    // The dark header band (#1d2330), the run boxes' blue fill (#e7efff)
    // and the state's yellow (#fff6da) must be drawn.
    let header = count(&|p| p[0] < 40 && p[1] < 45 && (40..60).contains(&p[2]));
    let run_fill =
        count(&|p| (225..236).contains(&p[0]) && (235..244).contains(&p[1]) && p[2] > 250);
    let state_fill =
        count(&|p| p[0] > 250 && (240..250).contains(&p[1]) && (210..226).contains(&p[2]));
    assert!(
        header > 1400 * 30 && run_fill > 4 * 150 * 30 && state_fill > 150 * 30,
        "screenshot looks blank: {header} header, {run_fill} run, {state_fill} state pixels of {}",
        pixels.len()
    );
}

#[test]
fn with_access_control_the_page_needs_a_token_and_shows_only_what_it_may_read() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let store = s(&dir.join("store")).to_owned();
    let k = |args: &[&str]| {
        let mut a = args.to_vec();
        a.extend(["--store", &store, "--as", "alice"]);
        kiln_ok(&a)
    };
    for (name, column) in [("scaler", "age"), ("hidden", "income")] {
        k(&[
            "fit",
            s(&plugin_path("standard_scaler")),
            "--input",
            s(&customers_csv()),
            "--param",
            &format!("columns={column}"),
            "--name",
            name,
        ]);
        k(&[
            "drift",
            &format!("{name}@dev"),
            "--input",
            s(&customers_csv()),
        ]);
    }
    k(&["access", "enable"]);
    k(&[
        "access", "grant", "readers", "--on", "scaler", "--allow", "read",
    ]);
    k(&["access", "grant", "readers", "--member", "bob"]);
    let t = json(&k(&["access", "token", "create", "bob", "--json"]));
    let token = t["token"].as_str().unwrap().to_owned();

    let ui = start(&store, &dir.join("ui.log"));
    for (query, bearer) in [
        ("", None),
        ("?token=kiln_nope", None),
        ("", Some("kiln_nope")),
    ] {
        let p = ui.get(query, bearer);
        assert_eq!(p.status, 401, "{query} {bearer:?}: {}", p.body);
        assert_eq!(p.headers["www-authenticate"], "Bearer realm=\"kiln\"");
        assert!(element(&p.body, "unauthorized").is_some() && p.body.contains("?token=TOKEN"));
        assert!(!p.body.contains("scaler") && !p.body.contains("hidden"));
    }
    for (query, bearer) in [
        (format!("?token={token}"), None),
        (String::new(), Some(token.as_str())),
    ] {
        let p = ui.get(&query, bearer);
        assert_eq!(p.status, 200, "{}", p.body);
        assert_eq!(attr(&p.body, "principal", "data-principal"), "bob");
        assert!(element(&p.body, "name-scaler").is_some());
        assert!(element(&p.body, "drift-scaler").is_some());
        assert!(element(&p.body, "route-scaler").is_some());
        assert!(
            !p.body.contains("hidden"),
            "bob may not read 'hidden': {}",
            p.body
        );
    }
    // A revoked token no longer opens the page, without a reload.
    k(&["access", "token", "revoke", t["id"].as_str().unwrap()]);
    assert_eq!(ui.get(&format!("?token={token}"), None).status, 401);
}

#[test]
fn a_store_without_names_still_gets_a_page_that_says_how_to_add_one() {
    let tmp = tempfile::tempdir().unwrap();
    let store = tmp.path().join("store");
    // No store at all.
    let ui = start(s(&store), &tmp.path().join("ui.log"));
    let p = ui.get("", None);
    assert_eq!(p.status, 200, "{}", p.body);
    assert!(element(&p.body, "no-store").is_some(), "{}", p.body);
    assert!(element(&p.body, "no-routes").is_some());
    assert_self_contained(&p.body);
    drop(ui);
    // A store with a plugin but no names.
    kiln_ok(&[
        "add",
        s(&plugin_path("standard_scaler")),
        "--store",
        s(&store),
    ]);
    let ui = start(s(&store), &tmp.path().join("ui2.log"));
    let p = ui.get("", None);
    assert_eq!(p.status, 200, "{}", p.body);
    assert!(element(&p.body, "no-store").is_none());
    assert!(element(&p.body, "no-names").is_some(), "{}", p.body);
    assert!(p
        .body
        .contains("kiln fit PLUGIN.wasm --input train.parquet --name NAME"));
    assert!(element(&p.body, "no-tables").is_some() && element(&p.body, "no-drift").is_some());
}
