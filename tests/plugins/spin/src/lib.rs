//! Hostile test plugin: loops forever in `transform` (deadline test).
use kiln_sdk::arrow_array::RecordBatch;
use kiln_sdk::arrow_schema::Schema;
use kiln_sdk::{PluginInfo, Result, StatelessTransform};

struct Spin;

#[derive(serde::Deserialize)]
struct Params {}

impl StatelessTransform for Spin {
    type Params = Params;
    fn info() -> PluginInfo {
        PluginInfo::new("spin", "0.1.0", "Loops forever")
    }
    fn new(_: Params) -> Result<Self> {
        Ok(Spin)
    }
    fn output_schema(&self, input: &Schema) -> Result<Schema> {
        Ok(input.clone())
    }
    fn transform(&self, batch: &RecordBatch) -> Result<RecordBatch> {
        let mut x: u64 = batch.num_rows() as u64;
        loop {
            x = std::hint::black_box(x.wrapping_mul(6364136223846793005).wrapping_add(1));
            if x == 42 {
                return Ok(batch.clone());
            }
        }
    }
}

kiln_sdk::export!(Spin);
