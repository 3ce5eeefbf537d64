//! Test plugin: returns its input unchanged, from a linear memory that
//! starts at 32 MiB (see build.rs): the oracle for the load-time check of an
//! initial memory above the engine's memory cap.
use arrow_schema::Schema;
use kiln_sdk::arrow_array::RecordBatch;
use kiln_sdk::{arrow_schema, PluginInfo, Result, StatelessTransform};

struct Roomy;

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Params {}

impl StatelessTransform for Roomy {
    type Params = Params;
    fn info() -> PluginInfo {
        PluginInfo::new(
            "roomy",
            "0.1.0",
            "Returns its input unchanged; starts with 32 MiB of memory",
        )
    }
    fn new(_: Params) -> Result<Self> {
        Ok(Roomy)
    }
    fn output_schema(&self, input: &Schema) -> Result<Schema> {
        Ok(input.clone())
    }
    fn transform(&self, batch: &RecordBatch) -> Result<RecordBatch> {
        Ok(batch.clone())
    }
}

kiln_sdk::export!(Roomy);
