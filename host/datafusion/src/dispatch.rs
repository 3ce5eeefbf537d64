//! One SQL function for every pinned version: [`KilnFunction`], called as
//! `kiln('customers@prod', age, income)`.
//!
//! The first argument is a string literal naming the version (`NAME@TAG`
//! or a version id, as `kiln run` takes it); it is resolved once, while
//! the query is planned, through a resolver (usually the store, with the
//! caller's authorization and column masks), and the call then behaves
//! exactly like a [`KilnUdf`] registered for that version: the remaining
//! arguments are positional, a fresh plugin instance runs per batch, the
//! result is one `Struct`. The versions a query used are kept, so the
//! caller can record them ([`KilnFunction::used`]).

use std::collections::BTreeMap;
use std::hash::{Hash, Hasher};
use std::sync::{Arc, Mutex};

use arrow::datatypes::{DataType, FieldRef};
use datafusion::common::ScalarValue;
use datafusion::error::{DataFusionError, Result as DfResult};
use datafusion::logical_expr::{
    ColumnarValue, ReturnFieldArgs, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature,
    Volatility,
};

use crate::{Error, KilnUdf, Result, Transform};

/// Turns a version spec (`NAME@TAG`, a version id) into a [`Transform`].
pub type Resolver = dyn Fn(&str) -> Result<Transform> + Send + Sync;

/// The generic `kiln(SPEC, args...)` SQL function.
///
/// Clones share what was resolved: keep one to ask [`KilnFunction::used`]
/// after registering another with [`KilnFunction::into_udf`].
///
/// `SPEC` must be a string literal (a version is pinned when the query is
/// planned, never per row); every distinct spec is resolved once per
/// function and its [`KilnUdf`] reused. Errors resolving it (an unknown
/// tag, a denied principal) are planning errors carrying the store's
/// message.
#[derive(Clone)]
pub struct KilnFunction {
    name: String,
    /// Tells two functions bound to different resolvers apart.
    scope: String,
    resolver: Arc<Resolver>,
    signature: Signature,
    resolved: Arc<Mutex<BTreeMap<String, Arc<KilnUdf>>>>,
}

impl std::fmt::Debug for KilnFunction {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KilnFunction")
            .field("name", &self.name)
            .field("scope", &self.scope)
            .finish_non_exhaustive()
    }
}

impl PartialEq for KilnFunction {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name && self.scope == other.scope
    }
}

impl Eq for KilnFunction {}

impl Hash for KilnFunction {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.name.hash(state);
        self.scope.hash(state);
    }
}

impl KilnFunction {
    /// The function `name` (usually `kiln`) resolving specs with
    /// `resolver`; `scope` names what the resolver reads (e.g. the store
    /// path), so functions over different stores are never taken for
    /// one another.
    ///
    /// # Errors
    /// [`Error::Usage`] if `name` is not a lower-case SQL identifier.
    pub fn new(
        name: &str,
        scope: impl Into<String>,
        resolver: impl Fn(&str) -> Result<Transform> + Send + Sync + 'static,
    ) -> Result<KilnFunction> {
        crate::udf::check_identifier("function", name)?;
        Ok(KilnFunction {
            name: name.to_owned(),
            scope: scope.into(),
            resolver: Arc::new(resolver),
            signature: Signature::variadic_any(Volatility::Immutable),
            resolved: Arc::new(Mutex::new(BTreeMap::new())),
        })
    }

    /// Every version resolved so far, by spec (sorted): what a query run
    /// through this function used.
    pub fn used(&self) -> Vec<(String, Transform)> {
        self.resolved
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .map(|(spec, udf)| (spec.clone(), udf.transform().clone()))
            .collect()
    }

    /// The UDF for `spec`, resolving it the first time.
    fn udf(&self, spec: &str) -> DfResult<Arc<KilnUdf>> {
        let mut resolved = self.resolved.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(u) = resolved.get(spec) {
            return Ok(u.clone());
        }
        let transform = (self.resolver)(spec).map_err(into_datafusion)?;
        let udf = Arc::new(KilnUdf::new(&self.name, transform).map_err(into_datafusion)?);
        resolved.insert(spec.to_owned(), udf.clone());
        Ok(udf)
    }

    /// Wrap as a DataFusion [`ScalarUDF`].
    pub fn into_udf(self) -> ScalarUDF {
        ScalarUDF::new_from_impl(self)
    }

    fn usage(&self) -> DataFusionError {
        DataFusionError::Plan(format!(
            "{name}() takes the version as its first argument, a string literal, then the transform's input columns in order: {name}('customers@prod', age, income)",
            name = self.name
        ))
    }

    fn spec_of<'a>(&self, first: Option<&'a ScalarValue>) -> DfResult<&'a str> {
        match first {
            Some(ScalarValue::Utf8(Some(s)))
            | Some(ScalarValue::Utf8View(Some(s)))
            | Some(ScalarValue::LargeUtf8(Some(s))) => Ok(s.as_str()),
            _ => Err(self.usage()),
        }
    }
}

/// A crate error as the DataFusion error a UDF returns (Kiln errors stay
/// typed inside `External`).
fn into_datafusion(e: Error) -> DataFusionError {
    match e {
        Error::Runtime(r) => DataFusionError::External(Box::new(r)),
        Error::Store(s) => DataFusionError::External(Box::new(s)),
        Error::DataFusion(d) => d,
        Error::Usage(u) | Error::Wire(u) => DataFusionError::Plan(u),
    }
}

impl ScalarUDFImpl for KilnFunction {
    fn name(&self) -> &str {
        &self.name
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _arg_types: &[DataType]) -> DfResult<DataType> {
        Err(DataFusionError::Internal(
            "KilnFunction's return type comes from return_field_from_args".into(),
        ))
    }

    fn return_field_from_args(&self, args: ReturnFieldArgs) -> DfResult<FieldRef> {
        let spec = self.spec_of(args.scalar_arguments.first().copied().flatten())?;
        if args.arg_fields.len() < 2 {
            return Err(self.usage());
        }
        let udf = self.udf(spec)?;
        udf.return_field_from_args(ReturnFieldArgs {
            arg_fields: &args.arg_fields[1..],
            scalar_arguments: &args.scalar_arguments[1..],
        })
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> DfResult<ColumnarValue> {
        let spec = match args.args.first() {
            Some(ColumnarValue::Scalar(s)) => self.spec_of(Some(s))?.to_owned(),
            _ => return Err(self.usage()),
        };
        let udf = self.udf(&spec)?;
        udf.invoke_with_args(ScalarFunctionArgs {
            args: args.args[1..].to_vec(),
            arg_fields: args.arg_fields[1..].to_vec(),
            number_rows: args.number_rows,
            return_field: args.return_field,
            config_options: args.config_options,
        })
    }
}
