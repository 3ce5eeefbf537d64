//! Native test helpers: run a plugin the way the host does, without wasm.
//!
//! Parameters go through JSON, states through their serialized bytes, and
//! every output batch is checked against `output_schema`, so a test that
//! passes here exercises the same contract as the sandboxed run.

use std::sync::Arc;

use arrow_array::{ArrayRef, RecordBatch};
use arrow_schema::{Field, Schema};

use crate::plugin::{decode_state, fit_bytes, parse_params};
use crate::{Error, FittedTransform, Result};

/// A batch from `(name, array)` pairs; fields are nullable.
pub fn batch(columns: Vec<(&str, ArrayRef)>) -> RecordBatch {
    let fields: Vec<Field> = columns
        .iter()
        .map(|(n, a)| Field::new(*n, a.data_type().clone(), true))
        .collect();
    RecordBatch::try_new(
        Arc::new(Schema::new(fields)),
        columns.into_iter().map(|(_, a)| a).collect(),
    )
    .expect("testing::batch: columns must have equal lengths")
}

/// Fit `T` on `batches` (one partial per batch, merged in order, finished)
/// and return the state bytes the host would store.
pub fn fit<T: FittedTransform>(params: &str, batches: &[RecordBatch]) -> Result<Vec<u8>> {
    fit_bytes::<T>(params, batches)
}

/// Configure `T` with `params` and `state` and transform `batch`, checking
/// the output against the declared output schema as the host does.
pub fn apply<T: FittedTransform>(
    params: &str,
    state: Option<&[u8]>,
    batch: &RecordBatch,
) -> Result<RecordBatch> {
    let p: T::Params = parse_params(params)?;
    let state = state.map(decode_state::<T::State>).transpose()?;
    let t = T::new(p, state)?;
    let declared = t.output_schema(batch.schema_ref())?;
    let out = t.transform(batch)?;
    check_schema(&declared, out.schema_ref())?;
    // The guest calls `transform_owned` on a batch only it holds; it must
    // give the same batch as `transform` (a deep copy makes the buffers
    // unshared, so an in-place override really runs in place here).
    let owned = t.transform_owned(deep_copy(batch))?;
    if owned != out {
        return Err(crate::Error::Internal(
            "transform_owned gave another batch than transform".into(),
        ));
    }
    Ok(out)
}

/// A batch with the same values in buffers of its own, each a `Vec<u8>`
/// allocation as the guest's input buffers are.
fn deep_copy(batch: &RecordBatch) -> RecordBatch {
    let arrays = batch
        .columns()
        .iter()
        .map(|c| arrow_array::make_array(copy_data(&c.to_data())))
        .collect();
    RecordBatch::try_new_with_options(
        batch.schema(),
        arrays,
        &arrow_array::RecordBatchOptions::new().with_row_count(Some(batch.num_rows())),
    )
    .expect("a copy of a valid batch is valid")
}

fn copy_data(d: &arrow_data::ArrayData) -> arrow_data::ArrayData {
    let own = |b: &arrow_buffer::Buffer| arrow_buffer::Buffer::from_vec(b.as_slice().to_vec());
    let builder = d
        .clone()
        .into_builder()
        .buffers(d.buffers().iter().map(own).collect())
        .nulls(d.nulls().map(|n| {
            arrow_buffer::NullBuffer::new(arrow_buffer::BooleanBuffer::new(
                own(n.buffer()),
                n.offset(),
                n.len(),
            ))
        }))
        .child_data(d.child_data().iter().map(copy_data).collect());
    builder
        .build()
        .expect("a copy of valid array data is valid")
}

/// Fit on `batches`, then apply to each of them.
pub fn fit_apply<T: FittedTransform>(
    params: &str,
    batches: &[RecordBatch],
) -> Result<Vec<RecordBatch>> {
    let state = fit::<T>(params, batches)?;
    batches
        .iter()
        .map(|b| apply::<T>(params, Some(&state), b))
        .collect()
}

fn check_schema(declared: &Schema, actual: &Schema) -> Result<()> {
    let d: Vec<_> = declared
        .fields()
        .iter()
        .map(|f| (f.name(), f.data_type()))
        .collect();
    let a: Vec<_> = actual
        .fields()
        .iter()
        .map(|f| (f.name(), f.data_type()))
        .collect();
    if d != a {
        return Err(Error::Internal(format!(
            "output schema {a:?} differs from declared output_schema {d:?}"
        )));
    }
    Ok(())
}
