//! Hostile test plugin: panics in `transform` with a known message.
use kiln_sdk::arrow_array::RecordBatch;
use kiln_sdk::arrow_schema::Schema;
use kiln_sdk::{PluginInfo, Result, StatelessTransform};

struct Panicky;

#[derive(serde::Deserialize)]
struct Params {}

impl StatelessTransform for Panicky {
    type Params = Params;
    fn info() -> PluginInfo {
        PluginInfo::new("panicky", "0.1.0", "Panics")
    }
    fn new(_: Params) -> Result<Self> {
        Ok(Panicky)
    }
    fn output_schema(&self, input: &Schema) -> Result<Schema> {
        Ok(input.clone())
    }
    fn transform(&self, batch: &RecordBatch) -> Result<RecordBatch> {
        if std::hint::black_box(batch.num_rows()) < usize::MAX {
            panic!("kiln test panic: boom at {} rows", batch.num_rows());
        }
        Ok(batch.clone())
    }
}

kiln_sdk::export!(Panicky);
