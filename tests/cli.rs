//! The `kiln` command as an operator uses it: inspect, fit, run, errors.

use std::process::Command;

use arrow::array::{Array, AsArray, Float64Array};
use arrow::datatypes::Float64Type;
use kiln_host::job::{self, JobOptions};
use kiln_host::{Params, State};

use crate::support::*;

const SIX: [(&str, &str); 6] = [
    ("standard_scaler", "standard-scaler"),
    ("one_hot", "one-hot"),
    ("impute", "impute"),
    ("bucketize", "bucketize"),
    ("hash_encode", "hash-encode"),
    ("datetime_parts", "datetime-parts"),
];

#[test]
fn inspect_json_reports_name_and_sha256_id_of_each_plugin() {
    for (file, name) in SIX {
        let path = plugin_path(file);
        let out = kiln_ok(&["inspect", "--json", s(&path)]);
        let v: serde_json::Value = serde_json::from_str(&out).expect("inspect --json prints JSON");
        // Oracle: coreutils sha256sum.
        let sum = Command::new("sha256sum")
            .arg(&path)
            .output()
            .expect("sha256sum runs");
        let sum = String::from_utf8(sum.stdout).unwrap();
        let want = sum.split_whitespace().next().unwrap();
        assert_eq!(v["id"], want, "{file}");
        assert_eq!(v["name"], name, "{file}");
        assert_eq!(v["wit_version"], "0.1.0");
        assert!(
            v["params_schema"].is_object(),
            "{file}: parameter schema is a JSON object"
        );
        assert!(["stateless", "fitted", "optionally-fitted"].contains(&v["kind"].as_str().unwrap()));
    }
}

/// Column `name` of the example CSV parsed by hand (independent of Arrow).
fn csv_column(name: &str) -> Vec<Option<f64>> {
    let text = std::fs::read_to_string(customers_csv()).unwrap();
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    let idx = header.iter().position(|h| *h == name).unwrap();
    lines
        .map(|l| {
            let v = l.split(',').nth(idx).unwrap();
            if v.is_empty() {
                None
            } else {
                Some(v.parse().unwrap())
            }
        })
        .collect()
}

#[test]
fn fit_then_run_standard_scaler_matches_the_reference_formula() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("scaler.state");
    let out = dir.path().join("scaled.parquet");
    let scaler = plugin_path("standard_scaler");
    let fit = kiln_ok(&[
        "fit",
        s(&scaler),
        "--input",
        s(&customers_csv()),
        "--param",
        "columns=income,age",
        "--state-out",
        s(&state),
        "--json",
    ]);
    let fit: serde_json::Value = serde_json::from_str(&fit).unwrap();
    let state_bytes = std::fs::read(&state).unwrap();
    assert_eq!(fit["state_id"], State::from_bytes(state_bytes).id());
    assert_eq!(fit["rows"], 48);

    kiln_ok(&[
        "run",
        s(&scaler),
        "--input",
        s(&customers_csv()),
        "--param",
        "columns=income,age",
        "--state",
        s(&state),
        "--output",
        s(&out),
        "--batch-size",
        "7",
    ]);
    let table = concat(&read(&out));
    for col in ["income", "age"] {
        let xs = csv_column(col);
        let present: Vec<f64> = xs.iter().flatten().copied().collect();
        let n = present.len() as f64;
        let mean = present.iter().sum::<f64>() / n;
        let std = (present.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n).sqrt();
        let got = table
            .column_by_name(col)
            .unwrap()
            .as_primitive::<Float64Type>();
        assert_eq!(got.len(), xs.len());
        for (i, x) in xs.iter().enumerate() {
            match x {
                None => assert!(got.is_null(i), "{col} row {i} stays null"),
                Some(x) => {
                    let want = (x - mean) / std;
                    assert!(
                        (got.value(i) - want).abs() < 1e-12,
                        "{col} row {i}: {} vs {want}",
                        got.value(i)
                    );
                }
            }
        }
    }
    // Other columns pass through untouched.
    assert_eq!(
        table
            .column_by_name("city")
            .unwrap()
            .as_string::<i32>()
            .value(0),
        "Paris"
    );
}

#[test]
fn cli_and_library_give_bit_identical_output() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("s.state");
    let cli_out = dir.path().join("cli.arrow");
    let plugin = plugin_path("standard_scaler");
    let params = r#"{"columns":["income"]}"#;
    kiln_ok(&[
        "fit",
        s(&plugin),
        "--input",
        s(&customers_csv()),
        "--params",
        params,
        "--state-out",
        s(&state),
    ]);
    kiln_ok(&[
        "run",
        s(&plugin),
        "--input",
        s(&customers_csv()),
        "--params",
        params,
        "--state",
        s(&state),
        "--output",
        s(&cli_out),
    ]);

    // The library, in this process, with its own fit.
    let p = load("standard_scaler");
    let params = Params::from_json(params).unwrap();
    let inputs = [customers_csv()];
    let (lib_state, _) =
        job::fit_files(&p, &params, &inputs, &JobOptions::default(), &mut |_| {}).unwrap();
    assert_eq!(
        lib_state.as_bytes(),
        std::fs::read(&state).unwrap(),
        "same state bytes"
    );
    let (_, batches) = kiln_host::io::read_all(&customers_csv(), &Default::default()).unwrap();
    let mut t = p.transformer(&params, Some(&lib_state)).unwrap();
    let lib: Vec<_> = batches.iter().map(|b| t.apply(b).unwrap()).collect();
    let lib = concat(&lib);
    let cli = concat(&read(&cli_out));
    assert_eq!(lib.schema(), cli.schema());
    let bits = |b: &arrow::array::RecordBatch| -> Vec<u64> {
        let a: &Float64Array = b.column_by_name("income").unwrap().as_primitive();
        a.values().iter().map(|v| v.to_bits()).collect()
    };
    assert_eq!(bits(&lib), bits(&cli));
    assert_eq!(lib, cli);
}

#[test]
fn errors_say_what_went_wrong_and_what_to_do() {
    let dir = tempfile::tempdir().unwrap();
    let scaler = plugin_path("standard_scaler");
    let csv = customers_csv();
    let state = dir.path().join("s.state");
    let out = dir.path().join("o.parquet");

    // Unknown parameter.
    let e = kiln_err(&[
        "fit",
        s(&scaler),
        "--input",
        s(&csv),
        "--params",
        r#"{"columns":["age"],"colums":1}"#,
        "--state-out",
        s(&state),
    ]);
    assert!(
        e.contains("invalid parameters") && e.contains("colums"),
        "{e}"
    );
    // Missing column: named, with the columns there are.
    let e = kiln_err(&[
        "fit",
        s(&scaler),
        "--input",
        s(&csv),
        "--param",
        "columns=salary",
        "--state-out",
        s(&state),
    ]);
    assert!(e.contains("'salary'") && e.contains("income"), "{e}");
    // Wrong column type.
    let e = kiln_err(&[
        "fit",
        s(&scaler),
        "--input",
        s(&csv),
        "--param",
        "columns=city",
        "--state-out",
        s(&state),
    ]);
    assert!(e.contains("'city'") && e.contains("Utf8"), "{e}");
    // A fitted plugin run without its state.
    let e = kiln_err(&[
        "run",
        s(&scaler),
        "--input",
        s(&csv),
        "--param",
        "columns=age",
        "--output",
        s(&out),
    ]);
    assert!(e.contains("kiln fit"), "{e}");
    // Corrupt input file.
    let bad = dir.path().join("bad.parquet");
    std::fs::write(&bad, b"PAR1 this is not parquet").unwrap();
    let e = kiln_err(&[
        "fit",
        s(&scaler),
        "--input",
        s(&bad),
        "--param",
        "columns=age",
        "--state-out",
        s(&state),
    ]);
    assert!(e.contains("bad.parquet"), "{e}");
    // Unknown output format.
    kiln_ok(&[
        "fit",
        s(&scaler),
        "--input",
        s(&csv),
        "--param",
        "columns=age",
        "--state-out",
        s(&state),
    ]);
    let e = kiln_err(&[
        "run",
        s(&scaler),
        "--input",
        s(&csv),
        "--param",
        "columns=age",
        "--state",
        s(&state),
        "--output",
        "out.xlsx",
    ]);
    assert!(e.contains(".parquet"), "{e}");
    // Not a plugin.
    let e = kiln_err(&["inspect", s(&csv)]);
    assert!(e.contains("not a WebAssembly file"), "{e}");
    assert!(!out.exists(), "failed runs wrote nothing");
}

#[test]
fn help_teaches_with_an_example() {
    let help = kiln_ok(&["--help"]);
    assert!(
        help.contains("kiln fit") && help.contains("--state-out"),
        "{help}"
    );
    let run_help = kiln_ok(&["run", "--help"]);
    assert!(
        run_help.contains("--batch-size") && run_help.contains("temporary file"),
        "{run_help}"
    );
}

#[test]
fn demo_runs_the_main_job() {
    let out = kiln_ok(&["demo", "--json"]);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["steps"].as_array().unwrap().len(), 6);
    let features = std::path::PathBuf::from(v["features"].as_str().unwrap());
    let _ = features; // the temporary directory is gone; the text mode prints the table
    let text = kiln_ok(&["demo"]);
    assert!(
        text.contains("plan_basic")
            && text.contains("city_bucket")
            && text.contains("signup_at_hour"),
        "{text}"
    );
}
