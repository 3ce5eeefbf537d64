//! Data files as DataFusion tables, read by `kiln-io`: [`register_files`]
//! and [`register_tables`].

use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use datafusion::catalog::streaming::StreamingTable;
use datafusion::error::DataFusionError;
use datafusion::execution::context::SessionContext;
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::physical_plan::stream::RecordBatchReceiverStream;
use datafusion::physical_plan::streaming::PartitionStream;
use kiln_io::ReadOptions;

use crate::error::to_datafusion;
use crate::udf::check_identifier;
use crate::{Error, Result};

/// Register `paths` (read in order, one partition each; all must share
/// column names and types) as the table `name`, and return its schema.
///
/// A table is one or more Parquet, CSV, Arrow IPC or JSON-lines files
/// (format by extension, as everywhere in Kiln), one DataFusion partition
/// per file, streamed in batches of the session's `batch_size` on a
/// blocking thread. Reading with
/// `kiln-io` instead of DataFusion's own sources has two reasons:
///
/// - the UDF sees exactly the types `kiln run` sees: the same CSV and
///   JSON type inference (DataFusion infers CSV types differently), so the
///   outputs agree bit for bit;
/// - the build stays small: DataFusion's `parquet` and `compression`
///   features (its Parquet source, object-store plumbing and codecs) are
///   not needed, because `kiln-io` already links the Parquet reader.
///
/// The cost: no projection, predicate or row-group pruning reaches the
/// file (every column of every row group is decoded, then DataFusion
/// projects), and a file is one partition, so a single file is split
/// across cores only by DataFusion's round-robin repartitioning.
///
/// # Errors
/// [`Error::Usage`] for a bad or taken table name, or no paths; as
/// [`kiln_io::open_many`] (unknown format, unreadable or mismatched files).
pub fn register_files(ctx: &SessionContext, name: &str, paths: &[PathBuf]) -> Result<SchemaRef> {
    check_identifier("table", name)?;
    if paths.is_empty() {
        return Err(Error::Usage(format!("table '{name}': no files given")));
    }
    if ctx.table_exist(name)? {
        return Err(Error::Usage(format!(
            "table '{name}' is already registered; give each table one name (files of one table share the name)"
        )));
    }
    // Opens every file: formats, schemas and the merged nullability are
    // checked now, not at the first query.
    let schema = kiln_io::open_many(paths, &ReadOptions { batch_size: 1 })?.schema();
    let partitions = paths
        .iter()
        .map(|p| {
            Arc::new(FilePartition {
                path: p.clone(),
                schema: schema.clone(),
            }) as Arc<dyn PartitionStream>
        })
        .collect();
    let table = StreamingTable::try_new(schema.clone(), partitions)?;
    ctx.register_table(name, Arc::new(table))?;
    Ok(schema)
}

/// Register tables given as `(name, path)` pairs (a `--table name=path`
/// list); pairs with the same name make one table of several files.
///
/// # Errors
/// As [`register_files`].
pub fn register_tables(ctx: &SessionContext, tables: &[(&str, &Path)]) -> Result<()> {
    for (name, paths) in group_tables(tables) {
        register_files(ctx, name, &paths)?;
    }
    Ok(())
}

/// `(name, path)` pairs grouped by name, in first-seen order: pairs with
/// the same name are the files of one table.
pub(crate) fn group_tables<'a>(tables: &[(&'a str, &Path)]) -> Vec<(&'a str, Vec<PathBuf>)> {
    let mut grouped: Vec<(&str, Vec<PathBuf>)> = Vec::new();
    for (name, path) in tables {
        match grouped.iter_mut().find(|(n, _)| n == name) {
            Some((_, paths)) => paths.push(path.to_path_buf()),
            None => grouped.push((name, vec![path.to_path_buf()])),
        }
    }
    grouped
}

/// One file of a table: a partition read on a blocking thread.
#[derive(Debug)]
struct FilePartition {
    path: PathBuf,
    /// The table's schema (nullable where any file is).
    schema: SchemaRef,
}

impl PartitionStream for FilePartition {
    fn schema(&self) -> &SchemaRef {
        &self.schema
    }

    fn execute(&self, ctx: Arc<TaskContext>) -> SendableRecordBatchStream {
        let opts = ReadOptions {
            batch_size: ctx.session_config().batch_size().max(1),
        };
        let mut builder = RecordBatchReceiverStream::builder(self.schema.clone(), 2);
        let tx = builder.tx();
        let (path, schema) = (self.path.clone(), self.schema.clone());
        builder.spawn_blocking(move || {
            let reader = kiln_io::open(&path, &opts).map_err(to_datafusion)?;
            let found = reader.schema();
            let same = found.fields().len() == schema.fields().len()
                && found
                    .fields()
                    .iter()
                    .zip(schema.fields())
                    .all(|(a, b)| a.name() == b.name() && a.data_type() == b.data_type());
            if !same {
                return Err(to_datafusion(kiln_runtime::Error::SchemaMismatch {
                    path,
                    message: format!(
                        "the file changed since the table was registered: now {found:?}"
                    ),
                }));
            }
            for batch in reader {
                let batch = batch.map_err(to_datafusion)?;
                // Present the table's schema (nullability merged across files).
                let batch = RecordBatch::try_new(schema.clone(), batch.columns().to_vec())
                    .map_err(|e| DataFusionError::ArrowError(Box::new(e), None))?;
                if tx.blocking_send(Ok(batch)).is_err() {
                    // The query stopped reading (a LIMIT, an error elsewhere).
                    break;
                }
            }
            Ok(())
        });
        builder.build()
    }
}
