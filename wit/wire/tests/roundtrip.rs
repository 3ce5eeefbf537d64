//! Arrow -> wire -> Arrow over every type the contract carries, with nulls
//! and sliced arrays, and the malformed inputs the importer must refuse.

use std::sync::Arc;

use arrow_array::builder::{FixedSizeListBuilder, Float32Builder, Int64Builder, ListBuilder};
use arrow_array::types::Int16Type;
use arrow_array::{
    Array, ArrayRef, BooleanArray, Date32Array, Date64Array, Decimal128Array, DictionaryArray,
    Float16Array, Float64Array, Int32Array, Int64Array, LargeStringArray, RecordBatch, StringArray,
    StructArray, TimestampMicrosecondArray, TimestampSecondArray, UInt64Array, UInt8Array,
};
use arrow_schema::{DataType, Field, Schema};
use kiln_wire::{export_schema, import_batch, import_batch_declared, import_host_batch, Prepared};

fn cases() -> Vec<(&'static str, ArrayRef)> {
    let mut list = ListBuilder::new(Int64Builder::new());
    list.append_value([Some(1), None]);
    list.append_null();
    list.append_value([Some(3)]);
    list.append_value([]);
    let mut emb = FixedSizeListBuilder::new(Float32Builder::new(), 2);
    for v in [[1.0, 2.0], [3.0, 4.0], [5.0, 6.0], [7.0, 8.0]] {
        emb.values().append_slice(&v);
        emb.append(true);
    }
    let strukt = StructArray::from(vec![
        (
            Arc::new(Field::new("a", DataType::Int32, true)),
            Arc::new(Int32Array::from(vec![Some(1), None, Some(3), Some(4)])) as ArrayRef,
        ),
        (
            Arc::new(Field::new("b", DataType::Utf8, false)),
            Arc::new(StringArray::from(vec!["w", "x", "y", "z"])) as ArrayRef,
        ),
    ]);
    let dict: DictionaryArray<Int16Type> = vec![Some("a"), None, Some("b"), Some("a")]
        .into_iter()
        .collect();
    vec![
        (
            "bool",
            Arc::new(BooleanArray::from(vec![
                Some(true),
                None,
                Some(false),
                Some(true),
            ])),
        ),
        (
            "i32",
            Arc::new(Int32Array::from(vec![
                Some(1),
                None,
                Some(-3),
                Some(i32::MAX),
            ])),
        ),
        ("u8", Arc::new(UInt8Array::from(vec![0, 1, 2, 255]))),
        (
            "i64",
            Arc::new(Int64Array::from(vec![
                Some(i64::MIN),
                None,
                Some(0),
                Some(7),
            ])),
        ),
        ("u64", Arc::new(UInt64Array::from(vec![0, 1, u64::MAX, 3]))),
        (
            "f16",
            // 1.0, -2.0, 65504 (the largest f16), NaN, by their bits.
            Arc::new(Float16Array::from(
                arrow_data::ArrayData::builder(DataType::Float16)
                    .len(4)
                    .add_buffer(arrow_buffer::Buffer::from_slice_ref([
                        0x3c00u16, 0xc000, 0x7bff, 0x7e00,
                    ]))
                    .build()
                    .unwrap(),
            )),
        ),
        (
            "date64",
            Arc::new(Date64Array::from(vec![
                Some(86_400_000),
                None,
                Some(-1),
                Some(0),
            ])),
        ),
        (
            "ts_s",
            Arc::new(TimestampSecondArray::from(vec![
                Some(1),
                Some(2),
                None,
                Some(-4),
            ])),
        ),
        (
            "f64",
            Arc::new(Float64Array::from(vec![
                Some(0.5),
                None,
                Some(-0.0),
                Some(1e300),
            ])),
        ),
        (
            "utf8",
            Arc::new(StringArray::from(vec![
                Some("é"),
                None,
                Some(""),
                Some("long string"),
            ])),
        ),
        (
            "large_utf8",
            Arc::new(LargeStringArray::from(vec!["a", "bb", "ccc", "dddd"])),
        ),
        (
            "date32",
            Arc::new(Date32Array::from(vec![
                Some(0),
                None,
                Some(-1),
                Some(19000),
            ])),
        ),
        (
            "ts",
            Arc::new(
                TimestampMicrosecondArray::from(vec![Some(1), None, Some(3), Some(4)])
                    .with_timezone("Europe/Paris"),
            ),
        ),
        (
            "dec",
            Arc::new(
                Decimal128Array::from(vec![Some(12345), None, Some(-1), Some(0)])
                    .with_precision_and_scale(10, 2)
                    .unwrap(),
            ),
        ),
        ("list", Arc::new(list.finish())),
        ("embedding", Arc::new(emb.finish())),
        ("struct", Arc::new(strukt)),
        ("dict", Arc::new(dict)),
    ]
}

/// Through the wire and back, by every import: the full one, the one that
/// knows the declared schema's wire form and the guest's (layout checks
/// only); they must agree.
fn roundtrip(batch: &RecordBatch) -> RecordBatch {
    let schema = export_schema(batch.schema_ref()).expect("supported types");
    let wire = Prepared::new(batch, schema.clone()).into_batch();
    let fast = import_batch_declared(wire.clone(), &batch.schema(), &schema).expect("valid batch");
    let guest = import_host_batch(wire.clone()).expect("valid batch");
    let full = import_batch(wire, Some(&batch.schema())).expect("valid batch");
    assert_eq!(fast, full);
    assert_eq!(fast.schema(), full.schema());
    assert_eq!(guest, full);
    assert_eq!(guest.schema(), full.schema());
    full
}

#[test]
fn every_type_round_trips_whole_and_sliced() {
    for (name, array) in cases() {
        let batch = RecordBatch::try_from_iter([(name, array.clone())]).unwrap();
        assert_eq!(roundtrip(&batch), batch, "{name}");
        for (offset, len) in [(1, 2), (3, 1), (0, 0), (2, 2)] {
            let sliced = batch.slice(offset, len);
            let back = roundtrip(&sliced);
            assert_eq!(back, sliced, "{name} sliced at {offset}+{len}");
            assert_eq!(
                back.column(0).to_data(),
                sliced.column(0).to_data(),
                "{name}"
            );
        }
    }
}

/// A sliced primitive column crosses as its window: offset 0, its values'
/// bytes, and a bitmap whose bit `i` is row `i` of the slice.
#[test]
fn a_sliced_primitive_column_crosses_as_its_window() {
    let whole = Int32Array::from(vec![Some(7), None, Some(-1), Some(4), None, Some(9)]);
    let batch = RecordBatch::try_from_iter([("x", Arc::new(whole) as ArrayRef)])
        .unwrap()
        .slice(1, 4);
    let wire = Prepared::new(&batch, export_schema(batch.schema_ref()).unwrap()).into_batch();
    let [a] = &wire.arrays[..] else {
        panic!("one array node, got {}", wire.arrays.len())
    };
    assert_eq!((a.length, a.offset, a.null_count), (4, 0, 2));
    let want: Vec<u8> = [0i32, -1, 4, 0]
        .iter()
        .flat_map(|v| v.to_le_bytes())
        .collect();
    assert_eq!(a.buffers, vec![want]);
    let bits = a.validity.as_ref().expect("a bitmap");
    let valid: Vec<bool> = (0..4).map(|i| bits[i / 8] >> (i % 8) & 1 == 1).collect();
    assert_eq!(valid, [false, true, true, false]);
}

#[test]
fn all_columns_in_one_batch_keep_order_and_metadata() {
    let batch = RecordBatch::try_from_iter(cases()).unwrap();
    let schema = Schema::new_with_metadata(
        batch
            .schema()
            .fields()
            .iter()
            .map(|f| {
                f.as_ref()
                    .clone()
                    .with_metadata([("k".into(), "v".into())].into())
            })
            .collect::<Vec<_>>(),
        [("origin".to_string(), "test".to_string())].into(),
    );
    let batch = batch.with_schema(Arc::new(schema)).unwrap();
    let wire = export_schema(batch.schema_ref()).unwrap();
    assert_eq!(kiln_wire::import_schema(wire).unwrap(), *batch.schema());
    assert_eq!(roundtrip(&batch), batch);
}

#[test]
fn unsupported_types_name_their_column() {
    let s = Schema::new(vec![
        Field::new("ok", DataType::Int8, true),
        Field::new("t", DataType::Time32(arrow_schema::TimeUnit::Second), true),
    ]);
    let e = export_schema(&s).unwrap_err();
    assert_eq!(e.column.as_deref(), Some("t"));
    assert!(e.message.contains("cannot cross"), "{e}");
}

#[test]
fn malformed_batches_are_refused_with_the_column() {
    let batch = RecordBatch::try_from_iter([(
        "s",
        Arc::new(StringArray::from(vec![Some("ab"), None, Some("c")])) as ArrayRef,
    )])
    .unwrap();
    let good = Prepared::new(&batch, export_schema(batch.schema_ref()).unwrap()).into_batch();
    type Mutate = fn(&mut kiln_wire::Batch);
    let cases: Vec<(&str, Mutate, &str)> = vec![
        (
            "ragged offsets",
            |b| b.arrays[0].buffers[0].pop().map(drop).unwrap_or(()),
            "whole number",
        ),
        (
            "missing buffer",
            |b| drop(b.arrays[0].buffers.pop()),
            "buffers",
        ),
        (
            "short validity",
            |b| b.arrays[0].validity = Some(vec![]),
            "bitmap",
        ),
        (
            "bad utf-8",
            |b| b.arrays[0].buffers[1] = vec![b'a', 0xff, 0xfe],
            "utf",
        ),
        (
            "length",
            |b| {
                b.arrays[0].length = 9;
                b.arrays[0].validity = None;
                b.arrays[0].null_count = 0
            },
            "bytes in buffers",
        ),
        ("row count", |b| b.num_rows = 2, "rows"),
        (
            "extra array",
            |b| {
                let a = b.arrays[0].clone();
                b.arrays.push(a)
            },
            "more arrays",
        ),
        ("no array", |b| b.arrays.clear(), "fewer arrays"),
    ];
    // The mutations keep the schema, so the import that knows the declared
    // wire schema skips the schema check and must still refuse the arrays.
    let declared_wire = export_schema(batch.schema_ref()).unwrap();
    for (what, mutate, needle) in cases {
        let mut b = good.clone();
        mutate(&mut b);
        let fast =
            import_batch_declared(b.clone(), &batch.schema(), &declared_wire).expect_err(what);
        // The guest's import trusts the values the host sends (UTF-8 here)
        // but not their layout.
        if what != "bad utf-8" {
            let guest = import_host_batch(b.clone()).expect_err(what);
            assert!(
                guest.to_string().to_lowercase().contains(needle),
                "{what}: {guest}"
            );
        }
        let e = import_batch(b, Some(&batch.schema())).expect_err(what);
        assert!(e.to_string().to_lowercase().contains(needle), "{what}: {e}");
        assert_eq!(fast, e, "{what}");
    }
    let mut wrong = good.clone();
    wrong.schema.fields[0].data_type = kiln_wire::DataType::Int64;
    let fast = import_batch_declared(wrong.clone(), &batch.schema(), &declared_wire).unwrap_err();
    let e = import_batch(wrong, Some(&batch.schema())).unwrap_err();
    assert!(e.message.contains("declared"), "{e}");
    assert_eq!(fast, e);
    let mut renamed = good.clone();
    renamed.schema.fields[0].name = "t".into();
    let e = import_batch_declared(renamed, &batch.schema(), &declared_wire).unwrap_err();
    assert_eq!(e.column.as_deref(), Some("s"));
    assert!(e.message.contains("returned column 't'"), "{e}");
}

#[test]
fn nulls_in_a_non_nullable_field_are_refused() {
    // A primitive column (imported directly) and a string one (through
    // `ArrayData`): each path reports its own null count.
    let cases: [(DataType, ArrayRef); 2] = [
        (
            DataType::Int32,
            Arc::new(Int32Array::from(vec![Some(1), None])),
        ),
        (
            DataType::Utf8,
            Arc::new(StringArray::from(vec![Some("a"), None])),
        ),
    ];
    for (dt, column) in cases {
        let declared = Arc::new(Schema::new(vec![Field::new("x", dt.clone(), false)]));
        let loose = RecordBatch::try_from_iter([("x", column)]).unwrap();
        let mut wire =
            Prepared::new(&loose, export_schema(loose.schema_ref()).unwrap()).into_batch();
        wire.schema.fields[0].nullable = false;
        // The wire schema is exactly the declared one: the import that skips
        // the schema check must still find the nulls.
        let declared_wire = export_schema(&declared).unwrap();
        assert_eq!(wire.schema, declared_wire);
        let fast = import_batch_declared(wire.clone(), &declared, &declared_wire).unwrap_err();
        let e = import_batch(wire, Some(&declared)).unwrap_err();
        assert!(e.message.contains("non-nullable"), "{dt}: {e}");
        assert_eq!(e.column.as_deref(), Some("x"), "{dt}");
        assert_eq!(fast, e, "{dt}");
    }
}

#[test]
fn a_primitive_column_of_the_wrong_length_is_refused() {
    let batch = RecordBatch::try_from_iter([(
        "x",
        Arc::new(Float64Array::from(vec![1.0, 2.0, 3.0])) as ArrayRef,
    )])
    .unwrap();
    let declared_wire = export_schema(batch.schema_ref()).unwrap();
    let mut wire = Prepared::new(&batch, declared_wire.clone()).into_batch();
    wire.num_rows = 2;
    let fast = import_batch_declared(wire.clone(), &batch.schema(), &declared_wire).unwrap_err();
    let e = import_batch(wire.clone(), Some(&batch.schema())).unwrap_err();
    assert!(e.message.contains("3 rows but the batch says 2"), "{e}");
    assert_eq!(e.column.as_deref(), Some("x"));
    assert_eq!(fast, e);
    assert_eq!(import_host_batch(wire).unwrap_err(), e);
}

#[test]
fn nesting_deeper_than_the_limit_is_refused() {
    let mut dt = DataType::Int8;
    for _ in 0..=kiln_wire::MAX_DEPTH + 1 {
        dt = DataType::List(Arc::new(Field::new("item", dt, true)));
    }
    let wire = export_schema(&Schema::new(vec![Field::new("deep", dt, true)])).unwrap();
    let e = kiln_wire::import_schema(wire).unwrap_err();
    assert!(e.message.contains("deeper"), "{e}");
}

#[test]
fn owned_vec_buffers_move_out_without_a_copy_and_shared_ones_are_copied() {
    use arrow_array::Float64Array;
    use arrow_buffer::{Buffer, ScalarBuffer};
    // A column whose values are a Vec<u8> allocation (what kiln-sdk's
    // output helpers build), aligned for f64 as dlmalloc and glibc give it.
    let mut bytes = Vec::<u8>::with_capacity(4 * 8);
    for v in [1.0f64, 2.0, 3.0, 4.0] {
        bytes.extend_from_slice(&v.to_le_bytes());
    }
    let ptr = bytes.as_ptr();
    let values = ScalarBuffer::<f64>::new(Buffer::from_vec(bytes), 0, 4);
    let batch =
        RecordBatch::try_from_iter([("x", Arc::new(Float64Array::new(values, None)) as ArrayRef)])
            .unwrap();
    let schema = export_schema(batch.schema_ref()).unwrap();
    // Shared (`batch` still holds it): copied.
    let copied = Prepared::from_owned(batch.clone(), schema.clone()).into_batch();
    assert_ne!(copied.arrays[0].buffers[0].as_ptr(), ptr);
    assert_eq!(import_batch(copied, Some(&batch.schema())).unwrap(), batch);
    // Unshared: the same allocation moves out.
    let wire = Prepared::from_owned(batch, schema).into_batch();
    assert_eq!(wire.arrays[0].buffers[0].as_ptr(), ptr, "moved, not copied");
    assert_eq!(
        wire.arrays[0].buffers[0],
        [1.0f64, 2.0, 3.0, 4.0]
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect::<Vec<u8>>()
    );
}

/// Fixed-width primitive columns skip `ArrayData` on import; every layout
/// fault must still be refused, where Arrow's own validation (the oracle)
/// refuses it too, with the same error from every import.
#[test]
fn malformed_primitive_arrays_are_refused_as_arrow_would() {
    use arrow_buffer::Buffer;
    use arrow_data::ArrayData;

    let batch = RecordBatch::try_from_iter([(
        "x",
        Arc::new(Float64Array::from(vec![Some(0.5), None, Some(2.0)])) as ArrayRef,
    )])
    .unwrap();
    let schema = export_schema(batch.schema_ref()).unwrap();
    let good = Prepared::new(&batch, schema.clone()).into_batch();
    type Mutate = fn(&mut kiln_wire::Batch);
    let cases: Vec<(&str, Mutate, &str)> = vec![
        (
            "ragged values",
            |b| {
                b.arrays[0].buffers[0].pop();
            },
            "whole number",
        ),
        ("too long", |b| b.arrays[0].length = 4, "needs 4"),
        ("window past the end", |b| b.arrays[0].offset = 1, "needs 4"),
        ("missing values", |b| b.arrays[0].buffers.clear(), "buffers"),
        (
            "extra buffer",
            |b| b.arrays[0].buffers.push(vec![0; 24]),
            "buffers",
        ),
        (
            "short validity",
            |b| {
                b.arrays[0].length = 9;
                b.arrays[0].buffers[0] = vec![0; 72];
            },
            "bitmap",
        ),
        ("no array", |b| b.arrays.clear(), "fewer arrays"),
    ];
    for (what, mutate, needle) in cases {
        let mut b = good.clone();
        mutate(&mut b);
        if let Some(a) = b.arrays.first() {
            let oracle = ArrayData::try_new(
                DataType::Float64,
                a.length as usize,
                a.validity.clone().map(Buffer::from_vec),
                a.offset as usize,
                a.buffers.iter().cloned().map(Buffer::from_vec).collect(),
                vec![],
            );
            assert!(oracle.is_err(), "{what}: Arrow accepts it");
        }
        let fast = import_batch_declared(b.clone(), &batch.schema(), &schema).expect_err(what);
        let guest = import_host_batch(b.clone()).expect_err(what);
        let e = import_batch(b, Some(&batch.schema())).expect_err(what);
        assert!(e.to_string().contains(needle), "{what}: {e}");
        assert_eq!(e.column.as_deref(), Some("x"), "{what}");
        assert_eq!(fast, e, "{what}");
        assert_eq!(guest, e, "{what}");
    }
}

/// A values buffer that is not aligned for its type (possible for bytes
/// from the other side) is copied into an aligned one, not refused, and
/// reads the same values.
#[test]
fn a_misaligned_primitive_buffer_is_realigned() {
    use arrow_buffer::Buffer;

    /// Wire bytes starting one byte into an allocation.
    #[derive(Clone)]
    struct Shifted(Buffer);
    impl AsRef<[u8]> for Shifted {
        fn as_ref(&self) -> &[u8] {
            self.0.as_slice()
        }
    }
    impl From<Shifted> for Buffer {
        fn from(s: Shifted) -> Buffer {
            s.0
        }
    }
    let values = [1.5f64, -2.0, 1e300];
    let mut bytes = vec![0u8];
    bytes.extend(values.iter().flat_map(|v| v.to_le_bytes()));
    let shifted = Shifted(Buffer::from_vec(bytes).slice(1));
    assert_ne!(
        shifted.0.as_ptr().align_offset(8),
        0,
        "the test needs a misaligned buffer"
    );
    let expected = RecordBatch::try_from_iter([(
        "x",
        Arc::new(Float64Array::from(values.to_vec())) as ArrayRef,
    )])
    .unwrap();
    let wire = kiln_wire::Batch {
        schema: export_schema(expected.schema_ref()).unwrap(),
        num_rows: 3,
        arrays: vec![kiln_wire::Array {
            length: 3,
            offset: 0,
            null_count: 0,
            validity: None,
            buffers: vec![shifted],
        }],
    };
    let got = import_batch(wire, Some(&expected.schema())).unwrap();
    assert_eq!(got, expected);
}
