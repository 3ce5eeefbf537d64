//! The as-of join: for every spine row, the latest feature row of the same
//! entity at or before its time.

use std::collections::HashSet;

use arrow::array::{Array, RecordBatch, UInt64Array};
use arrow::compute::take;
use arrow::datatypes::Schema;

use crate::error::{column, Error, Result};
use crate::keys::{columns, converter, runs, KeyRows};
use crate::time::time_micros;

/// How the as-of join matches.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AsOfOptions {
    /// Only feature rows with `ts >= t - ttl` (inclusive) match; `None`: any age.
    /// Must not be negative (`Some(0)`: only rows at exactly `t`).
    pub ttl_us: Option<i64>,
    /// `false` (default): a feature row at exactly `t` matches (`ts <= t`);
    /// `true`: only strictly earlier rows (`ts < t`).
    pub exclude_exact_matches: bool,
}

/// One side of an as-of join: a batch and the names of its key and time
/// columns.
#[derive(Debug, Clone, Copy)]
pub struct AsOfSide<'a> {
    /// The rows.
    pub batch: &'a RecordBatch,
    /// Entity key columns (one or more; any type arrow-row can order;
    /// the two sides' key types must be equal). A row with a null in any key
    /// column never matches.
    pub keys: &'a [String],
    /// The event time column.
    pub time: &'a str,
}

/// For every spine row, the index of the feature row it joins to (null when
/// none): same entity key; feature `ts <= t` (or `<`, see
/// [`AsOfOptions::exclude_exact_matches`]); `ts >= t - ttl` when a TTL is
/// set; the largest `ts` wins; among rows with that same key and `ts`, the
/// largest value of the `tiebreak` columns (compared in order, each
/// ascending, nulls smallest) wins, and if still tied, the row with the
/// largest index in `features`. Null feature times never match; a null spine
/// time matches nothing.
///
/// `tiebreak` columns are taken from `features` (e.g. a created-at
/// timestamp, then a row sequence number).
///
/// Times of the two sides are compared as microseconds ([`time_micros`]),
/// so the sides may use different units and zones. Keys are equal when
/// arrow-row encodes them equally (for floats: `-0.0 != 0.0`, NaN equals
/// NaN).
///
/// Cost: hashes each feature key once and sorts the feature rows by (key
/// id, time) once (O(n log n)), then per spine row one hash lookup and one
/// binary search.
///
/// # Errors
/// [`Error::MissingColumn`], [`Error::ColumnType`] (time columns not a
/// timestamp/date/Int64; key types that differ between the sides; key or
/// tiebreak types arrow-row cannot order); [`Error::Spec`] for a negative
/// TTL, no key columns, or key lists of different lengths.
///
/// # Examples
/// ```
/// use std::sync::Arc;
/// use arrow::array::{Int64Array, RecordBatch, StringArray};
/// use kiln_temporal::{asof_indices, AsOfOptions, AsOfSide};
///
/// let spine = RecordBatch::try_from_iter([
///     ("user", Arc::new(StringArray::from(vec!["a", "a", "b"])) as _),
///     ("ts", Arc::new(Int64Array::from(vec![15, 30, 15])) as _),
/// ])?;
/// let features = RecordBatch::try_from_iter([
///     ("user", Arc::new(StringArray::from(vec!["a", "a", "b"])) as _),
///     ("ts", Arc::new(Int64Array::from(vec![10, 20, 20])) as _),
/// ])?;
/// let keys = ["user".to_string()];
/// let side = |batch| AsOfSide { batch, keys: &keys, time: "ts" };
/// let idx = asof_indices(side(&spine), side(&features), &[], &AsOfOptions::default())?;
/// assert_eq!(idx.iter().collect::<Vec<_>>(), [Some(0), Some(1), None]);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn asof_indices(
    spine: AsOfSide<'_>,
    features: AsOfSide<'_>,
    tiebreak: &[String],
    opts: &AsOfOptions,
) -> Result<UInt64Array> {
    if let Some(ttl) = opts.ttl_us.filter(|ttl| *ttl < 0) {
        return Err(Error::Spec {
            what: "ttl".to_string(),
            value: format!("{ttl}us"),
            hint: "a TTL is a duration of zero or more (or none, for any age)".to_string(),
        });
    }
    if spine.keys.is_empty() || spine.keys.len() != features.keys.len() {
        return Err(Error::Spec {
            what: "join keys".to_string(),
            value: format!(
                "spine [{}], features [{}]",
                spine.keys.join(", "),
                features.keys.join(", ")
            ),
            hint: "give both sides the same key columns (one or more), in the same order"
                .to_string(),
        });
    }
    let spine_keys = columns(spine.batch, spine.keys, "spine")?;
    let feature_keys = columns(features.batch, features.keys, "features")?;
    for (i, (s, f)) in spine_keys.iter().zip(&feature_keys).enumerate() {
        if s.data_type() != f.data_type() {
            return Err(crate::error::column_type(
                f,
                &features.keys[i],
                "features",
                format!(
                    "the spine's key '{}' is {}; cast one side so the key types are equal",
                    spine.keys[i],
                    s.data_type()
                ),
            ));
        }
    }
    let key_converter = converter(&spine_keys, spine.keys, "spine")?;
    let spine_keys = KeyRows::new(&key_converter, &spine_keys)?;
    let feature_keys = KeyRows::new(&key_converter, &feature_keys)?;
    let spine_times = time_micros(spine.batch, spine.time, "spine")?;
    let feature_times = time_micros(features.batch, features.time, "features")?;
    let tiebreak_arrays = columns(features.batch, tiebreak, "features")?;
    let tiebreaks = KeyRows::new(
        &converter(&tiebreak_arrays, tiebreak, "features")?,
        &tiebreak_arrays,
    )?;

    // Each distinct feature key gets a dense id (hashing its encoded bytes),
    // so sorting and the spine lookups compare integers, not byte strings.
    let ft = feature_times.values();
    let (ids, id_of) = feature_keys.dense_ids(features.batch.num_rows(), |i| {
        feature_keys.is_valid(i) && feature_times.is_valid(i)
    });
    // Feature rows that can match, in (key, time, tiebreak, index) order:
    // the winner for a time is the last row of its run of equal times.
    let mut order: Vec<usize> = (0..features.batch.num_rows())
        .filter(|&i| id_of[i] != usize::MAX)
        .collect();
    order.sort_unstable_by(|&a, &b| {
        id_of[a]
            .cmp(&id_of[b])
            .then_with(|| ft[a].cmp(&ft[b]))
            .then_with(|| tiebreaks.cmp(a, &tiebreaks, b))
            .then_with(|| a.cmp(&b))
    });
    // One run per key id, in id order: key id `g` is `groups[g]`.
    let groups = runs(&order, |a, b| id_of[a] == id_of[b]);

    let matches = (0..spine.batch.num_rows()).map(|i| {
        if !spine_keys.is_valid(i) || spine_times.is_null(i) {
            return None;
        }
        let t = spine_times.value(i);
        let g = *ids.get(spine_keys.bytes(i))?;
        let group = &order[groups[g].clone()];
        let end = if opts.exclude_exact_matches {
            group.partition_point(|&j| ft[j] < t)
        } else {
            group.partition_point(|&j| ft[j] <= t)
        };
        let winner = group[end.checked_sub(1)?];
        // `t - ttl` below i64::MIN: every time is recent enough.
        let too_old = opts
            .ttl_us
            .and_then(|ttl| t.checked_sub(ttl))
            .is_some_and(|oldest| ft[winner] < oldest);
        (!too_old).then_some(winner as u64)
    });
    Ok(matches.collect())
}

/// The spine with `columns` of `features` appended, each taken at
/// [`asof_indices`] (null where no row matched). Output fields are the
/// feature fields made nullable.
///
/// # Errors
/// As [`asof_indices`]; [`Error::MissingColumn`] for a column not in
/// `features`; [`Error::DuplicateColumn`] for a column the spine has too;
/// [`Error::Spec`] for a column named twice in `columns`.
///
/// # Examples
/// ```
/// use std::sync::Arc;
/// use arrow::array::{AsArray, Float64Array, Int64Array, RecordBatch};
/// use arrow::datatypes::Float64Type;
/// use kiln_temporal::{asof_join, AsOfOptions, AsOfSide};
///
/// let spine = RecordBatch::try_from_iter([
///     ("user", Arc::new(Int64Array::from(vec![1, 1])) as _),
///     ("ts", Arc::new(Int64Array::from(vec![15, 5])) as _),
/// ])?;
/// let features = RecordBatch::try_from_iter([
///     ("user", Arc::new(Int64Array::from(vec![1])) as _),
///     ("ts", Arc::new(Int64Array::from(vec![10])) as _),
///     ("spend", Arc::new(Float64Array::from(vec![2.5])) as _),
/// ])?;
/// let keys = ["user".to_string()];
/// let side = |batch| AsOfSide { batch, keys: &keys, time: "ts" };
/// let joined = asof_join(
///     side(&spine),
///     side(&features),
///     &[],
///     &["spend".to_string()],
///     &AsOfOptions::default(),
/// )?;
/// let spend = joined.column(2).as_primitive::<Float64Type>();
/// assert_eq!(spend.iter().collect::<Vec<_>>(), [Some(2.5), None]);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn asof_join(
    spine: AsOfSide<'_>,
    features: AsOfSide<'_>,
    tiebreak: &[String],
    columns: &[String],
    opts: &AsOfOptions,
) -> Result<RecordBatch> {
    let spine_schema = spine.batch.schema();
    let feature_schema = features.batch.schema();
    let mut seen = HashSet::new();
    let mut picked = Vec::with_capacity(columns.len());
    for name in columns {
        let array = column(features.batch, name, "features")?;
        if spine_schema.column_with_name(name).is_some() {
            return Err(Error::DuplicateColumn {
                column: name.clone(),
            });
        }
        if !seen.insert(name.as_str()) {
            return Err(Error::Spec {
                what: "feature columns".to_string(),
                value: name.clone(),
                hint: "name each feature column once".to_string(),
            });
        }
        let (_, field) = feature_schema
            .column_with_name(name)
            .expect("a column found by name has a field of that name");
        picked.push((array, field.clone().with_nullable(true)));
    }

    let indices = asof_indices(spine, features, tiebreak, opts)?;
    let mut fields: Vec<_> = spine_schema.fields().iter().cloned().collect();
    let mut arrays = spine.batch.columns().to_vec();
    for (array, field) in picked {
        arrays.push(take(array.as_ref(), &indices, None)?);
        fields.push(field.into());
    }
    let schema = Schema::new_with_metadata(fields, spine_schema.metadata().clone());
    Ok(RecordBatch::try_new(schema.into(), arrays)?)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::array::{
        ArrayRef, AsArray, Date32Array, DictionaryArray, Int32Array, Int64Array, LargeStringArray,
        StringArray, TimestampMillisecondArray, TimestampNanosecondArray, TimestampSecondArray,
    };
    use arrow::datatypes::{DataType, Int32Type, Int64Type};

    use super::*;

    /// A side whose time column is `ts`.
    fn ts_side<'a>(batch: &'a RecordBatch, keys: &'a [String]) -> AsOfSide<'a> {
        AsOfSide {
            batch,
            keys,
            time: "ts",
        }
    }

    fn strings(names: &[&str]) -> Vec<String> {
        names.iter().map(|s| s.to_string()).collect()
    }

    /// Feature rows (index: key, ts, prio, seq):
    /// 0: a 10 0 · 1: a 20 0 · 2: b 15 0 · 3: a 20 1 · 4: a 30 null ·
    /// 5: a 30 null · 6: null 5 0 · 7: a null 0 · 8: a 40 2 · 9: a 40 null.
    /// `value` is 100 × index; `seq` is 10 − index.
    fn features() -> RecordBatch {
        let key = StringArray::from(vec![
            Some("a"),
            Some("a"),
            Some("b"),
            Some("a"),
            Some("a"),
            Some("a"),
            None,
            Some("a"),
            Some("a"),
            Some("a"),
        ]);
        let ts = Int64Array::from(vec![
            Some(10),
            Some(20),
            Some(15),
            Some(20),
            Some(30),
            Some(30),
            Some(5),
            None,
            Some(40),
            Some(40),
        ]);
        let prio = Int32Array::from(vec![
            Some(0),
            Some(0),
            Some(0),
            Some(1),
            None,
            None,
            Some(0),
            Some(0),
            Some(2),
            None,
        ]);
        RecordBatch::try_from_iter([
            ("key", Arc::new(key) as ArrayRef),
            ("ts", Arc::new(ts) as ArrayRef),
            ("prio", Arc::new(prio) as ArrayRef),
            (
                "seq",
                Arc::new(Int64Array::from_iter_values((0..10).map(|i| 10 - i))) as ArrayRef,
            ),
            (
                "value",
                Arc::new(Int64Array::from_iter_values((0..10).map(|i| 100 * i))) as ArrayRef,
            ),
        ])
        .expect("equal lengths")
    }

    fn spine(rows: &[(Option<&str>, Option<i64>)]) -> RecordBatch {
        let key: StringArray = rows.iter().map(|r| r.0).collect();
        let ts: Int64Array = rows.iter().map(|r| r.1).collect();
        RecordBatch::try_from_iter([
            ("key", Arc::new(key) as ArrayRef),
            ("t", Arc::new(ts) as ArrayRef),
        ])
        .expect("equal lengths")
    }

    fn indices(
        spine: &RecordBatch,
        features: &RecordBatch,
        tiebreak: &[&str],
        opts: &AsOfOptions,
    ) -> Result<Vec<Option<u64>>> {
        let keys = strings(&["key"]);
        let idx = asof_indices(
            AsOfSide {
                batch: spine,
                keys: &keys,
                time: "t",
            },
            ts_side(features, &keys),
            &strings(tiebreak),
            opts,
        )?;
        Ok(idx.iter().collect())
    }

    type Case = (Option<&'static str>, Option<i64>, Option<u64>);

    #[test]
    fn matches_table() {
        let exclude = AsOfOptions {
            ttl_us: None,
            exclude_exact_matches: true,
        };
        let ttl = |ttl, exclude_exact_matches| AsOfOptions {
            ttl_us: Some(ttl),
            exclude_exact_matches,
        };
        let a = Some("a");
        let b = Some("b");
        let tables: Vec<(&str, AsOfOptions, &[&str], Vec<Case>)> = vec![
            (
                "default",
                AsOfOptions::default(),
                &["prio"],
                vec![
                    (a, Some(5), None),
                    (a, Some(10), Some(0)), // exact match
                    (a, Some(19), Some(0)),
                    (a, Some(20), Some(3)), // tie at 20: prio 1 beats prio 0
                    (a, Some(25), Some(3)),
                    (a, Some(30), Some(5)), // tie, both prio null: larger index
                    (a, Some(39), Some(5)),
                    (a, Some(40), Some(8)), // tie: prio 2 beats null (nulls smallest)
                    (a, Some(45), Some(8)),
                    (a, Some(i64::MAX), Some(8)),
                    (a, Some(i64::MIN), None),
                    (b, Some(14), None),
                    (b, Some(15), Some(2)),
                    (b, Some(99), Some(2)),
                    (Some("c"), Some(100), None), // unknown entity
                    (None, Some(5), None),        // null key never matches a null key
                    (None, Some(20), None),
                    (a, None, None), // null time
                ],
            ),
            (
                "exclude exact matches",
                exclude.clone(),
                &["prio"],
                vec![
                    (a, Some(10), None),
                    (a, Some(11), Some(0)),
                    (a, Some(20), Some(0)),
                    (a, Some(21), Some(3)),
                    (a, Some(30), Some(3)),
                    (a, Some(40), Some(5)),
                    (a, Some(41), Some(8)),
                    (b, Some(15), None),
                    (b, Some(16), Some(2)),
                ],
            ),
            (
                "ttl 10, boundary inclusive",
                ttl(10, false),
                &["prio"],
                vec![
                    (a, Some(19), Some(0)),
                    (a, Some(20), Some(3)),
                    (a, Some(29), Some(3)),
                    (a, Some(30), Some(5)),
                    (a, Some(50), Some(8)), // 40 >= 50 - 10
                    (a, Some(51), None),
                    (b, Some(25), Some(2)),
                    (b, Some(26), None),
                ],
            ),
            (
                "ttl 10, exclude exact matches",
                ttl(10, true),
                &["prio"],
                vec![
                    (a, Some(20), Some(0)), // 10 >= 20 - 10
                    (a, Some(21), Some(3)),
                    (a, Some(30), Some(3)),
                    (a, Some(40), Some(5)),
                    (a, Some(50), Some(8)),
                    (a, Some(51), None),
                ],
            ),
            (
                "ttl 0: exact matches only",
                ttl(0, false),
                &["prio"],
                vec![
                    (a, Some(10), Some(0)),
                    (a, Some(11), None),
                    (a, Some(20), Some(3)),
                ],
            ),
            (
                "ttl 0 excluding exact matches: nothing",
                ttl(0, true),
                &["prio"],
                vec![(a, Some(10), None), (a, Some(11), None)],
            ),
            (
                "ttl larger than the time range does not overflow",
                ttl(i64::MAX, false),
                &[],
                vec![
                    (a, Some(-10), None),
                    (a, Some(45), Some(9)),
                    (a, Some(i64::MIN), None),
                ],
            ),
            (
                "no tiebreak: larger index",
                AsOfOptions::default(),
                &[],
                vec![
                    (a, Some(20), Some(3)),
                    (a, Some(30), Some(5)),
                    (a, Some(40), Some(9)),
                ],
            ),
            (
                "tiebreak by seq (10 - index): smaller index",
                AsOfOptions::default(),
                &["seq"],
                vec![
                    (a, Some(20), Some(1)),
                    (a, Some(30), Some(4)),
                    (a, Some(40), Some(8)),
                ],
            ),
            (
                "two tiebreaks: prio, then seq",
                AsOfOptions::default(),
                &["prio", "seq"],
                vec![
                    (a, Some(20), Some(3)),
                    (a, Some(30), Some(4)),
                    (a, Some(40), Some(8)),
                ],
            ),
        ];
        let features = features();
        for (name, opts, tiebreak, cases) in tables {
            let rows: Vec<_> = cases.iter().map(|c| (c.0, c.1)).collect();
            let want: Vec<_> = cases.iter().map(|c| c.2).collect();
            let got = indices(&spine(&rows), &features, tiebreak, &opts).expect(name);
            assert_eq!(got, want, "{name}");
        }
    }

    #[test]
    fn sliced_batches_index_into_the_slice() {
        // Features without rows 0 and 1; indices are into the slice.
        let features = features().slice(2, 8);
        let a = Some("a");
        let full = spine(&[
            (Some("zzz"), Some(0)),
            (a, Some(10)),
            (a, Some(20)),
            (a, Some(30)),
            (a, Some(45)),
            (Some("b"), Some(15)),
            (a, Some(10)),
        ]);
        let spine = full.slice(1, 5);
        let got = indices(&spine, &features, &["prio"], &AsOfOptions::default()).expect("join");
        assert_eq!(got, [None, Some(1), Some(3), Some(6), Some(0)]);
    }

    fn batch(columns: Vec<(&str, ArrayRef)>) -> RecordBatch {
        RecordBatch::try_from_iter(columns).expect("equal lengths")
    }

    #[test]
    fn composite_keys() {
        let features = batch(vec![
            (
                "k",
                Arc::new(StringArray::from(vec![
                    Some("a"),
                    Some("a"),
                    Some("b"),
                    Some("a"),
                ])),
            ),
            (
                "n",
                Arc::new(Int32Array::from(vec![Some(1), Some(2), Some(1), None])),
            ),
            ("ts", Arc::new(Int64Array::from(vec![10, 20, 30, 5]))),
        ]);
        let spine = batch(vec![
            (
                "k",
                Arc::new(StringArray::from(vec![
                    Some("a"),
                    Some("a"),
                    Some("b"),
                    Some("b"),
                    Some("a"),
                    None,
                ])),
            ),
            (
                "n",
                Arc::new(Int32Array::from(vec![
                    Some(1),
                    Some(2),
                    Some(1),
                    Some(2),
                    None,
                    Some(1),
                ])),
            ),
            (
                "ts",
                Arc::new(Int64Array::from(vec![25, 25, 35, 35, 25, 25])),
            ),
        ]);
        let keys = strings(&["k", "n"]);
        let got = asof_indices(
            ts_side(&spine, &keys),
            ts_side(&features, &keys),
            &[],
            &AsOfOptions::default(),
        )
        .expect("join");
        assert_eq!(
            got.iter().collect::<Vec<_>>(),
            [Some(0), Some(1), Some(2), None, None, None]
        );
    }

    #[test]
    fn dictionary_keys_match_by_value() {
        let spine_keys: DictionaryArray<Int32Type> = vec!["x", "y", "x"].into_iter().collect();
        let feature_keys: DictionaryArray<Int32Type> = vec!["y", "x"].into_iter().collect();
        let spine = batch(vec![
            ("k", Arc::new(spine_keys)),
            ("ts", Arc::new(Int64Array::from(vec![10, 10, 0]))),
        ]);
        let features = batch(vec![
            ("k", Arc::new(feature_keys)),
            ("ts", Arc::new(Int64Array::from(vec![1, 2]))),
        ]);
        let keys = strings(&["k"]);
        let got = asof_indices(
            ts_side(&spine, &keys),
            ts_side(&features, &keys),
            &[],
            &AsOfOptions::default(),
        )
        .expect("join");
        assert_eq!(got.iter().collect::<Vec<_>>(), [Some(1), Some(0), None]);
    }

    #[test]
    fn time_units_differ_between_the_sides() {
        let key = || Arc::new(Int64Array::from(vec![1, 1, 1])) as ArrayRef;
        // 1.5 s, 2 s, 2.5 s in nanoseconds.
        let features = batch(vec![
            ("k", key()),
            (
                "ts",
                Arc::new(TimestampNanosecondArray::from(vec![
                    1_500_000_000,
                    2_000_000_000,
                    2_500_000_000,
                ])),
            ),
        ]);
        let spines: Vec<ArrayRef> = vec![
            Arc::new(TimestampSecondArray::from(vec![1, 2, 3]).with_timezone("UTC")),
            Arc::new(TimestampMillisecondArray::from(vec![1_499, 2_000, 2_999])),
            Arc::new(Int64Array::from(vec![1_000_000, 2_000_000, 3_000_000])),
        ];
        let keys = strings(&["k"]);
        for time in spines {
            let data_type = time.data_type().clone();
            let spine = batch(vec![("k", key()), ("ts", time)]);
            let got = asof_indices(
                ts_side(&spine, &keys),
                ts_side(&features, &keys),
                &[],
                &AsOfOptions::default(),
            )
            .expect("join");
            assert_eq!(
                got.iter().collect::<Vec<_>>(),
                [None, Some(1), Some(2)],
                "{data_type}"
            );
        }
        // Days against milliseconds: the row of the day itself, not later.
        let day = 86_400_000;
        let features = batch(vec![
            ("k", key()),
            (
                "ts",
                Arc::new(TimestampMillisecondArray::from(vec![day - 1, day, day + 1])),
            ),
        ]);
        let spine = batch(vec![
            ("k", key()),
            ("ts", Arc::new(Date32Array::from(vec![0, 1, 2]))),
        ]);
        let got = asof_indices(
            ts_side(&spine, &keys),
            ts_side(&features, &keys),
            &[],
            &AsOfOptions {
                ttl_us: None,
                exclude_exact_matches: true,
            },
        )
        .expect("join");
        assert_eq!(got.iter().collect::<Vec<_>>(), [None, Some(0), Some(2)]);
    }

    #[test]
    fn errors_name_the_column() {
        let features = features();
        let keys = strings(&["key"]);
        let side = |batch, keys, time| AsOfSide { batch, keys, time };
        let spine_rows = spine(&[(Some("a"), Some(1))]);
        let large = batch(vec![
            ("key", Arc::new(LargeStringArray::from(vec!["a"]))),
            ("t", Arc::new(Int64Array::from(vec![1]))),
        ]);
        let text_time = batch(vec![
            ("key", Arc::new(StringArray::from(vec!["a"]))),
            ("t", Arc::new(StringArray::from(vec!["yesterday"]))),
        ]);
        let none: &[String] = &[];
        let two = strings(&["key", "ts"]);
        let cases: Vec<(&str, Result<UInt64Array>, &str)> = vec![
            (
                "key types differ",
                asof_indices(
                    side(&large, &keys, "t"),
                    side(&features, &keys, "ts"),
                    &[],
                    &AsOfOptions::default(),
                ),
                "column 'key' of the features is Utf8; the spine's key 'key' is LargeUtf8",
            ),
            (
                "time is text that is not a time",
                asof_indices(
                    side(&text_time, &keys, "t"),
                    side(&features, &keys, "ts"),
                    &[],
                    &AsOfOptions::default(),
                ),
                "column 't' of the spine is Utf8; text that is not a time",
            ),
            (
                "missing time",
                asof_indices(
                    side(&spine_rows, &keys, "t"),
                    side(&features, &keys, "when"),
                    &[],
                    &AsOfOptions::default(),
                ),
                "column 'when' is missing from the features (it has: key, ts, prio, seq, value)",
            ),
            (
                "missing tiebreak",
                asof_indices(
                    side(&spine_rows, &keys, "t"),
                    side(&features, &keys, "ts"),
                    &strings(&["nope"]),
                    &AsOfOptions::default(),
                ),
                "column 'nope' is missing from the features",
            ),
            (
                "negative ttl",
                asof_indices(
                    side(&spine_rows, &keys, "t"),
                    side(&features, &keys, "ts"),
                    &[],
                    &AsOfOptions {
                        ttl_us: Some(-1),
                        exclude_exact_matches: false,
                    },
                ),
                "invalid ttl '-1us'",
            ),
            (
                "no keys",
                asof_indices(
                    side(&spine_rows, none, "t"),
                    side(&features, none, "ts"),
                    &[],
                    &AsOfOptions::default(),
                ),
                "invalid join keys 'spine [], features []'",
            ),
            (
                "key counts differ",
                asof_indices(
                    side(&spine_rows, &keys, "t"),
                    side(&features, &two, "ts"),
                    &[],
                    &AsOfOptions::default(),
                ),
                "invalid join keys 'spine [key], features [key, ts]'",
            ),
        ];
        for (name, got, want) in cases {
            let err = got.expect_err(name).to_string();
            assert!(err.starts_with(want), "{name}: {err}");
        }
    }

    fn join(columns: &[&str], spine: &RecordBatch, opts: &AsOfOptions) -> Result<RecordBatch> {
        let keys = strings(&["key"]);
        asof_join(
            AsOfSide {
                batch: spine,
                keys: &keys,
                time: "t",
            },
            AsOfSide {
                batch: &features(),
                keys: &keys,
                time: "ts",
            },
            &strings(&["prio"]),
            &strings(columns),
            opts,
        )
    }

    #[test]
    fn join_appends_nullable_columns_taken_at_the_matches() {
        let spine = spine(&[
            (Some("zzz"), Some(0)),
            (Some("a"), Some(25)),
            (Some("a"), Some(5)),
            (Some("b"), Some(15)),
            (None, Some(15)),
        ])
        .slice(1, 4);
        let joined = join(&["value", "prio"], &spine, &AsOfOptions::default()).expect("join");
        let schema = joined.schema();
        let names: Vec<_> = schema.fields().iter().map(|f| f.name().as_str()).collect();
        assert_eq!(names, ["key", "t", "value", "prio"]);
        assert!(schema.field(2).is_nullable() && schema.field(3).is_nullable());
        assert_eq!(schema.field(2).data_type(), &DataType::Int64);
        assert_eq!(joined.num_rows(), 4);
        let value: Vec<_> = joined
            .column(2)
            .as_primitive::<Int64Type>()
            .iter()
            .collect();
        assert_eq!(value, [Some(300), None, Some(200), None]);
        let prio: Vec<_> = joined
            .column(3)
            .as_primitive::<Int32Type>()
            .iter()
            .collect();
        assert_eq!(prio, [Some(1), None, Some(0), None]);
        assert_eq!(joined.column(0).as_ref(), spine.column(0).as_ref());
    }

    #[test]
    fn join_errors() {
        let spine = spine(&[(Some("a"), Some(25))]);
        let opts = AsOfOptions::default();
        let err = join(&["key"], &spine, &opts).expect_err("key is in both");
        assert!(
            matches!(&err, Error::DuplicateColumn { column } if column == "key"),
            "{err:?}"
        );
        assert_eq!(
            err.to_string(),
            "column 'key' is in both the spine and the features; rename one (or leave it out of \
             the feature columns)"
        );
        let err = join(&["nope"], &spine, &opts).expect_err("no such column");
        assert!(matches!(&err, Error::MissingColumn { column, side, .. }
                if column == "nope" && side == "features"));
        let err = join(&["value", "value"], &spine, &opts).expect_err("named twice");
        assert!(
            matches!(&err, Error::Spec { value, .. } if value == "value"),
            "{err:?}"
        );
    }
}
