//! Hostile test plugin: recurses without bound (stack overflow test).
use std::sync::atomic::{AtomicU64, Ordering};

use kiln_sdk::arrow_array::RecordBatch;
use kiln_sdk::arrow_schema::Schema;
use kiln_sdk::{PluginInfo, Result, StatelessTransform};

struct Deep;

#[derive(serde::Deserialize)]
struct Params {}

/// Never reached; loaded at run time so the recursion cannot be folded.
static LIMIT: AtomicU64 = AtomicU64::new(u64::MAX);

/// Recursion whose frames live in wasm locals (no shadow-stack arrays), so
/// it exhausts the wasm call stack that the host bounds.
#[inline(never)]
fn dive(depth: u64) -> u64 {
    if depth == LIMIT.load(Ordering::Relaxed) {
        return depth;
    }
    dive(depth + 1).wrapping_mul(3).wrapping_add(depth)
}

impl StatelessTransform for Deep {
    type Params = Params;
    fn info() -> PluginInfo {
        PluginInfo::new("deep", "0.1.0", "Recurses without bound")
    }
    fn new(_: Params) -> Result<Self> {
        Ok(Deep)
    }
    fn output_schema(&self, input: &Schema) -> Result<Schema> {
        Ok(input.clone())
    }
    fn transform(&self, batch: &RecordBatch) -> Result<RecordBatch> {
        if dive(batch.num_rows() as u64) == 0 {
            return Ok(batch.slice(0, 0));
        }
        Ok(batch.clone())
    }
}

kiln_sdk::export!(Deep);
