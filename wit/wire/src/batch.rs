//! Arrow record batches <-> the wire [`Batch`].
//!
//! Outgoing, [`Prepared`] walks a batch into its array nodes holding Arrow's
//! reference-counted buffers (nothing is copied); [`Prepared::view`]
//! borrows them for a lowering that is the only copy, and
//! [`Prepared::into_batch`] turns them into owned `Vec`s where the other
//! side needs ownership: a buffer that is an unshared `Vec<u8>` allocation
//! is handed over as it is, any other is copied once. Incoming, [`import_batch`] turns the lifted `Vec`s
//! into Arrow buffers without a copy after validating everything (type tree,
//! buffer counts and widths, lengths, offsets, bitmaps, UTF-8, dictionary
//! keys) so that no Arrow constructor sees malformed data.

use std::sync::Arc;

use arrow_array::{
    downcast_primitive, make_array, Array as _, ArrayRef, ArrowPrimitiveType, PrimitiveArray,
    RecordBatch,
};
use arrow_buffer::{BooleanBuffer, Buffer, NullBuffer, ScalarBuffer};
use arrow_data::{layout, ArrayData, ArrayDataBuilder, BufferSpec};
use arrow_schema::{DataType as ArrowType, SchemaRef};

use crate::guest_bytes::GuestBytes;
use crate::types::{Array, ArrayView, Batch, BatchView, Schema};
use crate::{import_schema, WireError};

/// A batch walked into wire form: its wire schema and, per array node in
/// pre-order, Arrow's buffers (shared, not copied).
#[derive(Debug)]
pub struct Prepared {
    schema: Schema,
    num_rows: u64,
    nodes: Vec<Node>,
}

#[derive(Debug)]
struct Node {
    length: u64,
    offset: u64,
    null_count: u64,
    validity: Option<Buffer>,
    buffers: Vec<Buffer>,
}

impl Prepared {
    /// Walk `batch` into wire form; `schema` is its wire schema (from
    /// [`crate::export_schema`], computed once per input schema, not per batch).
    pub fn new(batch: &RecordBatch, schema: Schema) -> Prepared {
        let mut nodes = Vec::with_capacity(batch.num_columns());
        for (c, f) in batch.columns().iter().zip(batch.schema_ref().fields()) {
            push_column(c, f.data_type(), &mut nodes);
        }
        Prepared {
            schema,
            num_rows: batch.num_rows() as u64,
            nodes,
        }
    }

    /// The `batch` record borrowing the buffers: lowering it into a guest is
    /// the only copy in.
    pub fn view(&self) -> BatchView<'_> {
        BatchView {
            schema: &self.schema,
            num_rows: self.num_rows,
            arrays: self
                .nodes
                .iter()
                .map(|n| ArrayView {
                    length: n.length,
                    offset: n.offset,
                    null_count: n.null_count,
                    validity: n.validity.as_ref().map(|b| GuestBytes(b.as_slice())),
                    buffers: n.buffers.iter().map(|b| GuestBytes(b.as_slice())).collect(),
                })
                .collect(),
        }
    }

    /// Walk a batch the caller gives up, so that buffers only it held become
    /// unshared and [`Prepared::into_batch`] can hand them over uncopied.
    pub fn from_owned(batch: RecordBatch, schema: Schema) -> Prepared {
        let num_rows = batch.num_rows() as u64;
        let mut nodes = Vec::with_capacity(batch.num_columns());
        for (c, f) in batch.columns().iter().zip(batch.schema_ref().fields()) {
            push_column(c, f.data_type(), &mut nodes);
        }
        // The nodes now hold the only other references to the buffers.
        drop(batch);
        Prepared {
            schema,
            num_rows,
            nodes,
        }
    }

    /// The `batch` record owning its buffers: each buffer that is an
    /// unshared, unsliced `Vec<u8>` allocation moves in as it is; any other
    /// (shared, sliced, or allocated by Arrow with its own alignment) is
    /// copied once.
    pub fn into_batch(self) -> Batch {
        Batch {
            schema: self.schema,
            num_rows: self.num_rows,
            arrays: self
                .nodes
                .into_iter()
                .map(|n| Array {
                    length: n.length,
                    offset: n.offset,
                    null_count: n.null_count,
                    validity: n.validity.map(into_bytes),
                    buffers: n.buffers.into_iter().map(into_bytes).collect(),
                })
                .collect(),
        }
    }
}

/// The buffer's bytes as a `Vec<u8>`: its own allocation when it is one
/// (`Buffer::into_vec` checks layout, offset and sharing), else a copy.
fn into_bytes(b: Buffer) -> Vec<u8> {
    match b.into_vec::<u8>() {
        Ok(v) => v,
        Err(b) => b.as_slice().to_vec(),
    }
}

/// One top-level column's nodes (`dt` is its field's type): a primitive
/// array, most of what crosses the boundary, straight from its buffers;
/// any other, or one whose concrete type is not the primitive array of
/// `dt`, through its `ArrayData`. Building that (a clone of the type, a
/// vector of buffers, the builder) was most of a small batch's walk.
fn push_column(c: &ArrayRef, dt: &ArrowType, out: &mut Vec<Node>) {
    match primitive_node(c.as_ref(), dt) {
        Some(node) => out.push(node),
        None => push_nodes(&c.to_data(), out),
    }
}

/// The node of a primitive array of type `dt`, or `None` if `a` is not one.
fn primitive_node(a: &dyn arrow_array::Array, dt: &ArrowType) -> Option<Node> {
    macro_rules! node {
        ($t:ty) => {
            a.as_any()
                .downcast_ref::<PrimitiveArray<$t>>()
                .map(primitive_node_of)
        };
    }
    downcast_primitive! {
        dt => (node),
        _ => None,
    }
}

/// What [`push_nodes`] makes of a primitive array's `ArrayData`: its values
/// buffer (already cut to the array's window, so offset 0) and its
/// validity bitmap, re-aligned to start at bit 0 if the nulls are sliced.
fn primitive_node_of<T: ArrowPrimitiveType>(a: &PrimitiveArray<T>) -> Node {
    Node {
        length: a.len() as u64,
        offset: 0,
        null_count: a.nulls().map_or(0, NullBuffer::null_count) as u64,
        validity: a.nulls().map(|n| validity_at(n, 0)),
        buffers: vec![a.values().inner().clone()],
    }
}

/// `n` as the validity bitmap of a node at `offset`: bit `offset + i` is
/// element i. The bitmap's own buffer when its bits already sit there,
/// else a re-aligned copy (1/8 byte per row; values are never copied).
fn validity_at(n: &NullBuffer, offset: usize) -> Buffer {
    if n.offset() == offset {
        n.buffer().clone()
    } else {
        BooleanBuffer::collect_bool(offset + n.len(), |i| i >= offset && n.is_valid(i - offset))
            .into_inner()
    }
}

fn push_nodes(d: &ArrayData, out: &mut Vec<Node>) {
    out.push(Node {
        length: d.len() as u64,
        offset: d.offset() as u64,
        null_count: d.null_count() as u64,
        validity: d.nulls().map(|n| validity_at(n, d.offset())),
        buffers: d.buffers().to_vec(),
    });
    for c in d.child_data() {
        push_nodes(c, out);
    }
}

/// A buffer as a lifted batch holds it: `Vec<u8>`, or the host's
/// `HostBytes`; Arrow takes it over without a copy.
pub trait WireBytes: AsRef<[u8]> + Into<Buffer> {}

impl<B: AsRef<[u8]> + Into<Buffer>> WireBytes for B {}

/// Convert and fully validate a batch from the other side of the boundary.
///
/// With `declared`, the batch must match that schema (names and types, in
/// order), a field declared non-nullable must hold no nulls, and the result
/// carries `declared` itself; without it, the batch's own schema is used.
///
/// # Errors
/// The first problem found, naming the column where there is one.
pub fn import_batch<B: WireBytes>(
    b: Batch<B>,
    declared: Option<&SchemaRef>,
) -> Result<RecordBatch, WireError> {
    let schema = import_schema(b.schema)?;
    let schema = match declared {
        Some(d) => {
            check_against(&schema, d)?;
            d.clone()
        }
        None => Arc::new(schema),
    };
    import_columns(schema, b.num_rows, b.arrays, Check::Full)
}

/// [`import_batch`] against a declared schema whose wire form the caller
/// computed once (`declared_wire`, e.g. what the plugin's `output-schema`
/// returned): a batch whose wire schema is exactly `declared_wire` (or, as
/// the host lifts it, is already known to be, see [`DeclaredSchema`])
/// skips converting its schema and comparing it field by field (for a
/// batch of a few rows, a third of the import); any other batch takes
/// [`import_batch`]'s full check and gets its error. The arrays are
/// validated the same way on both paths.
///
/// # Errors
/// As [`import_batch`] with `Some(declared)`.
pub fn import_batch_declared<B: WireBytes, S: DeclaredSchema>(
    b: Batch<B, S>,
    declared: &SchemaRef,
    declared_wire: &Schema,
) -> Result<RecordBatch, WireError> {
    let Batch {
        schema,
        num_rows,
        arrays,
    } = b;
    match schema.unless_declared(declared_wire) {
        None => import_columns(declared.clone(), num_rows, arrays, Check::Full),
        Some(schema) => import_batch(
            Batch {
                schema,
                num_rows,
                arrays,
            },
            Some(declared),
        ),
    }
}

/// The schema of a lifted batch, for [`import_batch_declared`]: a
/// [`Schema`], or the host's `HostSchema`, which may already know that it
/// equals the declared one.
pub trait DeclaredSchema {
    /// `None` if this is `declared_wire`; otherwise the schema itself.
    fn unless_declared(self, declared_wire: &Schema) -> Option<Schema>;
}

impl DeclaredSchema for Schema {
    fn unless_declared(self, declared_wire: &Schema) -> Option<Schema> {
        (self != *declared_wire).then_some(self)
    }
}

/// The arrays of a batch of `schema` (already checked), validated and
/// wrapped as Arrow arrays.
fn import_columns<B: WireBytes>(
    schema: SchemaRef,
    num_rows: u64,
    arrays: Vec<Array<B>>,
    check: Check,
) -> Result<RecordBatch, WireError> {
    let rows = usize::try_from(num_rows)
        .map_err(|_| WireError::new(None, format!("row count {num_rows} overflows")))?;
    let mut arrays = arrays.into_iter();
    let mut columns: Vec<ArrayRef> = Vec::with_capacity(schema.fields().len());
    for f in schema.fields() {
        let column = f.name().as_str();
        let Imported {
            array,
            len,
            null_count,
        } = import_column(f.data_type(), &mut arrays, column, check)?;
        if len != rows {
            return Err(WireError::new(
                Some(column),
                format!("array has {len} rows but the batch says {rows}"),
            ));
        }
        if !f.is_nullable() && null_count > 0 {
            return Err(WireError::new(
                Some(column),
                "nulls in a field declared non-nullable",
            ));
        }
        columns.push(array);
    }
    if arrays.next().is_some() {
        return Err(WireError::new(
            None,
            "more arrays than the schema has fields",
        ));
    }
    // SAFETY: what `RecordBatch::try_new` would check holds: one column per
    // field (the loop above, and no array left over), each `rows` long and
    // without nulls where its field is non-nullable (checked above), each of
    // its field's data type (`import_column` builds it from that type).
    // Checking again would call three `dyn Array` methods per column, and
    // in a plugin each first call of one in a fresh instance is a libcall.
    debug_assert!(columns.iter().zip(schema.fields()).all(|(c, f)| {
        c.data_type() == f.data_type()
            && c.len() == rows
            && (f.is_nullable() || c.null_count() == 0)
    }));
    Ok(unsafe { RecordBatch::new_unchecked(schema, columns, rows) })
}

/// A column [`import_column`] built, with the length and null count it
/// read off the concrete data: asking the `ArrayRef` would be a `dyn`
/// call, and in a plugin the first of each in a fresh instance is a
/// libcall (a lazy function-table initialization).
struct Imported {
    array: ArrayRef,
    len: usize,
    null_count: usize,
}

/// One top-level column: fixed-width primitive arrays (most of what plugins
/// return) are checked and wrapped directly ([`import_primitive`]); any
/// other goes through [`import_array`] and Arrow's `ArrayData` validation.
fn import_column<B: WireBytes>(
    dt: &ArrowType,
    rest: &mut impl Iterator<Item = Array<B>>,
    column: &str,
    check: Check,
) -> Result<Imported, WireError> {
    if builds_primitive(dt) {
        let a = rest
            .next()
            .ok_or_else(|| WireError::new(Some(column), "fewer arrays than fields"))?;
        return import_primitive(dt, a, column);
    }
    let data = import_array(dt, rest, column, check)?;
    let (len, null_count) = (data.len(), data.null_count());
    // Validation above is meant to make this infallible; if an Arrow
    // constructor still panics on some input we did not foresee, refuse
    // the batch instead of taking the process down.
    let array = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| make_array(data)))
        .map_err(|_| WireError::new(Some(column), "array rejected by Arrow's constructor"))?;
    Ok(Imported {
        array,
        len,
        null_count,
    })
}

/// Whether [`import_primitive`] builds `dt`: every primitive type the
/// wire carries (ints, floats, dates, timestamps) but decimals, which keep
/// Arrow's full path; not booleans (bit-packed) or any nested type.
fn builds_primitive(dt: &ArrowType) -> bool {
    macro_rules! yes {
        ($t:ty) => {
            true
        };
    }
    !dt.is_decimal()
        && downcast_primitive! {
            dt => (yes),
            _ => false,
        }
}

/// The primitive array of type `dt` over a checked, aligned values buffer,
/// the window (`offset`, `len`, in elements) and its nulls; `None` if `dt`
/// is not a primitive type. A `match` on the type whose arms call
/// directly: in a plugin, a call through a function pointer is an indirect
/// call, and the first one to each function in a fresh instance is a
/// libcall (wasmtime initialises that function-table entry lazily), on
/// every serving call's path.
fn build_primitive(
    dt: &ArrowType,
    values: Buffer,
    offset: usize,
    len: usize,
    nulls: Option<NullBuffer>,
) -> Option<ArrayRef> {
    macro_rules! build {
        ($t:ty) => {
            Some(Arc::new(
                PrimitiveArray::<$t>::new(ScalarBuffer::new(values, offset, len), nulls)
                    .with_data_type(dt.clone()),
            ) as ArrayRef)
        };
    }
    downcast_primitive! {
        dt => (build),
        _ => None,
    }
}

/// A primitive array, with the checks `ArrayData`'s full validation makes
/// for such a type (any bit pattern is a valid value, so only the layout
/// can be wrong): one values buffer of whole elements covering `offset +
/// length`, a validity bitmap covering as many bits. The values buffer is
/// used in place unless misaligned for the type.
///
/// This skips `ArrayData`: no layout table, builder or second conversion,
/// which is most of what a small array costs to import.
fn import_primitive<B: WireBytes>(
    dt: &ArrowType,
    a: Array<B>,
    column: &str,
) -> Result<Imported, WireError> {
    let err = |m: String| WireError::new(Some(column), m);
    let width = dt
        .primitive_width()
        .ok_or_else(|| err(format!("{dt} has no element width")))?;
    let len = usize::try_from(a.length).map_err(|_| err("length overflows".into()))?;
    let offset = usize::try_from(a.offset).map_err(|_| err("offset overflows".into()))?;
    let Some(end) = len.checked_add(offset) else {
        return Err(err(format!("offset {offset} + length {len} overflows")));
    };
    let [values] = <[B; 1]>::try_from(a.buffers)
        .map_err(|b| err(format!("{} buffers for type {dt}, expected 1", b.len())))?;
    let have = values.as_ref().len();
    if have % width != 0 {
        return Err(err(format!(
            "buffer 0 has {have} bytes, not a whole number of {width}-byte elements"
        )));
    }
    if have / width < end {
        return Err(err(format!(
            "values buffer holds {} elements, needs {end} (offset {offset} + length {len})",
            have / width
        )));
    }
    let nulls = match a.validity {
        Some(v) => {
            let need = end.div_ceil(8);
            let have = v.as_ref().len();
            if have < need {
                return Err(err(format!(
                    "validity bitmap has {have} bytes, needs {need}"
                )));
            }
            Some(NullBuffer::new(BooleanBuffer::new(v.into(), offset, len)))
        }
        None => None,
    }
    .filter(|n| n.null_count() > 0);
    let mut values: Buffer = values.into();
    if values.as_ptr().align_offset(width) != 0 {
        values = Buffer::from_slice_ref(values.as_slice());
    }
    let null_count = nulls.as_ref().map_or(0, NullBuffer::null_count);
    let array = build_primitive(dt, values, offset, len, nulls)
        .ok_or_else(|| err(format!("{dt} is not a primitive type")))?;
    Ok(Imported {
        array,
        len,
        null_count,
    })
}

fn check_against(
    actual: &arrow_schema::Schema,
    declared: &arrow_schema::Schema,
) -> Result<(), WireError> {
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
fn import_array<B: WireBytes>(
    dt: &ArrowType,
    rest: &mut impl Iterator<Item = Array<B>>,
    column: &str,
    check: Check,
) -> Result<ArrayData, WireError> {
    let err = |m: String| WireError::new(Some(column), m);
    let a = rest
        .next()
        .ok_or_else(|| err("fewer arrays than fields".into()))?;
    let children = match dt {
        ArrowType::List(f) | ArrowType::LargeList(f) | ArrowType::FixedSizeList(f, _) => {
            vec![import_array(f.data_type(), rest, column, check)?]
        }
        ArrowType::Struct(fs) => fs
            .iter()
            .map(|f| import_array(f.data_type(), rest, column, check))
            .collect::<Result<_, _>>()?,
        ArrowType::Dictionary(_, v) => vec![import_array(v, rest, column, check)?],
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
            let len = buf.as_ref().len();
            if len % byte_width != 0 {
                return Err(err(format!(
                    "buffer {i} has {len} bytes, not a whole number of {byte_width}-byte elements"
                )));
            }
        }
    }
    // Producers (the SDK included) slice structs and fixed-size lists by
    // slicing their children, so these arrive with offset 0; a non-zero
    // offset would be applied twice by Arrow's nested slicing.
    if offset != 0 && matches!(dt, ArrowType::Struct(_) | ArrowType::FixedSizeList(_, _)) {
        return Err(err(format!(
            "offset {offset} on a {dt} array; slice its children instead"
        )));
    }
    // Arrow's array constructors slice children by the parent's window and
    // panic if a child is short; check that here.
    let need_child = match dt {
        ArrowType::FixedSizeList(_, n) => {
            (offset + len).checked_mul(usize::try_from(*n).unwrap_or(0))
        }
        ArrowType::Struct(_) => Some(offset + len),
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
        let have = v.as_ref().len();
        if have < need {
            return Err(err(format!(
                "validity bitmap has {have} bytes, needs {need}"
            )));
        }
    }
    // With `Check::Full`, `build` runs Arrow's full validation: buffer sizes,
    // offsets (monotonic, in bounds), UTF-8, dictionary keys, child lengths;
    // `Check::Layout` keeps the sizes and lengths only. `align_buffers`
    // copies a buffer only if it is misaligned for its type.
    let builder = ArrayDataBuilder::new(dt.clone())
        .len(len)
        .offset(offset)
        .null_bit_buffer(a.validity.map(Into::into))
        .buffers(a.buffers.into_iter().map(Into::into).collect())
        .child_data(children)
        .align_buffers(true);
    match check {
        Check::Full => builder.build(),
        Check::Layout => {
            // SAFETY: `Check::Layout` is only for batches the host built
            // from valid Arrow arrays (`import_host_batch`), so the values
            // are valid; the layout is still checked right after.
            let data = unsafe { builder.skip_validation(true) }.build();
            data.and_then(|d| d.validate().map(|()| d))
        }
    }
    .map_err(|e| err(e.to_string()))
}

/// How much of an incoming batch [`import_array`] checks.
#[derive(Debug, Clone, Copy)]
enum Check {
    /// Everything, values included: offsets, UTF-8, dictionary keys.
    Full,
    /// The layout only (buffer sizes for the length, child lengths): for
    /// batches the host made from valid Arrow arrays.
    Layout,
}

/// [`import_batch`] for the guest's side: the batch the host sends was
/// walked from valid Arrow arrays ([`Prepared`]) and copied byte for byte
/// into the guest's memory, so its values (offsets, UTF-8, dictionary keys)
/// are not checked again, an O(n) pass over every string a plugin
/// receives; the schema and the layout (buffer counts, widths and sizes,
/// lengths) still are.
///
/// # Errors
/// As [`import_batch`] without a declared schema, for the layout.
pub fn import_host_batch<B: WireBytes>(b: Batch<B>) -> Result<RecordBatch, WireError> {
    let schema = Arc::new(import_schema(b.schema)?);
    import_columns(schema, b.num_rows, b.arrays, Check::Layout)
}
