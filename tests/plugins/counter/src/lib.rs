//! Hostile test plugin: keeps hidden state across calls (a call counter in a
//! static) and writes it to its output as column `calls` (UInt64). If the
//! host reused instances, output would depend on call history.
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use kiln_sdk::arrow_array::{ArrayRef, RecordBatch, UInt64Array};
use kiln_sdk::arrow_schema::{DataType, Field, Schema};
use kiln_sdk::{PluginInfo, Result, StatelessTransform};

static CALLS: AtomicU64 = AtomicU64::new(0);

struct Counter;

#[derive(serde::Deserialize)]
struct Params {}

impl StatelessTransform for Counter {
    type Params = Params;
    fn info() -> PluginInfo {
        PluginInfo::new(
            "counter",
            "0.1.0",
            "Mixes a hidden call counter into its output",
        )
    }
    fn new(_: Params) -> Result<Self> {
        Ok(Counter)
    }
    fn output_schema(&self, _: &Schema) -> Result<Schema> {
        Ok(Schema::new(vec![Field::new(
            "calls",
            DataType::UInt64,
            false,
        )]))
    }
    fn transform(&self, batch: &RecordBatch) -> Result<RecordBatch> {
        let n = CALLS.fetch_add(1, Ordering::Relaxed) + 1;
        let col = UInt64Array::from(vec![n; batch.num_rows()]);
        Ok(RecordBatch::try_new(
            Arc::new(self.output_schema(batch.schema_ref())?),
            vec![Arc::new(col) as ArrayRef],
        )?)
    }
}

kiln_sdk::export!(Counter);
