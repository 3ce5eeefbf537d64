//! Arrow schemas <-> the wire [`Schema`]: the one place the contract's type
//! mapping is written.

use std::sync::Arc;

use arrow_schema::{DataType as ArrowType, Field as ArrowField, Fields, TimeUnit as ArrowUnit};

use crate::types::{DataType, DecimalType, Field, IndexType, Schema, TimeUnit, TimestampType};
use crate::WireError;

/// Deepest type nesting accepted from the other side (guards the stack).
pub const MAX_DEPTH: usize = 64;

/// Convert an Arrow schema to the wire form.
///
/// # Errors
/// A type the contract does not carry (e.g. `Time32`, `Map`, unions),
/// naming the top-level column it is in.
///
/// # Examples
/// ```
/// use arrow_schema::{DataType, Field, Schema};
/// let s = Schema::new(vec![Field::new("x", DataType::Float64, true)]);
/// let w = kiln_wire::export_schema(&s).unwrap();
/// assert_eq!(w.fields[0].data_type, kiln_wire::DataType::Float64);
/// assert_eq!(kiln_wire::import_schema(w).unwrap(), s);
/// ```
pub fn export_schema(s: &arrow_schema::Schema) -> Result<Schema, WireError> {
    let mut fields = Vec::with_capacity(s.fields().len());
    for f in s.fields() {
        export_field(f, f.name(), &mut fields)?;
    }
    Ok(Schema {
        fields,
        metadata: sorted(s.metadata()),
    })
}

fn sorted(m: &std::collections::HashMap<String, String>) -> Vec<(String, String)> {
    if m.is_empty() {
        return Vec::new();
    }
    let mut v: Vec<(String, String)> = m.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
    v.sort();
    v
}

fn export_field(f: &ArrowField, column: &str, out: &mut Vec<Field>) -> Result<(), WireError> {
    let dict_values;
    let mut children: Vec<&ArrowField> = Vec::new();
    let data_type = match f.data_type() {
        ArrowType::Null => DataType::Null,
        ArrowType::Boolean => DataType::Boolean,
        ArrowType::Int8 => DataType::Int8,
        ArrowType::Int16 => DataType::Int16,
        ArrowType::Int32 => DataType::Int32,
        ArrowType::Int64 => DataType::Int64,
        ArrowType::UInt8 => DataType::Uint8,
        ArrowType::UInt16 => DataType::Uint16,
        ArrowType::UInt32 => DataType::Uint32,
        ArrowType::UInt64 => DataType::Uint64,
        ArrowType::Float16 => DataType::Float16,
        ArrowType::Float32 => DataType::Float32,
        ArrowType::Float64 => DataType::Float64,
        ArrowType::Utf8 => DataType::Utf8,
        ArrowType::LargeUtf8 => DataType::LargeUtf8,
        ArrowType::Binary => DataType::Binary,
        ArrowType::LargeBinary => DataType::LargeBinary,
        ArrowType::Date32 => DataType::Date32,
        ArrowType::Date64 => DataType::Date64,
        ArrowType::Timestamp(u, tz) => DataType::Timestamp(TimestampType {
            unit: match u {
                ArrowUnit::Second => TimeUnit::Second,
                ArrowUnit::Millisecond => TimeUnit::Millisecond,
                ArrowUnit::Microsecond => TimeUnit::Microsecond,
                ArrowUnit::Nanosecond => TimeUnit::Nanosecond,
            },
            timezone: tz.as_ref().map(|z| z.to_string()),
        }),
        ArrowType::Decimal128(p, s) => DataType::Decimal128(DecimalType {
            precision: *p,
            scale: *s,
        }),
        ArrowType::List(c) => {
            children.push(c);
            DataType::List
        }
        ArrowType::LargeList(c) => {
            children.push(c);
            DataType::LargeList
        }
        ArrowType::FixedSizeList(c, n) => {
            children.push(c);
            DataType::FixedSizeList(
                u32::try_from(*n).map_err(|_| WireError::new(Some(column), "negative list size"))?,
            )
        }
        ArrowType::Struct(fs) => {
            children.extend(fs.iter().map(|f| f.as_ref()));
            DataType::Struct(fs.len() as u32)
        }
        ArrowType::Dictionary(k, v) => {
            dict_values = ArrowField::new("values", v.as_ref().clone(), true);
            children.push(&dict_values);
            DataType::Dictionary(match k.as_ref() {
                ArrowType::Int8 => IndexType::Int8,
                ArrowType::Int16 => IndexType::Int16,
                ArrowType::Int32 => IndexType::Int32,
                ArrowType::Int64 => IndexType::Int64,
                ArrowType::UInt8 => IndexType::Uint8,
                ArrowType::UInt16 => IndexType::Uint16,
                ArrowType::UInt32 => IndexType::Uint32,
                ArrowType::UInt64 => IndexType::Uint64,
                other => {
                    return Err(WireError::new(
                        Some(column),
                        format!("dictionary key type {other} is not an integer"),
                    ))
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
    out.push(Field {
        name: f.name().clone(),
        data_type,
        nullable: f.is_nullable(),
        metadata: sorted(f.metadata()),
    });
    for c in children {
        export_field(c, column, out)?;
    }
    Ok(())
}

/// Convert a wire schema from the other side of the boundary to Arrow,
/// checking its shape (children present, nesting at most [`MAX_DEPTH`],
/// decimal precision and scale in range).
///
/// # Errors
/// The first malformed node, naming its top-level column.
pub fn import_schema(s: Schema) -> Result<arrow_schema::Schema, WireError> {
    let mut nodes = s.fields.into_iter();
    let mut fields = Vec::new();
    while let Some(node) = nodes.next() {
        let column = node.name.clone();
        fields.push(import_field(node, &mut nodes, &column, 0)?);
    }
    Ok(arrow_schema::Schema::new_with_metadata(
        fields,
        s.metadata.into_iter().collect(),
    ))
}

fn import_field(
    node: Field,
    rest: &mut impl Iterator<Item = Field>,
    column: &str,
    depth: usize,
) -> Result<ArrowField, WireError> {
    if depth > MAX_DEPTH {
        return Err(WireError::new(
            Some(column),
            format!("type nested deeper than {MAX_DEPTH} levels"),
        ));
    }
    let mut child = || -> Result<ArrowField, WireError> {
        let n = rest.next().ok_or_else(|| {
            WireError::new(
                Some(column),
                format!("field '{}' lacks its child field", node.name),
            )
        })?;
        import_field(n, rest, column, depth + 1)
    };
    let dt = match node.data_type {
        DataType::Null => ArrowType::Null,
        DataType::Boolean => ArrowType::Boolean,
        DataType::Int8 => ArrowType::Int8,
        DataType::Int16 => ArrowType::Int16,
        DataType::Int32 => ArrowType::Int32,
        DataType::Int64 => ArrowType::Int64,
        DataType::Uint8 => ArrowType::UInt8,
        DataType::Uint16 => ArrowType::UInt16,
        DataType::Uint32 => ArrowType::UInt32,
        DataType::Uint64 => ArrowType::UInt64,
        DataType::Float16 => ArrowType::Float16,
        DataType::Float32 => ArrowType::Float32,
        DataType::Float64 => ArrowType::Float64,
        DataType::Utf8 => ArrowType::Utf8,
        DataType::LargeUtf8 => ArrowType::LargeUtf8,
        DataType::Binary => ArrowType::Binary,
        DataType::LargeBinary => ArrowType::LargeBinary,
        DataType::Date32 => ArrowType::Date32,
        DataType::Date64 => ArrowType::Date64,
        DataType::Timestamp(t) => ArrowType::Timestamp(
            match t.unit {
                TimeUnit::Second => ArrowUnit::Second,
                TimeUnit::Millisecond => ArrowUnit::Millisecond,
                TimeUnit::Microsecond => ArrowUnit::Microsecond,
                TimeUnit::Nanosecond => ArrowUnit::Nanosecond,
            },
            t.timezone.map(Into::into),
        ),
        DataType::Decimal128(d) => {
            if d.precision == 0 || d.precision > 38 || i16::from(d.scale) > i16::from(d.precision) {
                return Err(WireError::new(
                    Some(column),
                    format!("invalid decimal128({}, {})", d.precision, d.scale),
                ));
            }
            ArrowType::Decimal128(d.precision, d.scale)
        }
        DataType::List => ArrowType::List(Arc::new(child()?)),
        DataType::LargeList => ArrowType::LargeList(Arc::new(child()?)),
        DataType::FixedSizeList(n) => {
            let n = i32::try_from(n)
                .map_err(|_| WireError::new(Some(column), "fixed-size-list size too large"))?;
            ArrowType::FixedSizeList(Arc::new(child()?), n)
        }
        DataType::Struct(n) => {
            let mut fs = Vec::new();
            for _ in 0..n {
                fs.push(child()?);
            }
            ArrowType::Struct(Fields::from(fs))
        }
        DataType::Dictionary(k) => {
            let key = match k {
                IndexType::Int8 => ArrowType::Int8,
                IndexType::Int16 => ArrowType::Int16,
                IndexType::Int32 => ArrowType::Int32,
                IndexType::Int64 => ArrowType::Int64,
                IndexType::Uint8 => ArrowType::UInt8,
                IndexType::Uint16 => ArrowType::UInt16,
                IndexType::Uint32 => ArrowType::UInt32,
                IndexType::Uint64 => ArrowType::UInt64,
            };
            ArrowType::Dictionary(Box::new(key), Box::new(child()?.data_type().clone()))
        }
    };
    Ok(ArrowField::new(node.name, dt, node.nullable)
        .with_metadata(node.metadata.into_iter().collect()))
}
