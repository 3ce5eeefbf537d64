//! The guest side of the boundary: wit-bindgen types <-> Arrow.
//!
//! Incoming buffers are the `Vec<u8>`s the canonical ABI already copied into
//! guest memory; they become Arrow buffers without another copy
//! (`align_buffers` copies only a buffer that is misaligned for its type).

use std::marker::PhantomData;
use std::sync::Arc;

use arrow_array::{make_array, RecordBatch, RecordBatchOptions};
use arrow_buffer::{BooleanBuffer, Buffer};
use arrow_data::{ArrayData, ArrayDataBuilder};
use arrow_schema::{DataType, Field, Fields, Schema, TimeUnit};

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
        Ok(export_schema(&self.0.output_schema(&schema)?))
    }

    fn apply(&self, input: w::Batch) -> Result<w::Batch, w::Error> {
        let batch = import_batch(input)?;
        Ok(export_batch(&self.0.transform(&batch)?))
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

fn bad(msg: String) -> Error {
    Error::Internal(format!("host sent a malformed batch: {msg}"))
}

fn import_schema(s: w::Schema) -> Result<Schema, Error> {
    let mut nodes = s.fields.into_iter();
    let mut fields = Vec::new();
    while let Some(node) = nodes.next() {
        fields.push(import_field(node, &mut nodes)?);
    }
    Ok(Schema::new_with_metadata(
        fields,
        s.metadata.into_iter().collect(),
    ))
}

fn import_field(node: w::Field, rest: &mut impl Iterator<Item = w::Field>) -> Result<Field, Error> {
    let mut child = || {
        let n = rest
            .next()
            .ok_or_else(|| bad(format!("field '{}' lacks its child", node.name)))?;
        import_field(n, rest)
    };
    let dt = match node.data_type {
        w::DataType::Null => DataType::Null,
        w::DataType::Boolean => DataType::Boolean,
        w::DataType::Int8 => DataType::Int8,
        w::DataType::Int16 => DataType::Int16,
        w::DataType::Int32 => DataType::Int32,
        w::DataType::Int64 => DataType::Int64,
        w::DataType::Uint8 => DataType::UInt8,
        w::DataType::Uint16 => DataType::UInt16,
        w::DataType::Uint32 => DataType::UInt32,
        w::DataType::Uint64 => DataType::UInt64,
        w::DataType::Float16 => DataType::Float16,
        w::DataType::Float32 => DataType::Float32,
        w::DataType::Float64 => DataType::Float64,
        w::DataType::Utf8 => DataType::Utf8,
        w::DataType::LargeUtf8 => DataType::LargeUtf8,
        w::DataType::Binary => DataType::Binary,
        w::DataType::LargeBinary => DataType::LargeBinary,
        w::DataType::Date32 => DataType::Date32,
        w::DataType::Date64 => DataType::Date64,
        w::DataType::Timestamp(t) => DataType::Timestamp(
            match t.unit {
                w::TimeUnit::Second => TimeUnit::Second,
                w::TimeUnit::Millisecond => TimeUnit::Millisecond,
                w::TimeUnit::Microsecond => TimeUnit::Microsecond,
                w::TimeUnit::Nanosecond => TimeUnit::Nanosecond,
            },
            t.timezone.map(Into::into),
        ),
        w::DataType::Decimal128(d) => DataType::Decimal128(d.precision, d.scale),
        w::DataType::List => DataType::List(Arc::new(child()?)),
        w::DataType::LargeList => DataType::LargeList(Arc::new(child()?)),
        w::DataType::FixedSizeList(n) => DataType::FixedSizeList(
            Arc::new(child()?),
            i32::try_from(n).map_err(|_| bad(format!("list size {n} too large")))?,
        ),
        w::DataType::Struct(n) => {
            let mut fs = Vec::with_capacity(n as usize);
            for _ in 0..n {
                fs.push(child()?);
            }
            DataType::Struct(Fields::from(fs))
        }
        w::DataType::Dictionary(k) => {
            let key = match k {
                w::IndexType::Int8 => DataType::Int8,
                w::IndexType::Int16 => DataType::Int16,
                w::IndexType::Int32 => DataType::Int32,
                w::IndexType::Int64 => DataType::Int64,
                w::IndexType::Uint8 => DataType::UInt8,
                w::IndexType::Uint16 => DataType::UInt16,
                w::IndexType::Uint32 => DataType::UInt32,
                w::IndexType::Uint64 => DataType::UInt64,
            };
            DataType::Dictionary(Box::new(key), Box::new(child()?.data_type().clone()))
        }
    };
    Ok(Field::new(node.name, dt, node.nullable).with_metadata(node.metadata.into_iter().collect()))
}

fn import_batch(b: w::Batch) -> Result<RecordBatch, Error> {
    let schema = Arc::new(import_schema(b.schema)?);
    let rows = usize::try_from(b.num_rows).map_err(|_| bad("row count".into()))?;
    let mut arrays = b.arrays.into_iter();
    let mut columns = Vec::with_capacity(schema.fields().len());
    for f in schema.fields() {
        let data = import_array(f.data_type(), &mut arrays)?;
        columns.push(make_array(data));
    }
    RecordBatch::try_new_with_options(
        schema,
        columns,
        &RecordBatchOptions::new().with_row_count(Some(rows)),
    )
    .map_err(|e| bad(e.to_string()))
}

fn import_array(
    dt: &DataType,
    rest: &mut impl Iterator<Item = w::Array>,
) -> Result<ArrayData, Error> {
    let a = rest
        .next()
        .ok_or_else(|| bad("fewer arrays than fields".into()))?;
    let children = match dt {
        DataType::List(f) | DataType::LargeList(f) | DataType::FixedSizeList(f, _) => {
            vec![import_array(f.data_type(), rest)?]
        }
        DataType::Struct(fs) => fs
            .iter()
            .map(|f| import_array(f.data_type(), rest))
            .collect::<Result<_, _>>()?,
        DataType::Dictionary(_, v) => vec![import_array(v, rest)?],
        _ => Vec::new(),
    };
    ArrayDataBuilder::new(dt.clone())
        .len(a.length as usize)
        .offset(a.offset as usize)
        .null_bit_buffer(a.validity.map(Buffer::from_vec))
        .buffers(a.buffers.into_iter().map(Buffer::from_vec).collect())
        .child_data(children)
        .align_buffers(true)
        .build()
        .map_err(|e| bad(e.to_string()))
}

fn export_schema(s: &Schema) -> w::Schema {
    let mut fields = Vec::new();
    for f in s.fields() {
        export_field(f, &mut fields);
    }
    w::Schema {
        fields,
        metadata: s
            .metadata()
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
    }
}

fn export_field(f: &Field, out: &mut Vec<w::Field>) {
    let mut children: Vec<&Field> = Vec::new();
    let dict_value;
    let data_type = match f.data_type() {
        DataType::Null => w::DataType::Null,
        DataType::Boolean => w::DataType::Boolean,
        DataType::Int8 => w::DataType::Int8,
        DataType::Int16 => w::DataType::Int16,
        DataType::Int32 => w::DataType::Int32,
        DataType::Int64 => w::DataType::Int64,
        DataType::UInt8 => w::DataType::Uint8,
        DataType::UInt16 => w::DataType::Uint16,
        DataType::UInt32 => w::DataType::Uint32,
        DataType::UInt64 => w::DataType::Uint64,
        DataType::Float16 => w::DataType::Float16,
        DataType::Float32 => w::DataType::Float32,
        DataType::Float64 => w::DataType::Float64,
        DataType::Utf8 => w::DataType::Utf8,
        DataType::LargeUtf8 => w::DataType::LargeUtf8,
        DataType::Binary => w::DataType::Binary,
        DataType::LargeBinary => w::DataType::LargeBinary,
        DataType::Date32 => w::DataType::Date32,
        DataType::Date64 => w::DataType::Date64,
        DataType::Timestamp(u, tz) => w::DataType::Timestamp(w::TimestampType {
            unit: match u {
                TimeUnit::Second => w::TimeUnit::Second,
                TimeUnit::Millisecond => w::TimeUnit::Millisecond,
                TimeUnit::Microsecond => w::TimeUnit::Microsecond,
                TimeUnit::Nanosecond => w::TimeUnit::Nanosecond,
            },
            timezone: tz.as_ref().map(|z| z.to_string()),
        }),
        DataType::Decimal128(p, s) => w::DataType::Decimal128(w::DecimalType {
            precision: *p,
            scale: *s,
        }),
        DataType::List(c) => {
            children.push(c);
            w::DataType::List
        }
        DataType::LargeList(c) => {
            children.push(c);
            w::DataType::LargeList
        }
        DataType::FixedSizeList(c, n) => {
            children.push(c);
            w::DataType::FixedSizeList(*n as u32)
        }
        DataType::Struct(fs) => {
            children.extend(fs.iter().map(|f| f.as_ref()));
            w::DataType::Struct(fs.len() as u32)
        }
        DataType::Dictionary(k, v) => {
            dict_value = Field::new("values", v.as_ref().clone(), true);
            children.push(&dict_value);
            w::DataType::Dictionary(match k.as_ref() {
                DataType::Int8 => w::IndexType::Int8,
                DataType::Int16 => w::IndexType::Int16,
                DataType::Int64 => w::IndexType::Int64,
                DataType::UInt8 => w::IndexType::Uint8,
                DataType::UInt16 => w::IndexType::Uint16,
                DataType::UInt32 => w::IndexType::Uint32,
                DataType::UInt64 => w::IndexType::Uint64,
                _ => w::IndexType::Int32,
            })
        }
        // The host refuses a declared type it cannot carry; mark it as null so
        // its schema check names the column.
        _ => w::DataType::Null,
    };
    out.push(w::Field {
        name: f.name().clone(),
        data_type,
        nullable: f.is_nullable(),
        metadata: f
            .metadata()
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
    });
    for c in children {
        export_field(c, out);
    }
}

fn export_batch(b: &RecordBatch) -> w::Batch {
    let mut arrays = Vec::new();
    for c in b.columns() {
        export_array(&c.to_data(), &mut arrays);
    }
    w::Batch {
        schema: export_schema(b.schema_ref()),
        num_rows: b.num_rows() as u64,
        arrays,
    }
}

fn export_array(d: &ArrayData, out: &mut Vec<w::Array>) {
    let validity = d.nulls().map(|n| {
        if n.offset() == d.offset() {
            n.buffer().as_slice().to_vec()
        } else {
            // Re-align the bitmap so that bit `d.offset() + i` is element i.
            let off = d.offset();
            BooleanBuffer::collect_bool(off + d.len(), |i| i >= off && n.is_valid(i - off))
                .into_inner()
                .as_slice()
                .to_vec()
        }
    });
    out.push(w::Array {
        length: d.len() as u64,
        offset: d.offset() as u64,
        null_count: d.null_count() as u64,
        validity,
        buffers: d.buffers().iter().map(|b| b.as_slice().to_vec()).collect(),
    });
    for c in d.child_data() {
        export_array(c, out);
    }
}
