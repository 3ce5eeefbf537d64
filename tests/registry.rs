//! Registry and lineage (issue 3): named versions with tags, promotion and
//! rollback, recorded runs, trace, verify, bundles, store locking and crash
//! safety, dataset fingerprints, OpenLineage events.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use arrow::array::{ArrayRef, BooleanArray, Float64Array, Int64Array, RecordBatch, StringArray};
use kiln_host::store::{OpenOptions, Store};
use kiln_host::{fingerprint_file, Bundle, BundleServing, RegistryServing};
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::support::{customers_csv, halves, kiln, kiln_err, kiln_ok, plugin_path, s};

fn sha256_file(p: &Path) -> String {
    hex::encode(Sha256::digest(std::fs::read(p).unwrap()))
}

fn json(out: &str) -> Value {
    serde_json::from_str(out).unwrap_or_else(|e| panic!("not JSON ({e}): {out}"))
}

struct Flow {
    _dir: tempfile::TempDir,
    dir: PathBuf,
    store: String,
    a: PathBuf,
    b: PathBuf,
}

impl Flow {
    fn new() -> Flow {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().to_path_buf();
        let (a, b) = halves(&dir);
        Flow {
            store: s(&dir.join("store")).to_string(),
            _dir: tmp,
            dir,
            a,
            b,
        }
    }

    fn k(&self, args: &[&str]) -> Value {
        let mut all = args.to_vec();
        all.extend(["--store", &self.store, "--json"]);
        json(&kiln_ok(&all))
    }

    fn k_err(&self, args: &[&str]) -> String {
        let mut all = args.to_vec();
        all.extend(["--store", &self.store]);
        kiln_err(&all)
    }

    fn p(&self, name: &str) -> String {
        s(&self.dir.join(name)).to_string()
    }
}

#[test]
fn fit_promote_refit_promote_rollback_reproduces_the_first_output() {
    let f = Flow::new();
    let scaler = plugin_path("standard_scaler");
    let fit1 = f.k(&[
        "fit",
        s(&scaler),
        "--input",
        s(&f.a),
        "--param",
        "columns=income",
        "--name",
        "scaler",
        "--description",
        "income z-score",
        "--owner",
        "ml-team",
    ]);
    assert_eq!(fit1["tagged"], "scaler@dev");
    assert_eq!(fit1["plugin_id"], sha256_file(&scaler));
    let v1 = fit1["version_id"].as_str().unwrap().to_string();
    f.k(&[
        "promote",
        "scaler",
        "--from",
        "dev",
        "--to",
        "prod",
        "--reason",
        "first release",
    ]);
    let out1 = f.p("out1.parquet");
    let run1 = f.k(&["run", "scaler@prod", "--input", s(&f.a), "--output", &out1]);
    assert_eq!(run1["version_id"], v1.as_str());

    // Refit by name: the name's plugin and parameters, new data.
    let fit2 = f.k(&["fit", "scaler", "--input", s(&f.b), "--name", "scaler"]);
    let v2 = fit2["version_id"].as_str().unwrap().to_string();
    assert_ne!(v1, v2, "different data gives a different state and version");
    assert_eq!(fit2["params"], fit1["params"]);
    f.k(&["promote", "scaler", "--from", "dev", "--to", "prod"]);
    let out2 = f.p("out2.parquet");
    let run2 = f.k(&["run", "scaler@prod", "--input", s(&f.a), "--output", &out2]);
    assert_eq!(run2["version_id"], v2.as_str());
    assert_ne!(std::fs::read(&out1).unwrap(), std::fs::read(&out2).unwrap());

    let rb = f.k(&["rollback", "scaler@prod", "--reason", "v2 regressed"]);
    assert_eq!(
        (rb["from"].as_str(), rb["to"].as_str()),
        (Some(v2.as_str()), Some(v1.as_str()))
    );
    let versions = f.k(&["versions", "scaler"]);
    assert_eq!(versions["tags"]["prod"], v1.as_str());
    assert_eq!(versions["tags"]["dev"], v2.as_str());
    assert_eq!(versions["owner"], "ml-team");
    let actions: Vec<&str> = versions["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions, ["fit", "promote", "fit", "promote", "rollback"]);

    let out3 = f.p("out3.parquet");
    f.k(&["run", "scaler@prod", "--input", s(&f.a), "--output", &out3]);
    assert_eq!(
        std::fs::read(&out1).unwrap(),
        std::fs::read(&out3).unwrap(),
        "after rollback scaler@prod reproduces the first run byte for byte"
    );

    // A tag by version prefix; gc keeps everything a tag ever pointed at.
    let staged = f.k(&["tag", "scaler@staging", &v2[..10], "--reason", "canary"]);
    assert_eq!(staged["to"], v2.as_str());
    let gc = f.k(&["gc", "--keep-days", "0"]);
    assert_eq!(gc["applied"], false);
    for kind in ["runs", "versions", "states", "plugins"] {
        assert_eq!(gc[kind].as_array().unwrap().len(), 0, "{kind}: {gc}");
    }

    // Every recorded fit and run verifies.
    let runs = f.k(&["lineage", "log"]);
    let runs = runs.as_array().unwrap();
    assert_eq!(runs.len(), 5, "2 fits + 3 runs: {runs:?}");
    for r in runs {
        assert_eq!(r["status"], "ok");
        let id = r["id"].as_str().unwrap();
        let v = f.k(&["verify", id]);
        assert_eq!(v["identical"], true, "{v}");
    }
    assert_eq!(
        f.k(&["store", "check"])["problems"]
            .as_array()
            .unwrap()
            .len(),
        0
    );

    // Unknown tag: a clear error listing what exists, nothing written.
    let e = f.k_err(&[
        "run",
        "scaler@qa",
        "--input",
        s(&f.a),
        "--output",
        &f.p("x.parquet"),
    ]);
    assert!(e.contains("no tag 'qa'") && e.contains("prod"), "{e}");
    assert!(!f.dir.join("x.parquet").exists());
}

#[test]
fn verify_names_the_difference_when_the_state_is_swapped() {
    let f = Flow::new();
    let scaler = plugin_path("standard_scaler");
    let fit_a = f.k(&[
        "fit",
        s(&scaler),
        "--input",
        s(&f.a),
        "--param",
        "columns=income",
        "--name",
        "s",
    ]);
    let out = f.p("out.csv");
    let run = f.k(&["run", "s@dev", "--input", s(&f.a), "--output", &out]);
    let fit_b = f.k(&[
        "fit",
        s(&scaler),
        "--input",
        s(&f.b),
        "--param",
        "columns=income",
        "--name",
        "other",
    ]);
    // Swap the bytes of A's state for B's, under A's id (as a corrupt disk or
    // a tampering hand would).
    {
        let store = Store::open(Path::new(&f.store), &OpenOptions::default(), &mut |_| {}).unwrap();
        let b_state = store.state(fit_b["state_id"].as_str().unwrap()).unwrap();
        store
            .overwrite_blob_for_test(fit_a["state_id"].as_str().unwrap(), b_state.as_bytes())
            .unwrap();
    }
    let e = f.k_err(&["verify", run["run_id"].as_str().unwrap()]);
    assert!(e.contains("NOT reproduced"), "{e}");
    assert!(e.contains("state was swapped"), "{e}");
    assert!(e.contains("column 'income'") && e.contains("row 0"), "{e}");
    // The store check flags the blob, and a normal run refuses the tampered state.
    let e = f.k_err(&["store", "check"]);
    assert!(e.contains("1 problems"), "{e}");
    let e = f.k_err(&[
        "run",
        "s@dev",
        "--input",
        s(&f.a),
        "--output",
        &f.p("y.csv"),
    ]);
    assert!(e.contains("tampered"), "{e}");
}

#[test]
fn trace_walks_a_two_step_chain_back_to_the_raw_input() {
    let f = Flow::new();
    let raw = customers_csv();
    let imp = f.k(&[
        "fit",
        s(&plugin_path("impute")),
        "--input",
        s(&raw),
        "--params",
        r#"{"columns":["age"],"strategy":"median"}"#,
        "--name",
        "impute",
    ]);
    let mid = f.p("mid.parquet");
    f.k(&["run", "impute@dev", "--input", s(&raw), "--output", &mid]);
    let sc = f.k(&[
        "fit",
        s(&plugin_path("standard_scaler")),
        "--input",
        &mid,
        "--param",
        "columns=age,income",
        "--name",
        "scaler",
    ]);
    let out = f.p("features.arrow");
    f.k(&["run", "scaler@dev", "--input", &mid, "--output", &out]);

    let t = f.k(&["lineage", "trace", &out]);
    let step2 = &t["produced_by"];
    assert_eq!(
        step2["transform"]["plugin_id"],
        sha256_file(&plugin_path("standard_scaler"))
    );
    assert_eq!(step2["transform"]["state_id"], sc["state_id"]);
    assert_eq!(step2["target"], "scaler@dev");
    let step1 = &step2["inputs"][0]["produced_by"];
    assert_eq!(
        step1["transform"]["plugin_id"],
        sha256_file(&plugin_path("impute"))
    );
    assert_eq!(step1["transform"]["state_id"], imp["state_id"]);
    let raw_node = &step1["inputs"][0];
    assert!(raw_node["produced_by"].is_null());
    assert_eq!(raw_node["fingerprint"], fingerprint_file(&raw).unwrap().id);

    // The text form names the same parts; the graph links the four runs.
    let text = kiln_ok(&["lineage", "trace", &out, "--store", &f.store]);
    for part in [
        sha256_file(&plugin_path("impute")),
        sha256_file(&plugin_path("standard_scaler")),
        imp["state_id"].as_str().unwrap().to_string(),
        sc["state_id"].as_str().unwrap().to_string(),
    ] {
        assert!(text.contains(&part), "{part} missing from:\n{text}");
    }
    let dot = kiln_ok(&["lineage", "graph", "--store", &f.store]);
    assert!(
        dot.starts_with("digraph") && dot.matches(" -> ").count() >= 6,
        "{dot}"
    );
    let mermaid = kiln_ok(&[
        "lineage", "graph", "--format", "mermaid", "--store", &f.store,
    ]);
    assert!(mermaid.starts_with("flowchart LR"), "{mermaid}");

    // A file Kiln did not make is reported as a raw input.
    let t = f.k(&["lineage", "trace", s(&f.a)]);
    assert!(t["produced_by"].is_null());
}

fn table(v: i64) -> RecordBatch {
    RecordBatch::try_from_iter([
        (
            "id",
            Arc::new(Int64Array::from(vec![
                Some(1),
                Some(2),
                None,
                Some(4),
                Some(v),
            ])) as ArrayRef,
        ),
        (
            "x",
            Arc::new(Float64Array::from(vec![
                Some(0.5),
                None,
                Some(-2.25),
                Some(1e-3),
                Some(7.0),
            ])) as ArrayRef,
        ),
        (
            "name",
            Arc::new(StringArray::from(vec![
                Some("a"),
                Some("b c"),
                Some("d,e"),
                None,
                Some("f"),
            ])) as ArrayRef,
        ),
        (
            "flag",
            Arc::new(BooleanArray::from(vec![
                Some(true),
                Some(false),
                None,
                Some(true),
                Some(false),
            ])) as ArrayRef,
        ),
    ])
    .unwrap()
}

/// Write with arrow-rs' and parquet's own writers (not kiln's), in
/// different batch and row-group sizes.
fn write_all_formats(dir: &Path, t: &RecordBatch) -> Vec<PathBuf> {
    let csv = dir.join("t.csv");
    let mut w = arrow::csv::Writer::new(std::fs::File::create(&csv).unwrap());
    w.write(&t.slice(0, 2)).unwrap();
    w.write(&t.slice(2, 3)).unwrap();
    drop(w);
    let pq = dir.join("t.parquet");
    let props = parquet::file::properties::WriterProperties::builder()
        .set_max_row_group_row_count(Some(2))
        .set_compression(parquet::basic::Compression::SNAPPY)
        .build();
    let mut w = parquet::arrow::ArrowWriter::try_new(
        std::fs::File::create(&pq).unwrap(),
        t.schema(),
        Some(props),
    )
    .unwrap();
    w.write(t).unwrap();
    w.close().unwrap();
    let ipc = dir.join("t.arrow");
    let mut w =
        arrow::ipc::writer::FileWriter::try_new(std::fs::File::create(&ipc).unwrap(), &t.schema())
            .unwrap();
    for i in 0..t.num_rows() {
        w.write(&t.slice(i, 1)).unwrap();
    }
    w.finish().unwrap();
    vec![csv, pq, ipc]
}

#[test]
fn fingerprint_is_one_across_formats_and_batches_and_changes_with_a_value() {
    let tmp = tempfile::tempdir().unwrap();
    let files = write_all_formats(tmp.path(), &table(5));
    let fps: Vec<String> = files
        .iter()
        .map(|p| fingerprint_file(p).unwrap().id)
        .collect();
    assert!(fps.iter().all(|f| f == &fps[0]), "{files:?}: {fps:?}");
    let other = tempfile::tempdir().unwrap();
    let changed = write_all_formats(other.path(), &table(6));
    for p in &changed {
        assert_ne!(fingerprint_file(p).unwrap().id, fps[0], "{}", p.display());
    }
}

#[test]
fn tampered_bundles_are_refused() {
    let f = Flow::new();
    f.k(&[
        "fit",
        s(&plugin_path("standard_scaler")),
        "--input",
        s(&f.a),
        "--param",
        "columns=income",
        "--name",
        "s",
    ]);
    f.k(&["promote", "s", "--from", "dev", "--to", "prod"]);
    let bundle = f.p("s.kiln");
    let m = f.k(&["export", "s@prod", "-o", &bundle]);
    let ok_out = f.p("ok.parquet");
    // Serving side: no store at all.
    kiln_ok(&["run", &bundle, "--input", s(&f.a), "--output", &ok_out]);
    let b = Bundle::read(Path::new(&bundle)).unwrap();
    assert_eq!(b.manifest.version_id, m["version_id"].as_str().unwrap());
    // Served from the bundle, without a store: the same bits as the CLI.
    let served = b
        .serving(crate::support::engine(), Default::default())
        .unwrap();
    assert_eq!(served.name(), "s@prod");
    let input = crate::support::concat(&crate::support::read(&f.a));
    let from_bundle = served.apply(&input).unwrap();
    let from_cli = crate::support::concat(&crate::support::read(Path::new(&ok_out)));
    assert_eq!(from_bundle.schema().fields(), from_cli.schema().fields());
    for c in 0..from_cli.num_columns() {
        assert_eq!(
            from_bundle.column(c).to_data(),
            from_cli.column(c).to_data()
        );
    }
    assert_eq!(served.version(), m["version_id"].as_str().unwrap());
    // And from the store by name@tag (the store is closed again after).
    let registry = || {
        let st = Store::open(Path::new(&f.store), &OpenOptions::default(), &mut |_| {}).unwrap();
        kiln_host::Registry::new(crate::support::engine().clone(), st)
    };
    let by_tag = registry().serving("s@prod", Default::default()).unwrap();
    assert_eq!(by_tag.apply(&input).unwrap(), from_bundle);
    assert_eq!(by_tag.version(), m["version_id"].as_str().unwrap());
    let store_out = f.p("store.parquet");
    f.k(&["run", "s@prod", "--input", s(&f.a), "--output", &store_out]);
    assert_eq!(
        std::fs::read(&ok_out).unwrap(),
        std::fs::read(&store_out).unwrap()
    );
    // prod moves (refit on the other half, promoted by another process):
    // Registry::reload follows it, and only when it moved.
    assert!(!registry().reload(&by_tag, "s@prod").unwrap());
    let v2 = f.k(&[
        "fit",
        "s",
        "--input",
        s(&f.b),
        "--param",
        "columns=income",
        "--tag",
        "prod",
    ]);
    assert!(registry().reload(&by_tag, "s@prod").unwrap());
    assert_eq!(by_tag.version(), v2["version_id"].as_str().unwrap());
    let v2_out = f.p("v2.parquet");
    f.k(&["run", "s@prod", "--input", s(&f.a), "--output", &v2_out]);
    let v2_cli = crate::support::concat(&crate::support::read(Path::new(&v2_out)));
    assert_ne!(v2_cli, from_cli);
    assert_eq!(by_tag.apply(&input).unwrap(), v2_cli);
    f.k(&["rollback", "s@prod"]);
    assert!(registry().reload(&by_tag, "s@prod").unwrap());
    assert_eq!(by_tag.apply(&input).unwrap(), from_bundle);

    let rebuild = |name: &str, edit: &dyn Fn(&str, Vec<u8>) -> Vec<u8>| -> PathBuf {
        let mut src = tar::Archive::new(std::fs::File::open(&bundle).unwrap());
        let path = f.dir.join(name);
        let mut dst = tar::Builder::new(std::fs::File::create(&path).unwrap());
        for e in src.entries().unwrap() {
            let mut e = e.unwrap();
            let member = e.path().unwrap().to_string_lossy().into_owned();
            let mut bytes = Vec::new();
            e.read_to_end(&mut bytes).unwrap();
            let bytes = edit(&member, bytes);
            let mut h = tar::Header::new_gnu();
            h.set_size(bytes.len() as u64);
            h.set_cksum();
            dst.append_data(&mut h, &member, bytes.as_slice()).unwrap();
        }
        dst.finish().unwrap();
        path
    };
    let cases: Vec<(&str, PathBuf, &str)> = vec![
        (
            "plugin byte",
            rebuild("p.kiln", &|m, mut b| {
                if m == "plugin.wasm" {
                    let n = b.len() - 1;
                    b[n] ^= 1;
                }
                b
            }),
            "plugin.wasm does not match",
        ),
        (
            "state",
            rebuild("st.kiln", &|m, b| {
                if m == "state.bin" {
                    String::from_utf8(b)
                        .unwrap()
                        .replacen('1', "2", 1)
                        .into_bytes()
                } else {
                    b
                }
            }),
            "state.bin does not match",
        ),
        (
            "params",
            rebuild("pa.kiln", &|m, b| {
                if m == "manifest.json" {
                    String::from_utf8(b)
                        .unwrap()
                        .replace("income", "age")
                        .into_bytes()
                } else {
                    b
                }
            }),
            "tampered manifest",
        ),
    ];
    for (what, path, expect) in cases {
        let e = kiln_err(&[
            "run",
            s(&path),
            "--input",
            s(&f.a),
            "--output",
            &f.p("bad.parquet"),
        ]);
        assert!(e.contains(expect), "{what}: {e}");
        assert!(Bundle::read(&path).is_err(), "{what}");
    }
    assert!(!f.dir.join("bad.parquet").exists());
}

#[test]
fn a_second_process_is_told_who_holds_the_store_and_can_wait() {
    let f = Flow::new();
    f.k(&["add", s(&plugin_path("identity"))]);
    let held = Store::open(Path::new(&f.store), &OpenOptions::default(), &mut |_| {}).unwrap();
    let e = f.k_err(&["versions"]);
    assert!(
        e.contains("in use by pid") && e.contains(&std::process::id().to_string()),
        "{e}"
    );
    assert!(e.contains("--wait"), "{e}");

    let child = Command::new(env!("CARGO_BIN_EXE_kiln"))
        .args(["versions", "--store", &f.store, "--wait"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(700));
    drop(held);
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("waiting for store"),
        "{out:?}"
    );
}

#[test]
fn sigkill_at_random_moments_leaves_a_store_that_opens_and_checks() {
    let f = Flow::new();
    // A larger input so that kills land in reading, fitting and committing.
    let big = f.dir.join("big.csv");
    let mut w = std::io::BufWriter::new(std::fs::File::create(&big).unwrap());
    writeln!(w, "x,y").unwrap();
    for i in 0..1_000_000u64 {
        writeln!(w, "{},{}", i % 977, (i * 7919) % 1000).unwrap();
    }
    drop(w);
    let scaler = plugin_path("standard_scaler");
    // Deterministic pseudo-random delays (reproducible failures).
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    let mut killed = 0;
    for i in 0..14 {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let delay = Duration::from_millis(seed % 300);
        let out = f.p(&format!("o{i}.parquet"));
        let args: Vec<String> = if i % 3 == 2 {
            vec![
                "run".into(),
                "s@dev".into(),
                "--input".into(),
                s(&big).into(),
                "--output".into(),
                out,
            ]
        } else {
            vec![
                "fit".into(),
                s(&scaler).into(),
                "--input".into(),
                s(&big).into(),
                "--param".into(),
                "columns=x,y".into(),
                "--name".into(),
                "s".into(),
                "--reason".into(),
                format!("fit {i}"),
            ]
        };
        let mut child = Command::new(env!("CARGO_BIN_EXE_kiln"))
            .args(&args)
            .args(["--store", &f.store, "--wait", "--batch-size", "4096"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(delay);
        if child.try_wait().unwrap().is_none() {
            child.kill().unwrap(); // SIGKILL
            killed += 1;
        }
        child.wait().unwrap();
        let check = kiln(&["store", "check", "--store", &f.store, "--json"]);
        if Path::new(&f.store).join("db").exists() {
            assert!(
                check.status.success(),
                "after kill {i} at {delay:?}: {check:?}"
            );
        }
    }
    eprintln!("sigkill: {killed} of 14 processes killed mid-way");
    assert!(killed >= 3, "only {killed} of 14 runs were killed mid-way");
    // The store still works end to end.
    f.k(&[
        "fit",
        s(&scaler),
        "--input",
        s(&big),
        "--param",
        "columns=x,y",
        "--name",
        "s",
    ]);
    f.k(&[
        "run",
        "s@dev",
        "--input",
        s(&big),
        "--output",
        &f.p("final.parquet"),
    ]);
    let check = f.k(&["store", "check"]);
    assert_eq!(check["problems"].as_array().unwrap().len(), 0, "{check}");
}

/// A one-thread HTTP server on loopback that records request bodies.
fn lineage_listener() -> (String, Arc<Mutex<Vec<Value>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/api/v1/lineage", listener.local_addr().unwrap());
    let got = Arc::new(Mutex::new(Vec::new()));
    let sink = got.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut len = 0usize;
            let mut request_line = String::new();
            reader.read_line(&mut request_line).unwrap();
            loop {
                let mut line = String::new();
                reader.read_line(&mut line).unwrap();
                if line == "\r\n" || line.is_empty() {
                    break;
                }
                if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                    len = v.trim().parse().unwrap();
                }
            }
            let mut body = vec![0; len];
            reader.read_exact(&mut body).unwrap();
            assert!(
                request_line.starts_with("POST /api/v1/lineage"),
                "{request_line}"
            );
            sink.lock()
                .unwrap()
                .push(serde_json::from_slice(&body).unwrap());
            stream
                .write_all(
                    b"HTTP/1.1 201 Created\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
                )
                .unwrap();
        }
    });
    (url, got)
}

#[test]
fn runs_are_emitted_as_openlineage_events_to_a_file_and_over_http() {
    let f = Flow::new();
    let events = f.p("events.jsonl");
    let (url, got) = lineage_listener();
    let fit = f.k(&[
        "fit",
        s(&plugin_path("standard_scaler")),
        "--input",
        s(&f.a),
        "--param",
        "columns=income",
        "--name",
        "scaler",
        "--openlineage-file",
        &events,
        "--openlineage-url",
        &url,
    ]);
    let out = f.p("o.parquet");
    let run = f.k(&[
        "run",
        "scaler@dev",
        "--input",
        s(&f.a),
        "--output",
        &out,
        "--openlineage-file",
        &events,
        "--openlineage-url",
        &url,
    ]);
    // A failing run: the input lacks the column.
    let no_income = f.p("no_income.csv");
    std::fs::write(&no_income, "age\n1\n").unwrap();
    f.k_err(&[
        "run",
        "scaler@dev",
        "--input",
        &no_income,
        "--output",
        &f.p("bad.parquet"),
        "--openlineage-file",
        &events,
    ]);

    let lines: Vec<Value> = std::fs::read_to_string(&events)
        .unwrap()
        .lines()
        .map(json)
        .collect();
    let kinds: Vec<&str> = lines
        .iter()
        .map(|e| e["eventType"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        ["START", "COMPLETE", "START", "COMPLETE", "START", "FAIL"]
    );
    for e in &lines {
        assert_eq!(
            e["schemaURL"],
            "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent"
        );
        assert!(e["producer"].as_str().unwrap().starts_with("https://"));
        assert_eq!(e["job"]["namespace"], "kiln");
    }
    let done = &lines[3];
    assert_eq!(done["run"]["runId"], run["run_id"]);
    assert_eq!(done["job"]["name"], "scaler.run");
    let facet = &done["run"]["facets"]["kiln"];
    assert_eq!(facet["pluginId"], fit["plugin_id"]);
    assert_eq!(facet["stateId"], fit["state_id"]);
    assert_eq!(facet["witVersion"], "0.1.0");
    assert!(facet["engine"]["determinism"].as_array().unwrap().len() >= 3);
    assert_eq!(
        done["inputs"][0]["name"],
        s(&std::path::absolute(&f.a).unwrap())
    );
    let out_fields: Vec<&str> = done["outputs"][0]["facets"]["schema"]["fields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert!(out_fields.contains(&"income"), "{out_fields:?}");
    assert!(lines[5]["run"]["facets"]["errorMessage"]["message"]
        .as_str()
        .unwrap()
        .contains("income"));

    // The HTTP listener got the same four events of the two successful runs.
    let http = got.lock().unwrap().clone();
    let kinds: Vec<&str> = http
        .iter()
        .map(|e| e["eventType"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["START", "COMPLETE", "START", "COMPLETE"]);
    assert_eq!(http[1]["run"]["runId"], fit["run_id"]);
}
