//! Hostile test plugin: reads or writes past the end of its linear memory.
//!
//! Parameters: `grow` bytes are allocated and touched first (so a previous
//! call can leave a pool slot's memory grown); then, with `past_end`, one
//! byte that many bytes past the current end of the memory is read, or
//! written with `write: true`. Either access must trap, whatever the
//! engine's memory checks.
use kiln_sdk::arrow_array::RecordBatch;
use kiln_sdk::arrow_schema::Schema;
use kiln_sdk::{PluginInfo, Result, StatelessTransform};

struct Wild(Params);

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Params {
    #[serde(default)]
    grow: usize,
    #[serde(default)]
    past_end: Option<usize>,
    #[serde(default)]
    write: bool,
}

impl StatelessTransform for Wild {
    type Params = Params;
    fn info() -> PluginInfo {
        PluginInfo::new(
            "wild",
            "0.1.0",
            "Reads or writes past the end of its memory",
        )
    }
    fn new(p: Params) -> Result<Self> {
        Ok(Wild(p))
    }
    fn output_schema(&self, input: &Schema) -> Result<Schema> {
        Ok(input.clone())
    }
    fn transform(&self, batch: &RecordBatch) -> Result<RecordBatch> {
        if self.0.grow > 0 {
            let v = vec![1u8; self.0.grow];
            std::hint::black_box(&v);
        }
        if let Some(d) = self.0.past_end {
            #[cfg(target_arch = "wasm32")]
            let end = core::arch::wasm32::memory_size::<0>() * 65536;
            #[cfg(not(target_arch = "wasm32"))]
            let end = 0usize;
            let p = end.wrapping_add(d) as *mut u8;
            // SAFETY: none; this plugin exists to do what safe code cannot.
            unsafe {
                if self.0.write {
                    p.write_volatile(7);
                } else {
                    std::hint::black_box(p.read_volatile());
                }
            }
        }
        Ok(batch.clone())
    }
}

kiln_sdk::export!(Wild);
