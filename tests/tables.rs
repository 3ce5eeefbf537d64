//! Feature tables (issue 16): materialize a pinned pipeline to Delta Lake
//! (atomic, idempotent, traced), time travel, point-in-time training sets,
//! windows equal between backfill and serving, and vacuum that keeps what
//! training sets read. Oracles: brute-force loops written here, and a table
//! written and joined by Python `deltalake` + `pandas.merge_asof`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, AsArray, Float64Array, Int64Array, RecordBatch, StringArray,
    TimestampMicrosecondArray,
};
use arrow::compute::cast;
use arrow::datatypes::{
    DataType, Field, Float64Type, Int64Type, Schema, TimeUnit, TimestampMicrosecondType,
};
use kiln_host::store::{OpenOptions, Resolved, Store};
use serde_json::Value;

use crate::support::{concat, kiln_err, kiln_ok, plugin_path, read, s};

const HOUR: i64 = 3_600_000_000;
const T0: i64 = 1_767_225_600_000_000; // 2026-01-01T00:00:00Z in µs

fn json(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

/// A tiny deterministic generator (the tests need no statistics from it).
struct Lcg(u64);
impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        self.0 >> 33
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// Events: customer_id, event_at (µs UTC), amount, plan. Some events of
/// one customer share a time (ties), amounts repeat.
fn events(dir: &Path, name: &str, seed: u64, rows: usize, start: i64) -> PathBuf {
    let mut g = Lcg(seed);
    let plans = ["basic", "plus", "pro"];
    let mut ids = Vec::new();
    let mut ts = Vec::new();
    let mut amount = Vec::new();
    let mut plan = Vec::new();
    for i in 0..rows {
        ids.push(1000 + g.below(8) as i64);
        let t = if i > 0 && i % 17 == 0 {
            ts[i - 1] // a tie with the previous event's time
        } else {
            start + g.below(36 * 3600) as i64 * 1_000_000
        };
        ts.push(t);
        if i > 0 && i % 17 == 0 {
            ids[i] = ids[i - 1];
        }
        amount.push((g.below(100_000) as f64) / 100.0 - 200.0);
        plan.push(plans[g.below(3) as usize]);
    }
    let schema = Arc::new(Schema::new(vec![
        Field::new("customer_id", DataType::Int64, false),
        Field::new(
            "event_at",
            DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
            false,
        ),
        Field::new("amount", DataType::Float64, false),
        Field::new("plan", DataType::Utf8, false),
    ]));
    let batch = RecordBatch::try_new(
        schema.clone(),
        vec![
            Arc::new(Int64Array::from(ids)),
            Arc::new(TimestampMicrosecondArray::from(ts).with_timezone("UTC")),
            Arc::new(Float64Array::from(amount)),
            Arc::new(StringArray::from(plan)),
        ],
    )
    .unwrap();
    let path = dir.join(name);
    let mut w =
        parquet::arrow::ArrowWriter::try_new(std::fs::File::create(&path).unwrap(), schema, None)
            .unwrap();
    w.write(&batch).unwrap();
    w.close().unwrap();
    path
}

/// The pipeline: standardize amount into amount_z (keeping amount),
/// one-hot plan, quartile of amount (UInt32, stored as Int64); windows
/// over amount.
fn pipeline(dir: &Path) -> PathBuf {
    let text = format!(
        r#"
[feature_set]
name = "txn"
description = "transaction features"
entity = "customer_id"
timestamp = "event_at"

[[steps]]
plugin = "{scaler}"
params = {{ columns = ["amount"], suffix = "_z" }}

[[steps]]
plugin = "{one_hot}"
params = {{ columns = ["plan"] }}

[[steps]]
plugin = "{bucketize}"
params = {{ columns = ["amount"], quantiles = 4, suffix = "_q" }}

[[windows]]
column = "amount"
aggregations = ["count", "sum", "mean", "min", "max"]
windows = ["1h", "1d"]
"#,
        scaler = s(&plugin_path("standard_scaler")),
        one_hot = s(&plugin_path("one_hot")),
        bucketize = s(&plugin_path("bucketize")),
    );
    let p = dir.join("kiln.toml");
    std::fs::write(&p, text).unwrap();
    p
}

struct Env {
    dir: tempfile::TempDir,
    store: String,
}

impl Env {
    fn new() -> Env {
        let dir = tempfile::tempdir().unwrap();
        let store = s(&dir.path().join("store")).to_string();
        Env { dir, store }
    }
    fn path(&self, p: &str) -> PathBuf {
        self.dir.path().join(p)
    }
    fn ok(&self, args: &[&str]) -> String {
        let mut a = args.to_vec();
        a.extend(["--store", &self.store]);
        kiln_ok(&a)
    }
    fn err(&self, args: &[&str]) -> String {
        let mut a = args.to_vec();
        a.extend(["--store", &self.store]);
        kiln_err(&a)
    }
    fn fit(&self, input: &Path) -> String {
        let kt = pipeline(self.dir.path());
        let out = json(&self.ok(&["pipeline", "fit", s(&kt), "--input", s(input), "--json"]));
        out["pipeline_id"].as_str().unwrap().to_string()
    }
    fn materialize(&self, input: &Path, table: &Path, extra: &[&str]) -> Value {
        let mut a = vec![
            "materialize",
            "txn@dev",
            "--input",
            s(input),
            "--table",
            s(table),
            "--json",
        ];
        a.extend(extra);
        json(&self.ok(&a))
    }
    fn table(&self, spec: &str) -> RecordBatch {
        let out = self.path(&format!(
            "show-{}.arrow",
            spec.replace(['/', '@', ':'], "_")
        ));
        self.ok(&["table", "show", spec, "--output", s(&out)]);
        concat(&read(&out))
    }
}

fn col<'a>(b: &'a RecordBatch, name: &str) -> &'a ArrayRef {
    b.column_by_name(name)
        .unwrap_or_else(|| panic!("no column {name} in {:?}", b.schema()))
}

fn micros(b: &RecordBatch, name: &str) -> Vec<Option<i64>> {
    let c = cast(
        col(b, name),
        &DataType::Timestamp(TimeUnit::Microsecond, None),
    )
    .unwrap();
    c.as_primitive::<TimestampMicrosecondType>()
        .iter()
        .collect()
}

/// Every node of a trace, depth first.
fn nodes(v: &Value) -> Vec<&Value> {
    let mut out = vec![v];
    if let Some(r) = v["produced_by"].as_object() {
        for i in r["inputs"].as_array().unwrap() {
            out.extend(nodes(i));
        }
    }
    out
}

#[test]
fn materialize_is_one_idempotent_commit_traced_to_raw_events() {
    let env = Env::new();
    let ev = events(env.dir.path(), "events.parquet", 1, 240, T0);
    let pipeline_id = env.fit(&ev);
    let table = env.path("tables/txn");

    let m = env.materialize(&ev, &table, &[]);
    assert_eq!(m["written"], true);
    assert_eq!(m["version"], 0);
    assert_eq!(m["rows"], 240);
    assert_eq!(m["version_id"], pipeline_id.as_str());
    let run_id = m["run"]["id"].as_str().unwrap().to_string();

    // The same input and version again: nothing written.
    let again = env.materialize(&ev, &table, &[]);
    assert_eq!(again["written"], false, "{again}");
    assert_eq!(again["version"], 0);
    let history = json(&env.ok(&["table", "history", s(&table), "--json"]));
    let commits = history.as_array().unwrap();
    assert_eq!(commits.len(), 1, "{history}");
    assert_eq!(commits[0]["kiln"]["version_id"], pipeline_id.as_str());
    assert_eq!(commits[0]["kiln"]["run"], run_id.as_str());

    // The table holds what `kiln run` of the same version computes.
    let rows = env.table(s(&table));
    assert_eq!(rows.num_rows(), 240);
    let f = env.path("run.parquet");
    env.ok(&["run", "txn@dev", "--input", s(&ev), "--output", s(&f)]);
    let served = concat(&read(&f));
    let mut compared = 0;
    for field in served.schema().fields() {
        let name = field.name();
        if name == "customer_id" || name == "event_at" {
            continue;
        }
        let t = col(&rows, name);
        let s_ = cast(col(&served, name), t.data_type()).unwrap();
        assert_eq!(
            t.to_data(),
            s_.to_data(),
            "column {name} differs from kiln run"
        );
        compared += 1;
    }
    assert!(
        compared >= 4,
        "amount, amount_z and one-hot columns: {compared}"
    );
    assert_eq!(micros(&rows, "event_at"), micros(&served, "event_at"));

    // Windows: a brute-force oracle, and the serving path, bit for bit.
    let store = Store::open(Path::new(&env.store), &OpenOptions::default(), &mut |_| {}).unwrap();
    let Resolved::Pipeline(rec) = store.resolve_any("txn@dev").unwrap() else {
        panic!("txn@dev is a pipeline")
    };
    let windows = rec
        .spec
        .compiled_windows()
        .unwrap()
        .expect("the file has windows");
    drop(store);
    let raw = concat(&read(&ev));
    let ids: Vec<i64> = raw.column(0).as_primitive::<Int64Type>().values().to_vec();
    let ts: Vec<i64> = micros(&raw, "event_at")
        .into_iter()
        .map(Option::unwrap)
        .collect();
    let amount: Vec<f64> = raw
        .column(2)
        .as_primitive::<Float64Type>()
        .values()
        .to_vec();
    for (w, len) in [("1h", HOUR), ("1d", 24 * HOUR)] {
        for i in 0..raw.num_rows() {
            let mut seen: Vec<(i64, f64)> = (0..raw.num_rows())
                .filter(|&j| ids[j] == ids[i] && ts[j] >= ts[i] - len && ts[j] < ts[i])
                .map(|j| (ts[j], amount[j]))
                .collect();
            seen.sort_by(|a, b| a.0.cmp(&b.0).then(a.1.total_cmp(&b.1)));
            let sum = seen.iter().fold(0.0, |acc, (_, v)| acc + v);
            let get = |agg: &str| col(&rows, &format!("amount_{agg}_{w}")).clone();
            assert_eq!(
                get("count").as_primitive::<Int64Type>().value(i),
                seen.len() as i64
            );
            assert_eq!(
                get("sum").as_primitive::<Float64Type>().value(i).to_bits(),
                sum.to_bits(),
                "sum {w} row {i}"
            );
            let mean = get("mean");
            let (min, max) = (get("min"), get("max"));
            if seen.is_empty() {
                assert!(mean.is_null(i) && min.is_null(i) && max.is_null(i));
            } else {
                let m = sum / seen.len() as f64;
                assert_eq!(
                    mean.as_primitive::<Float64Type>().value(i).to_bits(),
                    m.to_bits()
                );
                let lo = seen.iter().map(|x| x.1).fold(f64::INFINITY, f64::min);
                let hi = seen.iter().map(|x| x.1).fold(f64::NEG_INFINITY, f64::max);
                assert_eq!(min.as_primitive::<Float64Type>().value(i), lo);
                assert_eq!(max.as_primitive::<Float64Type>().value(i), hi);
            }
        }
    }
    // Serving: the entity's events (any order, later ones included) as of t.
    for i in (0..raw.num_rows()).step_by(7) {
        let mine: Vec<u32> = (0..raw.num_rows() as u32)
            .rev()
            .filter(|&j| ids[j as usize] == ids[i])
            .collect();
        let recent =
            arrow::compute::take_record_batch(&raw, &arrow::array::UInt32Array::from(mine))
                .unwrap();
        let one = windows.at(&recent, ts[i]).unwrap();
        for (k, f) in one.schema().fields().iter().enumerate() {
            let table_value = col(&rows, f.name()).slice(i, 1);
            assert_eq!(
                one.column(k).to_data(),
                table_value.to_data(),
                "serving {} row {i}",
                f.name()
            );
        }
    }

    // The same through the embedding API and over HTTP (`kiln serve`).
    let registry = kiln_host::Registry::new(
        crate::support::engine().clone(),
        Store::open(Path::new(&env.store), &OpenOptions::default(), &mut |_| {}).unwrap(),
    );
    use kiln_host::RegistryServing as _;
    let served = registry
        .serving("txn@dev", kiln_host::ServingOptions::default())
        .unwrap();
    drop(registry);
    let srv = crate::serve::spawn(&["--store", &env.store, "txn@dev"], &env.path("serve.log"));
    for i in (0..raw.num_rows()).step_by(11) {
        let mine: Vec<u32> = (0..raw.num_rows() as u32)
            .filter(|&j| ids[j as usize] == ids[i])
            .collect();
        let recent =
            arrow::compute::take_record_batch(&raw, &arrow::array::UInt32Array::from(mine))
                .unwrap();
        let lib = served.windows_at(&recent, ts[i]).unwrap();
        let (status, _, body) = srv.post(
            &format!("/v1/windows/txn?at={}", ts[i]),
            crate::serve::ARROW,
            &crate::serve::ipc(std::slice::from_ref(&recent)),
        );
        assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
        let http = concat(&crate::serve::from_ipc(&body));
        assert_eq!(http.num_rows(), 1);
        for (k, f) in lib.schema().fields().iter().enumerate() {
            let table_value = col(&rows, f.name()).slice(i, 1);
            assert_eq!(
                lib.column(k).to_data(),
                table_value.to_data(),
                "library {} row {i}",
                f.name()
            );
            assert_eq!(
                http.column(k).to_data(),
                table_value.to_data(),
                "HTTP {} row {i}",
                f.name()
            );
        }
    }
    // JSON rows and an RFC 3339 time work too; a transform without windows says so.
    let (status, _, body) = srv.post(
        "/v1/windows/txn?at=2026-01-01T12:00:00Z",
        "application/json",
        br#"[{"event_at": "2026-01-01T11:30:00Z", "amount": 2.5}, {"event_at": "2026-01-01T11:45:00Z", "amount": 4.0}]"#,
    );
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    let reply: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(reply[0]["amount_count_1h"], 2, "{reply}");
    assert_eq!(reply[0]["amount_sum_1h"], 6.5, "{reply}");
    assert_eq!(reply[0]["amount_max_1d"], 4.0, "{reply}");
    drop(srv);

    // Lineage: the table version -> materialize run -> pipeline steps -> raw events.
    let trace = json(&env.ok(&["lineage", "trace", &format!("{}@0", s(&table)), "--json"]));
    let run = &trace["produced_by"];
    assert_eq!(run["run"], run_id.as_str(), "{trace}");
    assert!(run["transform"]["plugin"]
        .as_str()
        .unwrap()
        .contains("pipeline txn"));
    let all = nodes(&trace);
    let steps: Vec<&str> = all
        .iter()
        .filter_map(|n| n["produced_by"]["transform"]["plugin"].as_str())
        .collect();
    assert!(steps.iter().any(|p| p.starts_with("one-hot")), "{steps:?}");
    assert!(
        steps.iter().any(|p| p.starts_with("standard-scaler")),
        "{steps:?}"
    );
    let raw_fp = json(&env.ok(&["lineage", "trace", s(&ev), "--json"]))["fingerprint"].clone();
    assert!(
        all.iter()
            .filter(|n| n["produced_by"].is_null())
            .all(|n| n["fingerprint"] == raw_fp),
        "every leaf is the raw events file: {trace}"
    );

    // A failing write changes nothing: the table stays at version 0.
    let e = env.err(&[
        "materialize",
        "txn@dev",
        "--input",
        s(&ev),
        "--table",
        s(&table),
        "--entity",
        "nope",
    ]);
    assert!(e.contains("nope"), "{e}");
    let e = env.err(&[
        "materialize",
        "txn@dev",
        "--input",
        s(&env.path("missing.parquet")),
        "--table",
        s(&table),
    ]);
    assert!(e.contains("missing.parquet"), "{e}");
    let history = json(&env.ok(&["table", "history", s(&table), "--json"]));
    assert_eq!(history.as_array().unwrap().len(), 1);
    assert_eq!(env.table(s(&table)).num_rows(), 240);
}

/// For each spine row: the latest table row of the entity at or before t
/// (within ttl), ties by (_kiln_created_at, _kiln_row). Brute force.
fn oracle(
    table: &RecordBatch,
    spine_ids: &[i64],
    spine_ts: &[i64],
    ttl: i64,
) -> Vec<Option<usize>> {
    let ids = table
        .column_by_name("customer_id")
        .unwrap()
        .as_primitive::<Int64Type>()
        .values()
        .to_vec();
    let ts: Vec<i64> = micros(table, "event_at")
        .into_iter()
        .map(Option::unwrap)
        .collect();
    let created: Vec<i64> = micros(table, "_kiln_created_at")
        .into_iter()
        .map(Option::unwrap)
        .collect();
    let row = table
        .column_by_name("_kiln_row")
        .unwrap()
        .as_primitive::<Int64Type>()
        .values()
        .to_vec();
    spine_ids
        .iter()
        .zip(spine_ts)
        .map(|(&e, &t)| {
            (0..table.num_rows())
                .filter(|&j| ids[j] == e && ts[j] <= t && ts[j] >= t - ttl)
                .max_by_key(|&j| (ts[j], created[j], row[j]))
        })
        .collect()
}

fn spine(dir: &Path, table: &RecordBatch, seed: u64) -> (PathBuf, Vec<i64>, Vec<i64>) {
    let mut g = Lcg(seed);
    let tids = table
        .column_by_name("customer_id")
        .unwrap()
        .as_primitive::<Int64Type>()
        .values()
        .to_vec();
    let tts: Vec<i64> = micros(table, "event_at")
        .into_iter()
        .map(Option::unwrap)
        .collect();
    let (mut ids, mut ts) = (Vec::new(), Vec::new());
    for i in 0..150 {
        if i % 5 == 0 {
            // Exactly at a feature row's time.
            let j = g.below(tids.len() as u64) as usize;
            ids.push(tids[j]);
            ts.push(tts[j]);
        } else {
            ids.push(1000 + g.below(9) as i64); // 1008 has no features
            ts.push(T0 - 2 * HOUR + g.below(80 * 3600) as i64 * 1_000_000);
        }
    }
    let schema = Arc::new(Schema::new(vec![
        Field::new("customer_id", DataType::Int64, false),
        Field::new(
            "event_at",
            DataType::Timestamp(TimeUnit::Millisecond, None),
            false,
        ),
        Field::new("label", DataType::Int64, false),
    ]));
    let labels: Vec<i64> = (0..ids.len() as i64).collect();
    let batch = RecordBatch::try_new(
        schema.clone(),
        vec![
            Arc::new(Int64Array::from(ids.clone())),
            // Another unit and no zone: read as UTC, converted to µs.
            Arc::new(arrow::array::TimestampMillisecondArray::from(
                ts.iter().map(|t| t / 1000).collect::<Vec<_>>(),
            )),
            Arc::new(Int64Array::from(labels)),
        ],
    )
    .unwrap();
    let ts = ts.iter().map(|t| t / 1000 * 1000).collect();
    let path = dir.join(format!("spine{seed}.parquet"));
    let mut w =
        parquet::arrow::ArrowWriter::try_new(std::fs::File::create(&path).unwrap(), schema, None)
            .unwrap();
    w.write(&batch).unwrap();
    w.close().unwrap();
    (path, ids, ts)
}

fn check_training_set(out: &RecordBatch, table: &RecordBatch, expect: &[Option<usize>]) {
    assert_eq!(out.num_rows(), expect.len(), "every spine row is kept");
    let labels = out
        .column_by_name("label")
        .unwrap()
        .as_primitive::<Int64Type>();
    for name in ["amount", "amount_z", "amount_sum_1d"] {
        let got = col(out, name).as_primitive::<Float64Type>();
        let want = col(table, name).as_primitive::<Float64Type>();
        for (i, e) in expect.iter().enumerate() {
            assert_eq!(labels.value(i), i as i64, "spine order is kept");
            match e {
                None => assert!(got.is_null(i), "{name} row {i}: no feature row qualifies"),
                Some(j) => assert_eq!(
                    got.value(i).to_bits(),
                    want.value(*j).to_bits(),
                    "{name} row {i}"
                ),
            }
        }
    }
}

#[test]
fn time_travel_and_point_in_time_training_sets() {
    let env = Env::new();
    let a = events(env.dir.path(), "a.parquet", 2, 120, T0);
    let b = events(env.dir.path(), "b.parquet", 3, 120, T0 + 24 * HOUR);
    env.fit(&a);
    let table = env.path("txn");
    assert_eq!(env.materialize(&a, &table, &[])["version"], 0);
    std::thread::sleep(std::time::Duration::from_millis(30));
    assert_eq!(env.materialize(&b, &table, &[])["version"], 1);

    // By version and by time (the commit log's own times).
    let v0 = env.table(&format!("{}@0", s(&table)));
    let v1 = env.table(s(&table));
    assert_eq!((v0.num_rows(), v1.num_rows()), (120, 240));
    let history = json(&env.ok(&["table", "history", s(&table), "--json"]));
    let t0 = history[0]["time"].as_str().unwrap();
    let t1 = history[1]["time"].as_str().unwrap();
    assert_eq!(env.table(&format!("{}@{t0}", s(&table))).num_rows(), 120);
    assert_eq!(env.table(&format!("{}@{t1}", s(&table))).num_rows(), 240);
    let e = env.err(&[
        "table",
        "show",
        &format!("{}@2001-01-01T00:00:00Z", s(&table)),
    ]);
    assert!(e.contains("did not exist") && e.contains(t0), "{e}");
    let e = env.err(&["table", "show", &format!("{}@7", s(&table))]);
    assert!(e.contains("no version 7"), "{e}");

    // Point in time: against a brute-force oracle, with and without a TTL,
    // on the newest version and on version 0.
    let (sp, ids, ts) = spine(env.dir.path(), &v1, 9);
    for (ttl, flag) in [(i64::MAX / 4, None), (6 * HOUR, Some("6h"))] {
        let out = env.path("train.parquet");
        let mut args = vec![
            "training-set",
            "--spine",
            s(&sp),
            "--features",
            s(&table),
            "--output",
            s(&out),
            "--json",
        ];
        if let Some(f) = flag {
            args.extend(["--ttl", f]);
        }
        let r = json(&env.ok(&args));
        let expect = oracle(&v1, &ids, &ts, ttl);
        assert_eq!(
            r["tables"][0]["matched"],
            expect.iter().filter(|e| e.is_some()).count()
        );
        assert!(expect.iter().any(|e| e.is_none()) && expect.iter().any(|e| e.is_some()));
        check_training_set(&concat(&read(&out)), &v1, &expect);
    }
    let out = env.path("train0.parquet");
    let r = json(&env.ok(&[
        "training-set",
        "--spine",
        s(&sp),
        "--features",
        &format!("{}@0", s(&table)),
        "--output",
        s(&out),
        "--json",
    ]));
    assert_eq!(r["tables"][0]["version"], 0);
    check_training_set(
        &concat(&read(&out)),
        &v0,
        &oracle(&v0, &ids, &ts, i64::MAX / 4),
    );

    // The training set's trace reaches the table version and the spine.
    let trace = json(&env.ok(&["lineage", "trace", s(&out), "--json"]));
    let inputs = trace["produced_by"]["inputs"].as_array().unwrap();
    assert!(
        inputs
            .iter()
            .any(|n| n["path"].as_str().unwrap().ends_with("txn@0") && !n["produced_by"].is_null()),
        "{trace}"
    );

    // A column in two sources is refused with its name.
    let e = env.err(&[
        "training-set",
        "--spine",
        s(&sp),
        "--features",
        &format!("{0},{0}", s(&table)),
        "--output",
        s(&out),
    ]);
    assert!(e.contains("'amount"), "{e}");
}

#[test]
fn vacuum_never_removes_a_version_a_training_set_read() {
    let env = Env::new();
    let a = events(env.dir.path(), "a.parquet", 4, 60, T0);
    let b = events(env.dir.path(), "b.parquet", 5, 60, T0 + 24 * HOUR);
    env.fit(&a);
    let used = env.path("used");
    let unused = env.path("unused");
    for t in [&used, &unused] {
        env.materialize(&a, t, &[]);
        let o = env.materialize(&b, t, &["--mode", "overwrite"]);
        assert_eq!(o["version"], 1);
        assert_eq!(
            env.table(s(t)).num_rows(),
            60,
            "overwrite replaced the rows"
        );
    }
    let (sp, _, _) = spine(env.dir.path(), &env.table(&format!("{}@0", s(&used))), 11);
    env.ok(&[
        "training-set",
        "--spine",
        s(&sp),
        "--features",
        &format!("{}@0", s(&used)),
        "--output",
        s(&env.path("t.parquet")),
    ]);

    // Removed just now: younger than 1 day, nothing goes.
    let r = json(&env.ok(&["table", "vacuum", s(&unused), "--keep-days", "1", "--json"]));
    assert_eq!(r["deleted"].as_array().unwrap().len(), 0, "{r}");
    // Older than 0 days: the unused table loses version 0's file ...
    let r = json(&env.ok(&["table", "vacuum", s(&unused), "--keep-days", "0", "--json"]));
    assert_eq!(r["deleted"].as_array().unwrap().len(), 1, "{r}");
    let e = env.err(&["table", "show", &format!("{}@0", s(&unused))]);
    assert!(e.contains("vacuumed"), "{e}");
    // ... the used one keeps it: a training set read version 0.
    let r = json(&env.ok(&["table", "vacuum", s(&used), "--keep-days", "0", "--json"]));
    assert_eq!(r["deleted"].as_array().unwrap().len(), 0, "{r}");
    assert_eq!(r["protected"], serde_json::json!([0]));
    assert_eq!(env.table(&format!("{}@0", s(&used))).num_rows(), 60);
    assert_eq!(env.table(s(&used)).num_rows(), 60);
}

/// A Python with pandas, pyarrow and deltalake: KILN_PYTHON, the repo's
/// .venv, or python3. `None` (test skipped) unless KILN_REQUIRE_PYTHON=1.
pub(crate) fn python() -> Option<PathBuf> {
    let venv = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../.venv/bin/python");
    let candidates: Vec<PathBuf> = std::env::var_os("KILN_PYTHON")
        .map(PathBuf::from)
        .into_iter()
        .chain([venv, PathBuf::from("python3")])
        .collect();
    for c in candidates {
        let ok = std::process::Command::new(&c)
            .args(["-c", "import pandas, pyarrow, deltalake"])
            .output()
            .is_ok_and(|o| o.status.success());
        if ok {
            return Some(c);
        }
    }
    assert!(
        std::env::var("KILN_REQUIRE_PYTHON").as_deref() != Ok("1"),
        "KILN_REQUIRE_PYTHON=1 but no Python with pandas, pyarrow and deltalake: python3 -m venv .venv && .venv/bin/pip install pandas pyarrow deltalake"
    );
    eprintln!("skipped: no Python with pandas, pyarrow and deltalake (make .venv, see README)");
    None
}

#[test]
fn a_table_written_by_python_deltalake_joins_like_pandas_merge_asof() {
    let Some(py) = python() else { return };
    let env = Env::new();
    let out = env.dir.path();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/oracles/delta_interop.py");
    let run = std::process::Command::new(&py)
        .args([s(&script), s(out), "7", "7200"])
        .output()
        .unwrap();
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let table = out.join("table");

    let history = json(&env.ok(&["table", "history", s(&table), "--json"]));
    assert_eq!(history.as_array().unwrap().len(), 2);
    assert!(history[0]["kiln"].is_null());
    assert_eq!(env.table(&format!("{}@0", s(&table))).num_rows(), 200);

    // Without key/time columns recorded, kiln asks for them.
    let train = out.join("train.parquet");
    let e = env.err(&[
        "training-set",
        "--spine",
        s(&out.join("spine.parquet")),
        "--features",
        s(&table),
        "--output",
        s(&train),
    ]);
    assert!(e.contains("--entity"), "{e}");
    env.ok(&[
        "training-set",
        "--spine",
        s(&out.join("spine.parquet")),
        "--features",
        s(&table),
        "--entity",
        "entity",
        "--timestamp",
        "ts",
        "--ttl",
        "2h",
        "--output",
        s(&train),
    ]);
    let got = concat(&read(&train));
    let want = concat(&read(&out.join("expected.parquet")));
    let by_id: HashMap<i64, usize> = want
        .column_by_name("row_id")
        .unwrap()
        .as_primitive::<Int64Type>()
        .values()
        .iter()
        .enumerate()
        .map(|(i, id)| (*id, i))
        .collect();
    let ids = got
        .column_by_name("row_id")
        .unwrap()
        .as_primitive::<Int64Type>();
    let (gx, gy) = (
        col(&got, "x").as_primitive::<Float64Type>(),
        col(&got, "y").as_primitive::<Int64Type>(),
    );
    let (wx, wy) = (
        col(&want, "x").as_primitive::<Float64Type>(),
        col(&want, "y").as_primitive::<Float64Type>(),
    );
    let mut matched = 0;
    for i in 0..got.num_rows() {
        let j = by_id[&ids.value(i)];
        if wx.is_null(j) || wx.value(j).is_nan() {
            assert!(
                gx.is_null(i) && gy.is_null(i),
                "row_id {} matched but merge_asof did not",
                ids.value(i)
            );
        } else {
            matched += 1;
            assert_eq!(
                gx.value(i).to_bits(),
                wx.value(j).to_bits(),
                "x of row_id {}",
                ids.value(i)
            );
            assert_eq!(
                gy.value(i) as f64,
                wy.value(j),
                "y of row_id {}",
                ids.value(i)
            );
        }
    }
    assert!(
        matched > 30 && matched < got.num_rows(),
        "both cases occur: {matched}"
    );
}
