//! A plugin cannot loop forever, eat the machine's memory, see the host's
//! files, environment, clock or randomness, or take the host down.

use std::sync::Arc;
use std::time::{Duration, Instant};

use arrow::array::{ArrayRef, AsArray, Int64Array, RecordBatch};
use kiln_host::{Engine, EngineConfig, Error, MemoryChecks, Params};

use crate::support::*;

fn small_batch() -> RecordBatch {
    arrow::array::RecordBatch::try_from_iter([(
        "x",
        Arc::new(Int64Array::from(vec![1, 2, 3])) as ArrayRef,
    )])
    .unwrap()
}

/// After a hostile plugin failed, the same engine still serves a good one.
fn good_plugin_still_works(engine: &Engine) {
    let identity = engine.load(&plugin_path("identity")).unwrap();
    let mut t = identity.transformer(&Params::empty(), None).unwrap();
    assert_eq!(t.apply(&small_batch()).unwrap(), small_batch());
}

#[test]
fn infinite_loop_hits_the_deadline_within_twice_the_limit() {
    let deadline = Duration::from_millis(500);
    let engine = Engine::with_config(EngineConfig::default().with_deadline(deadline)).unwrap();
    let spin = engine.load(&plugin_path("spin")).unwrap();
    let mut t = spin.transformer(&Params::empty(), None).unwrap();
    let start = Instant::now();
    let err = t.apply(&small_batch()).unwrap_err();
    let took = start.elapsed();
    assert!(matches!(err, Error::DeadlineExceeded { .. }), "{err}");
    assert!(took < deadline * 2, "stopped after {took:?}");
    assert!(
        err.to_string().contains("spin@0.1.0"),
        "names the plugin: {err}"
    );
    // The trapped instance is discarded; the next call fails the same way, not worse.
    assert!(matches!(
        t.apply(&small_batch()),
        Err(Error::DeadlineExceeded { .. })
    ));
    good_plugin_still_works(&engine);

    let e = kiln_err(&[
        "--deadline",
        "0.3",
        "run",
        s(&plugin_path("spin")),
        "--input",
        s(&customers_csv()),
        "--output",
        "/tmp/never.parquet",
    ]);
    assert!(e.contains("deadline"), "{e}");
}

#[test]
fn unbounded_allocation_hits_the_memory_cap() {
    let engine = Engine::with_config(EngineConfig::default().with_memory_limit(64 << 20)).unwrap();
    let hog = engine.load(&plugin_path("hog")).unwrap();
    let mut t = hog.transformer(&Params::empty(), None).unwrap();
    let err = t.apply(&small_batch()).unwrap_err();
    match &err {
        Error::MemoryLimit { limit, .. } => assert_eq!(*limit, 64 << 20),
        other => panic!("expected a memory error, got {other}"),
    }
    good_plugin_still_works(&engine);

    let e = kiln_err(&[
        "--memory-limit",
        "64MiB",
        "run",
        s(&plugin_path("hog")),
        "--input",
        s(&customers_csv()),
        "--output",
        "/tmp/never.parquet",
    ]);
    assert!(e.contains("memory cap"), "{e}");
}

/// A plugin linked with a large initial memory (`roomy` starts with 32 MiB,
/// as a plugin built for whole-table calls may) can never be instantiated
/// under a smaller cap: loading says so, with the numbers and what to do,
/// whether the plugin is compiled or comes from the disk cache.
#[test]
fn a_cap_below_the_plugins_initial_memory_is_refused_at_load_with_what_to_do() {
    let cache = tempfile::tempdir().unwrap();
    let path = plugin_path("roomy");
    // Warm the disk cache with the default cap.
    Engine::with_config(EngineConfig::default().with_cache_dir(Some(cache.path().into())))
        .unwrap()
        .load(&path)
        .unwrap();
    for cache_dir in [None, Some(cache.path().to_path_buf())] {
        let small = EngineConfig::default()
            .with_memory_limit(16 << 20)
            .with_cache_dir(cache_dir);
        let err = Engine::with_config(small).unwrap().load(&path).unwrap_err();
        assert!(matches!(err, Error::Load { .. }), "{err}");
        let text = err.to_string();
        for needle in [
            "starts with 32 MiB of memory",
            "memory cap of 16 MiB",
            "--memory-limit",
            "--initial-memory",
        ] {
            assert!(text.contains(needle), "{needle:?} in {text}");
        }
    }
    // At exactly the initial size it loads and runs.
    let engine = Engine::with_config(EngineConfig::default().with_memory_limit(32 << 20)).unwrap();
    let roomy = engine.load(&path).unwrap();
    let mut t = roomy.transformer(&Params::empty(), None).unwrap();
    assert_eq!(t.apply(&small_batch()).unwrap(), small_batch());

    let e = kiln_err(&[
        "--memory-limit",
        "16MiB",
        "run",
        s(&path),
        "--input",
        s(&customers_csv()),
        "--output",
        "/tmp/never.parquet",
    ]);
    assert!(e.contains("starts with 32 MiB of memory"), "{e}");
}

#[test]
fn a_panic_is_a_trap_carrying_the_panic_message() {
    let p = load("panicky");
    let mut t = p.transformer(&Params::empty(), None).unwrap();
    let err = t.apply(&small_batch()).unwrap_err();
    match &err {
        Error::Trap { stderr, .. } => assert!(
            stderr.contains("kiln test panic: boom at 3 rows"),
            "{stderr}"
        ),
        other => panic!("expected a trap, got {other}"),
    }
    assert!(err.to_string().contains("panicky@0.1.0"));
    good_plugin_still_works(engine());
}

#[test]
fn reads_and_writes_past_the_memory_trap_with_either_memory_checks() {
    for checks in [MemoryChecks::GuardPages, MemoryChecks::Explicit] {
        let engine =
            Engine::with_config(EngineConfig::default().with_memory_checks(checks)).unwrap();
        let p = engine.load(&plugin_path("wild")).unwrap();
        let call = |params: &str| {
            p.transformer(&Params::from_json(params).unwrap(), None)
                .unwrap()
                .apply(&small_batch())
        };
        // A call that grows its memory by 48 MiB and touches it. With
        // explicit checks the pool slot it ran in keeps those pages mapped
        // read-write for the next instance: only the compiled bounds checks
        // stand between that instance and them.
        assert_eq!(call(r#"{"grow": 50331648}"#).unwrap(), small_batch());
        for past_end in [0, 4096, 16 << 20, 1 << 30] {
            for write in [false, true] {
                let err = call(&format!(r#"{{"past_end": {past_end}, "write": {write}}}"#))
                    .expect_err(&format!(
                    "{checks}: an access {past_end} bytes past the end (write: {write}) must trap"
                ));
                assert!(matches!(err, Error::Trap { .. }), "{checks}: {err}");
                let msg = err.to_string();
                assert!(msg.contains("wild@0.1.0"), "{msg}");
                assert!(msg.contains("out of bounds"), "{checks}: {msg}");
            }
        }
        // Within the memory, the same access is fine.
        assert_eq!(call(r#"{"grow": 4096}"#).unwrap(), small_batch());
        good_plugin_still_works(&engine);
    }
}

fn snoop_report(engine: &Engine) -> String {
    let p = engine.load(&plugin_path("snoop")).unwrap();
    let mut t = p.transformer(&Params::empty(), None).unwrap();
    let out = t.apply(&small_batch()).unwrap();
    out.column(0).as_string::<i32>().value(0).to_owned()
}

#[test]
fn files_env_clock_random_and_sockets_are_out_of_reach() {
    let report = snoop_report(engine());
    let fields: std::collections::HashMap<&str, &str> = report
        .split(';')
        .filter_map(|kv| kv.split_once('='))
        .collect();
    assert!(fields["file"].starts_with("denied"), "{report}");
    assert!(fields["dir"].starts_with("denied"), "{report}");
    assert!(fields["cwd"].starts_with("denied"), "{report}");
    assert_eq!(fields["env"], "0", "{report}");
    assert_eq!(fields["home"], "none", "{report}");
    assert_eq!(fields["args"], "0", "{report}");
    assert_eq!(
        fields["now"], "946684800",
        "the clock is fixed at 2000-01-01: {report}"
    );
    assert_eq!(fields["elapsed"], "0", "{report}");
    assert!(fields["socket"].starts_with("denied"), "{report}");
    // Same view in a brand-new engine: hash iteration order (seeded from
    // WASI random) is the same too.
    let again = snoop_report(&Engine::new().unwrap());
    assert_eq!(report, again);
}

/// Plugins built with the SDK answer the environment and terminal queries
/// themselves (`sdk/src/lean_wasi.rs`), so their components import neither
/// interface and every call's instance links fewer imports; the test above
/// shows `snoop` (which reads the environment and its arguments) still sees
/// none. An import's name is spelled out in the component's bytes, so its
/// absence there is its absence from the component.
#[test]
fn sdk_plugins_import_no_environment_and_no_terminal() {
    let has = |bytes: &[u8], s: &str| bytes.windows(s.len()).any(|w| w == s.as_bytes());
    for name in [
        "standard_scaler",
        "one_hot",
        "hash_encode",
        "bucketize",
        "impute",
        "datetime_parts",
        "snoop",
    ] {
        let bytes = std::fs::read(plugin_path(name)).unwrap();
        // What a plugin still needs stays imported (and the search finds it).
        assert!(has(&bytes, "wasi:cli/stderr@"), "{name}: no stderr import?");
        assert!(
            !has(&bytes, "wasi:cli/terminal-"),
            "{name}.wasm imports a terminal"
        );
        // `snoop` calls `std::env::args`, whose binding is the standard
        // library's own: that one import of the environment stays.
        if name != "snoop" {
            assert!(
                !has(&bytes, "wasi:cli/environment@"),
                "{name}.wasm imports the environment"
            );
        }
    }
}

#[test]
fn deep_recursion_is_a_stack_overflow_trap() {
    let p = load("deep");
    let err = p
        .transformer(&Params::empty(), None)
        .unwrap()
        .apply(&small_batch())
        .unwrap_err();
    match &err {
        Error::Trap { message, .. } => {
            assert!(message.contains("call stack exhausted"), "{message}")
        }
        other => panic!("expected a stack-overflow trap, got {other}"),
    }
    good_plugin_still_works(engine());
    let e = kiln_err(&[
        "run",
        s(&plugin_path("deep")),
        "--input",
        s(&customers_csv()),
        "--output",
        "/tmp/never.parquet",
    ]);
    assert!(e.contains("call stack exhausted"), "{e}");
    let e = kiln_err(&[
        "run",
        s(&plugin_path("panicky")),
        "--input",
        s(&customers_csv()),
        "--output",
        "/tmp/never.parquet",
    ]);
    assert!(e.contains("kiln test panic: boom"), "{e}");
}

#[test]
fn hidden_state_cannot_make_output_depend_on_call_history() {
    let p = load("counter");
    let mut t = p.transformer(&Params::empty(), None).unwrap();
    // Large batches (800 KB) leave their instance to the engine's reaper
    // thread to drop; small ones are dropped in place. Neither path may
    // hand a used instance to the next call.
    let large = RecordBatch::try_from_iter([(
        "x",
        Arc::new(Int64Array::from_iter_values(0..100_000)) as ArrayRef,
    )])
    .unwrap();
    for batch in [small_batch(), large.clone(), small_batch(), large] {
        for _ in 0..5 {
            let out = t.apply(&batch).unwrap();
            let calls = out.column(0).as_primitive::<arrow::datatypes::UInt64Type>();
            assert_eq!(calls.value(0), 1, "every call starts from a fresh instance");
        }
    }
}

#[test]
fn a_plugin_built_for_another_contract_major_version_is_refused_at_load() {
    let err = engine().load(&plugin_path("future")).unwrap_err();
    assert!(matches!(err, Error::Load { .. }), "{err}");
    let msg = err.to_string();
    assert!(
        msg.contains("kiln:transform/transform@1.0.0") && msg.contains("0.1.0"),
        "{msg}"
    );
    let e = kiln_err(&["inspect", s(&plugin_path("future"))]);
    assert!(e.contains("@1.0.0"), "{e}");
}

#[test]
fn the_cli_gives_hostile_plugins_the_same_sandbox() {
    let dir = tempfile::tempdir().unwrap();
    // snoop: what the plugin saw, written to a file by the CLI.
    let out = dir.path().join("snoop.arrow");
    kiln_ok(&[
        "run",
        s(&plugin_path("snoop")),
        "--input",
        s(&customers_csv()),
        "--output",
        s(&out),
    ]);
    let table = concat(&read(&out));
    let report = table.column(0).as_string::<i32>().value(0).to_owned();
    // The library on the same input sees the same. (The report depends on
    // the input schema: each Arrow metadata map the guest builds advances
    // std's per-instance RandomState keys.)
    let customers = concat(&read(&customers_csv()));
    let lib = load("snoop")
        .transformer(&Params::empty(), None)
        .unwrap()
        .apply(&customers)
        .unwrap();
    assert_eq!(
        report,
        lib.column(0).as_string::<i32>().value(0),
        "the CLI and the library see the same sandbox"
    );
    // counter: one fresh instance per batch, whatever the batch count.
    let out = dir.path().join("counter.csv");
    kiln_ok(&[
        "run",
        s(&plugin_path("counter")),
        "--input",
        s(&customers_csv()),
        "--output",
        s(&out),
        "--batch-size",
        "5",
    ]);
    let text = std::fs::read_to_string(&out).unwrap();
    assert!(text.lines().skip(1).all(|l| l == "1"), "{text}");
    // liar: malformed output is refused by the CLI too, naming the column.
    let e = kiln_err(&[
        "run",
        s(&plugin_path("liar")),
        "--input",
        s(&customers_csv()),
        "--param",
        "mode=invalid_utf8",
        "--output",
        s(&dir.path().join("l.csv")),
    ]);
    assert!(e.contains("liar@0.1.0") && e.contains("column 's'"), "{e}");
}
