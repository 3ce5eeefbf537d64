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
    Ok(out)
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
