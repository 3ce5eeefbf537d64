//! Fit a plugin on the result of a DataFusion query, partition by
//! partition: [`fit`] and [`FitSummary`].

use std::sync::Arc;
use std::time::{Duration, Instant};

use arrow::datatypes::SchemaRef;
use datafusion::common::runtime::SpawnedTask;
use datafusion::dataframe::DataFrame;
use datafusion::error::DataFusionError;
use datafusion::execution::TaskContext;
use datafusion::physical_plan::ExecutionPlanProperties;
use futures::StreamExt;
use kiln_runtime::{Params, PartialState, Plugin, State};

use crate::error::to_datafusion;
use crate::Result;

/// Partial states merged per `fit-merge` call (the accumulator plus this
/// many), so a long input never sends every partial state in one call.
pub const MERGE_CHUNK: usize = 64;

/// What one partition's task returns: its partial states in batch order
/// and its row count.
type PartitionFit = Result<(Vec<PartialState>, u64), DataFusionError>;

/// What a fit across partitions did.
#[derive(Debug, Clone)]
pub struct FitSummary {
    /// Rows fitted on.
    pub rows: u64,
    /// Non-empty batches fitted on (one `fit-partial` each).
    pub batches: u64,
    /// Rows per partition of the query's plan, in partition order.
    pub partition_rows: Vec<u64>,
    /// The query's output schema (what the plugin was fitted on).
    pub input_schema: SchemaRef,
    /// Wall time, planning included.
    pub elapsed: Duration,
}

/// Fit `plugin` with `params` on every row `df` returns.
///
/// Every partition of the query's plan runs in its own task and calls the
/// contract's `fit-partial` on each of its batches as they arrive (a fresh
/// plugin instance per call); the partial states, small, go to the
/// driver, which merges them with `fit-merge` and finishes with
/// `fit-finish`.
///
/// The driver merges in partition order, then batch order within each
/// partition, left to right: exactly the sequence of the sequential fit
/// (`kiln fit`, [`kiln_io::job::fit_files`], [`kiln_runtime::Fitter`]) over
/// the batches in that order. Floating-point merges are not associative,
/// so a fit that merged per partition first (a tree) would give state
/// bytes that depend on the partition count; this one gives the same bytes
/// for 1, 2 or 64 partitions, and the same bytes as `kiln fit` on a file
/// read in the same batches, in the same order (the tests check both for
/// `standard-scaler`). The cost is one partial state per batch held on the
/// driver until the merge (a few hundred bytes for a scaler; merged in
/// chunks of [`MERGE_CHUNK`]).
///
/// The order must be reproducible for the bytes to be: the query is
/// planned without round-robin repartitioning (which interleaves several
/// inputs by arrival time), so a scan, filter or projection of tables runs
/// on the tables' own partitions (one per file of a [`crate::register_files`]
/// table, one per `MemTable` partition), in order. A query whose row
/// order is not reproducible (a join or aggregation: DataFusion's hash
/// repartitioning also interleaves by arrival) fits states that may differ
/// in the last bits from run to run; `ORDER BY` a unique key (one
/// partition, one order) or write the query's result to a file first.
///
/// Empty batches are skipped (`kiln-io` never yields one; DataFusion's
/// filters do). Row numbers in a plugin's `invalid input` errors count
/// within the partition that failed.
///
/// # Errors
/// Planning and execution errors of the query; what the plugin reports;
/// [`kiln_runtime::Error::Data`] if the query returns no rows.
///
/// # Examples
/// ```no_run
/// # async fn f(ctx: datafusion::prelude::SessionContext, plugin: kiln_runtime::Plugin) -> kiln_datafusion::Result<()> {
/// let params = kiln_runtime::Params::from_json(r#"{"columns": ["age"]}"#)?;
/// let df = ctx.sql("SELECT age FROM customers WHERE plan = 'pro'").await?;
/// let (state, summary) = kiln_datafusion::fit(&plugin, &params, df).await?;
/// # let _ = (state, summary); Ok(()) }
/// ```
pub async fn fit(plugin: &Plugin, params: &Params, df: DataFrame) -> Result<(State, FitSummary)> {
    let start = Instant::now();
    let (mut state, logical) = df.into_parts();
    // Partitions must be the tables' own, in order: round-robin
    // repartitioning would interleave several inputs by arrival time.
    state
        .config_mut()
        .options_mut()
        .optimizer
        .enable_round_robin_repartition = false;
    let input_schema: SchemaRef = Arc::new(logical.schema().as_arrow().clone());
    let task_ctx = Arc::new(TaskContext::from(&state));
    let plan = state.create_physical_plan(&logical).await?;
    let partitions = plan.output_partitioning().partition_count();
    // One task per partition: fit-partial on each batch as it arrives.
    let tasks: Vec<SpawnedTask<PartitionFit>> = (0..partitions)
        .map(|p| {
            let (plan, task_ctx) = (plan.clone(), task_ctx.clone());
            let (plugin, params) = (plugin.clone(), params.clone());
            SpawnedTask::spawn(async move {
                let mut stream = plan.execute(p, task_ctx)?;
                let (mut parts, mut rows) = (Vec::new(), 0u64);
                while let Some(batch) = stream.next().await {
                    let batch = batch?;
                    if batch.num_rows() == 0 {
                        continue;
                    }
                    let part = plugin
                        .fit_partial(&params, &batch)
                        .map_err(|e| to_datafusion(e.with_row_offset(rows)))?;
                    parts.push(part);
                    rows += batch.num_rows() as u64;
                }
                Ok((parts, rows))
            })
        })
        .collect();
    // The driver: every partial state, in partition then batch order.
    let mut parts = Vec::new();
    let mut partition_rows = Vec::with_capacity(partitions);
    for task in tasks {
        let (p, rows) = task
            .join_unwind()
            .await
            .map_err(|e| DataFusionError::ExecutionJoin(Box::new(e)))??;
        parts.extend(p);
        partition_rows.push(rows);
    }
    let rows: u64 = partition_rows.iter().sum();
    if rows == 0 {
        return Err(kiln_runtime::Error::data(
            "<query>",
            "no rows to fit on (the query returned none); fit on data with at least one row",
        )
        .into());
    }
    let batches = parts.len() as u64;
    let mut rest = parts.into_iter();
    let mut merged = rest
        .next()
        .expect("rows > 0, so at least one partial state");
    let rest: Vec<PartialState> = rest.collect();
    for chunk in rest.chunks(MERGE_CHUNK) {
        let mut group = Vec::with_capacity(chunk.len() + 1);
        group.push(merged);
        group.extend_from_slice(chunk);
        merged = plugin.fit_merge(params, &group)?;
    }
    let state = plugin.fit_finish(params, &merged)?;
    Ok((
        state,
        FitSummary {
            rows,
            batches,
            partition_rows,
            input_schema,
            elapsed: start.elapsed(),
        },
    ))
}
