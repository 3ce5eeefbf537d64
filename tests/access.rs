//! Access control and column masking (issue 17): grants decide who may
//! run, promote and administer a name, on the CLI (`--as`) and over HTTP
//! (bearer tokens, 401/403); nobody can lock the store; every change is
//! audited; and a masked column never leaves unmasked through `kiln run`,
//! `kiln serve` or a training set, for a principal without clearance.
//! Oracles: HMAC-SHA256 written out here over `sha2` (RFC 2104, not the
//! `hmac` crate the host uses), bucket floors and the raw input values.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Arc;

use arrow::array::{
    Array, AsArray, Float64Array, Int64Array, RecordBatch, StringArray, TimestampMicrosecondArray,
};
use arrow::datatypes::{DataType, Field, Int64Type, Schema, TimeUnit};
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::serve::{from_ipc, ipc, ARROW};
use crate::support::{concat, open_sled, plugin_path, read, s};

const T0: i64 = 1_767_225_600_000_000; // 2026-01-01T00:00:00Z in µs
const HOUR: i64 = 3_600_000_000;
const EMAILS: [&str; 6] = [
    "ada@example.org",
    "grace@example.org",
    "alan@example.org",
    "edsger@example.org",
    "barbara@example.org",
    "ada@example.org", // a repeat: equal values hash equal
];
const AGES: [i64; 6] = [37, 18, 66, 40, 29, 37];
const INCOMES: [f64; 6] = [
    52_000.5, 28_996.97, 67_638.57, 81_000.0, 44_444.25, 52_000.5,
];

fn json(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

/// People with PII: customer_id, event_at, email, age, income.
fn people(dir: &Path) -> PathBuf {
    let schema = Arc::new(Schema::new(vec![
        Field::new("customer_id", DataType::Int64, false),
        Field::new(
            "event_at",
            DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
            false,
        ),
        Field::new("email", DataType::Utf8, false),
        Field::new("age", DataType::Int64, false),
        Field::new("income", DataType::Float64, false),
    ]));
    let n = EMAILS.len() as i64;
    let batch = RecordBatch::try_new(
        schema,
        vec![
            Arc::new(Int64Array::from_iter_values(1000..1000 + n)),
            Arc::new(
                TimestampMicrosecondArray::from_iter_values((0..n).map(|i| T0 + i * HOUR))
                    .with_timezone("UTC"),
            ),
            Arc::new(StringArray::from(EMAILS.to_vec())),
            Arc::new(Int64Array::from(AGES.to_vec())),
            Arc::new(Float64Array::from(INCOMES.to_vec())),
        ],
    )
    .unwrap();
    parquet_file(dir.join("people.parquet"), &batch)
}

/// HMAC-SHA256 (RFC 2104) of `text` keyed with `key`, first 16 bytes in hex.
fn hmac_hex(key: &[u8], text: &str) -> String {
    let mut k = [0u8; 64];
    if key.len() > 64 {
        k[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        k[..key.len()].copy_from_slice(key);
    }
    let pad = |b: u8| k.iter().map(|x| x ^ b).collect::<Vec<u8>>();
    let inner = Sha256::new()
        .chain_update(pad(0x36))
        .chain_update(text.as_bytes())
        .finalize();
    let outer = Sha256::new()
        .chain_update(pad(0x5c))
        .chain_update(inner)
        .finalize();
    hex::encode(&outer[..16])
}

#[test]
fn hmac_oracle_matches_rfc_4231_case_2() {
    // RFC 4231 test case 2: key "Jefe", data "what do ya want for nothing?".
    assert_eq!(
        hmac_hex(b"Jefe", "what do ya want for nothing?"),
        "5bdcc146bf60754e6a042426089575c7"
    );
}

/// The store's secret mask salt, read from its database (the store must
/// not be open elsewhere).
fn salt(store: &Path) -> Vec<u8> {
    let db = open_sled(store);
    let salt = db.get(b"access/salt").unwrap().expect("a salt").to_vec();
    assert_eq!(salt.len(), 32);
    salt
}

/// One store and a way to run `kiln` against it as someone.
struct Env {
    dir: tempfile::TempDir,
    store: PathBuf,
    people: PathBuf,
}

impl Env {
    fn new() -> Env {
        let dir = tempfile::tempdir().unwrap();
        let store = dir.path().join("store");
        let people = people(dir.path());
        Env { dir, store, people }
    }
    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
    fn kiln(&self, who: &str, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_kiln"))
            .args(args)
            .args(["--store", s(&self.store), "--as", who])
            .env_remove("KILN_USER")
            .output()
            .unwrap()
    }
    fn ok(&self, who: &str, args: &[&str]) -> String {
        let out = self.kiln(who, args);
        assert!(
            out.status.success(),
            "{who}: kiln {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }
    /// A refusal: exit 1, the message on stderr.
    fn denied(&self, who: &str, args: &[&str]) -> String {
        let out = self.kiln(who, args);
        let err = String::from_utf8_lossy(&out.stderr).into_owned();
        assert_eq!(out.status.code(), Some(1), "{who}: kiln {args:?}: {err}");
        assert!(!err.contains("panicked"), "{err}");
        err
    }
    /// Register the identity plugin as `people` (its output is its input,
    /// so every column of the people file is a feature to protect).
    fn fit_people(&self, who: &str) -> String {
        let v = json(&self.ok(
            who,
            &[
                "fit",
                s(&plugin_path("identity")),
                "--input",
                s(&self.people),
                "--name",
                "people",
                "--json",
            ],
        ));
        v["version_id"].as_str().unwrap().to_string()
    }
    fn run(&self, who: &str, target: &str, out: &str) -> (Value, RecordBatch) {
        let out = self.path(out);
        let r = json(&self.ok(
            who,
            &[
                "run",
                target,
                "--input",
                s(&self.people),
                "--output",
                s(&out),
                "--json",
            ],
        ));
        (r, concat(&read(&out)))
    }
}

#[test]
fn grants_decide_who_may_do_what_and_nobody_can_lock_the_store() {
    let env = Env::new();
    let v = env.fit_people("alice");
    // Off: everyone may do everything.
    env.ok("bob", &["tag", "people@staging", &v]);
    env.ok("alice", &["access", "enable"]);

    // bob holds nothing: told who, what, on which name and how to get it.
    let e = env.denied(
        "bob",
        &[
            "run",
            "people@dev",
            "--input",
            s(&env.people),
            "--output",
            "/dev/null",
        ],
    );
    for want in ["bob", "run", "people", "kiln access grant"] {
        assert!(e.contains(want), "missing {want:?} in: {e}");
    }
    let e = env.denied(
        "bob",
        &["access", "grant", "x", "--on", "people", "--allow", "admin"],
    );
    assert!(e.contains("admin"), "{e}");

    env.ok(
        "alice",
        &[
            "access", "grant", "analysts", "--on", "people", "--allow", "run",
        ],
    );
    env.ok("alice", &["access", "grant", "analysts", "--member", "bob"]);
    let (r, out) = env.run("bob", "people@dev", "bob.arrow");
    assert_eq!(r["rows_out"], 6, "{r}");
    assert_eq!(out.num_rows(), 6);
    // run does not include promote, nor gc, nor access administration.
    let e = env.denied(
        "bob",
        &["promote", "people", "--from", "staging", "--to", "prod"],
    );
    assert!(e.contains("promote") && e.contains("holds run"), "{e}");
    let e = env.denied("bob", &["gc", "--apply"]);
    assert!(e.contains("admin"), "{e}");
    let e = env.denied("bob", &["access", "token", "create", "bob"]);
    assert!(e.contains("admin"), "{e}");
    // A grant on another name gives nothing here.
    env.ok(
        "alice",
        &[
            "access", "grant", "others", "--on", "peoplex", "--allow", "admin",
        ],
    );
    env.ok("alice", &["access", "grant", "others", "--member", "dave"]);
    env.denied("dave", &["tag", "people@prod", &v]);

    // `access check` answers with its exit code.
    env.ok(
        "alice",
        &["access", "check", "bob", "--on", "people", "--allow", "run"],
    );
    let c = env.kiln(
        "alice",
        &[
            "access", "check", "bob", "--on", "people", "--allow", "promote", "--json",
        ],
    );
    assert_eq!(c.status.code(), Some(1));
    let c = json(&String::from_utf8_lossy(&c.stdout));
    assert_eq!(
        (c["allowed"].as_bool(), c["held"].as_str()),
        (Some(false), Some("run"))
    );

    // Nobody can leave the store without an admin on '*'.
    let e = env.denied("alice", &["access", "revoke", "admin", "--member", "alice"]);
    assert!(e.contains("no principal would hold admin"), "{e}");
    let e = env.denied("alice", &["access", "revoke", "admin", "--on", "*"]);
    assert!(e.contains("no principal would hold admin"), "{e}");
    env.ok("alice", &["access", "grant", "admin", "--member", "carol"]);
    env.ok("alice", &["access", "revoke", "admin", "--member", "alice"]);
    env.denied("alice", &["tag", "people@prod", &v]);
    env.ok(
        "carol",
        &["promote", "people", "--from", "staging", "--to", "prod"],
    );

    // Every change is in the audit log, whose chain verifies.
    let log = json(&env.ok("carol", &["audit", "log", "--json"]));
    let actions: Vec<(String, String)> = log
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["action"].as_str().unwrap().to_string(),
                e["actor"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    for (action, actor) in [
        ("access-enable", "alice"),
        ("grant", "alice"),
        ("member-add", "alice"),
        ("member-remove", "alice"),
        ("promote", "carol"),
    ] {
        assert!(
            actions.iter().any(|(a, w)| a == action && w == actor),
            "no {action} by {actor} in {actions:?}"
        );
    }
    // Refused changes left no entry (bob's one entry is his tag from
    // before access control was on).
    let on = actions
        .iter()
        .position(|(a, _)| a == "access-enable")
        .unwrap();
    assert_eq!(actions[on - 1], ("tag".into(), "bob".into()));
    assert!(
        !actions[on..].iter().any(|(_, w)| w == "bob" || w == "dave"),
        "{actions:?}"
    );
    let verify = json(&env.ok("carol", &["audit", "verify", "--json"]));
    assert_eq!(verify["ok"], true, "{verify}");

    // Off again: bob may promote.
    env.denied("bob", &["access", "disable"]);
    env.ok("carol", &["access", "disable"]);
    env.ok(
        "bob",
        &["promote", "people", "--from", "staging", "--to", "prod"],
    );
}

/// What bob (no clearance) must see: email hashed, age bucketized, income null.
fn check_masked(b: &RecordBatch, salt: &[u8]) {
    let email = b.column_by_name("email").unwrap().as_string::<i32>();
    let want: Vec<String> = EMAILS.iter().map(|e| hmac_hex(salt, e)).collect();
    let got: Vec<&str> = email.iter().map(Option::unwrap).collect();
    assert_eq!(got, want);
    assert_eq!(got[0], got[5], "equal values hash equal");
    let age = b.column_by_name("age").unwrap().as_primitive::<Int64Type>();
    let want: Vec<i64> = AGES.iter().map(|a| a - a % 10).collect();
    assert_eq!(age.values().to_vec(), want);
    let income = b.column_by_name("income").unwrap();
    assert_eq!(income.data_type(), &DataType::Float64);
    assert_eq!(income.null_count(), EMAILS.len());
    let field = b.schema().field_with_name("email").unwrap().clone();
    assert_eq!(
        field.metadata().get("kiln.masked").map(String::as_str),
        Some("hash")
    );
    assert_eq!(
        field.metadata().get("kiln.sensitivity").map(String::as_str),
        Some("pii")
    );
}

/// What a cleared principal sees: the input as it is.
fn check_raw(b: &RecordBatch) {
    let email = b.column_by_name("email").unwrap().as_string::<i32>();
    assert_eq!(email.iter().map(Option::unwrap).collect::<Vec<_>>(), EMAILS);
    let age = b.column_by_name("age").unwrap().as_primitive::<Int64Type>();
    assert_eq!(age.values().to_vec(), AGES);
    let income = b
        .column_by_name("income")
        .unwrap()
        .as_primitive::<arrow::datatypes::Float64Type>();
    assert_eq!(income.values().to_vec(), INCOMES);
}

/// No raw email in a file's bytes (a CSV shows every value as text).
fn no_raw_email(file: &Path) {
    let bytes = std::fs::read(file).unwrap();
    let text = String::from_utf8_lossy(&bytes);
    for e in EMAILS {
        assert!(!text.contains(e), "{} leaks {e}", file.display());
    }
}

#[test]
fn a_masked_column_never_leaves_unmasked_through_run_serve_or_a_training_set() {
    let env = Env::new();
    let v = env.fit_people("alice");
    for (col, label, mask) in [
        ("email", "pii", "hash"),
        ("age", "pii", "bucketize:10"),
        ("income", "financial", "redact"),
    ] {
        env.ok(
            "alice",
            &[
                "access",
                "mask",
                "people",
                col,
                "--sensitivity",
                label,
                "--with",
                mask,
            ],
        );
    }
    let e = env.denied(
        "alice",
        &[
            "access",
            "mask",
            "people",
            "age",
            "--sensitivity",
            "pii",
            "--with",
            "blur",
        ],
    );
    assert!(e.contains("hash, redact or bucketize"), "{e}");
    let salt = salt(&env.store);
    // The policies are part of the name's metadata.
    let info = json(&env.ok("bob", &["versions", "people", "--json"]));
    assert_eq!(
        info["column_policies"]["email"]["sensitivity"], "pii",
        "{info}"
    );
    assert_eq!(
        info["column_policies"]["age"]["mask"]["width"], 10.0,
        "{info}"
    );

    // kiln run: by name, by version id, to Arrow and to CSV.
    let (r, out) = env.run("bob", "people@dev", "bob.arrow");
    check_masked(&out, &salt);
    let (_, out) = env.run("bob", &v, "bob-by-id.arrow");
    check_masked(&out, &salt);
    env.run("bob", "people@dev", "bob.csv");
    no_raw_email(&env.path("bob.csv"));
    // The masked run re-executes bit for bit.
    let run_id = r["run_id"].as_str().unwrap();
    let verify = json(&env.ok("bob", &["verify", run_id, "--json"]));
    assert_eq!(verify["identical"], true, "{verify}");

    // Cleared for pii only: email and age raw, income still redacted.
    env.ok(
        "alice",
        &[
            "access",
            "grant",
            "privacy",
            "--member",
            "carol",
            "--clearance",
            "pii",
        ],
    );
    let (_, out) = env.run("carol", "people@dev", "carol.arrow");
    let email = out.column_by_name("email").unwrap().as_string::<i32>();
    assert_eq!(email.value(1), EMAILS[1]);
    assert_eq!(out.column_by_name("income").unwrap().null_count(), 6);
    env.ok(
        "alice",
        &["access", "grant", "privacy", "--clearance", "financial"],
    );
    let (_, out) = env.run("carol", "people@dev", "carol2.arrow");
    check_raw(&out);

    // A feature table holds raw values: only a cleared principal writes
    // one; a training set masks what it takes from it.
    let table = env.path("people-table");
    let mat = [
        "materialize",
        "people@dev",
        "--input",
        s(&env.people),
        "--table",
        s(&table),
        "--entity",
        "customer_id",
        "--timestamp",
        "event_at",
    ];
    let e = env.denied("bob", &mat);
    assert!(e.contains("clear") && e.contains("pii"), "{e}");
    env.ok("carol", &mat);
    let spine = spine(env.dir.path());
    let train = |who: &str, name: &str| {
        let out = env.path(name);
        env.ok(
            who,
            &[
                "training-set",
                "--spine",
                s(&spine),
                "--features",
                s(&table),
                "--output",
                s(&out),
            ],
        );
        out
    };
    let t = train("bob", "train-bob.csv");
    no_raw_email(&t);
    check_masked(&concat(&read(&train("bob", "train-bob.arrow"))), &salt);
    check_raw(&concat(&read(&train("carol", "train-carol.arrow"))));
    // A bundle carries no policies: only a cleared principal exports one.
    let bundle = env.path("people.kiln");
    let e = env.denied("bob", &["export", "people@dev", "-o", s(&bundle)]);
    assert!(e.contains("not cleared") && e.contains("financial"), "{e}");
    assert!(!bundle.exists());
    env.ok("carol", &["export", "people@dev", "-o", s(&bundle)]);
    // Reading the table itself masks the same way.
    let show = |who: &str, name: &str| {
        let out = env.path(name);
        env.ok(who, &["table", "show", s(&table), "--output", s(&out)]);
        concat(&read(&out))
    };
    check_masked(&show("bob", "show-bob.arrow"), &salt);
    check_raw(&show("carol", "show-carol.arrow"));
    let printed = env.ok("bob", &["table", "show", s(&table)]);
    assert!(printed.contains(&hmac_hex(&salt, EMAILS[0])), "{printed}");
    assert!(!EMAILS.iter().any(|e| printed.contains(e)), "{printed}");

    // HTTP: tokens are the identity; grants and masks hold per request.
    env.ok("alice", &["access", "enable"]);
    env.ok(
        "alice",
        &[
            "access", "grant", "analysts", "--on", "people", "--allow", "run",
        ],
    );
    env.ok("alice", &["access", "grant", "analysts", "--member", "bob"]);
    env.ok(
        "alice",
        &["access", "grant", "analysts", "--member", "carol"],
    );
    let token = |who: &str| {
        env.ok("alice", &["access", "token", "create", who])
            .trim()
            .to_string()
    };
    let (bob, carol, dave, alice) = (token("bob"), token("carol"), token("dave"), token("alice"));
    let srv = crate::serve::spawn(
        &["people@dev", "--store", s(&env.store)],
        &env.path("serve.log"),
    );
    let body = ipc(&read(&env.people));
    let post = |tok: Option<&str>| srv.post_as("/v1/transform/people", ARROW, &body, tok);
    assert_eq!(post(None).0, 401);
    assert_eq!(post(Some("kiln_0000")).0, 401);
    let (status, _, reply) = post(Some(&dave));
    assert_eq!(status, 403, "{}", String::from_utf8_lossy(&reply));
    assert!(String::from_utf8_lossy(&reply).contains("dave"));
    let (status, _, reply) = post(Some(&bob));
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&reply));
    check_masked(&concat(&from_ipc(&reply)), &salt);
    let (status, _, reply) = srv.post_as(
        "/v1/transform/people",
        "application/json",
        br#"[{"customer_id":1,"event_at":0,"email":"ada@example.org","age":37,"income":1.5}]"#,
        Some(&bob),
    );
    assert_eq!(status, 200);
    let rows: Value = serde_json::from_slice(&reply).unwrap();
    assert_eq!(rows[0]["email"], hmac_hex(&salt, "ada@example.org"));
    assert_eq!(rows[0]["age"], 30);
    assert!(rows[0]["income"].is_null(), "{rows}");
    let (status, _, reply) = post(Some(&carol));
    assert_eq!(status, 200);
    check_raw(&concat(&from_ipc(&reply)));
    // Listing shows only what the principal may read; reload needs admin.
    let (status, _, list) = srv.get_as("/v1/transforms", Some(&dave));
    assert_eq!(
        (status, json(&String::from_utf8_lossy(&list))),
        (200, Value::Array(vec![]))
    );
    assert_eq!(
        srv.post_as("/v1/reload", "application/json", b"", Some(&bob))
            .0,
        403
    );
    // A revoked token stops working at the next reload.
    let id = json(&env.ok("alice", &["access", "token", "list", "--json"]))
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["principal"] == "bob")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    env.ok("alice", &["access", "token", "revoke", &id]);
    assert_eq!(
        srv.post_as("/v1/reload", "application/json", b"", Some(&alice))
            .0,
        200
    );
    assert_eq!(post(Some(&bob)).0, 401);
    assert_eq!(post(Some(&carol)).0, 200);
}

/// A spine asking for every person one hour after their event.
fn spine(dir: &Path) -> PathBuf {
    let schema = Arc::new(Schema::new(vec![
        Field::new("customer_id", DataType::Int64, false),
        Field::new(
            "event_at",
            DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
            false,
        ),
    ]));
    let n = EMAILS.len() as i64;
    let batch = RecordBatch::try_new(
        schema,
        vec![
            Arc::new(Int64Array::from_iter_values(1000..1000 + n)),
            Arc::new(
                TimestampMicrosecondArray::from_iter_values((0..n).map(|i| T0 + i * HOUR + HOUR))
                    .with_timezone("UTC"),
            ),
        ],
    )
    .unwrap();
    parquet_file(dir.join("spine.parquet"), &batch)
}

fn parquet_file(path: PathBuf, batch: &RecordBatch) -> PathBuf {
    let file = std::fs::File::create(&path).unwrap();
    let mut w = parquet::arrow::ArrowWriter::try_new(file, batch.schema(), None).unwrap();
    w.write(batch).unwrap();
    w.close().unwrap();
    path
}
