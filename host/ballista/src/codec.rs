//! Ballista's extension codecs, taught to carry Kiln UDFs:
//! [`KilnLogicalCodec`], [`KilnPhysicalCodec`], and the session
//! configuration that installs them ([`session_config`],
//! [`with_kiln_codecs`]).
//!
//! DataFusion's plan serializer asks the codec to encode every scalar
//! function a plan calls (`try_encode_udf`) and, on the other side, to
//! decode the bytes it wrote (`try_decode_udf`), before it looks the
//! function up by name. The Kiln codecs write a [`KilnUdf`] as its wire
//! form ([`kiln_datafusion::encode_udf`]: the plugin's bytes, parameters,
//! state and masks) and rebuild it with a [`UdfDecoder`], so the scheduler
//! and the executors run the function without having it registered;
//! everything else (Ballista's own plan nodes, file formats, other
//! functions) goes to Ballista's default codecs, unchanged.

use std::sync::Arc;

use ballista_core::extension::SessionConfigExt;
use ballista_core::serde::{BallistaLogicalExtensionCodec, BallistaPhysicalExtensionCodec};
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::catalog::TableProvider;
use datafusion::common::TableReference;
use datafusion::datasource::file_format::FileFormatFactory;
use datafusion::error::{DataFusionError, Result as DfResult};
use datafusion::execution::TaskContext;
use datafusion::logical_expr::{
    AggregateUDF, Extension, HigherOrderUDF, LogicalPlan, ScalarUDF, WindowUDF,
};
use datafusion::physical_expr_common::physical_expr::proto_decode::PhysicalExprDecodeCtx;
use datafusion::physical_expr_common::physical_expr::proto_encode::PhysicalExprEncodeCtx;
use datafusion::physical_plan::{ExecutionPlan, PhysicalExpr};
use datafusion::prelude::SessionConfig;
use datafusion_proto::logical_plan::LogicalExtensionCodec;
use datafusion_proto::physical_plan::{PhysicalExtensionCodec, PhysicalProtoConverterExtension};
use kiln_datafusion::{encode_udf, is_encoded_udf, KilnUdf, UdfDecoder};
use kiln_runtime::Engine;

/// A Kiln error as DataFusion carries it (a runtime error stays typed, so
/// [`kiln_datafusion::runtime_error`] finds it in this process).
fn to_datafusion(e: kiln_datafusion::Error) -> DataFusionError {
    match e {
        kiln_datafusion::Error::Runtime(r) => DataFusionError::External(Box::new(r)),
        other => DataFusionError::External(Box::new(other)),
    }
}

/// Encode `node` if it is a Kiln UDF: `Ok(true)` when written.
fn encode_kiln(node: &ScalarUDF, buf: &mut Vec<u8>) -> DfResult<bool> {
    let Some(udf) = node.inner().downcast_ref::<KilnUdf>() else {
        return Ok(false);
    };
    // Encoded apart and appended whole: DataFusion's logical serializer
    // ignores this call's error, so a failure must leave `buf` untouched.
    let bytes = encode_udf(udf).map_err(to_datafusion)?;
    buf.extend_from_slice(&bytes);
    Ok(true)
}

/// Decode `buf` if it is a Kiln UDF.
fn decode_kiln(decoder: &UdfDecoder, buf: &[u8]) -> Option<DfResult<Arc<ScalarUDF>>> {
    is_encoded_udf(buf).then(|| {
        decoder
            .decode(buf)
            .map(|udf| Arc::new(udf.into_udf()))
            .map_err(to_datafusion)
    })
}

/// Ballista's logical codec ([`BallistaLogicalExtensionCodec`], or any
/// other) plus Kiln UDFs: what the client uses to send a plan to the
/// scheduler, and the scheduler to read it.
#[derive(Debug)]
pub struct KilnLogicalCodec {
    inner: Arc<dyn LogicalExtensionCodec>,
    decoder: Arc<UdfDecoder>,
}

impl KilnLogicalCodec {
    /// Over Ballista's default logical codec, decoding Kiln UDFs with
    /// `decoder`.
    pub fn new(decoder: Arc<UdfDecoder>) -> KilnLogicalCodec {
        KilnLogicalCodec::with_inner(Arc::new(BallistaLogicalExtensionCodec::default()), decoder)
    }

    /// Over `inner` (which gets every call that is not about a Kiln UDF).
    pub fn with_inner(
        inner: Arc<dyn LogicalExtensionCodec>,
        decoder: Arc<UdfDecoder>,
    ) -> KilnLogicalCodec {
        KilnLogicalCodec { inner, decoder }
    }

    /// The decoder (and its plugin cache).
    pub fn decoder(&self) -> &Arc<UdfDecoder> {
        &self.decoder
    }
}

impl LogicalExtensionCodec for KilnLogicalCodec {
    fn try_decode(
        &self,
        buf: &[u8],
        inputs: &[LogicalPlan],
        ctx: &TaskContext,
    ) -> DfResult<Extension> {
        self.inner.try_decode(buf, inputs, ctx)
    }

    fn try_encode(&self, node: &Extension, buf: &mut Vec<u8>) -> DfResult<()> {
        self.inner.try_encode(node, buf)
    }

    fn try_decode_table_provider(
        &self,
        buf: &[u8],
        table_ref: &TableReference,
        schema: SchemaRef,
        ctx: &TaskContext,
    ) -> DfResult<Arc<dyn TableProvider>> {
        self.inner
            .try_decode_table_provider(buf, table_ref, schema, ctx)
    }

    fn try_encode_table_provider(
        &self,
        table_ref: &TableReference,
        node: Arc<dyn TableProvider>,
        buf: &mut Vec<u8>,
    ) -> DfResult<()> {
        self.inner.try_encode_table_provider(table_ref, node, buf)
    }

    fn try_decode_file_format(
        &self,
        buf: &[u8],
        ctx: &TaskContext,
    ) -> DfResult<Arc<dyn FileFormatFactory>> {
        self.inner.try_decode_file_format(buf, ctx)
    }

    fn try_encode_file_format(
        &self,
        buf: &mut Vec<u8>,
        node: Arc<dyn FileFormatFactory>,
    ) -> DfResult<()> {
        self.inner.try_encode_file_format(buf, node)
    }

    fn try_decode_udf(&self, name: &str, buf: &[u8]) -> DfResult<Arc<ScalarUDF>> {
        decode_kiln(&self.decoder, buf).unwrap_or_else(|| self.inner.try_decode_udf(name, buf))
    }

    fn try_encode_udf(&self, node: &ScalarUDF, buf: &mut Vec<u8>) -> DfResult<()> {
        if encode_kiln(node, buf)? {
            return Ok(());
        }
        self.inner.try_encode_udf(node, buf)
    }

    fn try_decode_higher_order_function(
        &self,
        name: &str,
        buf: &[u8],
    ) -> DfResult<Arc<HigherOrderUDF>> {
        self.inner.try_decode_higher_order_function(name, buf)
    }

    fn try_encode_higher_order_function(
        &self,
        node: &HigherOrderUDF,
        buf: &mut Vec<u8>,
    ) -> DfResult<()> {
        self.inner.try_encode_higher_order_function(node, buf)
    }

    fn try_decode_udaf(&self, name: &str, buf: &[u8]) -> DfResult<Arc<AggregateUDF>> {
        self.inner.try_decode_udaf(name, buf)
    }

    fn try_encode_udaf(&self, node: &AggregateUDF, buf: &mut Vec<u8>) -> DfResult<()> {
        self.inner.try_encode_udaf(node, buf)
    }

    fn try_decode_udwf(&self, name: &str, buf: &[u8]) -> DfResult<Arc<WindowUDF>> {
        self.inner.try_decode_udwf(name, buf)
    }

    fn try_encode_udwf(&self, node: &WindowUDF, buf: &mut Vec<u8>) -> DfResult<()> {
        self.inner.try_encode_udwf(node, buf)
    }
}

/// Ballista's physical codec ([`BallistaPhysicalExtensionCodec`], or any
/// other) plus Kiln UDFs: what the scheduler uses to send query stages to
/// the executors, and the executors to read them.
///
/// Ballista's own plan nodes (shuffle readers and writers) decode the
/// expressions they hold with Ballista's codec, not this one, so a Kiln
/// UDF must not be a shuffle's partitioning expression; a projection
/// computing it below the shuffle (what the planner builds for `GROUP BY`
/// and joins) is fine.
#[derive(Debug)]
pub struct KilnPhysicalCodec {
    inner: Arc<dyn PhysicalExtensionCodec>,
    decoder: Arc<UdfDecoder>,
}

impl KilnPhysicalCodec {
    /// Over Ballista's default physical codec, decoding Kiln UDFs with
    /// `decoder`.
    pub fn new(decoder: Arc<UdfDecoder>) -> KilnPhysicalCodec {
        KilnPhysicalCodec::with_inner(Arc::new(BallistaPhysicalExtensionCodec::default()), decoder)
    }

    /// Over `inner` (which gets every call that is not about a Kiln UDF).
    pub fn with_inner(
        inner: Arc<dyn PhysicalExtensionCodec>,
        decoder: Arc<UdfDecoder>,
    ) -> KilnPhysicalCodec {
        KilnPhysicalCodec { inner, decoder }
    }

    /// The decoder (and its plugin cache).
    pub fn decoder(&self) -> &Arc<UdfDecoder> {
        &self.decoder
    }
}

impl PhysicalExtensionCodec for KilnPhysicalCodec {
    fn try_decode(
        &self,
        buf: &[u8],
        inputs: &[Arc<dyn ExecutionPlan>],
        ctx: &TaskContext,
        proto_converter: &dyn PhysicalProtoConverterExtension,
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        self.inner.try_decode(buf, inputs, ctx, proto_converter)
    }

    fn try_encode(
        &self,
        node: Arc<dyn ExecutionPlan>,
        buf: &mut Vec<u8>,
        proto_converter: &dyn PhysicalProtoConverterExtension,
    ) -> DfResult<()> {
        self.inner.try_encode(node, buf, proto_converter)
    }

    fn try_decode_udf(&self, name: &str, buf: &[u8]) -> DfResult<Arc<ScalarUDF>> {
        decode_kiln(&self.decoder, buf).unwrap_or_else(|| self.inner.try_decode_udf(name, buf))
    }

    fn try_encode_udf(&self, node: &ScalarUDF, buf: &mut Vec<u8>) -> DfResult<()> {
        if encode_kiln(node, buf)? {
            return Ok(());
        }
        self.inner.try_encode_udf(node, buf)
    }

    fn try_decode_higher_order_function(
        &self,
        name: &str,
        buf: &[u8],
    ) -> DfResult<Arc<HigherOrderUDF>> {
        self.inner.try_decode_higher_order_function(name, buf)
    }

    fn try_encode_higher_order_function(
        &self,
        node: &HigherOrderUDF,
        buf: &mut Vec<u8>,
    ) -> DfResult<()> {
        self.inner.try_encode_higher_order_function(node, buf)
    }

    fn try_decode_expr(
        &self,
        buf: &[u8],
        inputs: &[Arc<dyn PhysicalExpr>],
        ctx: &PhysicalExprDecodeCtx<'_>,
    ) -> DfResult<Arc<dyn PhysicalExpr>> {
        self.inner.try_decode_expr(buf, inputs, ctx)
    }

    fn try_encode_expr(
        &self,
        node: &Arc<dyn PhysicalExpr>,
        buf: &mut Vec<u8>,
        ctx: &PhysicalExprEncodeCtx<'_>,
    ) -> DfResult<()> {
        self.inner.try_encode_expr(node, buf, ctx)
    }

    fn try_decode_udaf(&self, name: &str, buf: &[u8]) -> DfResult<Arc<AggregateUDF>> {
        self.inner.try_decode_udaf(name, buf)
    }

    fn try_encode_udaf(&self, node: &AggregateUDF, buf: &mut Vec<u8>) -> DfResult<()> {
        self.inner.try_encode_udaf(node, buf)
    }

    fn try_decode_udwf(&self, name: &str, buf: &[u8]) -> DfResult<Arc<WindowUDF>> {
        self.inner.try_decode_udwf(name, buf)
    }

    fn try_encode_udwf(&self, node: &WindowUDF, buf: &mut Vec<u8>) -> DfResult<()> {
        self.inner.try_encode_udwf(node, buf)
    }
}

/// `config` with the Kiln codecs installed as Ballista's logical and
/// physical extension codecs, both decoding with `decoder` (one plugin
/// cache for the process or role).
pub fn with_kiln_codecs(config: SessionConfig, decoder: Arc<UdfDecoder>) -> SessionConfig {
    config
        .with_ballista_logical_extension_codec(Arc::new(KilnLogicalCodec::new(decoder.clone())))
        .with_ballista_physical_extension_codec(Arc::new(KilnPhysicalCodec::new(decoder)))
}

/// Ballista's default session configuration
/// (`SessionConfig::new_with_ballista()`) with the Kiln codecs, loading
/// plugins into `engine`: for a client, a scheduler or an executor
/// (e.g. as `ExecutorProcessConfig::override_*_codec` take them from a
/// state built with it).
///
/// # Examples
/// ```no_run
/// # async fn f() -> Result<(), Box<dyn std::error::Error>> {
/// use ballista_core::extension::SessionStateExt;
/// use datafusion::execution::SessionStateBuilder;
/// let engine = kiln_runtime::Engine::new()?;
/// let state = SessionStateBuilder::new()
///     .with_default_features()
///     .with_config(kiln_ballista::session_config(engine.clone()))
///     .build()
///     .upgrade_for_ballista("http://scheduler:50050".into())?;
/// let ctx = datafusion::prelude::SessionContext::new_with_state(state);
/// // After the upgrade (it resets the function list):
/// let params = kiln_runtime::Params::from_json(r#"{"columns": ["age", "income"]}"#)?;
/// let t = kiln_datafusion::Transform::from_files(
///     &engine,
///     "standard_scaler.wasm".as_ref(),
///     params,
///     Some("scaler.state".as_ref()),
/// )?;
/// kiln_ballista::register(&ctx, "kiln_scaler", t)?;
/// # Ok(()) }
/// ```
pub fn session_config(engine: Engine) -> SessionConfig {
    with_kiln_codecs(
        SessionConfig::new_with_ballista(),
        Arc::new(UdfDecoder::new(engine)),
    )
}
