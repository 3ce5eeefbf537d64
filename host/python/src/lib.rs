//! # kiln-python: Kiln plugins from Python
//!
//! The native module (`kiln._kiln`) of the `kiln` Python package. It runs
//! the same `.wasm` components, parameters and fitted states as the `kiln`
//! CLI, through `kiln-runtime`, over Arrow data handed over by the Arrow
//! PyCapsule interface (`__arrow_c_stream__` / `__arrow_c_array__`): pyarrow
//! tables and batches, pandas through pyarrow, polars, DuckDB results. No
//! rows are copied on the way in or out of Python; the GIL is released
//! while plugins run.
//!
//! The map of the crate:
//! - [`Plugin`]: a plugin with its parameters and (after `fit`, or from a
//!   state file or the store) its fitted state; `fit`, `transform`,
//!   `output_schema`; it pickles (`__reduce__` / `_restore`) with its
//!   component bytes so PySpark and Ray workers run the same version.
//! - [`load`]: a version from a Kiln store by `NAME@TAG` or id, with the
//!   column masks `kiln run NAME@TAG` applies for the same principal.
//! - `KilnError`: every Kiln error, with the CLI's message.
//! - Input normalization: Arrow view types (polars' `Utf8View`) are read as
//!   their plain types (`plain_batch`), which the contract carries.
//!
//! The Python layer (`python/kiln`: `kiln`, `kiln.spark`, `kiln.ray`) and its
//! pytest suite live beside this crate; see docs/python.md.
//!
//! Bit-identity with the CLI: `transform` calls the plugin once per input
//! batch, in a fresh instance, as `kiln run` does (a row's output does not
//! depend on its batch); `fit` re-chunks its input into batches of
//! `batch_size` rows (65,536, `kiln fit`'s default), because a fitted state
//! can depend on where batches split.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use arrow::array::RecordBatch;
use arrow::compute::{cast, concat_batches};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use arrow::error::ArrowError;
use kiln_runtime::{Engine, Params, State};
use kiln_store::{ColumnPolicy, Masking, Permission, Registry, Resolved, Store};
use pyo3::create_exception;
use pyo3::exceptions::PyException;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyTuple};
use pyo3_arrow::input::AnyRecordBatch;
use pyo3_arrow::{PySchema, PyTable};

create_exception!(
    _kiln,
    KilnError,
    PyException,
    "A Kiln error: the plugin, file, column or row, and what to do."
);

/// `kiln fit`'s default batch size.
const FIT_BATCH_ROWS: usize = 65_536;

/// One engine per process: compiled plugins are cached by plugin id.
fn engine() -> PyResult<Engine> {
    static ENGINE: OnceLock<Engine> = OnceLock::new();
    if let Some(e) = ENGINE.get() {
        return Ok(e.clone());
    }
    let e = Engine::new().map_err(kiln_err)?;
    Ok(ENGINE.get_or_init(|| e).clone())
}

fn kiln_err(e: impl std::fmt::Display) -> PyErr {
    KilnError::new_err(e.to_string())
}

/// Parameters from a JSON string, a dict (serialized by Python's `json`),
/// or none (`{}`).
fn params_of(py: Python<'_>, params: Option<&Bound<'_, PyAny>>) -> PyResult<Params> {
    let json = match params {
        None => "{}".to_owned(),
        Some(p) if p.is_instance_of::<PyDict>() => py
            .import("json")?
            .call_method1("dumps", (p,))?
            .extract::<String>()?,
        Some(p) => p.extract::<String>()?,
    };
    Params::from_json(&json).map_err(kiln_err)
}

/// A Kiln plugin with its parameters and fitted state: what `kiln run`
/// applies. Immutable: `fit` returns a new `Plugin`.
#[pyclass(frozen, module = "kiln")]
pub struct Plugin {
    plugin: kiln_runtime::Plugin,
    /// The component bytes (their sha256 is the plugin id), kept so that a
    /// `Plugin` can be pickled to PySpark and Ray workers.
    wasm: Arc<[u8]>,
    params: Params,
    state: Option<State>,
    masking: Masking,
    label: String,
}

impl Plugin {
    fn transform_reader(
        &self,
        reader: Box<dyn arrow::record_batch::RecordBatchReader + Send>,
    ) -> Result<(Vec<RecordBatch>, SchemaRef), kiln_runtime::Error> {
        let mut transformer = self.plugin.transformer(&self.params, self.state.as_ref())?;
        let mut schema = transformer.output_schema(&plain_schema(&reader.schema()))?;
        if !self.masking.is_empty() {
            schema = self
                .masking
                .schema(&schema)
                .map_err(|e| kiln_runtime::Error::Internal(e.to_string()))?;
        }
        let mut out = Vec::new();
        let mut rows = 0u64;
        for batch in reader {
            let batch = plain_batch(&self.label, batch.map_err(|e| input_error(&self.label, e))?)?;
            let n = batch.num_rows() as u64;
            let mut o = transformer
                .apply(&batch)
                .map_err(|e| e.with_row_offset(rows))?;
            if !self.masking.is_empty() {
                o = self
                    .masking
                    .apply(&o)
                    .map_err(|e| kiln_runtime::Error::Internal(e.to_string()))?;
            }
            rows += n;
            out.push(o);
        }
        Ok((out, schema))
    }

    fn fit_reader(
        &self,
        reader: Box<dyn arrow::record_batch::RecordBatchReader + Send>,
        batch_size: usize,
    ) -> Result<State, kiln_runtime::Error> {
        let schema = plain_schema(&reader.schema());
        let mut fitter = self.plugin.fitter(&self.params)?;
        let mut pending: Vec<RecordBatch> = Vec::new();
        let mut pending_rows = 0usize;
        let mut fitted = 0u64;
        let mut feed = |batches: &[RecordBatch], fitter: &mut kiln_runtime::Fitter| {
            // One input batch covering the chunk is fed as it is (a slice,
            // no copy); only chunks that straddle input batches are joined.
            let b = match batches {
                [one] => one.clone(),
                many => concat_batches(&schema, many).map_err(|e| input_error(&self.label, e))?,
            };
            fitted += b.num_rows() as u64;
            fitter.update(&b)
        };
        for batch in reader {
            let mut batch =
                plain_batch(&self.label, batch.map_err(|e| input_error(&self.label, e))?)?;
            while pending_rows + batch.num_rows() >= batch_size {
                let take = batch_size - pending_rows;
                pending.push(batch.slice(0, take));
                feed(&pending, &mut fitter)?;
                pending.clear();
                pending_rows = 0;
                batch = batch.slice(take, batch.num_rows() - take);
            }
            if batch.num_rows() > 0 {
                pending_rows += batch.num_rows();
                pending.push(batch);
            }
        }
        if pending_rows > 0 {
            feed(&pending, &mut fitter)?;
        }
        if fitted == 0 {
            return Err(kiln_runtime::Error::Internal(format!(
                "{}: no rows to fit on; fit on data with at least one row",
                self.label
            )));
        }
        fitter.finish()
    }
}

/// Arrow's view types (polars exports strings as `Utf8View`) do not cross
/// the plugin boundary; read them as the plain type with the same values,
/// as `kiln run` reads such a column from a file. Other types pass as they
/// are (an unsupported one is refused by the runtime, naming the column).
fn plain_type(t: &DataType) -> Option<DataType> {
    match t {
        DataType::Utf8View => Some(DataType::Utf8),
        DataType::BinaryView => Some(DataType::Binary),
        _ => None,
    }
}

fn plain_schema(schema: &SchemaRef) -> SchemaRef {
    if !schema
        .fields()
        .iter()
        .any(|f| plain_type(f.data_type()).is_some())
    {
        return schema.clone();
    }
    let fields: Vec<Field> = schema
        .fields()
        .iter()
        .map(|f| match plain_type(f.data_type()) {
            Some(t) => f.as_ref().clone().with_data_type(t),
            None => f.as_ref().clone(),
        })
        .collect();
    Arc::new(Schema::new_with_metadata(fields, schema.metadata().clone()))
}

/// `batch` with view columns cast to their plain types (see [`plain_type`]).
fn plain_batch(label: &str, batch: RecordBatch) -> Result<RecordBatch, kiln_runtime::Error> {
    let schema = plain_schema(batch.schema_ref());
    if Arc::ptr_eq(&schema, batch.schema_ref()) {
        return Ok(batch);
    }
    let columns = batch
        .columns()
        .iter()
        .zip(schema.fields())
        .map(|(c, f)| {
            if c.data_type() == f.data_type() {
                Ok(c.clone())
            } else {
                cast(c, f.data_type())
            }
        })
        .collect::<Result<Vec<_>, _>>()
        .and_then(|cols| RecordBatch::try_new(schema, cols))
        .map_err(|e| input_error(label, e))?;
    Ok(columns)
}

fn input_error(label: &str, e: ArrowError) -> kiln_runtime::Error {
    kiln_runtime::Error::Internal(format!("{label}: reading the input data: {e}"))
}

#[pymethods]
impl Plugin {
    /// `Plugin(path, params=None, state=None)`: the component at `path`
    /// (a `.wasm` file) with `params` (a dict or a JSON string) and a
    /// fitted `state` (a file written by `kiln fit --state-out`, or bytes).
    #[new]
    #[pyo3(signature = (path, params=None, state=None))]
    fn new(
        py: Python<'_>,
        path: PathBuf,
        params: Option<&Bound<'_, PyAny>>,
        state: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Plugin> {
        let params = params_of(py, params)?;
        let state = match state {
            None => None,
            Some(s) if s.is_instance_of::<PyBytes>() => {
                Some(State::from_bytes(s.extract::<Vec<u8>>()?))
            }
            Some(s) => {
                let p: PathBuf = s.extract()?;
                let bytes = std::fs::read(&p).map_err(|e| {
                    kiln_err(format!(
                        "reading state file {}: {e}; pass the --state-out file of `kiln fit`",
                        p.display()
                    ))
                })?;
                Some(State::from_bytes(bytes))
            }
        };
        let engine = engine()?;
        let wasm: Arc<[u8]> = std::fs::read(&path)
            .map_err(|e| {
                kiln_err(format!(
                    "{}: cannot read the plugin: {e}; pass the path of a .wasm component",
                    path.display()
                ))
            })?
            .into();
        let plugin = py
            .detach(|| engine.load_bytes(&wasm, &path))
            .map_err(kiln_err)?;
        Ok(Plugin {
            label: path.display().to_string(),
            plugin,
            wasm,
            params,
            state,
            masking: Masking::default(),
        })
    }

    /// Fit on `data` (anything with `__arrow_c_stream__` or
    /// `__arrow_c_array__`: a pyarrow Table or RecordBatch, a polars
    /// DataFrame, ...) and return the fitted plugin. The state is the bytes
    /// `kiln fit` writes for the same rows.
    #[pyo3(signature = (data, batch_size=FIT_BATCH_ROWS))]
    fn fit(&self, py: Python<'_>, data: AnyRecordBatch, batch_size: usize) -> PyResult<Plugin> {
        let reader = data.into_reader()?;
        let state = py
            .detach(|| self.fit_reader(reader, batch_size.max(1)))
            .map_err(kiln_err)?;
        Ok(Plugin {
            plugin: self.plugin.clone(),
            wasm: self.wasm.clone(),
            params: self.params.clone(),
            state: Some(state),
            masking: self.masking.clone(),
            label: self.label.clone(),
        })
    }

    /// Apply the plugin to `data` and return a `pyarrow.Table`, one plugin
    /// call (in a fresh instance) per input batch.
    fn transform<'py>(&self, py: Python<'py>, data: AnyRecordBatch) -> PyResult<Bound<'py, PyAny>> {
        let reader = data.into_reader()?;
        let (batches, schema) = py
            .detach(|| self.transform_reader(reader))
            .map_err(kiln_err)?;
        PyTable::try_new(batches, schema)?.into_pyarrow(py)
    }

    /// The schema `transform` returns for input of `schema` (anything with
    /// `__arrow_c_schema__`, such as a `pyarrow.Schema`), as a
    /// `pyarrow.Schema`, without running on any rows. PySpark's
    /// `mapInArrow` needs it up front.
    fn output_schema<'py>(&self, py: Python<'py>, schema: PySchema) -> PyResult<Bound<'py, PyAny>> {
        let input = plain_schema(&schema.into_inner());
        let out = py
            .detach(|| -> Result<SchemaRef, kiln_runtime::Error> {
                let mut t = self.plugin.transformer(&self.params, self.state.as_ref())?;
                let out = t.output_schema(&input)?;
                if self.masking.is_empty() {
                    Ok(out)
                } else {
                    self.masking
                        .schema(&out)
                        .map_err(|e| kiln_runtime::Error::Internal(e.to_string()))
                }
            })
            .map_err(kiln_err)?;
        PySchema::new(out).into_pyarrow(py)
    }

    /// Pickling, for PySpark and Ray workers: the component bytes,
    /// parameters, state, column masks and the version id they must give
    /// back (checked when unpickled).
    fn __reduce__<'py>(
        &self,
        py: Python<'py>,
    ) -> PyResult<(Bound<'py, PyAny>, Bound<'py, PyTuple>)> {
        let restore = py.import("kiln._kiln")?.getattr("_restore")?;
        let masks = if self.masking.is_empty() {
            None
        } else {
            Some(serde_json::to_string(self.masking.policies()).map_err(kiln_err)?)
        };
        let args = (
            PyBytes::new(py, &self.wasm),
            self.params.as_str(),
            self.state.as_ref().map(|s| PyBytes::new(py, s.as_bytes())),
            masks,
            PyBytes::new(py, self.masking.salt()),
            self.label.as_str(),
            self.version_id(),
        )
            .into_pyobject(py)?;
        Ok((restore, args))
    }

    /// The plugin id (sha256 of the component bytes).
    #[getter]
    fn id(&self) -> String {
        self.plugin.id().to_owned()
    }

    /// The version id of (plugin, parameters, state), as the store and
    /// lineage name it.
    #[getter]
    fn version_id(&self) -> String {
        kiln_runtime::version_id(
            self.plugin.id(),
            &self.params,
            self.state.as_ref().map(State::id).as_deref(),
        )
    }

    /// The fitted state's bytes, or None.
    #[getter]
    fn state<'py>(&self, py: Python<'py>) -> Option<Bound<'py, PyBytes>> {
        self.state.as_ref().map(|s| PyBytes::new(py, s.as_bytes()))
    }

    /// The canonical parameters, as JSON.
    #[getter]
    fn params(&self) -> String {
        self.params.as_str().to_owned()
    }

    fn __repr__(&self) -> String {
        format!(
            "kiln.Plugin({}, version {})",
            self.label,
            &self.version_id()[..12]
        )
    }
}

/// `load(spec, store=".kiln", user=None)`: the version `spec` (`NAME@TAG`
/// or a version id) from a Kiln store, as `kiln run SPEC` loads it: the
/// principal (`user`, else `KILN_USER`) needs `run` on the name, and the
/// column masks it gets are applied to `transform`'s output.
#[pyfunction]
#[pyo3(signature = (spec, store=".kiln".into(), user=None))]
fn load(py: Python<'_>, spec: &str, store: PathBuf, user: Option<String>) -> PyResult<Plugin> {
    let engine = engine()?;
    py.detach(|| -> Result<Plugin, String> {
        let mut s = Store::open(&store, &Default::default(), &mut |_| {}).map_err(|e| e.to_string())?;
        if let Some(u) = user {
            s = s.with_actor(u);
        }
        let registry = Registry::new(engine, s);
        let version = match registry.store().resolve_any(spec).map_err(|e| e.to_string())? {
            Resolved::Version(v) => v,
            Resolved::Pipeline(_) => {
                return Err(format!(
                    "{spec} is a pipeline; kiln.load applies one transform version: load each step's NAME@TAG"
                ))
            }
        };
        let masking = registry
            .store()
            .authorize_spec(spec, &version.id, Permission::Run)
            .map_err(|e| e.to_string())?;
        // The plugin's bytes too, so the result pickles.
        let (wasm, plugin, params, state) = registry
            .load_version_with_bytes(&version)
            .map_err(|e| e.to_string())?;
        let loaded = kiln_runtime::version_id(plugin.id(), &params, state.as_ref().map(State::id).as_deref());
        if loaded != version.id {
            return Err(format!(
                "{spec}: the store's version {} loaded as {loaded}; run `kiln store check`",
                version.id
            ));
        }
        Ok(Plugin {
            plugin,
            wasm,
            params,
            state,
            masking,
            label: spec.to_owned(),
        })
    })
    .map_err(KilnError::new_err)
}

/// Unpickles a [`Plugin`] (see `Plugin.__reduce__`): compiles the bytes
/// (once per process; the engine caches by plugin id) and refuses them if
/// they do not give back the pickled version id.
#[pyfunction]
#[allow(clippy::too_many_arguments)]
fn _restore(
    py: Python<'_>,
    wasm: Vec<u8>,
    params: &str,
    state: Option<Vec<u8>>,
    masks: Option<&str>,
    salt: Vec<u8>,
    label: String,
    version_id: &str,
) -> PyResult<Plugin> {
    let engine = engine()?;
    let wasm: Arc<[u8]> = wasm.into();
    let plugin = py
        .detach(|| engine.load_bytes(&wasm, Path::new(&label)))
        .map_err(kiln_err)?;
    let params = Params::from_json(params).map_err(kiln_err)?;
    let masking = match masks {
        None => Masking::default(),
        Some(m) => {
            let policies: BTreeMap<String, ColumnPolicy> =
                serde_json::from_str(m).map_err(kiln_err)?;
            Masking::new(policies, salt.into())
        }
    };
    let p = Plugin {
        plugin,
        wasm,
        params,
        state: state.map(State::from_bytes),
        masking,
        label,
    };
    if p.version_id() != version_id {
        return Err(kiln_err(format!(
            "{}: unpickled as version {}, not {version_id}; the pickle was altered",
            p.label,
            p.version_id()
        )));
    }
    Ok(p)
}

/// The `kiln._kiln` module.
#[pymodule]
fn _kiln(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<Plugin>()?;
    m.add_function(wrap_pyfunction!(load, m)?)?;
    m.add_function(wrap_pyfunction!(_restore, m)?)?;
    m.add("KilnError", m.py().get_type::<KilnError>())?;
    m.add("WIT_VERSION", kiln_runtime::WIT_VERSION)?;
    Ok(())
}
