//! Plugins, a generated Parquet table, and the oracles the tests compare
//! against (`kiln fit` / `kiln run` through kiln-io, in this process).

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use arrow::array::{Array, ArrayRef, Float64Array, Int64Array, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Schema};
use datafusion::prelude::SessionConfig;
use kiln_io::job::{self, JobOptions};
use kiln_io::ReadOptions;
use kiln_runtime::{Engine, Params, Plugin, State};
use parquet::arrow::ArrowWriter;
use parquet::file::properties::WriterProperties;

/// Where the workspace build puts the plugins: `$KILN_PLUGIN_DIR`, else
/// the main workspace's target directory.
pub fn plugin_path(name: &str) -> PathBuf {
    let dir = std::env::var_os("KILN_PLUGIN_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/wasm/wasm32-wasip2/plugin")
        });
    let path = dir.join(format!("{name}.wasm"));
    assert!(
        path.exists(),
        "{} is missing: build the workspace first (`cargo build --release -p kiln-cli` builds the plugins) or set KILN_PLUGIN_DIR",
        path.display()
    );
    path
}

/// One engine for the test binary (compiled plugins are cached in it).
pub fn engine() -> Engine {
    static ENGINE: OnceLock<Engine> = OnceLock::new();
    ENGINE
        .get_or_init(|| Engine::new().expect("engine"))
        .clone()
}

pub fn load(name: &str) -> Plugin {
    engine()
        .load(&plugin_path(name))
        .unwrap_or_else(|e| panic!("loading {name}: {e}"))
}

pub fn params(json: &str) -> Params {
    Params::from_json(json).expect("params")
}

/// A multi-threaded runtime for the cluster (its servers are tasks on it).
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_all()
        .build()
        .expect("runtime")
}

/// `partitions` target partitions, `batch_size` rows per batch, and
/// Parquet files split into byte ranges however small they are, so a
/// small file is read as several partitions (by row group).
pub fn config(partitions: usize, batch_size: usize) -> SessionConfig {
    SessionConfig::new()
        .with_target_partitions(partitions)
        .with_batch_size(batch_size)
        .set_usize("datafusion.optimizer.repartition_file_min_size", 0)
}

/// A customers table: `customer_id` (ascending), `age` (every 13th null),
/// `income` (one NaN), `city` (from `cities`), in row groups of
/// `row_group` rows. Values come from a fixed linear congruential
/// generator, so every run writes the same file.
pub fn write_customers(path: &Path, rows: usize, row_group: usize, cities: &[&str]) {
    let mut x: u64 = 0x2545_f491_4f6c_dd1d;
    let mut next = move || {
        x = x
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        x >> 11
    };
    let ids: Int64Array = (0..rows as i64).map(|i| Some(1000 + i)).collect();
    let ages: Int64Array = (0..rows)
        .map(|i| {
            let a = 18 + (next() % 60) as i64;
            (i % 13 != 5).then_some(a)
        })
        .collect();
    let incomes: Float64Array = (0..rows)
        .map(|i| {
            let v = 15_000.0 + (next() % 9_000_000) as f64 / 100.0;
            Some(if i == 7 { f64::NAN } else { v })
        })
        .collect();
    let city: StringArray = (0..rows)
        .map(|_| Some(cities[(next() % cities.len() as u64) as usize]))
        .collect();
    let schema = Arc::new(Schema::new(vec![
        Field::new("customer_id", DataType::Int64, false),
        Field::new("age", DataType::Int64, true),
        Field::new("income", DataType::Float64, true),
        Field::new("city", DataType::Utf8, true),
    ]));
    let batch = RecordBatch::try_new(
        schema.clone(),
        vec![arc(ids), arc(ages), arc(incomes), arc(city)],
    )
    .expect("batch");
    let props = WriterProperties::builder()
        .set_max_row_group_row_count(Some(row_group))
        .build();
    let file = std::fs::File::create(path).expect("create parquet");
    let mut w = ArrowWriter::try_new(file, schema, Some(props)).expect("writer");
    w.write(&batch).expect("write");
    w.close().expect("close");
}

/// `kiln fit` on `input`.
pub fn kiln_fit(plugin: &Plugin, params: &Params, input: &Path) -> State {
    job::fit_files(
        plugin,
        params,
        &[input.to_path_buf()],
        &JobOptions::default(),
        &mut |_| {},
    )
    .expect("kiln fit")
    .0
}

/// `kiln run` on `input`: the output, read back from the file it wrote.
pub fn kiln_run(
    plugin: &Plugin,
    params: &Params,
    state: Option<&State>,
    input: &Path,
) -> RecordBatch {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("out.arrow");
    job::run_files(
        plugin,
        params,
        state,
        &[input.to_path_buf()],
        &out,
        &JobOptions::default(),
        &mut |_| {},
    )
    .expect("kiln run");
    let (schema, batches) = kiln_io::read_all(&out, &ReadOptions::default()).expect("read back");
    arrow::compute::concat_batches(&schema, &batches).expect("concat")
}

/// Bit-for-bit equality: floats by their bit patterns (NaN payloads and
/// signed zeros count), validity included; other types by value.
pub fn assert_same_bits(what: &str, a: &ArrayRef, b: &ArrayRef) {
    assert_eq!(a.data_type(), b.data_type(), "{what}: types");
    assert_eq!(a.len(), b.len(), "{what}: lengths");
    assert_eq!(a.logical_nulls(), b.logical_nulls(), "{what}: validity");
    match a.data_type() {
        DataType::Float64 => {
            let bits = |x: &ArrayRef| -> Vec<Option<u64>> {
                let x = x.as_any().downcast_ref::<Float64Array>().expect("f64");
                x.iter().map(|v| v.map(f64::to_bits)).collect()
            };
            assert_eq!(bits(a), bits(b), "{what}: f64 bits");
        }
        _ => assert_eq!(a.to_data(), b.to_data(), "{what}: values"),
    }
}

/// All batches of a query result concatenated.
pub fn concat(batches: &[RecordBatch]) -> RecordBatch {
    assert!(!batches.is_empty(), "no result batches");
    arrow::compute::concat_batches(&batches[0].schema(), batches).expect("concat")
}

pub fn arc<T: Array + 'static>(a: T) -> ArrayRef {
    Arc::new(a)
}
