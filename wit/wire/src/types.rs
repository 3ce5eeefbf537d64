//! The records of the contract's `types` interface (`wit/kiln.wit`), as
//! plain Rust.
//!
//! Field and variant order follow the WIT file exactly: with the `wasmtime`
//! feature these types are lowered into and lifted out of a component as
//! they are, so the order is part of the ABI.

#[cfg(feature = "wasmtime")]
use wasmtime::component::{ComponentType, Lift, Lower};

use crate::guest_bytes::GuestBytes;

/// Unit of a timestamp (`time-unit`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "wasmtime", derive(ComponentType, Lift, Lower))]
#[cfg_attr(feature = "wasmtime", component(enum))]
#[repr(u8)]
pub enum TimeUnit {
    /// Seconds.
    #[cfg_attr(feature = "wasmtime", component(name = "second"))]
    Second,
    /// Milliseconds.
    #[cfg_attr(feature = "wasmtime", component(name = "millisecond"))]
    Millisecond,
    /// Microseconds.
    #[cfg_attr(feature = "wasmtime", component(name = "microsecond"))]
    Microsecond,
    /// Nanoseconds.
    #[cfg_attr(feature = "wasmtime", component(name = "nanosecond"))]
    Nanosecond,
}

/// A timestamp type: unit and optional IANA zone name or fixed offset.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "wasmtime", derive(ComponentType, Lift, Lower))]
#[cfg_attr(feature = "wasmtime", component(record))]
pub struct TimestampType {
    /// The unit.
    pub unit: TimeUnit,
    /// The zone, if any.
    pub timezone: Option<String>,
}

/// A 128-bit decimal type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "wasmtime", derive(ComponentType, Lift, Lower))]
#[cfg_attr(feature = "wasmtime", component(record))]
pub struct DecimalType {
    /// Total digits, 1 to 38.
    pub precision: u8,
    /// Digits after the point (negative: powers of ten before it).
    pub scale: i8,
}

/// Integer type of dictionary keys (`index-type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "wasmtime", derive(ComponentType, Lift, Lower))]
#[cfg_attr(feature = "wasmtime", component(enum))]
#[repr(u8)]
#[allow(missing_docs)]
pub enum IndexType {
    #[cfg_attr(feature = "wasmtime", component(name = "int8"))]
    Int8,
    #[cfg_attr(feature = "wasmtime", component(name = "int16"))]
    Int16,
    #[cfg_attr(feature = "wasmtime", component(name = "int32"))]
    Int32,
    #[cfg_attr(feature = "wasmtime", component(name = "int64"))]
    Int64,
    #[cfg_attr(feature = "wasmtime", component(name = "uint8"))]
    Uint8,
    #[cfg_attr(feature = "wasmtime", component(name = "uint16"))]
    Uint16,
    #[cfg_attr(feature = "wasmtime", component(name = "uint32"))]
    Uint32,
    #[cfg_attr(feature = "wasmtime", component(name = "uint64"))]
    Uint64,
}

/// One node of an Arrow data type (`data-type`). Nested types are flattened
/// in depth-first pre-order: a node is followed by its children's fields.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "wasmtime", derive(ComponentType, Lift, Lower))]
#[cfg_attr(feature = "wasmtime", component(variant))]
#[allow(missing_docs)]
pub enum DataType {
    #[cfg_attr(feature = "wasmtime", component(name = "null"))]
    Null,
    #[cfg_attr(feature = "wasmtime", component(name = "boolean"))]
    Boolean,
    #[cfg_attr(feature = "wasmtime", component(name = "int8"))]
    Int8,
    #[cfg_attr(feature = "wasmtime", component(name = "int16"))]
    Int16,
    #[cfg_attr(feature = "wasmtime", component(name = "int32"))]
    Int32,
    #[cfg_attr(feature = "wasmtime", component(name = "int64"))]
    Int64,
    #[cfg_attr(feature = "wasmtime", component(name = "uint8"))]
    Uint8,
    #[cfg_attr(feature = "wasmtime", component(name = "uint16"))]
    Uint16,
    #[cfg_attr(feature = "wasmtime", component(name = "uint32"))]
    Uint32,
    #[cfg_attr(feature = "wasmtime", component(name = "uint64"))]
    Uint64,
    #[cfg_attr(feature = "wasmtime", component(name = "float16"))]
    Float16,
    #[cfg_attr(feature = "wasmtime", component(name = "float32"))]
    Float32,
    #[cfg_attr(feature = "wasmtime", component(name = "float64"))]
    Float64,
    #[cfg_attr(feature = "wasmtime", component(name = "utf8"))]
    Utf8,
    #[cfg_attr(feature = "wasmtime", component(name = "large-utf8"))]
    LargeUtf8,
    #[cfg_attr(feature = "wasmtime", component(name = "binary"))]
    Binary,
    #[cfg_attr(feature = "wasmtime", component(name = "large-binary"))]
    LargeBinary,
    #[cfg_attr(feature = "wasmtime", component(name = "date32"))]
    Date32,
    #[cfg_attr(feature = "wasmtime", component(name = "date64"))]
    Date64,
    #[cfg_attr(feature = "wasmtime", component(name = "timestamp"))]
    Timestamp(TimestampType),
    #[cfg_attr(feature = "wasmtime", component(name = "decimal128"))]
    Decimal128(DecimalType),
    /// One child: the item field.
    #[cfg_attr(feature = "wasmtime", component(name = "list"))]
    List,
    /// One child: the item field.
    #[cfg_attr(feature = "wasmtime", component(name = "large-list"))]
    LargeList,
    /// The list size; one child: the item field.
    #[cfg_attr(feature = "wasmtime", component(name = "fixed-size-list"))]
    FixedSizeList(u32),
    /// The number of child fields that follow.
    #[cfg_attr(feature = "wasmtime", component(name = "struct"))]
    Struct(u32),
    /// The key type; one child whose type is the value type.
    #[cfg_attr(feature = "wasmtime", component(name = "dictionary"))]
    Dictionary(IndexType),
}

/// A field node: name, type, nullability and metadata.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "wasmtime", derive(ComponentType, Lift, Lower))]
#[cfg_attr(feature = "wasmtime", component(record))]
pub struct Field {
    /// Field name.
    pub name: String,
    /// The node's type.
    #[cfg_attr(feature = "wasmtime", component(name = "data-type"))]
    pub data_type: DataType,
    /// Whether it may hold nulls.
    pub nullable: bool,
    /// Field metadata, in key order.
    pub metadata: Vec<(String, String)>,
}

/// A schema: top-level fields with their children, in pre-order.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "wasmtime", derive(ComponentType, Lift, Lower))]
#[cfg_attr(feature = "wasmtime", component(record))]
pub struct Schema {
    /// Every field node, in pre-order.
    pub fields: Vec<Field>,
    /// Schema metadata.
    pub metadata: Vec<(String, String)>,
}

/// One array (or child array) as owned Arrow buffers (`array`).
///
/// `offset` applies to the validity bitmap and to every buffer, as in
/// Arrow's C data interface; `buffers` are the type's layout buffers in
/// Arrow's order, without the validity bitmap.
///
/// `B` is how a buffer is held: `Vec<u8>` on the guest's side and in
/// tests; the host lifts a plugin's output as [`crate::HostBytes`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "wasmtime", derive(ComponentType, Lift, Lower))]
#[cfg_attr(feature = "wasmtime", component(record))]
pub struct Array<B = Vec<u8>> {
    /// Logical length.
    pub length: u64,
    /// Offset into every buffer, in elements.
    pub offset: u64,
    /// Nulls in the window.
    #[cfg_attr(feature = "wasmtime", component(name = "null-count"))]
    pub null_count: u64,
    /// The validity bitmap, if any.
    pub validity: Option<B>,
    /// The layout buffers.
    pub buffers: Vec<B>,
}

/// A record batch as owned buffers (`batch`): one array per field node, in
/// the schema's pre-order; `B` as in [`Array`]. `S` is how the schema is
/// held: a [`Schema`], or as the host lifts a plugin's output, a
/// `HostSchema` that may only say it equals the one expected.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "wasmtime", derive(ComponentType, Lift, Lower))]
#[cfg_attr(feature = "wasmtime", component(record))]
pub struct Batch<B = Vec<u8>, S = Schema> {
    /// The schema.
    pub schema: S,
    /// Row count.
    #[cfg_attr(feature = "wasmtime", component(name = "num-rows"))]
    pub num_rows: u64,
    /// Arrays in pre-order.
    pub arrays: Vec<Array<B>>,
}

/// The `batch` record borrowing its buffers from Arrow allocations, so that
/// lowering it is the only copy ([`crate::Prepared::view`]).
#[derive(Debug)]
#[cfg_attr(feature = "wasmtime", derive(ComponentType, Lower))]
#[cfg_attr(feature = "wasmtime", component(record))]
pub struct BatchView<'a> {
    /// The schema.
    pub schema: &'a Schema,
    /// Row count.
    #[cfg_attr(feature = "wasmtime", component(name = "num-rows"))]
    pub num_rows: u64,
    /// Arrays in pre-order.
    pub arrays: Vec<ArrayView<'a>>,
}

/// The `array` record borrowing its buffers.
#[derive(Debug)]
#[cfg_attr(feature = "wasmtime", derive(ComponentType, Lower))]
#[cfg_attr(feature = "wasmtime", component(record))]
pub struct ArrayView<'a> {
    /// Logical length.
    pub length: u64,
    /// Offset into every buffer, in elements.
    pub offset: u64,
    /// Nulls in the window.
    #[cfg_attr(feature = "wasmtime", component(name = "null-count"))]
    pub null_count: u64,
    /// The validity bitmap, if any.
    pub validity: Option<GuestBytes<'a>>,
    /// The layout buffers.
    pub buffers: Vec<GuestBytes<'a>>,
}

/// Where in the input a plugin found a problem (`input-error`).
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "wasmtime", derive(ComponentType, Lift, Lower))]
#[cfg_attr(feature = "wasmtime", component(record))]
pub struct InputError {
    /// The column, if known.
    pub column: Option<String>,
    /// The row within the batch, if known.
    pub row: Option<u64>,
    /// What is wrong.
    pub message: String,
}

/// An error a plugin reports (the contract's `error` variant).
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "wasmtime", derive(ComponentType, Lift, Lower))]
#[cfg_attr(feature = "wasmtime", component(variant))]
pub enum PluginError {
    /// The parameters do not parse or are out of range.
    #[cfg_attr(feature = "wasmtime", component(name = "invalid-params"))]
    InvalidParams(String),
    /// The input lacks a column, has the wrong type, or holds an unusable value.
    #[cfg_attr(feature = "wasmtime", component(name = "invalid-input"))]
    InvalidInput(InputError),
    /// The fitted state is missing, corrupt or from another plugin.
    #[cfg_attr(feature = "wasmtime", component(name = "invalid-state"))]
    InvalidState(String),
    /// A bug in the plugin.
    #[cfg_attr(feature = "wasmtime", component(name = "internal"))]
    Internal(String),
}
