//! Test plugin: returns its input batch unchanged (round-trip oracle).
use arrow_schema::Schema;
use kiln_sdk::arrow_array::RecordBatch;
use kiln_sdk::{arrow_schema, PluginInfo, Result, StatelessTransform};

struct Identity;

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Params {}

impl StatelessTransform for Identity {
    type Params = Params;
    fn info() -> PluginInfo {
        PluginInfo::new("identity", "0.1.0", "Returns its input unchanged")
    }
    fn new(_: Params) -> Result<Self> {
        Ok(Identity)
    }
    fn output_schema(&self, input: &Schema) -> Result<Schema> {
        Ok(input.clone())
    }
    fn transform(&self, batch: &RecordBatch) -> Result<RecordBatch> {
        Ok(batch.clone())
    }
}

kiln_sdk::export!(Identity);
