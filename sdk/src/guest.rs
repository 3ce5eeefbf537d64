//! The guest side of the boundary: the wit-bindgen exports over any
//! [`FittedTransform`], with batches and schemas mapped to Arrow by
//! `kiln-wire` (the mapping the host uses too).
//!
//! Incoming buffers are the `Vec<u8>`s the canonical ABI already copied into
//! guest memory; they move into `kiln-wire`'s records and become Arrow
//! buffers without another copy (`align_buffers` copies only a buffer that
//! is misaligned for its type). Outgoing, a buffer that is an unshared
//! `Vec<u8>` (what [`crate::output`] builds, or an input buffer passed
//! through) is handed to wit-bindgen as it is; any other is copied once.

use std::marker::PhantomData;

use arrow_array::RecordBatch;
use arrow_schema::Schema;

use crate::plugin::{decode_state, encode_state, parse_params};
use crate::{Error, FittedTransform, PluginKind};

#[doc(hidden)]
pub mod bindings {
    wit_bindgen::generate!({
        world: "plugin",
        path: "../wit",
        pub_export_macro: true,
        export_macro_name: "__export_kiln_plugin",
        default_bindings_module: "kiln_sdk::__private::bindings",
    });
}

use bindings::exports::kiln::transform::transform as t;
use bindings::kiln::transform::types as w;

/// Implements the generated guest traits for any [`FittedTransform`].
pub struct Adapter<T>(PhantomData<T>);

/// A configured transform, held by the host as a resource.
pub struct Configured<T>(T);

impl<T: FittedTransform> t::Guest for Adapter<T> {
    type Transformer = Configured<T>;

    fn describe() -> t::PluginInfo {
        let info = T::info();
        t::PluginInfo {
            name: info.name,
            version: info.version,
            description: info.description,
            kind: match info.kind {
                PluginKind::Stateless => t::PluginKind::Stateless,
                PluginKind::Fitted => t::PluginKind::Fitted,
                PluginKind::OptionallyFitted => t::PluginKind::OptionallyFitted,
            },
            params_schema: info.params_schema,
            deterministic: info.deterministic,
        }
    }

    fn needs_fit(params: String) -> Result<bool, w::Error> {
        let p: T::Params = parse_params(&params)?;
        Ok(T::needs_fit(&p))
    }

    fn fit_partial(params: String, batch: w::Batch) -> Result<Vec<u8>, w::Error> {
        let p: T::Params = parse_params(&params)?;
        let batch = import_batch(batch)?;
        Ok(encode_state(&T::fit_partial(&p, &batch)?)?)
    }

    fn fit_merge(params: String, states: Vec<Vec<u8>>) -> Result<Vec<u8>, w::Error> {
        let p: T::Params = parse_params(&params)?;
        let mut acc: Option<T::Partial> = None;
        for s in states {
            let part: T::Partial = decode_state(&s)?;
            acc = Some(match acc {
                None => part,
                Some(a) => T::merge(&p, a, part)?,
            });
        }
        let acc = acc.ok_or_else(|| Error::Internal("fit-merge called with no states".into()))?;
        Ok(encode_state(&acc)?)
    }

    fn fit_finish(params: String, state: Vec<u8>) -> Result<Vec<u8>, w::Error> {
        let p: T::Params = parse_params(&params)?;
        let part: T::Partial = decode_state(&state)?;
        Ok(encode_state(&T::finish(&p, part)?)?)
    }

    fn configure(params: String, state: Option<Vec<u8>>) -> Result<t::Transformer, w::Error> {
        // std seeds its `HashMap` keys once per instance, from a host call
        // (`wasi:random/insecure-seed`), on first use. `apply` makes a map
        // for every batch (Arrow's schema metadata), so without this the
        // first one, and that host call, would land on a serving call's
        // path instead of here, where a warm pool prepares the instance.
        // The seed is the sandbox's constant, so every instance of a plugin
        // still sees the same keys in the same order: each map takes the
        // next key, and this takes the first, so a map made in `apply`
        // gets one key later than before this line existed (its iteration
        // order differs from that of the plugin built with an older SDK,
        // which is a different binary; the snoop test pins the new one).
        let _ = std::hash::RandomState::new();
        let p: T::Params = parse_params(&params)?;
        let state = match state {
            Some(bytes) => Some(decode_state::<T::State>(&bytes)?),
            None => None,
        };
        Ok(t::Transformer::new(Configured(T::new(p, state)?)))
    }
}

impl<T: FittedTransform> t::GuestTransformer for Configured<T> {
    fn output_schema(&self, input: w::Schema) -> Result<w::Schema, w::Error> {
        let schema = import_schema(input)?;
        Ok(export_schema(&self.0.output_schema(&schema)?)?)
    }

    fn apply(&self, input: w::Batch) -> Result<w::Batch, w::Error> {
        // The plugin owns the batch: input buffers it passes through or
        // rewrites in place are unshared when it returns, so the export
        // hands them back without a copy.
        let out = export_batch(self.0.transform_owned(import_batch(input)?)?)?;
        // Nothing allocated so far is freed again: post-return leaves the
        // output's buffers as returned, so the host can use them in place.
        #[cfg(kiln_arena)]
        crate::arena::freeze_frees();
        Ok(out)
    }
}

impl From<Error> for w::Error {
    fn from(e: Error) -> Self {
        match e {
            Error::InvalidParams(m) => w::Error::InvalidParams(m),
            Error::InvalidInput {
                column,
                row,
                message,
            } => w::Error::InvalidInput(w::InputError {
                column,
                row,
                message,
            }),
            Error::InvalidState(m) => w::Error::InvalidState(m),
            Error::Internal(m) => w::Error::Internal(m),
        }
    }
}

fn bad(e: kiln_wire::WireError) -> Error {
    Error::Internal(format!("host sent a malformed batch: {e}"))
}

fn import_schema(s: w::Schema) -> Result<Schema, Error> {
    kiln_wire::import_schema(s.into()).map_err(bad)
}

/// A batch from the host: made from valid Arrow arrays there and copied
/// byte for byte, so only its schema and layout are checked here (the host
/// checks everything a plugin returns).
fn import_batch(b: w::Batch) -> Result<RecordBatch, Error> {
    kiln_wire::import_host_batch(b.into()).map_err(bad)
}

/// The plugin declared a type the contract cannot carry: its own bug.
fn export_schema(s: &Schema) -> Result<w::Schema, Error> {
    kiln_wire::export_schema(s)
        .map(Into::into)
        .map_err(|e| Error::Internal(format!("output schema: {e}")))
}

/// Buffers that are unshared `Vec<u8>`s (see [`crate::output`]) move out
/// as they are; the others are copied once.
fn export_batch(b: RecordBatch) -> Result<w::Batch, Error> {
    let schema = kiln_wire::export_schema(b.schema_ref())
        .map_err(|e| Error::Internal(format!("output batch: {e}")))?;
    Ok(kiln_wire::Prepared::from_owned(b, schema)
        .into_batch()
        .into())
}

// wit-bindgen's records and kiln-wire's are the same WIT types; these move
// values between them (buffers are moved, never copied).

/// `From` both ways for enums whose variants have the same names.
macro_rules! mirror_enum {
    ($a:ident, $b:ident; $($unit:ident),*; $($payload:ident),*) => {
        impl From<$a> for $b {
            fn from(x: $a) -> $b {
                match x {
                    $($a::$unit => $b::$unit,)*
                    $($a::$payload(v) => $b::$payload(v.into()),)*
                }
            }
        }
        impl From<$b> for $a {
            fn from(x: $b) -> $a {
                match x {
                    $($b::$unit => $a::$unit,)*
                    $($b::$payload(v) => $a::$payload(v.into()),)*
                }
            }
        }
    };
}

/// `From` both ways for records whose fields have the same names.
macro_rules! mirror_record {
    ($a:ident, $b:ident; $($field:ident),*; $($list:ident),*) => {
        impl From<$a> for $b {
            fn from(x: $a) -> $b {
                $b {
                    $($field: x.$field.into(),)*
                    $($list: x.$list.into_iter().map(Into::into).collect(),)*
                }
            }
        }
        impl From<$b> for $a {
            fn from(x: $b) -> $a {
                $a {
                    $($field: x.$field.into(),)*
                    $($list: x.$list.into_iter().map(Into::into).collect(),)*
                }
            }
        }
    };
}

type WUnit = w::TimeUnit;
type KUnit = kiln_wire::TimeUnit;
type WIndex = w::IndexType;
type KIndex = kiln_wire::IndexType;
type WType = w::DataType;
type KType = kiln_wire::DataType;
type WTimestamp = w::TimestampType;
type KTimestamp = kiln_wire::TimestampType;
type WDecimal = w::DecimalType;
type KDecimal = kiln_wire::DecimalType;
type WField = w::Field;
type KField = kiln_wire::Field;
type WSchema = w::Schema;
type KSchema = kiln_wire::Schema;
type WArray = w::Array;
type KArray = kiln_wire::Array;
type WBatch = w::Batch;
type KBatch = kiln_wire::Batch;

mirror_enum!(WUnit, KUnit; Second, Millisecond, Microsecond, Nanosecond;);
mirror_enum!(WIndex, KIndex; Int8, Int16, Int32, Int64, Uint8, Uint16, Uint32, Uint64;);
mirror_enum!(WType, KType;
    Null, Boolean, Int8, Int16, Int32, Int64, Uint8, Uint16, Uint32, Uint64, Float16, Float32,
    Float64, Utf8, LargeUtf8, Binary, LargeBinary, Date32, Date64, List, LargeList;
    Timestamp, Decimal128, FixedSizeList, Struct, Dictionary);
mirror_record!(WTimestamp, KTimestamp; unit, timezone;);
mirror_record!(WDecimal, KDecimal; precision, scale;);
mirror_record!(WField, KField; name, data_type, nullable, metadata;);
mirror_record!(WSchema, KSchema; metadata; fields);
mirror_record!(WArray, KArray; length, offset, null_count, validity, buffers;);
mirror_record!(WBatch, KBatch; schema, num_rows; arrays);
