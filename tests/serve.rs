//! `kiln serve` end to end: the real binary on loopback, a real HTTP client.
//! Replies equal `Transformer::apply` on the same rows bit for bit (JSON and
//! Arrow IPC); bad bodies get a clear 4xx and a trapping plugin a 5xx, and
//! the server keeps serving; concurrent clients all get the right answer;
//! metrics count the calls and parse as Prometheus text; `NAME@TAG` follows
//! tag moves made by other processes on reload while bundles stay pinned.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use arrow::array::{Array, ArrayRef, AsArray, Float64Array, Int64Array, RecordBatch, StringArray};
use arrow::datatypes::{Float64Type, UInt32Type};
use kiln_host::Params;
use serde_json::Value;

use crate::support::*;

pub(crate) const ARROW: &str = "application/vnd.apache.arrow.stream";
const HASH: &str = r#"{"buckets":64,"columns":["city","plan"]}"#;
const SCALE: &str = r#"{"columns":["age","income"]}"#;

/// A `kiln serve` child process, killed on drop.
pub(crate) struct Server {
    child: Child,
    base: String,
    agent: ureq::Agent,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `kiln serve ARGS` on a free port; waits for `listening on http://ADDR`.
/// Its stderr goes to `log` (shown if it does not start).
pub(crate) fn spawn(args: &[&str], log: &Path) -> Server {
    let mut child = Command::new(env!("CARGO_BIN_EXE_kiln"))
        .args(["serve", "--bind", "127.0.0.1:0"])
        .args(args)
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(log).unwrap())
        .spawn()
        .expect("kiln serve starts");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let Some(base) = line.trim().strip_prefix("listening on ") else {
        let _ = child.kill();
        panic!(
            "first line should name the address, got {line:?}; stderr:\n{}",
            std::fs::read_to_string(log).unwrap_or_default()
        );
    };
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    Server {
        base: base.to_owned(),
        child,
        agent,
    }
}

/// A server of three plugin files: `city` (hash_encode), `scaled`
/// (standard_scaler fitted on the customers, state in `dir`) and `boom`
/// (panicky: traps on every call).
fn start(dir: &Path, extra: &[&str]) -> Server {
    let state = dir.join("scaler.state");
    kiln_ok(&[
        "fit",
        s(&plugin_path("standard_scaler")),
        "--input",
        s(&customers_csv()),
        "--params",
        SCALE,
        "--state-out",
        s(&state),
    ]);
    let specs = [
        format!("city={},params={HASH}", s(&plugin_path("hash_encode"))),
        format!(
            "scaled={},state={},params={SCALE}",
            s(&plugin_path("standard_scaler")),
            s(&state)
        ),
        format!("boom={}", s(&plugin_path("panicky"))),
    ];
    let mut args: Vec<&str> = extra.to_vec();
    for spec in &specs {
        args.extend(["--transform", spec]);
    }
    spawn(&args, &dir.join("serve.log"))
}

impl Server {
    /// POST a body; (status, content type, body).
    pub(crate) fn post(
        &self,
        path: &str,
        content_type: &str,
        body: &[u8],
    ) -> (u16, String, Vec<u8>) {
        self.post_as(path, content_type, body, None)
    }

    /// POST a body with an optional bearer token; (status, content type, body).
    pub(crate) fn post_as(
        &self,
        path: &str,
        content_type: &str,
        body: &[u8],
        token: Option<&str>,
    ) -> (u16, String, Vec<u8>) {
        let mut req = self
            .agent
            .post(format!("{}{path}", self.base))
            .header("Content-Type", content_type);
        if let Some(t) = token {
            req = req.header("Authorization", format!("Bearer {t}"));
        }
        reply(req.send(body).unwrap())
    }

    /// GET with an optional bearer token; (status, content type, body).
    pub(crate) fn get_as(&self, path: &str, token: Option<&str>) -> (u16, String, Vec<u8>) {
        let mut req = self.agent.get(format!("{}{path}", self.base));
        if let Some(t) = token {
            req = req.header("Authorization", format!("Bearer {t}"));
        }
        reply(req.call().unwrap())
    }

    /// POST without a body, reply as JSON.
    fn post_json(&self, path: &str) -> (u16, Value) {
        let (status, _, body) = self.post(path, "application/json", b"");
        let v = serde_json::from_slice(&body).unwrap_or_else(|e| {
            panic!("{path}: not JSON ({e}): {}", String::from_utf8_lossy(&body))
        });
        (status, v)
    }

    fn transforms(&self) -> Vec<Value> {
        let (status, body) = self.get("/v1/transforms");
        assert_eq!(status, 200, "{body}");
        serde_json::from_str(&body).unwrap()
    }

    fn get(&self, path: &str) -> (u16, String) {
        let mut r = self
            .agent
            .get(format!("{}{path}", self.base))
            .call()
            .unwrap();
        (r.status().as_u16(), r.body_mut().read_to_string().unwrap())
    }

    /// An error reply: its status and `error.kind`, checking it is JSON.
    fn error(&self, path: &str, content_type: &str, body: &[u8]) -> (u16, String, String) {
        let (status, ct, body) = self.post(path, content_type, body);
        assert_eq!(ct, "application/json");
        let v: Value = serde_json::from_slice(&body).expect("errors are JSON");
        let kind = v["error"]["kind"].as_str().expect("error.kind").to_owned();
        let message = v["error"]["message"]
            .as_str()
            .expect("error.message")
            .to_owned();
        (status, kind, message)
    }
}

/// A reply's status, content type and body (up to 1 GiB).
fn reply(mut r: ureq::http::Response<ureq::Body>) -> (u16, String, Vec<u8>) {
    let ct = r
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    let body = r
        .body_mut()
        .with_config()
        .limit(1 << 30)
        .read_to_vec()
        .unwrap();
    (r.status().as_u16(), ct, body)
}

pub(crate) fn ipc(batches: &[RecordBatch]) -> Vec<u8> {
    let mut w =
        arrow::ipc::writer::StreamWriter::try_new(Vec::new(), &batches[0].schema()).unwrap();
    for b in batches {
        w.write(b).unwrap();
    }
    w.into_inner().unwrap()
}

pub(crate) fn from_ipc(bytes: &[u8]) -> Vec<RecordBatch> {
    arrow::ipc::reader::StreamReader::try_new(std::io::Cursor::new(bytes), None)
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

/// The library's answer for hash_encode (the oracle).
fn hash_oracle(batch: &RecordBatch) -> RecordBatch {
    load("hash_encode")
        .transformer(&Params::from_json(HASH).unwrap(), None)
        .unwrap()
        .apply(batch)
        .unwrap()
}

fn cities() -> RecordBatch {
    RecordBatch::try_from_iter([
        (
            "city",
            Arc::new(StringArray::from(vec![Some("Paris"), None, Some("Lyon")])) as ArrayRef,
        ),
        (
            "plan",
            Arc::new(StringArray::from(vec!["pro", "plus", "free"])) as ArrayRef,
        ),
    ])
    .unwrap()
}

const CITIES_JSON: &str =
    r#"[{"city":"Paris","plan":"pro"},{"city":null,"plan":"plus"},{"city":"Lyon","plan":"free"}]"#;

/// `hash_encode` output column `name` as JSON values (nulls as null).
fn u32_json(b: &RecordBatch, name: &str) -> Vec<Value> {
    let a = b.column_by_name(name).unwrap().as_primitive::<UInt32Type>();
    (0..a.len())
        .map(|i| {
            if a.is_null(i) {
                Value::Null
            } else {
                Value::from(a.value(i))
            }
        })
        .collect()
}

#[test]
fn json_and_arrow_replies_equal_the_library_bit_for_bit() {
    let dir = tempfile::tempdir().unwrap();
    let srv = start(dir.path(), &[]);
    // Arrow IPC: the whole customer table, several batches, both transforms.
    let input = read(&customers_csv());
    let (status, ct, body) = srv.post("/v1/transform/city", ARROW, &ipc(&input));
    assert_eq!((status, ct.as_str()), (200, ARROW));
    let got = from_ipc(&body);
    let want: Vec<RecordBatch> = input.iter().map(hash_oracle).collect();
    assert_eq!(got, want);

    let state =
        kiln_host::State::from_bytes(std::fs::read(dir.path().join("scaler.state")).unwrap());
    let mut scaler = load("standard_scaler")
        .transformer(&Params::from_json(SCALE).unwrap(), Some(&state))
        .unwrap();
    let (status, _, body) = srv.post("/v1/transform/scaled", ARROW, &ipc(&input));
    assert_eq!(status, 200);
    let got = from_ipc(&body);
    for (g, i) in got.iter().zip(&input) {
        let w = scaler.apply(i).unwrap();
        for name in ["age", "income"] {
            let bits = |b: &RecordBatch| -> Vec<u64> {
                let a = b
                    .column_by_name(name)
                    .unwrap()
                    .as_primitive::<Float64Type>();
                a.values().iter().map(|v| v.to_bits()).collect()
            };
            assert_eq!(bits(g), bits(&w), "{name}");
        }
    }

    // JSON array and JSON-lines: same rows, same numbers as the library on
    // a batch built by hand.
    let want = hash_oracle(&cities());
    let (status, ct, body) = srv.post(
        "/v1/transform/city",
        "application/json",
        CITIES_JSON.as_bytes(),
    );
    assert_eq!((status, ct.as_str()), (200, "application/json"));
    let rows: Vec<Value> = serde_json::from_slice(&body).unwrap();
    assert_eq!(rows.len(), 3);
    for col in ["city", "plan"] {
        let got: Vec<Value> = rows.iter().map(|r| r[col].clone()).collect();
        assert_eq!(got, u32_json(&want, col), "{col}");
    }
    let lines = "{\"city\":\"Paris\",\"plan\":\"pro\"}\n{\"city\":null,\"plan\":\"plus\"}\n{\"city\":\"Lyon\",\"plan\":\"free\"}\n";
    let (status, ct, body) = srv.post(
        "/v1/transform/city",
        "application/x-ndjson",
        lines.as_bytes(),
    );
    assert_eq!((status, ct.as_str()), (200, "application/x-ndjson"));
    let rows: Vec<Value> = std::str::from_utf8(&body)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let got: Vec<Value> = rows.iter().map(|r| r["city"].clone()).collect();
    assert_eq!(got, u32_json(&want, "city"));

    // Floats through JSON: the reply parses back to the library's bits.
    let raw = RecordBatch::try_from_iter([
        ("age", Arc::new(Int64Array::from(vec![18, 66])) as ArrayRef),
        (
            "income",
            Arc::new(Float64Array::from(vec![28996.97, 67638.57])) as ArrayRef,
        ),
    ])
    .unwrap();
    let w = scaler.apply(&raw).unwrap();
    let body = br#"[{"age":18,"income":28996.97},{"age":66,"income":67638.57}]"#;
    let (status, _, reply) = srv.post("/v1/transform/scaled", "application/json", body);
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&reply));
    let rows: Vec<Value> = serde_json::from_slice(&reply).unwrap();
    for name in ["age", "income"] {
        let want = w
            .column_by_name(name)
            .unwrap()
            .as_primitive::<Float64Type>();
        for (i, r) in rows.iter().enumerate() {
            assert_eq!(
                r[name].as_f64().unwrap().to_bits(),
                want.value(i).to_bits(),
                "{name} row {i}"
            );
        }
    }
}

#[test]
fn bad_requests_get_clear_4xx_and_the_server_keeps_serving() {
    let dir = tempfile::tempdir().unwrap();
    let srv = start(dir.path(), &["--max-body", "100000"]);
    // (name, content type, body, status, error kind, the message says)
    type Case = (
        &'static str,
        &'static str,
        Vec<u8>,
        u16,
        &'static str,
        &'static str,
    );
    let cases: Vec<Case> = vec![
        (
            "city",
            "application/json",
            b"[{\"city\":".to_vec(),
            400,
            "bad_request",
            "not a JSON array",
        ),
        (
            "city",
            "application/json",
            b"[1, 2]".to_vec(),
            400,
            "bad_request",
            "row 0 is not a JSON object",
        ),
        (
            "city",
            "application/json",
            b"[]".to_vec(),
            400,
            "bad_request",
            "no rows",
        ),
        (
            "city",
            "application/x-ndjson",
            b"{\"city\":\"a\"}\nnot json".to_vec(),
            400,
            "bad_request",
            "line 2",
        ),
        (
            "city",
            ARROW,
            b"definitely not arrow".to_vec(),
            400,
            "bad_request",
            "Arrow IPC",
        ),
        (
            "city",
            "text/csv",
            b"city\nParis".to_vec(),
            415,
            "unsupported_media_type",
            "application/json",
        ),
        (
            "city",
            "application/json",
            b"[{\"town\":\"Paris\"}]".to_vec(),
            422,
            "invalid_input",
            "city",
        ),
        (
            "nope",
            "application/json",
            CITIES_JSON.as_bytes().to_vec(),
            404,
            "not_found",
            "no transform named 'nope'",
        ),
        (
            "city",
            "application/json",
            vec![b' '; 200_000],
            413,
            "payload_too_large",
            "",
        ),
        (
            "boom",
            "application/json",
            CITIES_JSON.as_bytes().to_vec(),
            500,
            "trap",
            "kiln test panic",
        ),
    ];
    for (name, ct, body, status, kind, says) in cases {
        let (s, k, m) = srv.error(&format!("/v1/transform/{name}"), ct, &body);
        assert_eq!((s, k.as_str()), (status, kind), "{name} {ct}: {m}");
        assert!(m.contains(says), "{name} {ct}: '{m}' should say '{says}'");
        // After every bad request, a good one still works.
        let (s, _, reply) = srv.post(
            "/v1/transform/city",
            "application/json",
            CITIES_JSON.as_bytes(),
        );
        assert_eq!(s, 200, "{}", String::from_utf8_lossy(&reply));
    }
    let (s, body) = srv.get("/healthz");
    assert_eq!((s, body.as_str()), (200, r#"{"status":"ok"}"#));
    let (s, _) = srv.get("/no/such/route");
    assert_eq!(s, 404);
    let (s, body) = srv.get("/v1/transform/city");
    assert_eq!(s, 405, "{body}");
    assert!(body.contains("use POST"), "{body}");
    // One pretty-printed object is one row.
    let (s, _, reply) = srv.post(
        "/v1/transform/city",
        "application/json",
        b"{\n  \"city\": \"Paris\",\n  \"plan\": \"pro\"\n}\n",
    );
    assert_eq!(s, 200, "{}", String::from_utf8_lossy(&reply));
    let row: Value = serde_json::from_slice(&reply).unwrap();
    assert_eq!(row["city"], u32_json(&hash_oracle(&cities()), "city")[0]);
}

#[test]
fn concurrent_clients_get_their_own_answers_and_metrics_count_them() {
    let dir = tempfile::tempdir().unwrap();
    let srv = start(dir.path(), &[]);
    let input = read(&customers_csv());
    // Each client sends a different slice, so answers cannot be swapped unnoticed.
    let slices: Vec<RecordBatch> = (0..4).map(|i| input[0].slice(i * 5, 5 + i)).collect();
    let per_client = 25;
    std::thread::scope(|s| {
        for b in &slices {
            let srv = &srv;
            s.spawn(move || {
                let want = hash_oracle(b);
                let body = ipc(std::slice::from_ref(b));
                for _ in 0..per_client {
                    let (status, _, reply) = srv.post("/v1/transform/city", ARROW, &body);
                    assert_eq!(status, 200);
                    assert_eq!(from_ipc(&reply), vec![want.clone()]);
                }
            });
        }
    });
    let (status, text) = srv.get("/metrics");
    assert_eq!(status, 200);
    let calls = 4 * per_client;
    let rows: usize = slices.iter().map(|b| b.num_rows() * per_client).sum();
    for line in [
        format!("kiln_transform_calls_total{{transform=\"city\"}} {calls}"),
        "kiln_transform_errors_total{transform=\"city\"} 0".to_owned(),
        format!("kiln_transform_rows_in_total{{transform=\"city\"}} {rows}"),
        format!("kiln_transform_rows_out_total{{transform=\"city\"}} {rows}"),
        format!("kiln_transform_latency_seconds_bucket{{transform=\"city\",le=\"+Inf\"}} {calls}"),
        format!("kiln_transform_latency_seconds_count{{transform=\"city\"}} {calls}"),
        "kiln_transform_calls_total{transform=\"scaled\"} 0".to_owned(),
        "# TYPE kiln_transform_latency_seconds histogram".to_owned(),
    ] {
        assert!(
            text.lines().any(|l| l == line),
            "missing '{line}' in\n{text}"
        );
    }
    // Buckets are cumulative: never decreasing.
    let counts: Vec<u64> = text
        .lines()
        .filter(|l| l.starts_with("kiln_transform_latency_seconds_bucket{transform=\"city\""))
        .map(|l| l.rsplit(' ').next().unwrap().parse().unwrap())
        .collect();
    assert!(counts.windows(2).all(|w| w[0] <= w[1]), "{counts:?}");
    assert!(
        text.lines()
            .any(|l| l == format!("kiln_http_transform_replies_total{{code=\"200\"}} {calls}")),
        "{text}"
    );
    check_prometheus_text(&text);

    // What is served, with ids computed independently of the server.
    let list = srv.transforms();
    let names: Vec<&str> = list.iter().map(|t| t["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["boom", "city", "scaled"]);
    let city = &list[1];
    let plugin_id = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(
        std::fs::read(plugin_path("hash_encode")).unwrap(),
    ));
    assert_eq!(city["plugin"], "hash-encode");
    assert_eq!(city["plugin_id"], plugin_id.as_str());
    assert_eq!(city["source_kind"], "plugin");
    assert_eq!(city["reloadable"], false);
    assert_eq!(city["state_id"], Value::Null);
    let params = Params::from_json(HASH).unwrap();
    assert_eq!(
        city["version_id"],
        kiln_host::store::version_id(&plugin_id, &params, None).as_str()
    );
    let state = std::fs::read(dir.path().join("scaler.state")).unwrap();
    let state_id = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&state));
    assert_eq!(list[2]["state_id"], state_id.as_str());

    // Plugin files are pinned: a reload changes nothing and says so.
    let (status, reply) = srv.post_json("/v1/reload");
    assert_eq!(status, 200, "{reply}");
    assert_eq!(reply["changed"], serde_json::json!([]));
    assert!(
        reply["transforms"]
            .as_array()
            .unwrap()
            .iter()
            .all(|t| t["status"] == "not_reloadable"),
        "{reply}"
    );
}

/// Every line of a Prometheus text exposition is a `# HELP`/`# TYPE`
/// comment or a sample `name{label="value",...} number` of a declared family.
fn check_prometheus_text(text: &str) {
    let mut families: Vec<(String, String)> = Vec::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# ") {
            let mut parts = rest.splitn(3, ' ');
            let (kw, name, what) = (parts.next(), parts.next(), parts.next());
            match (kw, name, what) {
                (Some("HELP"), Some(_), Some(_)) => {}
                (Some("TYPE"), Some(name), Some(kind)) => {
                    assert!(
                        ["counter", "gauge", "histogram", "summary", "untyped"].contains(&kind),
                        "{line}"
                    );
                    families.push((name.to_owned(), kind.to_owned()));
                }
                _ => panic!("bad comment line: {line}"),
            }
            continue;
        }
        let (series, value) = line.rsplit_once(' ').unwrap_or_else(|| panic!("{line}"));
        assert!(value.parse::<f64>().is_ok(), "value of {line}");
        let (name, labels) = match series.split_once('{') {
            Some((n, l)) => (n, l.strip_suffix('}').unwrap_or_else(|| panic!("{line}"))),
            None => (series, ""),
        };
        assert!(
            name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'),
            "metric name in {line}"
        );
        if !labels.is_empty() {
            for pair in labels.split("\",") {
                let (k, v) = pair.split_once("=\"").unwrap_or_else(|| panic!("{line}"));
                assert!(
                    k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'),
                    "{line}"
                );
                assert!(!v.trim_end_matches('"').contains('"'), "{line}");
            }
        }
        let declared = families.iter().any(|(f, kind)| {
            name == f
                || (kind == "histogram"
                    && ["_bucket", "_sum", "_count"]
                        .iter()
                        .any(|s| name.strip_suffix(s) == Some(f)))
        });
        assert!(declared, "{name} has no # TYPE before it");
    }
    assert!(!families.is_empty());
}

#[test]
fn a_bad_transform_spec_fails_before_serving() {
    let e = kiln_err(&["serve", "--bind", "127.0.0.1:0", "--transform", "nameonly"]);
    assert!(e.contains("expected NAME=PLUGIN.wasm"), "{e}");
    let spec = format!(
        "city={},params={{\"columns\":[\"city\"],\"buckets\":0}}",
        s(&plugin_path("hash_encode"))
    );
    let e = kiln_err(&["serve", "--bind", "127.0.0.1:0", "--transform", &spec]);
    assert!(
        e.contains("cannot serve 'city'") && e.contains("buckets"),
        "{e}"
    );
}

/// `kiln ARGS --store STORE --json` must succeed; its JSON.
fn k(store: &Path, args: &[&str]) -> Value {
    let mut all = args.to_vec();
    all.extend(["--store", s(store), "--json"]);
    serde_json::from_str(&kiln_ok(&all)).unwrap()
}

/// The scaler fitted on `input` with its state also written to `state`;
/// NAME@TAG moves to it. Returns the version id.
fn fit_scaler(store: &Path, input: &Path, tag: &str, state: &Path) -> String {
    let v = k(
        store,
        &[
            "fit",
            s(&plugin_path("standard_scaler")),
            "--input",
            s(input),
            "--params",
            SCALE,
            "--name",
            "scaler",
            "--tag",
            tag,
            "--state-out",
            s(state),
        ],
    );
    v["version_id"].as_str().unwrap().to_owned()
}

/// `age`/`income` bits of the reply of `name` to the customers table.
fn scaled_bits(srv: &Server, name: &str, input: &[RecordBatch]) -> Vec<u64> {
    let (status, _, body) = srv.post(&format!("/v1/transform/{name}"), ARROW, &ipc(input));
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    bits(&from_ipc(&body))
}

fn bits(batches: &[RecordBatch]) -> Vec<u64> {
    let mut out = Vec::new();
    for b in batches {
        for name in ["age", "income"] {
            let a = b
                .column_by_name(name)
                .unwrap()
                .as_primitive::<Float64Type>();
            out.extend(a.values().iter().map(|v| v.to_bits()));
        }
    }
    out
}

/// The library's answer with the scaler state in `state` (the oracle).
fn library_bits(state: &Path, input: &[RecordBatch]) -> Vec<u64> {
    let state = kiln_host::State::from_bytes(std::fs::read(state).unwrap());
    let mut t = load("standard_scaler")
        .transformer(&Params::from_json(SCALE).unwrap(), Some(&state))
        .unwrap();
    let out: Vec<RecordBatch> = input.iter().map(|b| t.apply(b).unwrap()).collect();
    bits(&out)
}

fn entry<'a>(list: &'a [Value], name: &str) -> &'a Value {
    list.iter()
        .find(|t| t["name"] == name)
        .unwrap_or_else(|| panic!("{name} not in {list:?}"))
}

#[test]
fn name_at_tag_follows_promote_and_rollback_on_reload_while_bundles_stay_pinned() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let store = d.join("store");
    let (a, b) = halves(d);
    let (s1, s2) = (d.join("v1.state"), d.join("v2.state"));
    let v1 = fit_scaler(&store, &a, "prod", &s1);
    let bundle = d.join("scaler.kiln");
    k(&store, &["export", "scaler@prod", "-o", s(&bundle)]);

    let srv = spawn(
        &[
            "scaler@prod",
            "canary=scaler@prod",
            "--transform",
            &format!("frozen={}", s(&bundle)),
            "--store",
            s(&store),
        ],
        &d.join("serve.log"),
    );
    let input = read(&customers_csv());
    let want1 = library_bits(&s1, &input);
    for name in ["scaler", "canary", "frozen"] {
        assert_eq!(scaled_bits(&srv, name, &input), want1, "{name}");
    }
    let list = srv.transforms();
    let scaler = entry(&list, "scaler");
    assert_eq!(scaler["source"], "scaler@prod");
    assert_eq!(scaler["source_kind"], "store");
    assert_eq!(scaler["reloadable"], true);
    assert_eq!(scaler["version_id"], v1.as_str());
    assert_eq!(scaler["plugin"], "standard-scaler");
    let frozen = entry(&list, "frozen");
    assert_eq!(frozen["source_kind"], "bundle");
    assert_eq!(frozen["reloadable"], false);
    assert_eq!(frozen["version_id"], v1.as_str());
    assert_eq!(frozen["state_id"], scaler["state_id"]);

    // Another process fits v2 and promotes it while the server runs: the
    // server holds no lock on the store.
    let v2 = fit_scaler(&store, &b, "staging", &s2);
    assert_ne!(v1, v2);
    let want2 = library_bits(&s2, &input);
    assert_ne!(want1, want2, "the halves fit different scalers");
    k(
        &store,
        &["promote", "scaler", "--from", "staging", "--to", "prod"],
    );
    // Nothing changes until a reload.
    assert_eq!(scaled_bits(&srv, "scaler", &input), want1);

    let (status, reply) = srv.post_json("/v1/reload");
    assert_eq!(status, 200, "{reply}");
    assert_eq!(reply["changed"], serde_json::json!(["canary", "scaler"]));
    let outcomes = reply["transforms"].as_array().unwrap();
    let scaler = entry(outcomes, "scaler");
    assert_eq!(scaler["status"], "changed");
    assert_eq!(scaler["from"], v1.as_str());
    assert_eq!(scaler["to"], v2.as_str());
    assert_eq!(entry(outcomes, "frozen")["status"], "not_reloadable");
    assert_eq!(scaled_bits(&srv, "scaler", &input), want2);
    assert_eq!(
        scaled_bits(&srv, "frozen", &input),
        want1,
        "bundles are pinned"
    );
    assert_eq!(
        entry(&srv.transforms(), "scaler")["version_id"],
        v2.as_str()
    );

    // A second reload finds nothing new.
    let (status, reply) = srv.post_json("/v1/reload");
    assert_eq!(status, 200, "{reply}");
    assert_eq!(reply["changed"], serde_json::json!([]));
    assert_eq!(
        entry(reply["transforms"].as_array().unwrap(), "scaler")["status"],
        "unchanged"
    );

    // Rollback in another process, reload: back to v1.
    k(&store, &["rollback", "scaler@prod"]);
    let (status, reply) = srv.post_json("/v1/reload");
    assert_eq!(status, 200, "{reply}");
    assert_eq!(
        entry(reply["transforms"].as_array().unwrap(), "scaler")["to"],
        v1.as_str()
    );
    assert_eq!(scaled_bits(&srv, "scaler", &input), want1);

    // SIGHUP reloads too.
    k(&store, &["tag", "scaler@prod", &v2]);
    let pid = srv.child.id().to_string();
    let status = Command::new("kill").args(["-HUP", &pid]).status().unwrap();
    assert!(status.success());
    let t0 = Instant::now();
    while entry(&srv.transforms(), "scaler")["version_id"] != v2.as_str() {
        assert!(
            t0.elapsed() < Duration::from_secs(20),
            "SIGHUP did not reload"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(scaled_bits(&srv, "scaler", &input), want2);

    let (_, text) = srv.get("/metrics");
    assert!(
        text.lines()
            .any(|l| l == "kiln_transform_reloads_total{transform=\"scaler\"} 3"),
        "{text}"
    );
    assert!(
        text.lines()
            .any(|l| l == "kiln_transform_reloads_total{transform=\"frozen\"} 0"),
        "{text}"
    );
    check_prometheus_text(&text);
}

#[test]
fn a_reload_that_cannot_resolve_keeps_serving_and_says_why() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let store = d.join("store");
    let state = d.join("v1.state");
    let v1 = fit_scaler(&store, &customers_csv(), "prod", &state);
    // Serve the staging tag under its own name; it does not exist yet.
    let e = kiln_err(&[
        "serve",
        "--bind",
        "127.0.0.1:0",
        "scaler@staging",
        "--store",
        s(&store),
    ]);
    assert!(
        e.contains("cannot serve 'scaler'") && e.contains("staging"),
        "{e}"
    );
    let srv = spawn(
        &["p=scaler@prod", "--store", s(&store)],
        &d.join("serve.log"),
    );
    // The store is gone (moved away): the reload fails, the server serves v1.
    std::fs::rename(&store, d.join("elsewhere")).unwrap();
    let (status, reply) = srv.post_json("/v1/reload");
    assert_eq!(status, 503, "{reply}");
    assert_eq!(reply["error"]["kind"], "store_unavailable", "{reply}");
    assert!(
        reply["error"]["message"]
            .as_str()
            .unwrap()
            .contains("no Kiln store"),
        "{reply}"
    );
    let input = read(&customers_csv());
    assert_eq!(scaled_bits(&srv, "p", &input), library_bits(&state, &input));
    assert_eq!(entry(&srv.transforms(), "p")["version_id"], v1.as_str());
}

#[test]
fn startup_errors_name_what_to_do() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let store = d.join("store");
    let serve = |args: &[&str]| {
        let mut all = vec!["serve", "--bind", "127.0.0.1:0"];
        all.extend_from_slice(args);
        kiln_err(&all)
    };
    // No store at all.
    let e = serve(&["scaler@prod", "--store", s(&store)]);
    assert!(e.contains("no Kiln store") && e.contains("--store"), "{e}");
    // A store without that name.
    fit_scaler(&store, &customers_csv(), "prod", &d.join("st"));
    let e = serve(&["nope@prod", "--store", s(&store)]);
    assert!(e.contains("cannot serve 'nope' from nope@prod"), "{e}");
    // Not a bundle.
    let bad = d.join("bad.kiln");
    std::fs::write(&bad, b"not a tar file").unwrap();
    let e = serve(&["--transform", &format!("b={}", s(&bad))]);
    assert!(
        e.contains("cannot serve 'b'") && e.contains("bundle"),
        "{e}"
    );
    // A name twice.
    let e = serve(&["scaler@prod", "scaler@dev", "--store", s(&store)]);
    assert!(
        e.contains("two transforms are named 'scaler'") && e.contains("ALIAS="),
        "{e}"
    );
    // Nothing at all: a usage error from clap.
    let out = kiln(&["serve"]);
    assert_eq!(out.status.code(), Some(2));
    // An address in use.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let out = kiln(&[
        "serve",
        "--bind",
        &addr,
        "--transform",
        &format!("b={},params={HASH}", s(&plugin_path("hash_encode"))),
    ]);
    assert_eq!(out.status.code(), Some(1));
    let e = String::from_utf8_lossy(&out.stderr);
    assert!(
        e.contains("cannot listen on") && e.contains("--bind"),
        "{e}"
    );
}

#[test]
fn a_pipeline_is_served_by_name_like_a_single_transform() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let store = dir.join("store");
    let file = crate::pipeline::pipeline_file(dir, "kiln.toml", r#""age", "income""#, "", "");
    let data = customers_csv();
    let fit = k(&store, &["pipeline", "fit", s(&file), "--input", s(&data)]);
    let out = dir.join("features.arrow");
    k(
        &store,
        &[
            "run",
            "customers@dev",
            "--input",
            s(&data),
            "--output",
            s(&out),
        ],
    );
    let cli = crate::support::concat(&crate::support::read(&out));

    let plog = dir.join("parity");
    let srv = spawn(
        &[
            "--store",
            s(&store),
            "customers@dev",
            "--parity-log",
            s(&plog),
            "--parity-every",
            "1",
        ],
        &dir.join("serve.log"),
    );
    let list = srv.transforms();
    let e = entry(&list, "customers");
    assert_eq!(e["steps"], 3, "{e}");
    assert_eq!(e["version_id"], fit["pipeline_id"], "{e}");
    let input = crate::support::concat(&crate::support::read(&data));
    let (status, _, body) = srv.post(
        "/v1/transform/customers",
        ARROW,
        &ipc(std::slice::from_ref(&input)),
    );
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    let served = crate::support::concat(&from_ipc(&body));
    assert_eq!(served.schema().fields(), cli.schema().fields());
    for c in 0..cli.num_columns() {
        assert_eq!(
            served.column(c).to_data(),
            cli.column(c).to_data(),
            "column {c}"
        );
    }
    // The serving path logged both calls (flushed while the server runs);
    // the log replays bit for bit against the pinned pipeline.
    let (status, _, _) = srv.post("/v1/transform/customers", ARROW, &ipc(&[input.slice(0, 5)]));
    assert_eq!(status, 200);
    let log = plog.join("customers");
    let read = kiln_host::parity::ParityLog::read(&log).unwrap();
    assert_eq!(read.inputs.len(), 2);
    assert_eq!(read.meta.id, fit["pipeline_id"].as_str().unwrap());
    let p = k(&store, &["parity", s(&log)]);
    assert_eq!(p["calls"], 2, "{p}");
    assert_eq!(p["mismatches"].as_array().map(Vec::len), Some(0), "{p}");
}
