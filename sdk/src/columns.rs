//! Typed access to input columns, with errors that name the column.

use std::sync::Arc;

use arrow_array::cast::AsArray;
use arrow_array::types::*;
use arrow_array::{Array, ArrayRef, Float64Array, RecordBatch, StringArray};
use arrow_schema::{DataType, Field, FieldRef, Schema};

use crate::{Error, Result};

/// The column named `name`, or an error listing the columns there are.
pub fn column<'a>(batch: &'a RecordBatch, name: &str) -> Result<&'a ArrayRef> {
    batch
        .column_by_name(name)
        .ok_or_else(|| missing(batch.schema_ref(), name))
}

/// The field named `name` in `schema`, or an error listing the fields there are.
pub fn field<'a>(schema: &'a Schema, name: &str) -> Result<&'a Field> {
    schema
        .field_with_name(name)
        .map_err(|_| missing(schema, name))
}

fn missing(schema: &Schema, name: &str) -> Error {
    let have: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
    Error::column(
        name,
        format!("no such column; the input has: {}", have.join(", ")),
    )
}

/// The `Float64` column named `name`.
pub fn float64<'a>(batch: &'a RecordBatch, name: &str) -> Result<&'a Float64Array> {
    let col = column(batch, name)?;
    col.as_primitive_opt::<Float64Type>()
        .ok_or_else(|| wrong_type(name, "Float64", col.data_type()))
}

/// The `Utf8` column named `name`.
pub fn utf8<'a>(batch: &'a RecordBatch, name: &str) -> Result<&'a StringArray> {
    let col = column(batch, name)?;
    col.as_string_opt::<i32>()
        .ok_or_else(|| wrong_type(name, "Utf8", col.data_type()))
}

/// Whether a type is numeric (integers, floats, decimals are not included).
pub fn is_numeric(t: &DataType) -> bool {
    t.is_integer() || t.is_floating()
}

/// The numeric column named `name` as `Float64` (integers and floats are
/// widened; nulls stay null).
pub fn numeric_as_f64(batch: &RecordBatch, name: &str) -> Result<Float64Array> {
    let col = column(batch, name)?;
    array_as_f64(col.as_ref())
        .ok_or_else(|| wrong_type(name, "a numeric type (integer or float)", col.data_type()))
}

/// An integer or float array widened to `Float64`; `None` for other types.
pub fn array_as_f64(a: &dyn Array) -> Option<Float64Array> {
    macro_rules! widen {
        ($t:ty) => {
            Some(a.as_primitive::<$t>().unary::<_, Float64Type>(|v| v as f64))
        };
    }
    match a.data_type() {
        DataType::Float64 => Some(a.as_primitive::<Float64Type>().clone()),
        DataType::Float32 => widen!(Float32Type),
        DataType::Float16 => Some(
            a.as_primitive::<Float16Type>()
                .unary::<_, Float64Type>(|v| v.to_f64()),
        ),
        DataType::Int8 => widen!(Int8Type),
        DataType::Int16 => widen!(Int16Type),
        DataType::Int32 => widen!(Int32Type),
        DataType::Int64 => widen!(Int64Type),
        DataType::UInt8 => widen!(UInt8Type),
        DataType::UInt16 => widen!(UInt16Type),
        DataType::UInt32 => widen!(UInt32Type),
        DataType::UInt64 => widen!(UInt64Type),
        _ => None,
    }
}

/// An error saying column `name` has type `actual` where `expected` was needed.
pub fn wrong_type(name: &str, expected: &str, actual: &DataType) -> Error {
    Error::column(
        name,
        format!("expected {expected}, found {actual}; cast the column or choose another"),
    )
}

/// Replace column `name` with `array` (its field takes the array's type and
/// becomes nullable if the array has nulls). Other columns pass through.
pub fn replace(batch: &RecordBatch, name: &str, array: ArrayRef) -> Result<RecordBatch> {
    let idx = batch
        .schema_ref()
        .index_of(name)
        .map_err(|_| missing(batch.schema_ref(), name))?;
    let mut columns = batch.columns().to_vec();
    let mut fields: Vec<FieldRef> = batch.schema_ref().fields().to_vec();
    let old = &fields[idx];
    fields[idx] = Arc::new(
        Field::new(
            old.name(),
            array.data_type().clone(),
            old.is_nullable() || array.null_count() > 0,
        )
        .with_metadata(old.metadata().clone()),
    );
    columns[idx] = array;
    Ok(RecordBatch::try_new(
        Arc::new(Schema::new_with_metadata(
            fields,
            batch.schema_ref().metadata().clone(),
        )),
        columns,
    )?)
}

/// Splice columns: column `name` is removed and `new` columns are inserted at
/// its position (use it to replace one column by several, e.g. one-hot).
/// If `keep` is true the original column stays and the new ones follow it.
///
/// The new fields may be [`Field`]s or shared [`FieldRef`]s: a plugin that
/// builds its output fields once, when it is configured, passes clones of
/// them and no field is copied per batch.
pub fn splice<F: Into<FieldRef>>(
    batch: &RecordBatch,
    name: &str,
    new: Vec<(F, ArrayRef)>,
    keep: bool,
) -> Result<RecordBatch> {
    let idx = batch
        .schema_ref()
        .index_of(name)
        .map_err(|_| missing(batch.schema_ref(), name))?;
    // Columns before `name` (and `name` itself if kept), the new ones,
    // then the rest.
    let head = idx + usize::from(keep);
    let mut fields: Vec<FieldRef> = Vec::with_capacity(batch.num_columns() + new.len());
    let mut columns: Vec<ArrayRef> = Vec::with_capacity(batch.num_columns() + new.len());
    fields.extend_from_slice(&batch.schema_ref().fields()[..head]);
    columns.extend_from_slice(&batch.columns()[..head]);
    for (f, c) in new {
        fields.push(f.into());
        columns.push(c);
    }
    fields.extend_from_slice(&batch.schema_ref().fields()[idx + 1..]);
    columns.extend_from_slice(&batch.columns()[idx + 1..]);
    Ok(RecordBatch::try_new(
        Arc::new(Schema::new_with_metadata(
            fields,
            batch.schema_ref().metadata().clone(),
        )),
        columns,
    )?)
}

/// Replace column `name` of a batch the plugin owns by what `f` makes of it.
/// `f` gets the column's only reference (unless the caller shares the
/// batch), so it can rewrite the buffers in place with
/// [`crate::output::unary_mut`]; it returns the new field and array, which
/// take the column's position.
///
/// # Errors
/// A missing column; what `f` returns; an array of another length.
pub fn replace_with(
    batch: RecordBatch,
    name: &str,
    f: impl FnOnce(&Field, ArrayRef) -> Result<(Field, ArrayRef)>,
) -> Result<RecordBatch> {
    let idx = batch
        .schema_ref()
        .index_of(name)
        .map_err(|_| missing(batch.schema_ref(), name))?;
    let (schema, mut columns, rows) = batch.into_parts();
    let placeholder = arrow_array::new_empty_array(&DataType::Null);
    let column = std::mem::replace(&mut columns[idx], placeholder);
    let (field, array) = f(schema.field(idx), column)?;
    columns[idx] = array;
    let mut fields: Vec<FieldRef> = schema.fields().to_vec();
    fields[idx] = Arc::new(field);
    let schema = Arc::new(Schema::new_with_metadata(fields, schema.metadata().clone()));
    Ok(RecordBatch::try_new_with_options(
        schema,
        columns,
        &arrow_array::RecordBatchOptions::new().with_row_count(Some(rows)),
    )?)
}

/// Same as [`splice`] but on a schema, for `output_schema`.
pub fn splice_schema<F: Into<FieldRef>>(
    schema: &Schema,
    name: &str,
    new: Vec<F>,
    keep: bool,
) -> Result<Schema> {
    let idx = schema.index_of(name).map_err(|_| missing(schema, name))?;
    let mut fields: Vec<FieldRef> = Vec::with_capacity(schema.fields().len() + new.len());
    fields.extend_from_slice(&schema.fields()[..idx + usize::from(keep)]);
    fields.extend(new.into_iter().map(Into::into));
    fields.extend_from_slice(&schema.fields()[idx + 1..]);
    Ok(Schema::new_with_metadata(fields, schema.metadata().clone()))
}
