//! Run SQL over Kiln-read tables: collect the result, or stream it into a
//! file with `kiln-io`'s atomic writer. What a `kiln sql` command needs,
//! with blocking forms for callers without an async runtime.

use std::future::Future;
use std::path::Path;
use std::sync::Arc;

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use datafusion::execution::context::SessionContext;
use futures::StreamExt;
use kiln_io::{Fingerprint, Fingerprinter, WriteSummary, Writer};

use crate::table::register_tables;
use crate::{Error, Result};

/// Run `query` on `ctx` and collect every result batch, with the result's
/// schema (also for an empty result).
///
/// # Errors
/// SQL that does not parse or plan ([`Error::DataFusion`]); what a Kiln
/// UDF or table reports ([`Error::Runtime`]).
pub async fn collect(ctx: &SessionContext, query: &str) -> Result<(SchemaRef, Vec<RecordBatch>)> {
    let df = ctx.sql(query).await?;
    let schema: SchemaRef = Arc::new(df.schema().as_arrow().clone());
    let batches = df.collect().await?;
    Ok((schema, batches))
}

/// Run `query` on `ctx` and stream the result into `output` (Parquet,
/// CSV, Arrow IPC or JSON-lines by extension), batch by batch: memory
/// stays bounded by the plan, and `output` is replaced only when the whole
/// query succeeded.
///
/// # Errors
/// As [`collect`]; as [`kiln_io::Writer`] (unknown format, a type the
/// format cannot hold, an unwritable directory). On error `output` is
/// untouched.
pub async fn write(ctx: &SessionContext, query: &str, output: &Path) -> Result<WriteSummary> {
    Ok(stream_to_file(ctx, query, output, false).await?.0)
}

/// Stream `query`'s result into `output`; with `fingerprint`, also the
/// result's fingerprint and schema (one pass over the batches either way).
pub(crate) async fn stream_to_file(
    ctx: &SessionContext,
    query: &str,
    output: &Path,
    fingerprint: bool,
) -> Result<(WriteSummary, Option<(Fingerprint, SchemaRef)>)> {
    kiln_io::Format::from_path(output)?;
    let df = ctx.sql(query).await?;
    let mut stream = df.execute_stream().await?;
    let schema = stream.schema();
    let mut writer = Writer::create(output, schema.clone())?;
    let mut fp = fingerprint.then(|| Fingerprinter::new(&schema));
    while let Some(batch) = stream.next().await {
        let batch = batch?;
        if let Some(fp) = &mut fp {
            fp.update(&batch)?;
        }
        writer.write(&batch)?;
    }
    let summary = writer.finish()?;
    Ok((summary, fp.map(|f| (f.finish(), schema))))
}

/// Register `tables` (`(name, path)` pairs, see [`register_tables`]) on
/// `ctx`, run `query` and collect the result: the blocking form for a CLI.
///
/// # Errors
/// [`Error::Usage`] when called inside an async runtime (use [`collect`]
/// there); as [`register_tables`] and [`collect`].
///
/// # Examples
/// ```no_run
/// # fn main() -> kiln_datafusion::Result<()> {
/// let ctx = datafusion::prelude::SessionContext::new();
/// let (schema, batches) = kiln_datafusion::sql(
///     &ctx,
///     "SELECT plan, count(*) FROM customers GROUP BY plan",
///     &[("customers", "customers.csv".as_ref())],
/// )?;
/// # let _ = (schema, batches); Ok(()) }
/// ```
pub fn sql(
    ctx: &SessionContext,
    query: &str,
    tables: &[(&str, &Path)],
) -> Result<(SchemaRef, Vec<RecordBatch>)> {
    register_tables(ctx, tables)?;
    block_on(ctx, collect(ctx, query))
}

/// Register `tables` on `ctx`, run `query` and write the result to
/// `output`: `kiln sql QUERY --table t=file --output out.parquet`.
///
/// # Errors
/// As [`sql`] and [`write()`].
pub fn sql_to_file(
    ctx: &SessionContext,
    query: &str,
    tables: &[(&str, &Path)],
    output: &Path,
) -> Result<WriteSummary> {
    register_tables(ctx, tables)?;
    block_on(ctx, write(ctx, query, output))
}

/// Run `fut` on a multi-threaded runtime with one worker per target
/// partition of `ctx` (DataFusion spawns a task per partition).
///
/// # Errors
/// [`Error::Usage`] inside a runtime (blocking there would stall it);
/// [`kiln_runtime::Error::Internal`] if no runtime can be started.
pub fn block_on<T>(ctx: &SessionContext, fut: impl Future<Output = Result<T>>) -> Result<T> {
    if tokio::runtime::Handle::try_current().is_ok() {
        return Err(Error::Usage(
            "a blocking kiln-datafusion call inside an async runtime; await the async form instead (collect, write, fit)".into(),
        ));
    }
    let workers = ctx.copied_config().target_partitions().max(1);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        .thread_name("kiln-sql")
        .build()
        .map_err(|e| {
            kiln_runtime::Error::Internal(format!("cannot start the query runtime: {e}"))
        })?;
    rt.block_on(fut)
}
