//! Serving/training parity: a serving process logs (a sample of) the batches
//! it transformed and what it answered; `kiln parity LOG` replays the logged
//! inputs through the pinned version and reports any output that differs
//! bit for bit. The log's inputs are also valid live data for `kiln drift`.
//!
//! A log is a directory: `meta.json` (what was served: `name@tag`, the
//! version or pipeline id), `inputs.arrows` and `outputs.arrows` (Arrow IPC
//! streams, one batch per logged call, in the same order).

use std::fs::File;
use std::io::BufWriter;
use std::path::{Path, PathBuf};

use arrow::array::{Array, RecordBatch};
use arrow::ipc::writer::StreamWriter;
use serde::{Deserialize, Serialize};

use kiln_io::{self as io, ReadOptions};
use kiln_runtime::{Error, Result};

/// What a parity log says it recorded.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ParityMeta {
    /// `name@tag` the serving process resolved, if any.
    pub target: Option<String>,
    /// The version or pipeline id it served.
    pub id: String,
    /// One call in this many was logged.
    pub sample_every: u64,
}

/// Logs sampled calls of a serving process. Not thread-safe by itself:
/// wrap it in a `Mutex` to share it.
pub struct ParityLogger {
    dir: PathBuf,
    inputs: Option<StreamWriter<BufWriter<File>>>,
    outputs: Option<StreamWriter<BufWriter<File>>>,
    every: u64,
    calls: u64,
    logged: u64,
}

impl std::fmt::Debug for ParityLogger {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ParityLogger")
            .field("dir", &self.dir)
            .field("logged", &self.logged)
            .finish()
    }
}

impl ParityLogger {
    /// Start a log in `dir` (created; must not hold a log already), keeping
    /// one call in `sample_every` (1 = all), deterministically.
    ///
    /// # Errors
    /// [`Error::Io`] if the directory cannot be written; [`Error::Data`] if
    /// it already holds a log.
    pub fn create(dir: &Path, meta: &ParityMeta) -> Result<ParityLogger> {
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        let meta_path = dir.join("meta.json");
        if meta_path.exists() {
            return Err(Error::data(
                dir,
                "already holds a parity log; use a new directory",
            ));
        }
        let m = ParityMeta {
            sample_every: meta.sample_every.max(1),
            ..meta.clone()
        };
        std::fs::write(
            &meta_path,
            serde_json::to_vec_pretty(&m).expect("meta serializes"),
        )
        .map_err(|e| Error::io(&meta_path, e))?;
        Ok(ParityLogger {
            dir: dir.to_path_buf(),
            inputs: None,
            outputs: None,
            every: m.sample_every,
            calls: 0,
            logged: 0,
        })
    }

    /// Record one call (if it is sampled).
    ///
    /// # Errors
    /// [`Error::Io`] / [`Error::Data`] if the log cannot be written, or a
    /// batch's schema differs from the first logged one.
    pub fn log(&mut self, input: &RecordBatch, output: &RecordBatch) -> Result<()> {
        self.calls += 1;
        if !(self.calls - 1).is_multiple_of(self.every) {
            return Ok(());
        }
        let open = |name: &str, b: &RecordBatch| -> Result<StreamWriter<BufWriter<File>>> {
            let p = self.dir.join(name);
            let f = File::create(&p).map_err(|e| Error::io(&p, e))?;
            StreamWriter::try_new(BufWriter::new(f), &b.schema()).map_err(|e| Error::data(&p, e))
        };
        if self.inputs.is_none() {
            self.inputs = Some(open("inputs.arrows", input)?);
            self.outputs = Some(open("outputs.arrows", output)?);
        }
        let dir = self.dir.clone();
        let w = self.inputs.as_mut().expect("opened above");
        w.write(input)
            .map_err(|e| Error::data(dir.join("inputs.arrows"), e))?;
        let w = self.outputs.as_mut().expect("opened above");
        w.write(output)
            .map_err(|e| Error::data(dir.join("outputs.arrows"), e))?;
        // On disk before the call returns: a crash loses at most this call.
        for (name, w) in [
            ("inputs.arrows", &mut self.inputs),
            ("outputs.arrows", &mut self.outputs),
        ] {
            w.as_mut()
                .expect("opened above")
                .flush()
                .map_err(|e| Error::data(dir.join(name), e))?;
        }
        self.logged += 1;
        Ok(())
    }

    /// Finish the streams (also done on drop, without error reporting).
    ///
    /// # Errors
    /// [`Error::Data`] if the streams cannot be finished.
    pub fn finish(mut self) -> Result<u64> {
        for w in [self.inputs.take(), self.outputs.take()]
            .into_iter()
            .flatten()
        {
            let mut w = w;
            w.finish().map_err(|e| Error::data(&self.dir, e))?;
        }
        Ok(self.logged)
    }
}

impl Drop for ParityLogger {
    fn drop(&mut self) {
        for w in [self.inputs.as_mut(), self.outputs.as_mut()]
            .into_iter()
            .flatten()
        {
            let _ = w.finish();
        }
    }
}

/// A parity log read back.
#[derive(Debug, Clone)]
pub struct ParityLog {
    /// What it says it recorded.
    pub meta: ParityMeta,
    /// Logged inputs, one batch per call.
    pub inputs: Vec<RecordBatch>,
    /// Logged outputs, one batch per call.
    pub outputs: Vec<RecordBatch>,
}

impl ParityLog {
    /// The inputs file of a log directory (what `kiln drift` reads as live data).
    pub fn inputs_path(dir: &Path) -> PathBuf {
        dir.join("inputs.arrows")
    }

    /// Read a log directory.
    ///
    /// # Errors
    /// [`Error::Io`] / [`Error::Data`] for a missing or corrupt log.
    pub fn read(dir: &Path) -> Result<ParityLog> {
        let meta_path = dir.join("meta.json");
        let text = std::fs::read_to_string(&meta_path).map_err(|e| Error::io(&meta_path, e))?;
        let meta: ParityMeta =
            serde_json::from_str(&text).map_err(|e| Error::data(&meta_path, e))?;
        let read = |name: &str| -> Result<Vec<RecordBatch>> {
            let p = dir.join(name);
            if !p.exists() {
                return Ok(Vec::new());
            }
            // One batch per call: keep the logged boundaries.
            let opts = ReadOptions {
                batch_size: usize::MAX,
            };
            io::open(&p, &opts)?.collect()
        };
        let (inputs, outputs) = (read("inputs.arrows")?, read("outputs.arrows")?);
        if inputs.len() != outputs.len() {
            return Err(Error::data(
                dir,
                format!(
                    "{} logged inputs but {} outputs",
                    inputs.len(),
                    outputs.len()
                ),
            ));
        }
        Ok(ParityLog {
            meta,
            inputs,
            outputs,
        })
    }
}

/// One logged call whose replay differs.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Mismatch {
    /// The logged call (0-based).
    pub call: usize,
    /// What differs: the schema, the row count, or a column and row.
    pub message: String,
}

/// Compare a replayed output with the logged one, bit for bit.
pub fn compare(call: usize, logged: &RecordBatch, replayed: &RecordBatch) -> Option<Mismatch> {
    diff_batches(logged, replayed, ("served", "the pinned version gives"))
        .map(|message| Mismatch { call, message })
}

/// Where two batches first differ, bit for bit: the schema, the row count,
/// or the first column and row (`column 'c', row r: A x vs B y`, with the
/// two labels); `None` if identical.
pub fn diff_batches(a: &RecordBatch, b: &RecordBatch, (la, lb): (&str, &str)) -> Option<String> {
    if a.schema().fields() != b.schema().fields() {
        return Some(format!(
            "schema differs: {la} {:?}, {lb} {:?}",
            a.schema().fields(),
            b.schema().fields()
        ));
    }
    if a.num_rows() != b.num_rows() {
        return Some(format!(
            "{la} {} rows, {lb} {} rows",
            a.num_rows(),
            b.num_rows()
        ));
    }
    for (c, f) in a.schema().fields().iter().enumerate() {
        let (x, y) = (a.column(c), b.column(c));
        if x.to_data() == y.to_data() {
            continue;
        }
        for row in 0..x.len() {
            if x.slice(row, 1).to_data() != y.slice(row, 1).to_data() {
                let show = |v: &dyn Array| {
                    arrow::util::display::array_value_to_string(v, row).unwrap_or_default()
                };
                return Some(format!(
                    "column '{}', row {row}: {la} {} vs {lb} {}",
                    f.name(),
                    show(x.as_ref()),
                    show(y.as_ref())
                ));
            }
        }
    }
    None
}
