//! `kiln sql` (issue 14): pinned versions as SQL functions over files, with
//! `kiln run`'s output bits, its error quality and its lineage.
//!
//! The oracle for the values is `kiln run` of the same version on the same
//! files (its own values are checked against scikit-learn's formula in
//! tests/plugins.rs); the oracle for the record is the record `kiln run`
//! makes of the same input.

use std::collections::BTreeMap;
use std::path::Path;

use arrow::array::{Array, Float64Array, Int64Array, RecordBatch};
use serde_json::Value;

use crate::support::{concat, halves, kiln, kiln_err, kiln_ok, plugin_path, read, s};

struct Env {
    _dir: tempfile::TempDir,
    dir: std::path::PathBuf,
    store: String,
}

impl Env {
    fn new() -> Env {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().to_path_buf();
        Env {
            store: s(&path.join("store")).to_string(),
            dir: path,
            _dir: dir,
        }
    }

    fn p(&self, name: &str) -> String {
        s(&self.dir.join(name)).to_string()
    }

    fn k(&self, args: &[&str]) -> Value {
        let mut all = args.to_vec();
        all.extend(["--store", &self.store, "--json"]);
        serde_json::from_str(&kiln_ok(&all)).expect("--json output")
    }

    fn k_err(&self, args: &[&str]) -> String {
        let mut all = args.to_vec();
        all.extend(["--store", &self.store]);
        kiln_err(&all)
    }
}

/// `customer_id` → the f64 bit patterns of `columns` (None for null).
fn by_id(b: &RecordBatch, id: &str, columns: &[&str]) -> BTreeMap<i64, Vec<Option<u64>>> {
    let ids = b
        .column_by_name(id)
        .unwrap_or_else(|| panic!("no {id} in {:?}", b.schema()))
        .as_any()
        .downcast_ref::<Int64Array>()
        .expect("Int64 ids")
        .clone();
    let cols: Vec<Float64Array> = columns
        .iter()
        .map(|c| {
            b.column_by_name(c)
                .unwrap_or_else(|| panic!("no {c} in {:?}", b.schema()))
                .as_any()
                .downcast_ref::<Float64Array>()
                .expect("Float64 features")
                .clone()
        })
        .collect();
    (0..b.num_rows())
        .map(|i| {
            let v = cols
                .iter()
                .map(|c| c.is_valid(i).then(|| c.value(i).to_bits()))
                .collect();
            (ids.value(i), v)
        })
        .collect()
}

#[test]
fn kiln_sql_matches_kiln_run_bit_for_bit_and_records_the_same_lineage() {
    let e = Env::new();
    let (a, b) = halves(&e.dir);
    let fit = e.k(&[
        "fit",
        s(&plugin_path("standard_scaler")),
        "--input",
        s(&a),
        "--param",
        "columns=age,income",
        "--name",
        "scaler",
    ]);
    let version = fit["version_id"].as_str().unwrap().to_string();

    // The oracle: kiln run of scaler@dev over both halves.
    let run_out = e.p("run.parquet");
    let run = e.k(&[
        "run",
        "scaler@dev",
        "--input",
        s(&a),
        s(&b),
        "--output",
        &run_out,
        "--batch-size",
        "7",
    ]);

    // The same version through SQL: a table of two files (two partitions),
    // small batches, the struct taken apart field by field.
    let sql_out = e.p("sql.parquet");
    let query = "SELECT customer_id, kiln('scaler@dev', age, income)['age'] AS age, \
                 kiln('scaler@dev', age, income)['income'] AS income FROM c ORDER BY customer_id";
    let sql = e.k(&[
        "sql",
        query,
        "--table",
        &format!("c={}", s(&a)),
        "--table",
        &format!("c={}", s(&b)),
        "--output",
        &sql_out,
        "--batch-size",
        "7",
        "--partitions",
        "2",
    ]);
    let expected = by_id(
        &concat(&read(Path::new(&run_out))),
        "customer_id",
        &["age", "income"],
    );
    let got = by_id(
        &concat(&read(Path::new(&sql_out))),
        "customer_id",
        &["age", "income"],
    );
    assert_eq!(got.len(), 48, "every customer once");
    assert_eq!(got, expected, "kiln sql gives kiln run's bits");
    assert!(
        got.values().any(|v| v[0].is_none()),
        "the null age stays null"
    );
    assert_eq!(sql["rows_out"], 48);
    assert_eq!(sql["functions"][0]["spec"], "scaler@dev");
    assert_eq!(sql["functions"][0]["version_id"], version.as_str());

    // The record: kind sql, the version, the same input fingerprints kiln
    // run recorded for the same files, the output's fingerprint, the query.
    let run_id = sql["run_id"].as_str().unwrap();
    let rec = e.k(&["lineage", "show", run_id]);
    let oracle = e.k(&["lineage", "show", run["run_id"].as_str().unwrap()]);
    assert_eq!(rec["kind"], "sql");
    assert_eq!(rec["status"], "ok");
    assert_eq!(rec["target"], "scaler@dev");
    assert_eq!(
        rec["transform"], oracle["transform"],
        "the version, part by part"
    );
    let fps = |r: &Value, k: &str| -> Vec<Value> {
        r[k].as_array()
            .unwrap()
            .iter()
            .map(|d| d["fingerprint"].clone())
            .collect()
    };
    assert_eq!(fps(&rec, "inputs"), fps(&oracle, "inputs"));
    assert_eq!(fps(&rec, "outputs")[0], sql["output_fingerprint"]);
    assert_eq!(rec["sql"]["query"], query);
    assert_eq!(rec["sql"]["tables"].as_array().unwrap().len(), 2);
    assert_eq!(rec["sql"]["functions"][0]["function"], "kiln");
    assert_eq!(rec["sql"]["functions"][0]["spec"], "scaler@dev");

    // Trace walks from the SQL output back through the run to the files.
    let trace = e.k(&["lineage", "trace", &sql_out]);
    assert_eq!(trace["produced_by"]["run"], run_id);
    assert_eq!(trace["produced_by"]["inputs"].as_array().unwrap().len(), 2);

    // Verify re-runs the query with the pinned version, even after the tag
    // moved to another version, and says identical.
    e.k(&["fit", "scaler", "--input", s(&b), "--name", "scaler"]);
    let v = e.k(&["verify", run_id]);
    assert_eq!(v["identical"], true, "{v}");
    // ... and a changed input is reported, not hidden.
    let text = std::fs::read_to_string(&a).unwrap();
    std::fs::write(&a, text.replacen(",18,", ",19,", 1)).unwrap();
    let out = kiln(&["verify", run_id, "--store", &e.store, "--json"]);
    assert_eq!(out.status.code(), Some(1), "a verify that differs fails");
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["identical"], false, "{v}");
    assert!(
        v["differences"][0].as_str().unwrap().contains("changed"),
        "{v}"
    );
}

#[test]
fn a_named_function_from_a_bundle_works_without_a_store_and_prints_results() {
    let e = Env::new();
    e.k(&[
        "fit",
        s(&plugin_path("standard_scaler")),
        "--input",
        s(&crate::support::customers_csv()),
        "--param",
        "columns=age",
        "--name",
        "age",
    ]);
    let bundle = e.p("age.kiln");
    e.k(&["export", "age@dev", "--output", &bundle]);
    // No --store: the bundle is the whole version.
    let out = kiln_ok(&[
        "sql",
        "SELECT plan, count(*) AS n, avg(z(age)['age']) AS mean_z FROM c GROUP BY plan ORDER BY plan",
        "-t",
        &format!("c={}", s(&crate::support::customers_csv())),
        "-f",
        &format!("z={bundle}"),
        "--json",
    ]);
    let v: Value = serde_json::from_str(&out).unwrap();
    let rows = v["rows"].as_array().unwrap();
    let total: i64 = rows.iter().map(|r| r["n"].as_i64().unwrap()).sum();
    assert_eq!(total, 48);
    // Standardized over the whole table, the per-plan means of z average
    // (weighted by the non-null counts) to 0.
    assert!(rows
        .iter()
        .all(|r| r["mean_z"].as_f64().unwrap().abs() < 3.0));
    let text = kiln_ok(&[
        "sql",
        "SELECT customer_id FROM c ORDER BY customer_id",
        "-t",
        &format!("c={}", s(&crate::support::customers_csv())),
        "--max-rows",
        "3",
    ]);
    assert!(
        text.contains("1000") && text.contains("1002") && !text.contains("1003"),
        "{text}"
    );
    assert!(text.contains("48 rows, 3 shown"), "{text}");
}

#[test]
fn errors_name_what_is_wrong_and_leave_the_output_untouched() {
    let e = Env::new();
    let csv = crate::support::customers_csv();
    e.k(&[
        "fit",
        s(&plugin_path("standard_scaler")),
        "--input",
        s(&csv),
        "--param",
        "columns=age,income",
        "--name",
        "scaler",
    ]);
    let out = e.p("out.csv");
    std::fs::write(&out, "keep me\n").unwrap();
    let table = format!("c={}", s(&csv));
    let sql = |q: &str| e.k_err(&["sql", q, "-t", &table, "-o", &out]);

    // An unknown tag: the store's message.
    let err = sql("SELECT kiln('scaler@nope', age, income) FROM c");
    assert!(err.contains("nope"), "{err}");
    // The version must be a literal.
    let err = sql("SELECT kiln(city, age, income) FROM c");
    assert!(err.contains("string literal"), "{err}");
    // Too few arguments for the transform's columns.
    let err = sql("SELECT kiln('scaler@dev', age) FROM c");
    assert!(err.contains("argument"), "{err}");
    // The plugin's own error, as kiln run words it: text is not numeric.
    let err = sql("SELECT kiln('scaler@dev', city, income)['age'] FROM c");
    let run_err = {
        let bad = e.p("bad.csv");
        let text = std::fs::read_to_string(&csv).unwrap();
        // kiln run on a file whose age column holds the city names.
        let fixed: Vec<String> = text
            .lines()
            .enumerate()
            .map(|(i, l)| {
                let mut f: Vec<&str> = l.split(',').collect();
                if i > 0 {
                    f[2] = f[4];
                }
                f.join(",")
            })
            .collect();
        std::fs::write(&bad, fixed.join("\n") + "\n").unwrap();
        e.k_err(&["run", "scaler@dev", "-i", &bad, "-o", &e.p("x.parquet")])
    };
    let core = |t: &str| {
        t.lines()
            .find(|l| l.contains("standard-scaler"))
            .map(|l| l[l.find("plugin").unwrap_or(0)..].to_string())
            .unwrap_or_default()
    };
    assert!(!core(&err).is_empty(), "{err}");
    assert_eq!(core(&err), core(&run_err), "the same words as kiln run");
    // A table that does not exist; a file that does not exist.
    let err = sql("SELECT * FROM nope");
    assert!(err.contains("nope"), "{err}");
    let err = e.k_err(&["sql", "SELECT 1", "-t", "c=/no/such.parquet"]);
    assert!(err.contains("/no/such.parquet"), "{err}");
    assert_eq!(std::fs::read_to_string(&out).unwrap(), "keep me\n");

    // Failed queries are recorded as failed runs, like a failed kiln run.
    let log = e.k(&["lineage", "log"]);
    let failed = log
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["kind"] == "sql" && r["status"] == "failed")
        .count();
    assert!(failed >= 4, "{log}");
    let status = kiln(&["sql", "SELECT 1", "--table", "oops"]).status;
    assert_eq!(status.code(), Some(1));
}
