//! The host side of the boundary: Arrow <-> the WIT `batch` record.
//!
//! Going in, Arrow buffers are lowered straight from their allocations into
//! guest memory (the canonical ABI copy is the only copy): [`BatchArg`]
//! borrows the buffers instead of owning `Vec`s. Coming out, the lifted
//! `Vec<u8>`s (the only copy out) become Arrow buffers, and everything is
//! validated (type tree, lengths, offsets, buffer sizes, UTF-8, dictionary
//! keys) before any Arrow code reads it.

use std::sync::Arc;

use arrow::array::{
    layout, make_array, Array, ArrayData, ArrayDataBuilder, ArrayRef, BufferSpec, RecordBatch,
    RecordBatchOptions,
};
use arrow::buffer::{BooleanBuffer, Buffer};
use arrow::datatypes::{DataType, Field, Fields, Schema, SchemaRef, TimeUnit};
use wasmtime::component::{ComponentType, Lower};

use crate::bindings::kiln::transform::types as w;

/// Why a batch or schema could not cross the boundary.
#[derive(Debug)]
pub(crate) struct WireError {
    pub(crate) column: Option<String>,
    pub(crate) message: String,
}

impl WireError {
    fn new(column: Option<&str>, message: impl Into<String>) -> Self {
        WireError {
            column: column.map(str::to_owned),
            message: message.into(),
        }
    }
}

/// The `batch` record, borrowing Arrow buffers (lowered without an extra copy).
#[derive(ComponentType, Lower)]
#[component(record)]
pub(crate) struct BatchArg<'a> {
    schema: &'a w::Schema,
    #[component(name = "num-rows")]
    num_rows: u64,
    arrays: Vec<ArrayArg<'a>>,
}

/// The `array` record, borrowing Arrow buffers.
#[derive(ComponentType, Lower)]
#[component(record)]
pub(crate) struct ArrayArg<'a> {
    length: u64,
    offset: u64,
    #[component(name = "null-count")]
    null_count: u64,
    validity: Option<&'a [u8]>,
    buffers: Vec<&'a [u8]>,
}

/// A batch prepared for lowering: the wire schema and, per array node, the
/// Arrow buffers to send (reference-counted, not copied).
pub(crate) struct Prepared {
    schema: w::Schema,
    num_rows: u64,
    nodes: Vec<Node>,
}

struct Node {
    length: u64,
    offset: u64,
    null_count: u64,
    validity: Option<Buffer>,
    buffers: Vec<Buffer>,
}

impl Prepared {
    /// Walk a batch into wire form; `schema` is its wire schema (from
    /// [`export_schema`], computed once per run, not per batch).
    pub(crate) fn new(batch: &RecordBatch, schema: &w::Schema) -> Prepared {
        let mut nodes = Vec::new();
        for c in batch.columns() {
            push_nodes(&c.to_data(), &mut nodes);
        }
        Prepared {
            schema: schema.clone(),
            num_rows: batch.num_rows() as u64,
            nodes,
        }
    }

    /// The borrowed record to lower.
    pub(crate) fn arg(&self) -> BatchArg<'_> {
        BatchArg {
            schema: &self.schema,
            num_rows: self.num_rows,
            arrays: self
                .nodes
                .iter()
                .map(|n| ArrayArg {
                    length: n.length,
                    offset: n.offset,
                    null_count: n.null_count,
                    validity: n.validity.as_ref().map(|b| b.as_slice()),
                    buffers: n.buffers.iter().map(|b| b.as_slice()).collect(),
                })
                .collect(),
        }
    }
}

fn push_nodes(d: &ArrayData, out: &mut Vec<Node>) {
    let validity = d.nulls().map(|n| {
        if n.offset() == d.offset() {
            n.buffer().clone()
        } else {
            // Re-align the bitmap so bit `d.offset() + i` is element i (a
            // bitmap is 1/8 byte per row; values are never copied).
            let off = d.offset();
            BooleanBuffer::collect_bool(off + d.len(), |i| i >= off && n.is_valid(i - off))
                .into_inner()
        }
    });
    out.push(Node {
        length: d.len() as u64,
        offset: d.offset() as u64,
        null_count: d.null_count() as u64,
        validity,
        buffers: d.buffers().to_vec(),
    });
    for c in d.child_data() {
        push_nodes(c, out);
    }
}

/// Convert an Arrow schema to the wire form.
///
/// # Errors
/// A type the contract does not carry, naming the column.
pub(crate) fn export_schema(s: &Schema) -> Result<w::Schema, WireError> {
    let mut fields = Vec::new();
    for f in s.fields() {
        export_field(f, f.name(), &mut fields)?;
    }
    Ok(w::Schema {
        fields,
        metadata: s
            .metadata()
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
    })
}

fn export_field(f: &Field, column: &str, out: &mut Vec<w::Field>) -> Result<(), WireError> {
    let mut children: Vec<Field> = Vec::new();
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
            children.push(c.as_ref().clone());
            w::DataType::List
        }
        DataType::LargeList(c) => {
            children.push(c.as_ref().clone());
            w::DataType::LargeList
        }
        DataType::FixedSizeList(c, n) => {
            children.push(c.as_ref().clone());
            w::DataType::FixedSizeList(u32::try_from(*n).map_err(|_| WireError::new(Some(column), "negative list size"))?)
        }
        DataType::Struct(fs) => {
            children.extend(fs.iter().map(|f| f.as_ref().clone()));
            w::DataType::Struct(fs.len() as u32)
        }
        DataType::Dictionary(k, v) => {
            children.push(Field::new("values", v.as_ref().clone(), true));
            w::DataType::Dictionary(match k.as_ref() {
                DataType::Int8 => w::IndexType::Int8,
                DataType::Int16 => w::IndexType::Int16,
                DataType::Int32 => w::IndexType::Int32,
                DataType::Int64 => w::IndexType::Int64,
                DataType::UInt8 => w::IndexType::Uint8,
                DataType::UInt16 => w::IndexType::Uint16,
                DataType::UInt32 => w::IndexType::Uint32,
                DataType::UInt64 => w::IndexType::Uint64,
                other => {
                    return Err(WireError::new(Some(column), format!("dictionary key type {other} is not an integer")))
                }
            })
        }
        other => {
            return Err(WireError::new(
                Some(column),
                format!("type {other} cannot cross the plugin boundary yet; cast it (e.g. to a supported type) before the transform"),
            ))
        }
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
    for c in &children {
        export_field(c, column, out)?;
    }
    Ok(())
}

/// Convert a wire schema (from a plugin) to Arrow, checking its shape.
pub(crate) fn import_schema(s: w::Schema) -> Result<Schema, WireError> {
    let mut nodes = s.fields.into_iter();
    let mut fields = Vec::new();
    while let Some(node) = nodes.next() {
        let column = node.name.clone();
        fields.push(import_field(node, &mut nodes, &column, 0)?);
    }
    Ok(Schema::new_with_metadata(
        fields,
        s.metadata.into_iter().collect(),
    ))
}

/// Deepest nesting accepted from a plugin (guards the host's stack).
const MAX_DEPTH: usize = 64;

fn import_field(
    node: w::Field,
    rest: &mut impl Iterator<Item = w::Field>,
    column: &str,
    depth: usize,
) -> Result<Field, WireError> {
    if depth > MAX_DEPTH {
        return Err(WireError::new(
            Some(column),
            format!("type nested deeper than {MAX_DEPTH} levels"),
        ));
    }
    let mut child = || -> Result<Field, WireError> {
        let n = rest.next().ok_or_else(|| {
            WireError::new(
                Some(column),
                format!("field '{}' lacks its child field", node.name),
            )
        })?;
        import_field(n, rest, column, depth + 1)
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
        w::DataType::Decimal128(d) => {
            if d.precision == 0 || d.precision > 38 || i16::from(d.scale) > i16::from(d.precision) {
                return Err(WireError::new(
                    Some(column),
                    format!("invalid decimal128({}, {})", d.precision, d.scale),
                ));
            }
            DataType::Decimal128(d.precision, d.scale)
        }
        w::DataType::List => DataType::List(Arc::new(child()?)),
        w::DataType::LargeList => DataType::LargeList(Arc::new(child()?)),
        w::DataType::FixedSizeList(n) => {
            let n = i32::try_from(n)
                .map_err(|_| WireError::new(Some(column), "fixed-size-list size too large"))?;
            DataType::FixedSizeList(Arc::new(child()?), n)
        }
        w::DataType::Struct(n) => {
            let mut fs = Vec::new();
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

/// Convert and fully validate a batch a plugin returned.
///
/// `declared` is the output schema the plugin promised for this input; the
/// batch must match it (names and types, in order), and a field declared
/// non-nullable must hold no nulls.
pub(crate) fn import_batch(
    b: w::Batch,
    declared: &SchemaRef,
    max_rows: u64,
) -> Result<RecordBatch, WireError> {
    if b.num_rows > max_rows {
        return Err(WireError::new(
            None,
            format!("{} rows returned, more than the cap of {max_rows} for this input (see EngineConfig::max_output_ratio)", b.num_rows),
        ));
    }
    let schema = import_schema(b.schema)?;
    check_against(&schema, declared)?;
    let rows = b.num_rows as usize;
    let mut arrays = b.arrays.into_iter();
    let mut columns: Vec<ArrayRef> = Vec::with_capacity(declared.fields().len());
    for f in declared.fields() {
        let column = f.name().as_str();
        let data = import_array(f.data_type(), &mut arrays, column)?;
        if data.len() != rows {
            return Err(WireError::new(
                Some(column),
                format!("array has {} rows but the batch says {rows}", data.len()),
            ));
        }
        if !f.is_nullable() && data.null_count() > 0 {
            return Err(WireError::new(
                Some(column),
                "nulls in a field declared non-nullable",
            ));
        }
        // Validation above is meant to make this infallible; if an Arrow
        // constructor still panics on some input we did not foresee, refuse
        // the batch instead of taking the host down.
        let array = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| make_array(data)))
            .map_err(|_| WireError::new(Some(column), "array rejected by Arrow's constructor"))?;
        columns.push(array);
    }
    if arrays.next().is_some() {
        return Err(WireError::new(
            None,
            "more arrays than the schema has fields",
        ));
    }
    RecordBatch::try_new_with_options(
        declared.clone(),
        columns,
        &RecordBatchOptions::new().with_row_count(Some(rows)),
    )
    .map_err(|e| WireError::new(None, e.to_string()))
}

fn check_against(actual: &Schema, declared: &Schema) -> Result<(), WireError> {
    if actual.fields().len() != declared.fields().len() {
        return Err(WireError::new(
            None,
            format!(
                "{} columns returned but output_schema declared {}",
                actual.fields().len(),
                declared.fields().len()
            ),
        ));
    }
    for (a, d) in actual.fields().iter().zip(declared.fields()) {
        if a.name() != d.name() || a.data_type() != d.data_type() {
            return Err(WireError::new(
                Some(d.name()),
                format!(
                    "returned column '{}' of type {} where output_schema declared '{}' of type {}",
                    a.name(),
                    a.data_type(),
                    d.name(),
                    d.data_type()
                ),
            ));
        }
    }
    Ok(())
}

/// Recursion follows `dt`, whose depth `import_schema` already bounded.
fn import_array(
    dt: &DataType,
    rest: &mut impl Iterator<Item = w::Array>,
    column: &str,
) -> Result<ArrayData, WireError> {
    let err = |m: String| WireError::new(Some(column), m);
    let a = rest
        .next()
        .ok_or_else(|| err("fewer arrays than fields".into()))?;
    let children = match dt {
        DataType::List(f) | DataType::LargeList(f) | DataType::FixedSizeList(f, _) => {
            vec![import_array(f.data_type(), rest, column)?]
        }
        DataType::Struct(fs) => fs
            .iter()
            .map(|f| import_array(f.data_type(), rest, column))
            .collect::<Result<_, _>>()?,
        DataType::Dictionary(_, v) => vec![import_array(v, rest, column)?],
        _ => Vec::new(),
    };
    let len = usize::try_from(a.length).map_err(|_| err("length overflows".into()))?;
    let offset = usize::try_from(a.offset).map_err(|_| err("offset overflows".into()))?;
    if len.checked_add(offset).is_none() {
        return Err(err(format!("offset {offset} + length {len} overflows")));
    }
    // Arrow's own layout table says how many buffers a type has and their
    // element widths; check them here, because Arrow's validation assumes
    // whole elements and would panic on a ragged buffer.
    let specs = layout(dt).buffers;
    if a.buffers.len() != specs.len() {
        return Err(err(format!(
            "{} buffers for type {dt}, expected {}",
            a.buffers.len(),
            specs.len()
        )));
    }
    for (i, (buf, spec)) in a.buffers.iter().zip(&specs).enumerate() {
        if let BufferSpec::FixedWidth { byte_width, .. } = spec {
            if buf.len() % byte_width != 0 {
                return Err(err(format!(
                    "buffer {i} has {} bytes, not a whole number of {byte_width}-byte elements",
                    buf.len()
                )));
            }
        }
    }
    // Producers (the SDK included) slice structs and fixed-size lists by
    // slicing their children, so these arrive with offset 0; a non-zero
    // offset would be applied twice by Arrow's nested slicing.
    if offset != 0 && matches!(dt, DataType::Struct(_) | DataType::FixedSizeList(_, _)) {
        return Err(err(format!(
            "offset {offset} on a {dt} array; slice its children instead"
        )));
    }
    // Arrow's array constructors slice children by the parent's window and
    // panic if a child is short; check that here.
    let need_child = match dt {
        DataType::FixedSizeList(_, n) => {
            (offset + len).checked_mul(usize::try_from(*n).unwrap_or(0))
        }
        DataType::Struct(_) => Some(offset + len),
        _ => None,
    };
    if let Some(need) = need_child {
        match children.iter().find(|c| c.len() < need) {
            Some(c) => {
                return Err(err(format!(
                    "child array has {} rows, needs at least {need}",
                    c.len()
                )))
            }
            None if need == usize::MAX => return Err(err("child window overflows".into())),
            None => {}
        }
    }
    if let Some(v) = &a.validity {
        let need = (offset + len).div_ceil(8);
        if v.len() < need {
            return Err(err(format!(
                "validity bitmap has {} bytes, needs {need}",
                v.len()
            )));
        }
    }
    // `build` runs Arrow's full validation: buffer sizes, offsets (monotonic,
    // in bounds), UTF-8, dictionary keys, child lengths. `align_buffers`
    // copies a buffer only if it is misaligned for its type.
    ArrayDataBuilder::new(dt.clone())
        .len(len)
        .offset(offset)
        .null_bit_buffer(a.validity.map(Buffer::from_vec))
        .buffers(a.buffers.into_iter().map(Buffer::from_vec).collect())
        .child_data(children)
        .align_buffers(true)
        .build()
        .map_err(|e| err(e.to_string()))
}
