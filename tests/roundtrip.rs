//! Every supported Arrow type crosses the boundary and comes back equal:
//! the identity plugin over random batches with nulls, slices and empty
//! batches (property test), plus a fixed table at a non-byte-aligned offset.

use std::sync::Arc;

use arrow::array::*;
use arrow::buffer::OffsetBuffer;
use arrow::datatypes::*;
/// `half::f16`, reached through Arrow so the test needs no extra dependency.
type F16 = <Float16Type as ArrowPrimitiveType>::Native;
use kiln_host::Params;
use proptest::prelude::*;

use crate::support::*;

/// Tiny deterministic generator so a proptest seed fully describes a batch.
struct Gen(u64);
impl Gen {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        self.0 >> 11
    }
    fn null(&mut self) -> bool {
        self.next().is_multiple_of(5)
    }
    fn opt<T>(&mut self, v: T) -> Option<T> {
        if self.null() {
            None
        } else {
            Some(v)
        }
    }
}

/// One column of every supported type, `n` rows, nulls throughout.
fn all_types(n: usize, seed: u64) -> RecordBatch {
    let mut g = Gen(seed);
    macro_rules! prim {
        ($arr:ty, $t:ty) => {{
            let v: Vec<Option<$t>> = (0..n)
                .map(|_| {
                    let x = g.next() as $t;
                    g.opt(x)
                })
                .collect();
            Arc::new(<$arr>::from(v)) as ArrayRef
        }};
    }
    let strings: Vec<Option<String>> = (0..n)
        .map(|_| {
            let l = (g.next() % 7) as usize;
            let s: String = (0..l)
                .map(|i| ['a', 'é', 'z', '€', ' '][(i + l) % 5])
                .collect();
            g.opt(s)
        })
        .collect();
    let bools: Vec<Option<bool>> = (0..n)
        .map(|_| {
            let b = g.next().is_multiple_of(2);
            g.opt(b)
        })
        .collect();
    let floats: Vec<Option<f64>> = (0..n)
        .map(|_| {
            let f = (g.next() % 10_000) as f64 / 7.0 - 500.0;
            g.opt(f)
        })
        .collect();
    let f32s: Vec<Option<f32>> = (0..n)
        .map(|_| {
            let f = (g.next() % 1000) as f32 / 3.0;
            g.opt(f)
        })
        .collect();
    let f16s: Vec<Option<F16>> = (0..n)
        .map(|_| {
            let f = F16::from_f32((g.next() % 100) as f32 / 4.0);
            g.opt(f)
        })
        .collect();
    let dates: Vec<Option<i32>> = (0..n)
        .map(|_| {
            let d = (g.next() % 40_000) as i32 - 10_000;
            g.opt(d)
        })
        .collect();
    let ts: Vec<Option<i64>> = (0..n)
        .map(|_| {
            let t = (g.next() % 4_000_000_000) as i64 - 1_000_000_000;
            g.opt(t)
        })
        .collect();
    let decs: Vec<Option<i128>> = (0..n)
        .map(|_| {
            let d = (g.next() as i128) * 1_000_003 - (1i128 << 60);
            g.opt(d)
        })
        .collect();

    let list = {
        let mut b = ListBuilder::new(Int32Builder::new());
        for _ in 0..n {
            if g.null() {
                b.append(false);
                continue;
            }
            for _ in 0..(g.next() % 4) {
                let v = g.next() as i32;
                if g.null() {
                    b.values().append_null()
                } else {
                    b.values().append_value(v)
                }
            }
            b.append(true);
        }
        Arc::new(b.finish()) as ArrayRef
    };
    let embedding = {
        let mut b = FixedSizeListBuilder::new(Float32Builder::new(), 4);
        for _ in 0..n {
            for _ in 0..4 {
                let v = (g.next() % 100) as f32 / 8.0;
                b.values().append_value(v)
            }
            let valid = !g.null();
            b.append(valid);
        }
        Arc::new(b.finish()) as ArrayRef
    };
    let structs = {
        let a: Vec<Option<i32>> = (0..n)
            .map(|_| {
                let v = g.next() as i32;
                g.opt(v)
            })
            .collect();
        let s: Vec<Option<String>> = (0..n)
            .map(|_| {
                let v = format!("s{}", g.next() % 50);
                g.opt(v)
            })
            .collect();
        let validity: Vec<bool> = (0..n).map(|_| !g.null()).collect();
        Arc::new(StructArray::new(
            Fields::from(vec![
                Field::new("a", DataType::Int32, true),
                Field::new("s", DataType::Utf8, true),
            ]),
            vec![
                Arc::new(Int32Array::from(a)) as ArrayRef,
                Arc::new(StringArray::from(s)) as ArrayRef,
            ],
            Some(validity.into()),
        )) as ArrayRef
    };
    let dict: DictionaryArray<Int32Type> = (0..n)
        .map(|_| {
            let v = ["red", "green", "blue"][(g.next() % 3) as usize];
            g.opt(v)
        })
        .collect();
    let large_utf8 = Arc::new(LargeStringArray::from(strings.clone())) as ArrayRef;
    let large_binary = Arc::new(LargeBinaryArray::from_iter(
        strings.iter().map(|s| s.as_ref().map(|s| s.as_bytes())),
    )) as ArrayRef;
    let date64: Vec<Option<i64>> = dates
        .iter()
        .map(|d| d.map(|d| d as i64 * 86_400_000))
        .collect();
    let large_list = {
        let mut b = LargeListBuilder::new(StringBuilder::new());
        for _ in 0..n {
            if g.null() {
                b.append(false);
                continue;
            }
            for _ in 0..(g.next() % 3) {
                b.values().append_value("v")
            }
            b.append(true);
        }
        Arc::new(b.finish()) as ArrayRef
    };
    let binary = Arc::new(BinaryArray::from_iter(
        strings.iter().map(|s| s.as_ref().map(|s| s.as_bytes())),
    )) as ArrayRef;

    let mut cols: Vec<(String, ArrayRef)> = vec![
        (
            "bool".into(),
            Arc::new(BooleanArray::from(bools)) as ArrayRef,
        ),
        ("i8".into(), prim!(Int8Array, i8)),
        ("i16".into(), prim!(Int16Array, i16)),
        ("i32".into(), prim!(Int32Array, i32)),
        ("i64".into(), prim!(Int64Array, i64)),
        ("u8".into(), prim!(UInt8Array, u8)),
        ("u16".into(), prim!(UInt16Array, u16)),
        ("u32".into(), prim!(UInt32Array, u32)),
        ("u64".into(), prim!(UInt64Array, u64)),
        ("f16".into(), Arc::new(Float16Array::from(f16s)) as ArrayRef),
        ("f32".into(), Arc::new(Float32Array::from(f32s)) as ArrayRef),
        (
            "f64".into(),
            Arc::new(Float64Array::from(floats)) as ArrayRef,
        ),
        (
            "utf8".into(),
            Arc::new(StringArray::from(strings.clone())) as ArrayRef,
        ),
        ("large_utf8".into(), large_utf8),
        ("binary".into(), binary),
        (
            "date32".into(),
            Arc::new(Date32Array::from(dates)) as ArrayRef,
        ),
        (
            "date64".into(),
            Arc::new(Date64Array::from(date64)) as ArrayRef,
        ),
        ("large_binary".into(), large_binary),
        ("large_list".into(), large_list),
        (
            "decimal".into(),
            Arc::new(
                Decimal128Array::from(decs)
                    .with_precision_and_scale(38, 4)
                    .unwrap(),
            ) as ArrayRef,
        ),
        ("list".into(), list),
        ("embedding".into(), embedding),
        ("struct".into(), structs),
        ("dict".into(), Arc::new(dict) as ArrayRef),
    ];
    cols.push((
        "ts_s".into(),
        Arc::new(TimestampSecondArray::from(ts.clone())) as ArrayRef,
    ));
    cols.push((
        "ts_ms_utc".into(),
        Arc::new(TimestampMillisecondArray::from(ts.clone()).with_timezone("UTC")) as ArrayRef,
    ));
    cols.push((
        "ts_us_ny".into(),
        Arc::new(TimestampMicrosecondArray::from(ts.clone()).with_timezone("America/New_York"))
            as ArrayRef,
    ));
    cols.push((
        "ts_ns_off".into(),
        Arc::new(TimestampNanosecondArray::from(ts).with_timezone("+05:30")) as ArrayRef,
    ));
    RecordBatch::try_from_iter(cols).unwrap()
}

fn through_identity(batch: &RecordBatch) -> RecordBatch {
    let p = load("identity");
    let mut t = p.transformer(&Params::empty(), None).unwrap();
    t.apply(batch)
        .unwrap_or_else(|e| panic!("identity failed: {e}"))
}

#[test]
fn every_type_round_trips_including_unaligned_slices_and_empty_batches() {
    let batch = all_types(40, 7);
    assert_eq!(through_identity(&batch), batch);
    // Offset 3: validity bitmaps do not start on a byte boundary.
    let sliced = batch.slice(3, 29);
    assert_eq!(through_identity(&sliced), sliced);
    let empty = batch.slice(10, 0);
    let back = through_identity(&empty);
    assert_eq!(back.num_rows(), 0);
    assert_eq!(back.schema(), batch.schema());
}

#[test]
fn list_with_non_zero_first_offset_round_trips() {
    // Offsets that do not start at zero (as in a sliced list written by another producer).
    let values = Int32Array::from(vec![9, 9, 1, 2, 3, 4]);
    let list = ListArray::new(
        Arc::new(Field::new("item", DataType::Int32, true)),
        OffsetBuffer::new(vec![2i32, 3, 6].into()),
        Arc::new(values),
        None,
    );
    let batch = RecordBatch::try_from_iter([("l", Arc::new(list) as ArrayRef)]).unwrap();
    assert_eq!(through_identity(&batch), batch);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]
    #[test]
    fn random_batches_round_trip(rows in 0usize..120, seed in any::<u64>(), start in 0usize..40, len in 0usize..120) {
        let batch = all_types(rows, seed);
        let start = start.min(rows);
        let len = len.min(rows - start);
        let sliced = batch.slice(start, len);
        prop_assert_eq!(through_identity(&sliced), sliced);
    }
}
