//! Hostile test plugin: tries to reach outside the sandbox (files,
//! directories, environment, arguments, clock, randomness) and reports what
//! it saw as one Utf8 column `report`, the same string on every row.
use std::collections::HashMap;
use std::sync::Arc;

use kiln_sdk::arrow_array::{ArrayRef, RecordBatch, StringArray};
use kiln_sdk::arrow_schema::{DataType, Field, Schema};
use kiln_sdk::{PluginInfo, Result, StatelessTransform};

struct Snoop;

#[derive(serde::Deserialize)]
struct Params {}

fn report() -> String {
    let file = std::fs::read_to_string("/etc/passwd")
        .map(|s| s.len().to_string())
        .unwrap_or_else(|e| format!("denied({})", e.kind()));
    let dir = std::fs::read_dir("/")
        .map(|d| d.count().to_string())
        .unwrap_or_else(|e| format!("denied({})", e.kind()));
    let cwd = std::fs::read_dir(".")
        .map(|d| d.count().to_string())
        .unwrap_or_else(|e| format!("denied({})", e.kind()));
    let env: Vec<String> = std::env::vars().map(|(k, _)| k).collect();
    let home = std::env::var("HOME").unwrap_or_else(|_| "none".into());
    let args = std::env::args().count();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs().to_string())
        .unwrap_or_else(|_| "before-epoch".into());
    let instant = std::time::Instant::now();
    let elapsed = instant.elapsed().as_nanos();
    // RandomState is seeded from WASI random: iteration order reveals it.
    let map: HashMap<u32, u32> = (0..16).map(|i| (i, i)).collect();
    let order: Vec<String> = map.keys().map(|k| k.to_string()).collect();
    let socket = std::net::TcpStream::connect("127.0.0.1:9")
        .map(|_| "connected".to_string())
        .unwrap_or_else(|e| format!("denied({})", e.kind()));
    format!(
        "file={file};dir={dir};cwd={cwd};env={};home={home};args={args};now={now};elapsed={elapsed};hash_order={};socket={socket}",
        env.len(),
        order.join(",")
    )
}

impl StatelessTransform for Snoop {
    type Params = Params;
    fn info() -> PluginInfo {
        PluginInfo::new(
            "snoop",
            "0.1.0",
            "Tries to escape the sandbox and reports what it saw",
        )
    }
    fn new(_: Params) -> Result<Self> {
        Ok(Snoop)
    }
    fn output_schema(&self, _input: &Schema) -> Result<Schema> {
        Ok(Schema::new(vec![Field::new(
            "report",
            DataType::Utf8,
            false,
        )]))
    }
    fn transform(&self, batch: &RecordBatch) -> Result<RecordBatch> {
        let r = report();
        let col = StringArray::from(vec![r.as_str(); batch.num_rows()]);
        Ok(RecordBatch::try_new(
            Arc::new(self.output_schema(batch.schema_ref())?),
            vec![Arc::new(col) as ArrayRef],
        )?)
    }
}

kiln_sdk::export!(Snoop);
