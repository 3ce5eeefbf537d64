//! A pinned transform as a DataFusion scalar UDF: [`KilnUdf`] and
//! [`register`].

use std::hash::{Hash, Hasher};
use std::sync::{Arc, Mutex};

use arrow::array::{new_empty_array, ArrayRef, RecordBatch, RecordBatchOptions, StructArray};
use arrow::datatypes::{DataType, Field, FieldRef, Schema, SchemaRef};
use datafusion::error::{DataFusionError, Result as DfResult};
use datafusion::execution::context::SessionContext;
use datafusion::logical_expr::{
    ColumnarValue, ReturnFieldArgs, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature,
    Volatility,
};

use crate::error::to_datafusion;
use crate::{Error, Result, Transform};

/// A [`Transform`] as a DataFusion scalar function ([`ScalarUDFImpl`]).
///
/// `SELECT kiln_scaler(age, income) AS z FROM customers` calls the plugin
/// on every batch DataFusion evaluates and returns one `Struct` column with
/// the plugin's output fields; take fields with `z['age']`,
/// `get_field(z, 'age')` or spread them with `unnest(z)`.
///
/// # Arguments are positional, named by the transform
///
/// The plugin receives a batch of the arguments only, as columns named by
/// the transform, not by the SQL text: the i-th argument is the i-th name
/// of the parameters' `columns` list (every Kiln plugin names its input
/// columns there, e.g. `{"columns": ["age", "income"]}`), or of
/// [`KilnUdf::with_arg_names`]. So `kiln_scaler(age, income)`,
/// `kiln_scaler(CAST(a AS DOUBLE), b)` and a column renamed in a subquery
/// all work, and the result does not depend on how the optimizer rewrote
/// the arguments (it drops aliases when it merges projections, so names
/// taken from the SQL would change between planning and execution). The
/// number of arguments must equal the number of names; and an argument
/// that is a column named like one of the transform's columns must be in
/// that column's position (`kiln_scaler(income, age)` is refused instead
/// of scaling income with age's statistics). Only for a plugin whose
/// parameters have no `columns` list, and without `with_arg_names`, are
/// the arguments named after their SQL fields (plain columns then work;
/// give expressions names with `with_arg_names`).
///
/// Every argument is passed as a nullable field, whatever DataFusion
/// infers, so the plugin sees the same input schema while planning and
/// while executing (and the schema a CSV read by `kiln run` has).
///
/// # One fresh instance per batch
///
/// Each invocation (one batch) configures a fresh plugin instance from the
/// parameters and state and calls it once, as [`kiln_runtime::Transformer`]
/// does for `kiln run`: nothing a call leaves in the plugin's memory can
/// reach another batch, and DataFusion may evaluate partitions on many
/// threads at once. The output schema is asked of the plugin once per
/// input schema while planning and cached.
///
/// # Errors
///
/// A plugin error becomes `DataFusionError::External` holding the
/// [`kiln_runtime::Error`] (text as `kiln run` prints it: plugin name,
/// version, id prefix, column, message); [`crate::runtime_error`] gets it
/// back. Row numbers in `invalid input` errors count within the batch the
/// UDF was called on: a scalar UDF is not told where its batch starts.
/// A plugin that returns a different number of rows than it was given
/// (a filter, an explode) cannot be a scalar function and is an error.
///
/// # Identity
///
/// Two `KilnUdf`s are equal when they have the same SQL name, transform
/// version id, argument names and masks: DataFusion may then use either.
/// Volatility is `Immutable` (a pinned version is a pure function of its
/// input: the sandbox gives plugins no clock, randomness or other
/// nondeterminism), so calls on constants are folded while planning.
pub struct KilnUdf {
    name: String,
    transform: Transform,
    arg_names: Option<Vec<String>>,
    masks: String,
    signature: Signature,
    /// What the plugin declared per input schema (a handful at most).
    bound: Mutex<Vec<Bound>>,
}

/// One input schema, the plugin's signature for it, and the struct type
/// the UDF returns (after masks).
#[derive(Clone)]
struct Bound {
    input: SchemaRef,
    signature: kiln_runtime::Signature,
    fields: arrow::datatypes::Fields,
}

impl std::fmt::Debug for KilnUdf {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KilnUdf")
            .field("name", &self.name)
            .field("transform", &self.transform.label())
            .field("version_id", &self.transform.version_id())
            .field("arg_names", &self.arg_names)
            .finish_non_exhaustive()
    }
}

impl PartialEq for KilnUdf {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name
            && self.transform.version_id() == other.transform.version_id()
            && self.arg_names == other.arg_names
            && self.masks == other.masks
    }
}

impl Eq for KilnUdf {}

impl Hash for KilnUdf {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.name.hash(state);
        self.transform.version_id().hash(state);
        self.arg_names.hash(state);
        self.masks.hash(state);
    }
}

impl KilnUdf {
    /// The function `name` applying `transform`; arguments are named by
    /// the parameters' `columns` list when there is one.
    ///
    /// # Errors
    /// [`Error::Usage`] if `name` is not a lower-case SQL identifier
    /// (unquoted SQL names are folded to lower case, so `Kiln_X` could
    /// only be called quoted).
    pub fn new(name: &str, transform: Transform) -> Result<KilnUdf> {
        check_identifier("function", name)?;
        let arg_names = columns_param(transform.params());
        Ok(KilnUdf {
            name: name.to_owned(),
            masks: format!("{:?}", transform.masking()),
            transform,
            arg_names,
            signature: Signature::variadic_any(Volatility::Immutable),
            bound: Mutex::new(Vec::new()),
        })
    }

    /// Name the arguments by position: the i-th SQL argument reaches the
    /// plugin as column `names[i]`.
    pub fn with_arg_names<S: Into<String>>(mut self, names: impl IntoIterator<Item = S>) -> Self {
        self.arg_names = Some(names.into_iter().map(Into::into).collect());
        self.bound = Mutex::new(Vec::new());
        self
    }

    /// The function `name` applying `transform` with exactly these
    /// argument names (as its wire form carries them).
    pub(crate) fn from_wire(
        name: &str,
        transform: Transform,
        arg_names: Option<Vec<String>>,
    ) -> Result<KilnUdf> {
        let mut udf = KilnUdf::new(name, transform)?;
        udf.arg_names = arg_names;
        Ok(udf)
    }

    /// The transform applied.
    pub fn transform(&self) -> &Transform {
        &self.transform
    }

    /// The argument names, if fixed (else taken from the SQL fields).
    pub fn arg_names(&self) -> Option<&[String]> {
        self.arg_names.as_deref()
    }

    /// Wrap as a DataFusion [`ScalarUDF`].
    pub fn into_udf(self) -> ScalarUDF {
        ScalarUDF::new_from_impl(self)
    }

    /// The input batch schema for these argument fields.
    fn input_schema(&self, args: &[FieldRef]) -> DfResult<SchemaRef> {
        let label = self.transform.label();
        let names: Vec<&str> = match &self.arg_names {
            Some(names) => {
                if names.len() != args.len() {
                    return Err(DataFusionError::Plan(format!(
                        "{}() takes {} argument{} ({}), the columns of {label}; got {}",
                        self.name,
                        names.len(),
                        if names.len() == 1 { "" } else { "s" },
                        names.join(", "),
                        args.len()
                    )));
                }
                for (i, a) in args.iter().enumerate() {
                    if let Some(j) = names.iter().position(|n| n == a.name()) {
                        if j != i {
                            return Err(DataFusionError::Plan(format!(
                                "{}(): argument {} is column '{}', which {label} expects as argument {}; pass the columns in the order ({})",
                                self.name,
                                i + 1,
                                a.name(),
                                j + 1,
                                names.join(", ")
                            )));
                        }
                    }
                }
                names.iter().map(String::as_str).collect()
            }
            None => args.iter().map(|f| f.name().as_str()).collect(),
        };
        for (i, n) in names.iter().enumerate() {
            if names[..i].contains(n) {
                return Err(DataFusionError::Plan(format!(
                    "{}(): two arguments are named '{n}'; name them with KilnUdf::with_arg_names",
                    self.name
                )));
            }
        }
        let fields: Vec<Field> = names
            .iter()
            .zip(args)
            .map(|(n, f)| {
                Field::new(*n, f.data_type().clone(), true).with_metadata(f.metadata().clone())
            })
            .collect();
        Ok(Arc::new(Schema::new(fields)))
    }

    /// The plugin's signature for `input` (asked once per input schema).
    fn bind(&self, input: SchemaRef) -> DfResult<Bound> {
        let mut bound = self.bound.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(b) = bound.iter().find(|b| b.input == input) {
            return Ok(b.clone());
        }
        let t = &self.transform;
        let signature = t
            .plugin()
            .signature(t.params(), t.state(), &input)
            .map_err(to_datafusion)?;
        let output = t
            .masking()
            .schema(signature.output())
            .map_err(|e| DataFusionError::External(Box::new(e)))?;
        let b = Bound {
            input,
            signature,
            fields: output.fields().clone(),
        };
        bound.push(b.clone());
        Ok(b)
    }

    /// Apply the transform to one batch in a fresh instance.
    fn apply(&self, b: &Bound, batch: &RecordBatch) -> DfResult<StructArray> {
        let t = &self.transform;
        let plugin = t.plugin();
        let mut ready = plugin.ready(t.params(), t.state()).map_err(to_datafusion)?;
        let out = plugin
            .apply_ready(&mut ready, batch, &b.signature)
            .map_err(to_datafusion)?;
        drop(ready);
        if out.num_rows() != batch.num_rows() {
            return Err(to_datafusion(kiln_runtime::Error::InvalidOutput {
                plugin: plugin.plugin_ref(),
                column: None,
                message: format!(
                    "{} rows returned for {} rows in; a plugin that changes the number of rows cannot be a SQL scalar function (run it with `kiln run`)",
                    out.num_rows(),
                    batch.num_rows()
                ),
            }));
        }
        let out = t
            .masking()
            .apply(&out)
            .map_err(|e| DataFusionError::External(Box::new(e)))?;
        Ok(StructArray::from(out))
    }
}

impl ScalarUDFImpl for KilnUdf {
    fn name(&self) -> &str {
        &self.name
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _arg_types: &[DataType]) -> DfResult<DataType> {
        Err(DataFusionError::Internal(
            "KilnUdf's return type comes from return_field_from_args".into(),
        ))
    }

    fn return_field_from_args(&self, args: ReturnFieldArgs) -> DfResult<FieldRef> {
        let b = self.bind(self.input_schema(args.arg_fields)?)?;
        Ok(Arc::new(Field::new(
            &self.name,
            DataType::Struct(b.fields),
            false,
        )))
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> DfResult<ColumnarValue> {
        let rows = args.number_rows;
        let input = self.input_schema(&args.arg_fields)?;
        let b = self.bind(input)?;
        let expected = args.return_field.data_type();
        let actual = DataType::Struct(b.fields.clone());
        if &actual != expected {
            return Err(DataFusionError::Execution(format!(
                "{}(): the arguments reached {} as [{}], with another output type than when the query was planned (expected {expected}, now {actual}); name the arguments with KilnUdf::with_arg_names",
                self.name,
                self.transform.label(),
                b.input.fields().iter().map(|f| f.name().as_str()).collect::<Vec<_>>().join(", ")
            )));
        }
        if rows == 0 {
            return Ok(ColumnarValue::Array(new_empty_array(expected)));
        }
        let columns = args
            .args
            .iter()
            .map(|a| a.to_array_of_size(rows))
            .collect::<DfResult<Vec<ArrayRef>>>()?;
        let batch = RecordBatch::try_new_with_options(
            b.input.clone(),
            columns,
            &RecordBatchOptions::new().with_row_count(Some(rows)),
        )?;
        let out = self.apply(&b, &batch)?;
        Ok(ColumnarValue::Array(Arc::new(out) as ArrayRef))
    }
}

/// The parameters' `columns` list, when it is a list of names.
fn columns_param(params: &kiln_runtime::Params) -> Option<Vec<String>> {
    let v: serde_json::Value = serde_json::from_str(params.as_str()).ok()?;
    v.get("columns")?
        .as_array()?
        .iter()
        .map(|c| c.as_str().map(str::to_owned))
        .collect()
}

/// A lower-case SQL identifier: what an unquoted name becomes.
pub(crate) fn check_identifier(what: &str, name: &str) -> Result<()> {
    let mut chars = name.chars();
    let ok = chars
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c == '_')
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if ok {
        Ok(())
    } else {
        Err(Error::Usage(format!(
            "'{name}' is not a usable SQL {what} name: use lower-case letters, digits and '_', starting with a letter or '_' (SQL folds unquoted names to lower case), e.g. '{}'",
            suggest(name)
        )))
    }
}

fn suggest(name: &str) -> String {
    let s: String = name
        .chars()
        .map(|c| {
            let c = c.to_ascii_lowercase();
            if c.is_ascii_alphanumeric() {
                c
            } else {
                '_'
            }
        })
        .collect();
    match s.chars().next() {
        Some(c) if c.is_ascii_digit() => format!("_{s}"),
        None => "kiln_transform".into(),
        _ => s,
    }
}

/// Register `transform` on `ctx` as the SQL function `name` (arguments
/// named as [`KilnUdf`] says), and return it.
///
/// # Errors
/// [`Error::Usage`] for a name that is not a lower-case SQL identifier.
///
/// # Examples
/// ```no_run
/// # fn main() -> kiln_datafusion::Result<()> {
/// use kiln_datafusion::{register, Transform};
/// let engine = kiln_runtime::Engine::new()?;
/// let bundle = kiln_store::Bundle::read("scaler.kiln".as_ref())?;
/// let ctx = datafusion::prelude::SessionContext::new();
/// register(&ctx, "kiln_scaler", Transform::from_bundle(&engine, &bundle)?)?;
/// // SELECT kiln_scaler(age, income)['age'] FROM customers
/// # Ok(()) }
/// ```
pub fn register(ctx: &SessionContext, name: &str, transform: Transform) -> Result<ScalarUDF> {
    let udf = KilnUdf::new(name, transform)?.into_udf();
    ctx.register_udf(udf.clone());
    Ok(udf)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers() {
        for ok in ["kiln_scaler", "_x", "a1"] {
            assert!(check_identifier("function", ok).is_ok(), "{ok}");
        }
        for (bad, hint) in [
            ("Kiln", "'kiln'"),
            ("kiln-scaler", "'kiln_scaler'"),
            ("1x", "'_1x'"),
            ("", "'kiln_transform'"),
        ] {
            let e = check_identifier("function", bad).unwrap_err().to_string();
            assert!(e.contains(hint), "{bad}: {e}");
        }
    }

    #[test]
    fn columns_param_reads_the_list_of_names() {
        let p = |s: &str| kiln_runtime::Params::from_json(s).unwrap();
        assert_eq!(
            columns_param(&p(r#"{"columns":["b","a"],"buckets":3}"#)),
            Some(vec!["b".to_owned(), "a".to_owned()])
        );
        assert_eq!(columns_param(&p(r#"{"columns":"a"}"#)), None);
        assert_eq!(columns_param(&p(r#"{"columns":[1]}"#)), None);
        assert_eq!(columns_param(&p("{}")), None);
    }
}
