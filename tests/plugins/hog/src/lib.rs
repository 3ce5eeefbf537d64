//! Hostile test plugin: allocates without bound in `transform` (memory cap test).
use kiln_sdk::arrow_array::RecordBatch;
use kiln_sdk::arrow_schema::Schema;
use kiln_sdk::{PluginInfo, Result, StatelessTransform};

struct Hog;

#[derive(serde::Deserialize)]
struct Params {}

impl StatelessTransform for Hog {
    type Params = Params;
    fn info() -> PluginInfo {
        PluginInfo::new("hog", "0.1.0", "Allocates without bound")
    }
    fn new(_: Params) -> Result<Self> {
        Ok(Hog)
    }
    fn output_schema(&self, input: &Schema) -> Result<Schema> {
        Ok(input.clone())
    }
    fn transform(&self, batch: &RecordBatch) -> Result<RecordBatch> {
        let mut hoard: Vec<Vec<u8>> = Vec::new();
        loop {
            hoard.push(vec![1u8; 16 << 20]);
            if std::hint::black_box(hoard.len()) == usize::MAX {
                return Ok(batch.clone());
            }
        }
    }
}

kiln_sdk::export!(Hog);
