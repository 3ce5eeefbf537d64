//! Independent oracles: pandas' `merge_asof` and `groupby().rolling()` on
//! random data (fixed seeds), compared with kiln-temporal row for row.
//!
//!     cargo test -p kiln-temporal --release --test oracle
//!
//! Needs a Python with pandas and pyarrow: `KILN_PYTHON`, else the
//! workspace's `.venv`, else `python3`. Without one the tests print
//! "skipped: ..." and pass, unless `KILN_REQUIRE_PYTHON=1`.

use std::collections::HashSet;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, AsArray, Float64Array, Int32Array, Int64Array, RecordBatch, RecordBatchReader,
    StringArray, TimestampMicrosecondArray, TimestampMillisecondArray,
};
use arrow::compute::concat_batches;
use arrow::datatypes::{Float64Type, Int64Type};
use kiln_temporal::{asof_indices, Agg, AsOfOptions, AsOfSide, WindowSpec, Windows};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::arrow::ArrowWriter;

const ORACLES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/oracles");
const VENV_PYTHON: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../.venv/bin/python");

/// A Python that can `import pandas, pyarrow`, or `None` (after saying why
/// the test is skipped) — a panic instead when `KILN_REQUIRE_PYTHON=1`.
fn python(test: &str) -> Option<PathBuf> {
    let candidate = match std::env::var_os("KILN_PYTHON") {
        Some(p) => PathBuf::from(p),
        None if Path::new(VENV_PYTHON).exists() => PathBuf::from(VENV_PYTHON),
        None => PathBuf::from("python3"),
    };
    let usable = Command::new(&candidate)
        .args(["-c", "import pandas, pyarrow"])
        .output()
        .is_ok_and(|out| out.status.success());
    if usable {
        return Some(candidate);
    }
    let why = format!("{} cannot import pandas and pyarrow", candidate.display());
    if std::env::var("KILN_REQUIRE_PYTHON").as_deref() == Ok("1") {
        panic!(
            "{test}: {why}, and KILN_REQUIRE_PYTHON=1. Make the venv in the workspace root: \
             python3 -m venv .venv && .venv/bin/pip install pandas pyarrow deltalake \
             (or point KILN_PYTHON at a Python that has them)"
        );
    }
    eprintln!("skipped: {test}: {why} (set KILN_PYTHON, or make .venv in the workspace root)");
    None
}

fn run_oracle(python: &Path, script: &str, args: &[&Path]) {
    let script = Path::new(ORACLES).join(script);
    let out = Command::new(python)
        .arg(&script)
        .args(args)
        .output()
        .expect("the Python that imported pandas runs");
    assert!(
        out.status.success(),
        "{} failed ({}):\n{}",
        script.display(),
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
}

/// xorshift64*: a fixed-seed generator, enough for test data.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform in `0..n`.
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    /// `true` with probability `percent` / 100.
    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
}

fn write_parquet(path: &Path, batch: &RecordBatch) {
    let file = File::create(path).expect("create a file in the temp dir");
    let mut writer = ArrowWriter::try_new(file, batch.schema(), None).expect("parquet writer");
    writer.write(batch).expect("write parquet");
    writer.close().expect("close parquet");
}

fn read_parquet(path: &Path) -> RecordBatch {
    let file = File::open(path).expect("the oracle wrote its output");
    let reader = ParquetRecordBatchReaderBuilder::try_new(file)
        .expect("parquet")
        .build()
        .expect("reader");
    let schema = reader.schema();
    let batches: Vec<_> = reader.collect::<Result<_, _>>().expect("read parquet");
    concat_batches(&schema, &batches).expect("one schema")
}

fn oracle_column<'a>(batch: &'a RecordBatch, name: &str) -> &'a ArrayRef {
    batch
        .column_by_name(name)
        .unwrap_or_else(|| panic!("the oracle output has no column '{name}'"))
}

/// Spine: 2 000 rows over 18 (entity, shard) pairs, two unknown to the
/// features, times in whole milliseconds, 30% at (or less than a
/// millisecond before) a feature row's time. Features: 3 000 rows, times in
/// microseconds (UTC), half of them whole milliseconds so exact matches
/// happen, no two sharing (entity, shard, ts).
fn asof_data(seed: u64) -> (RecordBatch, RecordBatch) {
    let mut rng = Rng(seed);
    let mut seen = HashSet::new();
    let (mut f_entity, mut f_shard, mut f_ts) = (vec![], vec![], vec![]);
    while f_ts.len() < 3_000 {
        let entity = format!("e{}", rng.below(8));
        let shard = rng.below(2) as i64;
        let ms = rng.below(100_000) as i64;
        let ts = if rng.chance(50) {
            ms * 1_000
        } else {
            ms * 1_000 + rng.below(1_000) as i64
        };
        if seen.insert((entity.clone(), shard, ts)) {
            f_entity.push(entity);
            f_shard.push(shard);
            f_ts.push(ts);
        }
    }

    let n = 2_000;
    let (mut entity, mut shard, mut ts) = (vec![], vec![], vec![]);
    for _ in 0..n {
        if rng.chance(30) {
            // At (or just before) a feature row's time.
            let j = rng.below(f_ts.len() as u64) as usize;
            entity.push(f_entity[j].clone());
            shard.push(f_shard[j]);
            ts.push(f_ts[j].div_euclid(1_000));
        } else {
            entity.push(format!("e{}", rng.below(9)));
            shard.push(rng.below(2) as i64);
            ts.push(rng.below(110_000) as i64 - 5_000);
        }
    }
    let spine = RecordBatch::try_from_iter([
        (
            "row_id",
            Arc::new(Int64Array::from_iter_values(0..n as i64)) as ArrayRef,
        ),
        ("entity", Arc::new(StringArray::from(entity)) as ArrayRef),
        ("shard", Arc::new(Int64Array::from(shard)) as ArrayRef),
        (
            "ts",
            Arc::new(TimestampMillisecondArray::from(ts)) as ArrayRef,
        ),
    ])
    .expect("equal lengths");
    let features = RecordBatch::try_from_iter([
        (
            "feat_id",
            Arc::new(Int64Array::from_iter_values(0..3_000)) as ArrayRef,
        ),
        ("entity", Arc::new(StringArray::from(f_entity)) as ArrayRef),
        ("shard", Arc::new(Int64Array::from(f_shard)) as ArrayRef),
        (
            "ts",
            Arc::new(TimestampMicrosecondArray::from(f_ts).with_timezone("UTC")) as ArrayRef,
        ),
    ])
    .expect("equal lengths");
    (spine, features)
}

#[test]
fn asof_matches_pandas_merge_asof() {
    let Some(python) = python("asof_matches_pandas_merge_asof") else {
        return;
    };
    let dir = tempfile::tempdir().expect("temp dir");
    let (spine, features) = asof_data(0x5EED_A50F);
    let settings: Vec<AsOfOptions> = [None, Some(0), Some(500_000), Some(2_000_000)]
        .into_iter()
        .flat_map(|ttl_us| {
            [false, true].map(|exclude_exact_matches| AsOfOptions {
                ttl_us,
                exclude_exact_matches,
            })
        })
        .collect();
    let json: Vec<String> = settings
        .iter()
        .map(|s| {
            let ttl = s.ttl_us.map_or("null".to_string(), |t| t.to_string());
            format!(
                r#"{{"ttl_us": {ttl}, "allow_exact": {}}}"#,
                !s.exclude_exact_matches
            )
        })
        .collect();
    let paths = [
        "spine.parquet",
        "features.parquet",
        "settings.json",
        "expected.parquet",
    ]
    .map(|name| dir.path().join(name));
    write_parquet(&paths[0], &spine);
    write_parquet(&paths[1], &features);
    std::fs::write(&paths[2], format!("[{}]", json.join(", "))).expect("write settings");
    run_oracle(
        &python,
        "asof_oracle.py",
        &paths.each_ref().map(PathBuf::as_path),
    );
    let expected = read_parquet(&paths[3]);
    assert_eq!(expected.num_rows(), spine.num_rows());

    let keys = ["entity".to_string(), "shard".to_string()];
    for (i, opts) in settings.iter().enumerate() {
        let got = asof_indices(
            AsOfSide {
                batch: &spine,
                keys: &keys,
                time: "ts",
            },
            AsOfSide {
                batch: &features,
                keys: &keys,
                time: "ts",
            },
            &[],
            opts,
        )
        .expect("join");
        let want = oracle_column(&expected, &format!("m{i}")).as_primitive::<Int64Type>();
        let mut matched = 0;
        for row in 0..spine.num_rows() {
            let want = want.is_valid(row).then(|| want.value(row) as u64);
            let got = got.is_valid(row).then(|| got.value(row));
            assert_eq!(got, want, "{opts:?}, spine row {row}");
            matched += usize::from(got.is_some());
        }
        // Not vacuous: most settings match a good share of the rows.
        let enough = if opts.ttl_us == Some(0) {
            100
        } else {
            spine.num_rows() / 4
        };
        if opts.ttl_us != Some(0) || !opts.exclude_exact_matches {
            assert!(matched > enough, "{opts:?}: only {matched} matches");
        }
        eprintln!(
            "{opts:?}: {matched} of {} spine rows matched",
            spine.num_rows()
        );
    }
}

/// 3 000 events over 12 entities in 10 minutes, times on a 100 ms grid
/// (so many share a time), `x` with two decimals and 10% nulls, `n` an
/// Int32 with 10% nulls.
fn window_events(seed: u64) -> RecordBatch {
    let mut rng = Rng(seed);
    let n = 3_000;
    let entity: Vec<String> = (0..n).map(|_| format!("user{}", rng.below(12))).collect();
    let ts: Vec<i64> = (0..n).map(|_| rng.below(6_000) as i64 * 100_000).collect();
    let x: Vec<Option<f64>> = (0..n)
        .map(|_| (!rng.chance(10)).then(|| (rng.below(200_001) as i64 - 100_000) as f64 / 100.0))
        .collect();
    let int: Vec<Option<i32>> = (0..n)
        .map(|_| (!rng.chance(10)).then(|| rng.below(1_000) as i32 - 500))
        .collect();
    RecordBatch::try_from_iter([
        ("entity", Arc::new(StringArray::from(entity)) as ArrayRef),
        (
            "ts",
            Arc::new(TimestampMicrosecondArray::from(ts)) as ArrayRef,
        ),
        ("x", Arc::new(Float64Array::from(x)) as ArrayRef),
        ("n", Arc::new(Int32Array::from(int)) as ArrayRef),
    ])
    .expect("equal lengths")
}

#[test]
fn windows_match_pandas_rolling() {
    let Some(python) = python("windows_match_pandas_rolling") else {
        return;
    };
    let dir = tempfile::tempdir().expect("temp dir");
    let events = window_events(0xC0FF_EE00);
    let all = vec![Agg::Count, Agg::Sum, Agg::Mean, Agg::Min, Agg::Max];
    let specs = [
        WindowSpec {
            column: "x".into(),
            aggregations: all.clone(),
            windows: vec!["500ms".into(), "10s".into(), "90s".into(), "15m".into()],
        },
        WindowSpec {
            column: "n".into(),
            aggregations: all,
            windows: vec!["1m".into()],
        },
    ];
    let windows = Windows::new(&specs, &["entity".to_string()], "ts").expect("valid windows");
    let got = windows.backfill(&events).expect("backfill");

    let json: Vec<String> = specs
        .iter()
        .map(|spec| {
            let windows: Vec<String> = spec
                .windows
                .iter()
                .map(|w| {
                    let us = kiln_temporal::parse_duration(w).expect("valid window");
                    format!(r#"["{w}", {us}]"#)
                })
                .collect();
            format!(
                r#"{{"column": "{}", "windows": [{}],
                    "aggregations": ["count", "sum", "mean", "min", "max"]}}"#,
                spec.column,
                windows.join(", ")
            )
        })
        .collect();
    let paths =
        ["events.parquet", "specs.json", "expected.parquet"].map(|name| dir.path().join(name));
    write_parquet(&paths[0], &events);
    std::fs::write(&paths[1], format!("[{}]", json.join(", "))).expect("write specs");
    run_oracle(
        &python,
        "window_oracle.py",
        &paths.each_ref().map(PathBuf::as_path),
    );
    let expected = read_parquet(&paths[2]);
    assert_eq!(expected.num_rows(), events.num_rows());

    for (field, column) in got.schema().fields().iter().zip(got.columns()) {
        let name = field.name();
        let want = oracle_column(&expected, name).as_primitive::<Float64Type>();
        let mut nonempty = 0;
        for row in 0..events.num_rows() {
            // pandas has NaN where Kiln has null (the data holds no NaN);
            // pyarrow may write it as either.
            let want = want
                .is_valid(row)
                .then(|| want.value(row))
                .filter(|v| !v.is_nan());
            let got = if name.contains("_count_") {
                let c = column.as_primitive::<Int64Type>();
                c.is_valid(row).then(|| c.value(row) as f64)
            } else {
                let c = column.as_primitive::<Float64Type>();
                c.is_valid(row).then(|| c.value(row))
            };
            let close = match (got, want) {
                (Some(g), Some(w)) if name.contains("_sum_") || name.contains("_mean_") => {
                    (g - w).abs() <= 1e-9 * g.abs().max(w.abs()).max(1.0)
                }
                (g, w) => g == w,
            };
            assert!(close, "{name}, row {row}: kiln {got:?}, pandas {want:?}");
            nonempty += usize::from(name.contains("_count_") && got.is_some_and(|c| c > 0.0));
        }
        // Not vacuous: all but the shortest window see events for most rows.
        if name.contains("_count_") && !name.ends_with("_500ms") {
            assert!(
                nonempty > events.num_rows() / 2,
                "{name}: only {nonempty} non-empty windows"
            );
        }
    }
}
