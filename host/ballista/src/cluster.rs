//! A Ballista cluster in this process: one scheduler and N executors,
//! talking gRPC and Arrow Flight over localhost as separate machines would
//! ([`LocalCluster`]), and [`register`], which refuses up front a
//! transform that could not reach them.

use std::sync::Arc;
use std::time::Duration;

use ballista_core::error::BallistaError;
use ballista_core::extension::{SessionConfigExt, SessionStateExt};
use ballista_core::serde::protobuf::scheduler_grpc_client::SchedulerGrpcClient;
use datafusion::execution::{SessionState, SessionStateBuilder};
use datafusion::logical_expr::ScalarUDF;
use datafusion::prelude::{SessionConfig, SessionContext};
use kiln_datafusion::{encode_udf, KilnUdf, Transform, UdfDecoder};
use kiln_runtime::Engine;

use crate::{with_kiln_codecs, Error, Result};

/// How long [`LocalCluster::start`] waits for its own scheduler to accept
/// connections.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// A scheduler and `executors` executors started in this process, and a
/// [`SessionContext`] whose queries run on them.
///
/// Each role gets the state a separate process would build: the Kiln
/// codecs ([`crate::KilnLogicalCodec`], [`crate::KilnPhysicalCodec`]) and
/// DataFusion's built-in functions, and **no** Kiln function. A Kiln UDF
/// registered on [`LocalCluster::context`] reaches the scheduler inside
/// the logical plan and each executor inside every task's plan, through
/// the codecs: nothing is shared but the engine's compiled-code cache
/// (which is keyed by the sha256 of the plugin bytes the decoder checked).
/// Every role has its own [`UdfDecoder`], which counts what it decoded
/// ([`LocalCluster::executor_decodes`]).
///
/// The scheduler and executors are tasks on the tokio runtime `start` was
/// called on, which must be multi-threaded; they stop when it shuts down.
/// Executors pull tasks from the scheduler (Ballista's `PullStaged`
/// policy), one per vcore at a time.
pub struct LocalCluster {
    context: SessionContext,
    scheduler_url: String,
    scheduler: Arc<UdfDecoder>,
    executors: Vec<Arc<UdfDecoder>>,
}

impl std::fmt::Debug for LocalCluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalCluster")
            .field("scheduler_url", &self.scheduler_url)
            .field("executors", &self.executors.len())
            .finish_non_exhaustive()
    }
}

impl LocalCluster {
    /// Start a scheduler and `executors` executors of
    /// `vcores_per_executor` task slots each, with Ballista's default
    /// configuration, loading plugins into `engine`.
    ///
    /// # Errors
    /// [`Error::Usage`] for no executors or no vcores;
    /// [`Error::Ballista`] if a server cannot bind or connect.
    ///
    /// # Examples
    /// ```no_run
    /// # async fn f() -> kiln_ballista::Result<()> {
    /// use kiln_ballista::{register, LocalCluster};
    /// let engine = kiln_runtime::Engine::new()?;
    /// let cluster = LocalCluster::start(2, 1, engine.clone()).await?;
    /// let ctx = cluster.context();
    /// ctx.register_parquet("customers", "customers.parquet", Default::default())
    ///     .await?;
    /// let params = kiln_runtime::Params::from_json(r#"{"columns": ["age", "income"]}"#)?;
    /// let scaler = kiln_datafusion::Transform::from_files(
    ///     &engine,
    ///     "standard_scaler.wasm".as_ref(),
    ///     params,
    ///     Some("scaler.state".as_ref()),
    /// )?;
    /// register(ctx, "kiln_scaler", scaler)?;
    /// let batches = ctx
    ///     .sql("SELECT customer_id, kiln_scaler(age, income)['age'] FROM customers")
    ///     .await?
    ///     .collect()
    ///     .await?;
    /// # let _ = batches; Ok(()) }
    /// ```
    pub async fn start(
        executors: usize,
        vcores_per_executor: usize,
        engine: Engine,
    ) -> Result<LocalCluster> {
        LocalCluster::start_with_config(
            executors,
            vcores_per_executor,
            engine,
            SessionConfig::new_with_ballista(),
        )
        .await
    }

    /// [`LocalCluster::start`] with `config` (target partitions, batch
    /// size, DataFusion options) for every role; Ballista's settings and
    /// the Kiln codecs are added to it.
    ///
    /// # Errors
    /// As [`LocalCluster::start`].
    pub async fn start_with_config(
        executors: usize,
        vcores_per_executor: usize,
        engine: Engine,
        config: SessionConfig,
    ) -> Result<LocalCluster> {
        if executors == 0 || vcores_per_executor == 0 {
            return Err(Error::Usage(format!(
                "a cluster needs at least one executor with at least one vcore (asked for {executors} executors of {vcores_per_executor} vcores)"
            )));
        }
        let config = config.upgrade_for_ballista();
        let state = |decoder: &Arc<UdfDecoder>| -> SessionState {
            SessionStateBuilder::new()
                .with_default_features()
                .with_config(with_kiln_codecs(config.clone(), decoder.clone()))
                .build()
        };
        let scheduler = Arc::new(UdfDecoder::new(engine.clone()));
        let addr =
            ballista_scheduler::standalone::new_standalone_scheduler_from_state(&state(&scheduler))
                .await?;
        let scheduler_url = format!("http://localhost:{}", addr.port());
        // Wait for the scheduler to listen.
        let started = std::time::Instant::now();
        let client = loop {
            match SchedulerGrpcClient::connect(scheduler_url.clone()).await {
                Ok(c) => break c,
                Err(e) if started.elapsed() > CONNECT_TIMEOUT => {
                    return Err(Error::Ballista(BallistaError::GrpcConnectionError(format!(
                        "the local scheduler at {scheduler_url} did not accept a connection within {CONNECT_TIMEOUT:?}: {e}"
                    ))))
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
            }
        };
        let mut decoders = Vec::with_capacity(executors);
        for _ in 0..executors {
            let decoder = Arc::new(UdfDecoder::new(engine.clone()));
            ballista_executor::new_standalone_executor_from_state(
                client.clone(),
                vcores_per_executor,
                &state(&decoder),
            )
            .await?;
            decoders.push(decoder);
        }
        let client = Arc::new(UdfDecoder::new(engine));
        let context = SessionContext::new_with_state(
            state(&client).upgrade_for_ballista(scheduler_url.clone())?,
        );
        Ok(LocalCluster {
            context,
            scheduler_url,
            scheduler,
            executors: decoders,
        })
    }

    /// The client context: register tables (Parquet, CSV, JSON or Arrow
    /// listing tables: DataFusion's `register_parquet` and friends; in-memory
    /// tables do not serialize) and Kiln functions ([`register`]) on it.
    pub fn context(&self) -> &SessionContext {
        &self.context
    }

    /// The scheduler's address (`http://localhost:PORT`), for
    /// `SessionContext::remote` or more executors.
    pub fn scheduler_url(&self) -> &str {
        &self.scheduler_url
    }

    /// How many Kiln functions each executor has decoded (one per task
    /// plan calling one): which executors ran Kiln tasks.
    pub fn executor_decodes(&self) -> Vec<u64> {
        self.executors.iter().map(|d| d.decoded()).collect()
    }

    /// How many plugins each executor has loaded (once per plugin, however
    /// many tasks decoded it).
    pub fn executor_plugins(&self) -> Vec<usize> {
        self.executors
            .iter()
            .map(|d| d.compiled_plugins())
            .collect()
    }

    /// How many Kiln functions the scheduler has decoded (one per plan it
    /// received calling one).
    pub fn scheduler_decodes(&self) -> u64 {
        self.scheduler.decoded()
    }
}

/// Register `transform` on `ctx` as the SQL function `name`, as
/// [`kiln_datafusion::register`] does, after checking it can be shipped
/// to a cluster ([`kiln_datafusion::encode_udf`]): DataFusion's plan
/// serializer ignores a function it fails to encode, and the scheduler
/// would then report an unknown function instead of the reason.
///
/// Register after the context's state was upgraded for Ballista
/// (`upgrade_for_ballista`, or [`LocalCluster::context`]): the upgrade
/// replaces the list of scalar functions.
///
/// # Errors
/// As [`kiln_datafusion::register`]; [`kiln_datafusion::Error::Wire`] for
/// a transform without its plugin bytes.
pub fn register(ctx: &SessionContext, name: &str, transform: Transform) -> Result<ScalarUDF> {
    let udf = KilnUdf::new(name, transform)?;
    encode_udf(&udf)?;
    let udf = udf.into_udf();
    ctx.register_udf(udf.clone());
    Ok(udf)
}
