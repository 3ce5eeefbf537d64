//! Embed kiln-host in a service: load a plugin, configure it, apply it to
//! an in-memory batch.
//!
//! Run: cargo run --release -p kiln-host --example embed -- target/wasm/wasm32-wasip2/plugin/hash_encode.wasm
use std::sync::Arc;

use arrow::array::{ArrayRef, RecordBatch, StringArray};
use arrow::util::pretty::pretty_format_batches;
use kiln_host::{Engine, Params};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let path = std::env::args()
        .nth(1)
        .ok_or("usage: embed PLUGIN.wasm (hash_encode.wasm)")?;
    let engine = Engine::new()?;
    let t0 = std::time::Instant::now();
    let plugin = engine.load(path.as_ref())?;
    println!(
        "loaded {} {} ({}) in {:.1?}",
        plugin.info().name,
        plugin.info().version,
        plugin.id(),
        t0.elapsed()
    );
    let params = Params::from_json(
        r#"{"columns": ["city"], "buckets": 16, "seed": 42, "suffix": "_bucket"}"#,
    )?;
    let mut transformer = plugin.transformer(&params, None)?;
    let batch = RecordBatch::try_from_iter([(
        "city",
        Arc::new(StringArray::from(vec![Some("Paris"), None, Some("Lyon")])) as ArrayRef,
    )])?;
    let out = transformer.apply(&batch)?;
    println!("{}", pretty_format_batches(&[out])?);
    Ok(())
}
