//! Paths, plugins and the oracles the tests compare against.

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use arrow::array::{Array, ArrayRef, Float32Array, Float64Array, RecordBatch};
use arrow::datatypes::DataType;
use datafusion::prelude::{SessionConfig, SessionContext};
use kiln_io::job::{self, JobOptions};
use kiln_io::ReadOptions;
use kiln_runtime::{Engine, Params, Plugin, State};

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

/// The example table shipped in the repo.
pub fn customers_csv() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/data/customers.csv")
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

/// A session with `partitions` target partitions and `batch_size` rows per batch.
pub fn context(partitions: usize, batch_size: usize) -> SessionContext {
    SessionContext::new_with_config(
        SessionConfig::new()
            .with_target_partitions(partitions)
            .with_batch_size(batch_size),
    )
}

/// `kiln fit` on the example table, read in batches of `batch_size`.
pub fn kiln_fit(plugin: &Plugin, params: &Params, batch_size: usize) -> State {
    let opts = JobOptions {
        batch_size,
        ..JobOptions::default()
    };
    job::fit_files(plugin, params, &[customers_csv()], &opts, &mut |_| {})
        .expect("kiln fit")
        .0
}

/// `kiln run` on the example table: the output, read back from the file it wrote.
pub fn kiln_run(
    plugin: &Plugin,
    params: &Params,
    state: Option<&State>,
) -> kiln_runtime::Result<RecordBatch> {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("out.arrow");
    job::run_files(
        plugin,
        params,
        state,
        &[customers_csv()],
        &out,
        &JobOptions::default(),
        &mut |_| {},
    )?;
    let (schema, batches) = kiln_io::read_all(&out, &ReadOptions::default())?;
    Ok(arrow::compute::concat_batches(&schema, &batches).expect("concat"))
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
        DataType::Float32 => {
            let bits = |x: &ArrayRef| -> Vec<Option<u32>> {
                let x = x.as_any().downcast_ref::<Float32Array>().expect("f32");
                x.iter().map(|v| v.map(f32::to_bits)).collect()
            };
            assert_eq!(bits(a), bits(b), "{what}: f32 bits");
        }
        _ => assert_eq!(a.to_data(), b.to_data(), "{what}: values"),
    }
}

/// All batches of a query result concatenated.
pub fn concat(batches: &[RecordBatch]) -> RecordBatch {
    assert!(!batches.is_empty(), "no result batches");
    arrow::compute::concat_batches(&batches[0].schema(), batches).expect("concat")
}

/// A tokio runtime for the async API.
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .build()
        .expect("runtime")
}

pub fn arc<T: Array + 'static>(a: T) -> ArrayRef {
    Arc::new(a)
}
