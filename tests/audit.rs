//! The audit log (issue 17, first part): every tag move (fit, tag,
//! promote, rollback) and gc is recorded with who did it, hash-chained;
//! `kiln audit verify` catches an edited entry, a deleted one and a
//! truncated log, editing the database directly as an attacker would.

use std::path::Path;

use serde_json::Value;

use crate::support::{customers_csv, halves, kiln, kiln_ok, open_sled, plugin_path, s};

fn json(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

/// `kiln ARGS --store STORE` with `KILN_USER` set as given.
fn as_user(user: Option<&str>, store: &Path, args: &[&str]) -> std::process::Output {
    let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_kiln"));
    c.args(args).args(["--store", s(store)]);
    match user {
        Some(u) => c.env("KILN_USER", u),
        None => c.env_remove("KILN_USER"),
    };
    c.output().unwrap()
}

fn verify(store: &Path) -> (bool, Value) {
    let out = kiln(&["audit", "verify", "--store", s(store), "--json"]);
    (
        out.status.success(),
        json(&String::from_utf8_lossy(&out.stdout)),
    )
}

/// Edit the store's database as someone with file access would.
fn tamper(store: &Path, f: impl FnOnce(&sled::Db)) {
    let db = open_sled(store);
    f(&db);
    db.flush().unwrap();
}

fn key(seq: u64) -> Vec<u8> {
    format!("audit/{seq:020}").into_bytes()
}

#[test]
fn every_tag_move_and_gc_is_audited_and_tampering_is_caught() {
    let tmp = tempfile::tempdir().unwrap();
    let store = tmp.path().join("store");
    let st = s(&store);
    let (a, b) = halves(tmp.path());
    let scaler = s(&plugin_path("standard_scaler")).to_string();
    let fit = |input: &Path, who: &str| {
        json(&kiln_ok(&[
            "fit",
            &scaler,
            "--input",
            s(input),
            "--param",
            "columns=age",
            "--name",
            "scaler",
            "--store",
            st,
            "--as",
            who,
            "--json",
        ]))["version_id"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let v1 = fit(&a, "alice");
    kiln_ok(&["tag", "scaler@staging", &v1, "--store", st, "--as", "bob"]);
    kiln_ok(&[
        "promote", "scaler", "--from", "staging", "--to", "prod", "--reason", "first", "--store",
        st, "--as", "carol",
    ]);
    let v2 = fit(&b, "alice");
    kiln_ok(&["tag", "scaler@staging", &v2, "--store", st, "--as", "bob"]);
    kiln_ok(&[
        "promote", "scaler", "--from", "staging", "--to", "prod", "--reason", "weekly", "--store",
        st, "--as", "carol",
    ]);
    // Without --as: KILN_USER names the principal.
    let out = as_user(
        Some("dave"),
        &store,
        &["rollback", "scaler@prod", "--reason", "regressed"],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    kiln_ok(&[
        "gc",
        "--keep-days",
        "0",
        "--apply",
        "--store",
        st,
        "--as",
        "erin",
    ]);
    // A run is not an administrative action.
    kiln_ok(&[
        "run",
        "scaler@prod",
        "--input",
        s(&customers_csv()),
        "--output",
        s(&tmp.path().join("f.parquet")),
        "--store",
        st,
    ]);

    let log = json(&kiln_ok(&["audit", "log", "--store", st, "--json"]));
    let entries = log.as_array().unwrap();
    let seen: Vec<(&str, &str, &str)> = entries
        .iter()
        .map(|e| {
            (
                e["actor"].as_str().unwrap(),
                e["action"].as_str().unwrap(),
                e["subject"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        seen,
        [
            ("alice", "fit", "scaler@dev"),
            ("bob", "tag", "scaler@staging"),
            ("carol", "promote", "scaler@prod"),
            ("alice", "fit", "scaler@dev"),
            ("bob", "tag", "scaler@staging"),
            ("carol", "promote", "scaler@prod"),
            ("dave", "rollback", "scaler@prod"),
            ("erin", "gc", "store"),
        ]
    );
    assert_eq!(entries[5]["detail"]["from"], v1.as_str());
    assert_eq!(entries[5]["detail"]["to"], v2.as_str());
    assert_eq!(entries[5]["detail"]["reason"], "weekly");
    assert_eq!(entries[6]["detail"]["to"], v1.as_str());
    // The chain, recomputed here from the JSON with an independent sha256.
    use sha2::Digest;
    let mut prev = "0".repeat(64);
    for (i, e) in entries.iter().enumerate() {
        assert_eq!(e["seq"], i as u64 + 1);
        assert_eq!(e["prev"], prev.as_str());
        let fields = serde_json::json!({
            "seq": e["seq"], "time": e["time"], "actor": e["actor"], "action": e["action"],
            "subject": e["subject"], "detail": e["detail"], "prev": e["prev"],
        });
        let mut h = sha2::Sha256::new();
        h.update(b"kiln-audit-v1\n");
        h.update(fields.to_string().as_bytes());
        let hash = hex::encode(h.finalize());
        assert_eq!(e["hash"], hash.as_str(), "entry {}", i + 1);
        prev = hash;
    }
    let (ok, r) = verify(&store);
    assert!(ok, "{r}");
    let head = json(&kiln_ok(&["audit", "head", "--store", st, "--json"]));
    assert_eq!(head["seq"], 8);
    assert_eq!(head["hash"], prev.as_str());

    // 1. An edited entry: the reason of the first promotion.
    let original = {
        let db = open_sled(&store);
        db.get(key(3)).unwrap().unwrap().to_vec()
    };
    tamper(&store, |db| {
        let text = String::from_utf8(original.clone())
            .unwrap()
            .replace("\"first\"", "\"approved by QA\"");
        db.insert(key(3), text.into_bytes()).unwrap();
    });
    let (ok, r) = verify(&store);
    assert!(!ok);
    let problems = r["problems"].to_string();
    assert!(
        problems.contains("entry 3") && problems.contains("edited"),
        "{problems}"
    );
    let out = kiln(&["audit", "verify", "--store", st]);
    assert_eq!(out.status.code(), Some(1), "a broken chain exits 1");
    let check = kiln(&["store", "check", "--store", st]);
    assert!(!check.status.success());
    assert!(String::from_utf8_lossy(&check.stdout).contains("audit log: entry 3"));
    tamper(&store, |db| {
        db.insert(key(3), original.clone()).unwrap();
    });
    assert!(verify(&store).0, "restored");

    // 2. A deleted entry in the middle.
    let second = {
        let db = open_sled(&store);
        db.get(key(2)).unwrap().unwrap().to_vec()
    };
    tamper(&store, |db| {
        db.remove(key(2)).unwrap();
    });
    let (ok, r) = verify(&store);
    assert!(!ok);
    assert!(
        r["problems"]
            .to_string()
            .contains("entries 2..2 are missing"),
        "{r}"
    );
    tamper(&store, |db| {
        db.insert(key(2), second.clone()).unwrap();
    });
    assert!(verify(&store).0, "restored");

    // 3. The newest entry deleted (the gc hidden): the head catches it.
    tamper(&store, |db| {
        db.remove(key(8)).unwrap();
    });
    let (ok, r) = verify(&store);
    assert!(!ok);
    assert!(
        r["problems"]
            .to_string()
            .contains("the head names entry 8 but the log ends at entry 7"),
        "{r}"
    );
}
