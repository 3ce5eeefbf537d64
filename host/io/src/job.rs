//! Whole-file jobs: fit a plugin on files, run it over files into a file.
//!
//! This is what `kiln fit` and `kiln run` do, kept in the library so that
//! embedders get it without the CLI. Inputs stream batch by batch (memory is
//! bounded by a few batches plus the plugin's own state); a run reads,
//! transforms and writes on three threads, so decoding and encoding overlap
//! the plugin calls, with batches kept in input order. The output is written
//! to a temporary file and renamed over the target only when every batch
//! succeeded, so a failed run never leaves a half-written or clobbered file.

use std::path::{Path, PathBuf};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;

use crate::file::{self as io, ReadOptions};
use crate::fingerprint::{fingerprint_file, Fingerprint, Fingerprinter};
use kiln_runtime::{Error, Params, Plugin, Result, State, Transformer};

/// The error an [`OutputStage`] reports; the job names the output file.
pub type StageError = Box<dyn std::error::Error + Send + Sync>;

/// A last step between the plugin and the output file, applied to every
/// batch before it is written (the registry masks sensitive columns with
/// it). The fingerprint recorded for lineage is of what the stage returns.
pub trait OutputStage: Send + Sync {
    /// The schema written for the plugin's output `schema`; called once,
    /// before anything is written, so a stage that cannot apply fails the
    /// job before the output exists.
    ///
    /// # Errors
    /// Why the stage cannot apply to this schema (naming the column).
    fn schema(&self, schema: &SchemaRef) -> std::result::Result<SchemaRef, StageError>;

    /// Apply the stage to one output batch.
    ///
    /// # Errors
    /// Why it failed (after [`OutputStage::schema`] succeeded: a bug).
    fn apply(&self, batch: RecordBatch) -> std::result::Result<RecordBatch, StageError>;
}

/// Options of a job.
#[derive(Clone)]
pub struct JobOptions {
    /// Rows per batch read from the inputs (default 65,536).
    pub batch_size: usize,
    /// Fingerprint every input file while reading it, and the output file
    /// as written (for lineage; off by default).
    pub fingerprint: bool,
    /// A step applied to every output batch before it is written (none by
    /// default).
    pub output_stage: Option<Arc<dyn OutputStage>>,
}

impl std::fmt::Debug for JobOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JobOptions")
            .field("batch_size", &self.batch_size)
            .field("fingerprint", &self.fingerprint)
            .field("output_stage", &self.output_stage.is_some())
            .finish()
    }
}

impl Default for JobOptions {
    fn default() -> Self {
        JobOptions {
            batch_size: 65_536,
            fingerprint: false,
            output_stage: None,
        }
    }
}

/// Fingerprints of each input file, computed from the batches as they stream by.
struct InputPrints {
    prints: Option<Vec<Fingerprinter>>,
}

impl InputPrints {
    fn new(on: bool, n: usize, schema: &SchemaRef) -> Self {
        InputPrints {
            prints: on.then(|| (0..n).map(|_| Fingerprinter::new(schema)).collect()),
        }
    }

    fn update(&mut self, file: usize, batch: &RecordBatch) -> Result<()> {
        match self.prints.as_mut().and_then(|p| p.get_mut(file)) {
            Some(fp) => fp.update(batch),
            None => Ok(()),
        }
    }

    fn finish(self) -> Vec<Fingerprint> {
        self.prints
            .map(|p| p.into_iter().map(Fingerprinter::finish).collect())
            .unwrap_or_default()
    }
}

/// What a fit did.
#[derive(Debug, Clone)]
pub struct FitSummary {
    /// Rows fitted on.
    pub rows: u64,
    /// Batches fitted on.
    pub batches: u64,
    /// Input schema.
    pub input_schema: SchemaRef,
    /// Fingerprint of each input file (with [`JobOptions::fingerprint`]).
    pub input_fingerprints: Vec<Fingerprint>,
    /// Wall time.
    pub elapsed: Duration,
}

/// What a run did.
#[derive(Debug, Clone)]
pub struct RunSummary {
    /// Rows read.
    pub rows_in: u64,
    /// Rows written.
    pub rows_out: u64,
    /// Batches processed.
    pub batches: u64,
    /// Input schema.
    pub input_schema: SchemaRef,
    /// Output schema.
    pub output_schema: SchemaRef,
    /// Bytes written.
    pub bytes_out: u64,
    /// Fingerprint of each input file (with [`JobOptions::fingerprint`]).
    pub input_fingerprints: Vec<Fingerprint>,
    /// Fingerprint of the output file as a reader sees it (with
    /// [`JobOptions::fingerprint`]).
    pub output_fingerprint: Option<Fingerprint>,
    /// Wall time.
    pub elapsed: Duration,
}

/// Fit `plugin` with `params` on `inputs` (read in order as one table).
/// `progress` is called with the number of rows fitted so far.
///
/// # Errors
/// File errors ([`Error::Data`], [`Error::SchemaMismatch`], …), what the
/// plugin reports (rows counted across all inputs), traps and limits.
pub fn fit_files(
    plugin: &Plugin,
    params: &Params,
    inputs: &[PathBuf],
    opts: &JobOptions,
    progress: &mut dyn FnMut(u64),
) -> Result<(State, FitSummary)> {
    let start = Instant::now();
    let reader = io::open_many(inputs, &read_options(opts))?;
    let input_schema = reader.schema();
    let mut prints = InputPrints::new(opts.fingerprint, inputs.len(), &input_schema);
    let mut fitter = plugin.fitter(params)?;
    let mut batches = 0;
    let mut rows = 0u64;
    let mut reader = reader;
    while let Some(batch) = reader.next() {
        let batch = batch?;
        prints.update(reader.file_index(), &batch)?;
        fitter.update(&batch)?;
        batches += 1;
        rows += batch.num_rows() as u64;
        progress(rows);
    }
    if rows == 0 {
        let names: Vec<String> = inputs.iter().map(|p| p.display().to_string()).collect();
        return Err(Error::data(
            names.join(", "),
            "no rows to fit on (only a header, or empty files); fit on data with at least one row",
        ));
    }
    let state = fitter.finish()?;
    Ok((
        state,
        FitSummary {
            rows,
            batches,
            input_schema,
            input_fingerprints: prints.finish(),
            elapsed: start.elapsed(),
        },
    ))
}

/// Run `plugin` over `inputs` into `output` (format chosen by extension).
/// `progress` is called with the number of rows processed so far.
///
/// # Errors
/// [`Error::InvalidState`] if the plugin needs a state and none is given;
/// file errors; what the plugin reports (rows counted across all inputs);
/// [`Error::InvalidOutput`]; traps and limits. On any error `output` is
/// untouched.
pub fn run_files(
    plugin: &Plugin,
    params: &Params,
    state: Option<&State>,
    inputs: &[PathBuf],
    output: &Path,
    opts: &JobOptions,
    progress: &mut dyn FnMut(u64),
) -> Result<RunSummary> {
    // Before reading anything, as the parameters alone decide it.
    if state.is_none() && plugin.needs_fit(params)? {
        return Err(needs_state(plugin));
    }
    run_files_loading(
        || plugin.transformer(params, state),
        inputs,
        output,
        opts,
        progress,
    )
}

/// The transformer a run applies: `plugin` configured with `params` and
/// `state`, checked first for a state the parameters need.
///
/// # Errors
/// [`Error::InvalidState`] if the plugin needs a state and none is given;
/// what configuring the plugin reports.
pub fn transformer(plugin: &Plugin, params: &Params, state: Option<&State>) -> Result<Transformer> {
    if state.is_none() && plugin.needs_fit(params)? {
        return Err(needs_state(plugin));
    }
    plugin.transformer(params, state)
}

fn needs_state(plugin: &Plugin) -> Error {
    Error::InvalidState {
        plugin: plugin.plugin_ref(),
        message: "these parameters need a fitted state: run `kiln fit` first and pass its --state-out file with --state".into(),
    }
}

/// [`run_files`] for a caller that has not loaded its plugin yet: `load`
/// runs on this thread while the inputs are opened and their first batches
/// decode on the reader thread, so a cold process (`kiln run`) pays for
/// loading the plugin (reading, hashing, mapping its compiled code,
/// configuring it) and for starting to read at the same time. `load`
/// returns the transformer to apply, typically from [`transformer`]; its
/// error ends the job before the output exists. The summary's `elapsed`
/// includes `load`.
///
/// `load` may fail with an error type of the caller's (a CLI's
/// `anyhow::Error`, say) that Kiln's errors convert into.
///
/// # Errors
/// As [`run_files`], and what `load` returns.
pub fn run_files_loading<E: From<Error>>(
    load: impl FnOnce() -> std::result::Result<Transformer, E>,
    inputs: &[PathBuf],
    output: &Path,
    opts: &JobOptions,
    progress: &mut dyn FnMut(u64),
) -> std::result::Result<RunSummary, E> {
    let start = Instant::now();
    // Refuse an unknown output format before reading anything.
    io::Format::from_path(output)?;
    let reader = io::open_many(inputs, &read_options(opts))?;
    let input_schema = reader.schema();
    let prints = InputPrints::new(opts.fingerprint, inputs.len(), &input_schema);
    let (outcome, prints) = std::thread::scope(|scope| {
        // Three stages on their own threads, so decoding the next batch and
        // encoding the last one overlap the plugin call: read (and
        // fingerprint) -> transform (this thread) -> write. Each channel
        // holds at most IN_FLIGHT batches, which bounds memory. The reader
        // starts first: it decodes while this thread loads the plugin.
        let (read_tx, read_rx) = mpsc::sync_channel::<Result<RecordBatch>>(IN_FLIGHT);
        let reading = scope.spawn(move || read_stage(reader, prints, &read_tx));
        // Dropping `read_rx` on an early return stops the reader at its
        // next send.
        let outcome = (|| -> std::result::Result<_, E> {
            let mut transformer = load()?;
            let output_schema = transformer.output_schema(&input_schema)?;
            let stage = opts.output_stage.as_deref();
            let output_schema = match stage {
                Some(s) => s
                    .schema(&output_schema)
                    .map_err(|e| Error::data(output, e))?,
                None => output_schema,
            };
            let writer = io::Writer::create(output, output_schema.clone())?;
            let (write_tx, write_rx) = mpsc::sync_channel::<RecordBatch>(IN_FLIGHT);
            let writing = scope.spawn(move || write_stage(writer, write_rx));
            let outcome = transform_stage(
                &mut transformer,
                stage,
                output,
                read_rx,
                &write_tx,
                progress,
            );
            // Closing the channel stops the writer once it has written
            // what it was sent.
            drop(write_tx);
            let writer = join(writing);
            // The first failure wins: a read or transform error (the
            // writer then holds an unfinished temporary file, removed on
            // drop), else a write error.
            let counts = outcome?;
            Ok((counts, output_schema, writer?))
        })();
        (outcome, join(reading))
    });
    // Only a job where every stage succeeded renames the output.
    let ((rows_in, rows_out, batches), output_schema, writer) = outcome?;
    let written = writer.finish()?;
    // The output as any reader will see it (a CSV's types are inferred
    // again), so that `kiln lineage trace` on the file finds this run.
    let output_fingerprint = if opts.fingerprint {
        Some(fingerprint_file(output)?)
    } else {
        None
    };
    Ok(RunSummary {
        rows_in,
        rows_out,
        batches,
        input_schema,
        output_schema,
        bytes_out: written.bytes,
        input_fingerprints: prints.finish(),
        output_fingerprint,
        elapsed: start.elapsed(),
    })
}

/// Batches in flight between two stages of [`run_files`].
const IN_FLIGHT: usize = 2;

/// Read every batch (fingerprinting it) and send it on; stop at the first
/// error (sent on) or when the transform stage hangs up.
fn read_stage(
    mut reader: io::MultiReader,
    mut prints: InputPrints,
    tx: &mpsc::SyncSender<Result<RecordBatch>>,
) -> InputPrints {
    while let Some(batch) = reader.next() {
        let batch = batch.and_then(|b| prints.update(reader.file_index(), &b).map(|()| b));
        let failed = batch.is_err();
        if tx.send(batch).is_err() || failed {
            break;
        }
    }
    prints
}

/// Apply the plugin (and the output stage) to each batch read, in order,
/// and send the results to the writer; returns rows in, rows out and
/// batches, or the first error, with rows counted across all inputs.
fn transform_stage(
    transformer: &mut Transformer,
    stage: Option<&dyn OutputStage>,
    output: &Path,
    batches_in: mpsc::Receiver<Result<RecordBatch>>,
    tx: &mpsc::SyncSender<RecordBatch>,
    progress: &mut dyn FnMut(u64),
) -> Result<(u64, u64, u64)> {
    let (mut rows_in, mut rows_out, mut batches) = (0u64, 0u64, 0u64);
    for batch in batches_in {
        let batch = batch?;
        let out = transformer
            .apply(&batch)
            .map_err(|e| e.with_row_offset(rows_in))?;
        let out = match stage {
            Some(s) => s.apply(out).map_err(|e| Error::data(output, e))?,
            None => out,
        };
        rows_in += batch.num_rows() as u64;
        rows_out += out.num_rows() as u64;
        batches += 1;
        if tx.send(out).is_err() {
            // The writer failed; its error is what the job reports.
            break;
        }
        progress(rows_in);
    }
    Ok((rows_in, rows_out, batches))
}

/// Write every batch received; the writer comes back unfinished, for the
/// job to finish (rename into place) only if every stage succeeded.
fn write_stage(mut writer: io::Writer, rx: mpsc::Receiver<RecordBatch>) -> Result<io::Writer> {
    for batch in rx {
        writer.write(&batch)?;
    }
    Ok(writer)
}

/// Join a stage's thread, passing a panic on as it is.
fn join<T>(handle: std::thread::ScopedJoinHandle<'_, T>) -> T {
    handle
        .join()
        .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
}

fn read_options(opts: &JobOptions) -> ReadOptions {
    ReadOptions {
        batch_size: opts.batch_size.max(1),
    }
}
