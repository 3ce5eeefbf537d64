//! Windowed aggregations: one computation shared by the batch backfill
//! and the serving call, so both give the same floats bit for bit.

use std::collections::HashSet;
use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, AsArray, Float64Array, Float64Builder, Int64Array, Int64Builder, RecordBatch,
};
use arrow::compute::cast;
use arrow::datatypes::{DataType, Field, FieldRef, Float64Type, Schema, SchemaRef};
use serde::{Deserialize, Serialize};

use crate::error::{column, column_type, Error, Result};
use crate::keys::{columns, converter, runs, KeyRows};
use crate::time::{duration_micros, time_micros};

/// An aggregation over a window.
///
/// NaN is a value like any other float (it is not null): it is counted, and
/// one NaN in a window makes its sum, mean, min and max NaN, as plain float
/// arithmetic would.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Agg {
    /// Number of non-null values (Int64; 0 for an empty window).
    Count,
    /// Sum (Float64; 0.0 for an empty window). Added with plain `+` in the
    /// canonical order, starting from 0.0.
    Sum,
    /// Sum / count (Float64; null for an empty window).
    Mean,
    /// Smallest value (Float64; null for an empty window). Ordered by
    /// `f64::total_cmp`, so `-0.0` is smaller than `0.0`.
    Min,
    /// Largest value (Float64; null for an empty window). Ordered by
    /// `f64::total_cmp`, so `0.0` is larger than `-0.0`.
    Max,
}

impl Agg {
    /// The name in output columns and pipeline files.
    fn name(self) -> &'static str {
        match self {
            Agg::Count => "count",
            Agg::Sum => "sum",
            Agg::Mean => "mean",
            Agg::Min => "min",
            Agg::Max => "max",
        }
    }

    fn data_type(self) -> DataType {
        match self {
            Agg::Count => DataType::Int64,
            Agg::Sum | Agg::Mean | Agg::Min | Agg::Max => DataType::Float64,
        }
    }
}

/// Aggregations of one numeric column over sliding windows, as written in a
/// pipeline file:
///
/// ```toml
/// [[windows]]
/// column = "amount"
/// aggregations = ["count", "sum", "mean", "min", "max"]
/// windows = ["1h", "7d"]
/// ```
///
/// Output columns are named `{column}_{agg}_{window}` (`amount_sum_1h`), in
/// the order windows × aggregations (for each window, each aggregation).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WindowSpec {
    /// The numeric input column (any integer or float type; read as f64).
    pub column: String,
    /// What to compute.
    pub aggregations: Vec<Agg>,
    /// Window lengths, as [`parse_duration`](crate::parse_duration) reads
    /// them (and more than zero).
    pub windows: Vec<String>,
}

/// A set of windowed aggregations over the events of each entity.
///
/// The window of an event at time `t` is `[t - w, t)`: events at or after
/// `t - w` and strictly before `t` (an event never sees itself or anything
/// at its own time, so a training row holds exactly what a serving call made
/// just before the event could know). Within a window, values are
/// aggregated in one canonical order (time ascending, then value by
/// `f64::total_cmp`), so the batch backfill and a serving call give
/// bit-identical floats.
///
/// Null values are skipped (they are not events of that column). With no
/// key columns, all events are one entity. When `t - w` is before the
/// earliest time i64 can hold, the window starts there.
///
/// # Examples
/// ```
/// use std::sync::Arc;
/// use arrow::array::{AsArray, Float64Array, Int64Array, RecordBatch};
/// use arrow::datatypes::Float64Type;
/// use kiln_temporal::{Agg, WindowSpec, Windows};
///
/// let spec = WindowSpec {
///     column: "amount".into(),
///     aggregations: vec![Agg::Sum],
///     windows: vec!["1s".into()],
/// };
/// let windows = Windows::new(&[spec], &["user".to_string()], "ts")?;
/// let events = RecordBatch::try_from_iter([
///     ("user", Arc::new(Int64Array::from(vec![7, 7, 7])) as _),
///     ("ts", Arc::new(Int64Array::from(vec![0, 500_000, 1_000_000])) as _),
///     ("amount", Arc::new(Float64Array::from(vec![1.0, 2.0, 4.0])) as _),
/// ])?;
/// let out = windows.backfill(&events)?;
/// assert_eq!(out.schema().field(0).name(), "amount_sum_1s");
/// let sums = out.column(0).as_primitive::<Float64Type>();
/// assert_eq!(sums.values().to_vec(), [0.0, 1.0, 3.0]);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone)]
pub struct Windows {
    specs: Vec<Compiled>,
    keys: Vec<String>,
    time: String,
    schema: SchemaRef,
}

/// A checked [`WindowSpec`].
#[derive(Debug, Clone)]
struct Compiled {
    column: String,
    aggregations: Vec<Agg>,
    /// Window lengths in microseconds, all > 0.
    windows: Vec<i64>,
}

impl Windows {
    /// Check and compile `specs` for events keyed by `keys` with event time
    /// `time`.
    ///
    /// # Errors
    /// [`Error::Spec`] for a bad window or an empty list: no specs, a spec
    /// with no aggregations or no windows, a window that
    /// [`parse_duration`](crate::parse_duration) refuses or that is zero,
    /// or two specs producing the same output column.
    pub fn new(specs: &[WindowSpec], keys: &[String], time: &str) -> Result<Windows> {
        if specs.is_empty() {
            return Err(Error::Spec {
                what: "windows".to_string(),
                value: "[]".to_string(),
                hint: "give at least one [[windows]] entry (column, aggregations, windows)"
                    .to_string(),
            });
        }
        let mut compiled = Vec::with_capacity(specs.len());
        let mut names = HashSet::new();
        let mut fields = Vec::new();
        for spec in specs {
            if spec.aggregations.is_empty() {
                return Err(Error::Spec {
                    what: "aggregation".to_string(),
                    value: "[]".to_string(),
                    hint: format!(
                        "the windows of column '{}' list no aggregations; give one or more of \
                         count, sum, mean, min, max",
                        spec.column
                    ),
                });
            }
            if spec.windows.is_empty() {
                return Err(Error::Spec {
                    what: "window".to_string(),
                    value: "[]".to_string(),
                    hint: format!(
                        "the windows of column '{}' list no window lengths; give one or more, \
                         such as \"1h\" or \"7d\"",
                        spec.column
                    ),
                });
            }
            let mut windows = Vec::with_capacity(spec.windows.len());
            for text in &spec.windows {
                let bad = |hint| Error::Spec {
                    what: "window".to_string(),
                    value: text.clone(),
                    hint,
                };
                let micros = duration_micros(text).map_err(bad)?;
                if micros == 0 {
                    return Err(bad("a window must be longer than zero".to_string()));
                }
                windows.push(micros);
                for agg in &spec.aggregations {
                    let name = format!("{}_{}_{}", spec.column, agg.name(), text);
                    if !names.insert(name.clone()) {
                        return Err(Error::Spec {
                            what: "window".to_string(),
                            value: text.clone(),
                            hint: format!(
                                "output column '{name}' would be computed twice; list each \
                                 column, aggregation and window once"
                            ),
                        });
                    }
                    fields.push(Field::new(name, agg.data_type(), true));
                }
            }
            compiled.push(Compiled {
                column: spec.column.clone(),
                aggregations: spec.aggregations.clone(),
                windows,
            });
        }
        Ok(Windows {
            specs: compiled,
            keys: keys.to_vec(),
            time: time.to_string(),
            schema: Arc::new(Schema::new(fields)),
        })
    }

    /// The output fields, in order (all nullable).
    pub fn fields(&self) -> Vec<FieldRef> {
        self.schema.fields().iter().cloned().collect()
    }

    /// Batch backfill: for every row of `events` (any order, any number of
    /// entities), the aggregates over the same entity's events in its
    /// window, one output row per input row, in input order. Rows with a
    /// null key or time get nulls (count 0 / sum 0.0 are not claimed for
    /// them: all null).
    ///
    /// The output has exactly the columns of [`Windows::fields`]. Cost:
    /// one sort of the rows, then per row and window two binary searches
    /// and one pass over the window's values (no running sums, whose
    /// floats would differ from a serving call's).
    ///
    /// # Errors
    /// [`Error::MissingColumn`], [`Error::ColumnType`].
    pub fn backfill(&self, events: &RecordBatch) -> Result<RecordBatch> {
        let rows = events.num_rows();
        let times = time_micros(events, &self.time, "events")?;
        let values = self.values(events)?;
        let key_arrays = columns(events, &self.keys, "events")?;
        let keys = KeyRows::new(&converter(&key_arrays, &self.keys, "events")?, &key_arrays)?;

        // Rows with a key and a time, grouped by entity (a dense id per key).
        let (_, id_of) = keys.dense_ids(rows, |i| keys.is_valid(i) && times.is_valid(i));
        let mut order: Vec<usize> = (0..rows).filter(|&i| id_of[i] != usize::MAX).collect();
        order.sort_unstable_by_key(|&i| (id_of[i], i));
        let groups = runs(&order, |a, b| id_of[a] == id_of[b]);
        let mut group_of = vec![None; rows];
        for (g, range) in groups.iter().enumerate() {
            for &i in &order[range.clone()] {
                group_of[i] = Some(g);
            }
        }

        // Per spec, each entity's events in canonical order, one after
        // the other; the entity `g` is `offsets[g]..offsets[g + 1]`.
        let sorted: Vec<(Events, Vec<usize>)> = values
            .iter()
            .map(|values| {
                let mut events = Events::default();
                let mut offsets = Vec::with_capacity(groups.len() + 1);
                offsets.push(0);
                for range in &groups {
                    events.extend_canonical(&times, values, order[range.clone()].iter().copied());
                    offsets.push(events.times.len());
                }
                (events, offsets)
            })
            .collect();

        let mut out = self.builders(rows);
        let mut entity: Vec<EventSlice<'_>> = Vec::with_capacity(self.specs.len());
        for (i, group) in group_of.into_iter().enumerate() {
            let Some(g) = group else {
                self.push_row(&[], None, &mut out);
                continue;
            };
            entity.clear();
            entity.extend(sorted.iter().map(|(events, offsets)| {
                let range = offsets[g]..offsets[g + 1];
                EventSlice {
                    times: &events.times[range.clone()],
                    values: &events.values[range],
                }
            }));
            self.push_row(&entity, Some(times.value(i)), &mut out);
        }
        self.finish(out)
    }

    /// Serving: the aggregates as of time `at_us` over `recent`, the events
    /// of ONE entity (the key columns are not read; any order; events at or
    /// after `at_us` are ignored, as are those before the longest window).
    /// Equal, bit for bit, to [`Windows::backfill`]'s row for an event of
    /// that entity at `at_us`.
    ///
    /// # Errors
    /// As [`Windows::backfill`].
    pub fn at(&self, recent: &RecordBatch, at_us: i64) -> Result<RecordBatch> {
        let times = time_micros(recent, &self.time, "events")?;
        // Only what some window can see needs sorting; the windows' slices
        // hold the same values in the same order either way.
        let longest = self.specs.iter().flat_map(|s| &s.windows).max();
        let start = at_us.saturating_sub(longest.copied().unwrap_or(0));
        let seen: Vec<usize> = (0..recent.num_rows())
            .filter(|&i| times.is_valid(i) && (start..at_us).contains(&times.value(i)))
            .collect();
        let sorted: Vec<Events> = self
            .values(recent)?
            .iter()
            .map(|values| {
                let mut events = Events::default();
                events.extend_canonical(&times, values, seen.iter().copied());
                events
            })
            .collect();
        let entity: Vec<EventSlice<'_>> = sorted
            .iter()
            .map(|events| EventSlice {
                times: &events.times,
                values: &events.values,
            })
            .collect();
        let mut out = self.builders(1);
        self.push_row(&entity, Some(at_us), &mut out);
        self.finish(out)
    }

    /// Each spec's input column of `events`, as f64.
    fn values(&self, events: &RecordBatch) -> Result<Vec<Float64Array>> {
        self.specs
            .iter()
            .map(|spec| {
                let array = column(events, &spec.column, "events")?;
                let data_type = array.data_type();
                if !(data_type.is_integer() || data_type.is_floating()) {
                    return Err(column_type(
                        array,
                        &spec.column,
                        "events",
                        "windows aggregate a numeric column (any integer or float type); \
                         cast it first"
                            .to_string(),
                    ));
                }
                Ok(cast(array, &DataType::Float64)?
                    .as_primitive::<Float64Type>()
                    .clone())
            })
            .collect()
    }

    fn builders(&self, rows: usize) -> Vec<Builder> {
        self.specs
            .iter()
            .flat_map(|spec| spec.windows.iter().map(move |_| &spec.aggregations))
            .flatten()
            .map(|agg| match agg {
                Agg::Count => Builder::Count(Int64Builder::with_capacity(rows)),
                _ => Builder::Float(Float64Builder::with_capacity(rows)),
            })
            .collect()
    }

    /// Append one output row: the aggregates at time `at` over `entity`
    /// (one [`EventSlice`] per spec, canonically sorted), or all nulls when
    /// `at` is `None`.
    ///
    /// This is the one computation behind both [`Windows::backfill`] and
    /// [`Windows::at`].
    fn push_row(&self, entity: &[EventSlice<'_>], at: Option<i64>, out: &mut [Builder]) {
        let mut builders = out.iter_mut();
        for (s, spec) in self.specs.iter().enumerate() {
            for &window in &spec.windows {
                let stats = at.map(|at| aggregate(entity[s].window(at, window)));
                for &agg in &spec.aggregations {
                    builders
                        .next()
                        .expect("one builder per output column")
                        .push(agg, stats.as_ref());
                }
            }
        }
    }

    fn finish(&self, out: Vec<Builder>) -> Result<RecordBatch> {
        let columns = out.into_iter().map(Builder::finish).collect();
        Ok(RecordBatch::try_new(self.schema.clone(), columns)?)
    }
}

/// (time, value) events of one column, in canonical order per entity.
#[derive(Debug, Default)]
struct Events {
    times: Vec<i64>,
    values: Vec<f64>,
}

impl Events {
    /// Append the `rows` that have a time and a value, in canonical order:
    /// time ascending, then value by `f64::total_cmp`.
    fn extend_canonical(
        &mut self,
        times: &Int64Array,
        values: &Float64Array,
        rows: impl Iterator<Item = usize>,
    ) {
        let mut events: Vec<(i64, f64)> = rows
            .filter(|&i| times.is_valid(i) && values.is_valid(i))
            .map(|i| (times.value(i), values.value(i)))
            .collect();
        // Unstable is deterministic here: events that compare equal are
        // bit-identical.
        events.sort_unstable_by(|a, b| a.0.cmp(&b.0).then_with(|| a.1.total_cmp(&b.1)));
        self.times.extend(events.iter().map(|e| e.0));
        self.values.extend(events.iter().map(|e| e.1));
    }
}

/// One entity's events of one column, canonically sorted.
#[derive(Debug, Clone, Copy)]
struct EventSlice<'a> {
    times: &'a [i64],
    values: &'a [f64],
}

impl<'a> EventSlice<'a> {
    /// The values in `[at - len, at)`.
    fn window(&self, at: i64, len: i64) -> &'a [f64] {
        let start = at.saturating_sub(len);
        let lo = self.times.partition_point(|&t| t < start);
        let hi = self.times.partition_point(|&t| t < at);
        &self.values[lo..hi]
    }
}

/// The aggregates of one window.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Stats {
    count: usize,
    sum: f64,
    /// `None` for an empty window.
    min: Option<f64>,
    max: Option<f64>,
}

/// Aggregate `values` (a window, canonically sorted) in order.
fn aggregate(values: &[f64]) -> Stats {
    let mut sum = 0.0;
    let mut nan = false;
    let mut min_max: Option<(f64, f64)> = None;
    for &v in values {
        sum += v;
        if v.is_nan() {
            nan = true;
        } else {
            min_max = Some(match min_max {
                None => (v, v),
                Some((lo, hi)) => (
                    if v.total_cmp(&lo).is_lt() { v } else { lo },
                    if v.total_cmp(&hi).is_gt() { v } else { hi },
                ),
            });
        }
    }
    let (min, max) = if nan {
        (Some(f64::NAN), Some(f64::NAN))
    } else {
        (min_max.map(|m| m.0), min_max.map(|m| m.1))
    };
    Stats {
        count: values.len(),
        sum,
        min,
        max,
    }
}

/// An output column being built.
enum Builder {
    Count(Int64Builder),
    Float(Float64Builder),
}

impl Builder {
    /// Append `agg` of `stats`; null when `stats` is `None` (a row without
    /// key or time).
    fn push(&mut self, agg: Agg, stats: Option<&Stats>) {
        match self {
            Builder::Count(b) => {
                b.append_option(stats.map(|s| {
                    i64::try_from(s.count).expect("a window holds fewer than 2^63 events")
                }))
            }
            Builder::Float(b) => b.append_option(stats.and_then(|s| match agg {
                Agg::Sum => Some(s.sum),
                Agg::Mean => (s.count > 0).then(|| s.sum / s.count as f64),
                Agg::Min => s.min,
                Agg::Max => s.max,
                Agg::Count => unreachable!("counts have an Int64 builder"),
            })),
        }
    }

    fn finish(self) -> ArrayRef {
        match self {
            Builder::Count(mut b) => Arc::new(b.finish()),
            Builder::Float(mut b) => Arc::new(b.finish()),
        }
    }
}

#[cfg(test)]
mod tests {
    use arrow::array::{Int32Array, StringArray, UInt64Array, UInt8Array};
    use arrow::compute::filter_record_batch;
    use arrow::datatypes::Int64Type;
    use proptest::prelude::*;

    use super::*;

    fn strings(names: &[&str]) -> Vec<String> {
        names.iter().map(|s| s.to_string()).collect()
    }

    fn spec(column: &str, aggregations: &[Agg], windows: &[&str]) -> WindowSpec {
        WindowSpec {
            column: column.to_string(),
            aggregations: aggregations.to_vec(),
            windows: strings(windows),
        }
    }

    const ALL: [Agg; 5] = [Agg::Count, Agg::Sum, Agg::Mean, Agg::Min, Agg::Max];

    /// One output row: count, then sum, mean, min, max, for each window.
    type Row = Vec<Option<f64>>;

    /// Row `i` of `batch`, counts as f64.
    fn row(batch: &RecordBatch, i: usize) -> Row {
        batch
            .columns()
            .iter()
            .map(|c| match c.data_type() {
                DataType::Int64 => {
                    let c = c.as_primitive::<Int64Type>();
                    c.is_valid(i).then(|| c.value(i) as f64)
                }
                _ => {
                    let c = c.as_primitive::<Float64Type>();
                    c.is_valid(i).then(|| c.value(i))
                }
            })
            .collect()
    }

    /// Row `i` of `batch` as bits, for bit-for-bit comparisons.
    fn bits(batch: &RecordBatch, i: usize) -> Vec<Option<u64>> {
        row(batch, i).iter().map(|v| v.map(f64::to_bits)).collect()
    }

    fn events(key: Vec<Option<&str>>, ts: Vec<Option<i64>>, x: Vec<Option<f64>>) -> RecordBatch {
        RecordBatch::try_from_iter([
            ("key", Arc::new(StringArray::from(key)) as ArrayRef),
            ("ts", Arc::new(Int64Array::from(ts)) as ArrayRef),
            ("x", Arc::new(Float64Array::from(x)) as ArrayRef),
        ])
        .expect("equal lengths")
    }

    /// Entity a: 0 → 1.0, 5 → 2.0 and −3.0, 10 → 4.0 and null, 15 → 8.0,
    /// 16 → 0.5; entity b: 10 → 100.0; a null key and a null time.
    fn hand_events() -> RecordBatch {
        let a = Some("a");
        events(
            vec![a, a, Some("b"), a, a, a, a, None, a, a],
            vec![
                Some(10),
                Some(0),
                Some(10),
                Some(5),
                Some(15),
                Some(10),
                Some(5),
                Some(7),
                None,
                Some(16),
            ],
            vec![
                Some(4.0),
                Some(1.0),
                Some(100.0),
                Some(2.0),
                Some(8.0),
                None,
                Some(-3.0),
                Some(50.0),
                Some(60.0),
                Some(0.5),
            ],
        )
    }

    fn hand_windows() -> Windows {
        Windows::new(
            &[spec("x", &ALL, &["5us", "10us"])],
            &strings(&["key"]),
            "ts",
        )
        .expect("valid windows")
    }

    fn stats(count: i64, sum: f64, rest: Option<(f64, f64, f64)>) -> Row {
        let (mean, min, max) = match rest {
            Some((mean, min, max)) => (Some(mean), Some(min), Some(max)),
            None => (None, None, None),
        };
        vec![Some(count as f64), Some(sum), mean, min, max]
    }

    /// The expected rows of [`hand_events`], worked out by hand:
    /// (5us window, 10us window).
    fn hand_expected() -> Vec<Row> {
        let empty = || stats(0, 0.0, None);
        let nulls = || vec![None; 5];
        let cat = |a: Row, b: Row| [a, b].concat();
        vec![
            // a@10: [5,10) = {−3, 2} (5 = t − w included, 10 = t excluded);
            // [0,10) = {1, −3, 2}, summed in time then value order.
            cat(
                stats(2, -1.0, Some((-0.5, -3.0, 2.0))),
                stats(3, 0.0, Some((0.0, -3.0, 2.0))),
            ),
            // a@0: nothing before.
            cat(empty(), empty()),
            // b@10: b has no other event.
            cat(empty(), empty()),
            // a@5: [0,5) = {1}; the other event at 5 is not seen.
            cat(
                stats(1, 1.0, Some((1.0, 1.0, 1.0))),
                stats(1, 1.0, Some((1.0, 1.0, 1.0))),
            ),
            // a@15: [10,15) = {4} (the null skipped); [5,15) = {−3, 2, 4}.
            cat(
                stats(1, 4.0, Some((4.0, 4.0, 4.0))),
                stats(3, 3.0, Some((1.0, -3.0, 4.0))),
            ),
            // a@10 again (its own value null: it still gets a row).
            cat(
                stats(2, -1.0, Some((-0.5, -3.0, 2.0))),
                stats(3, 0.0, Some((0.0, -3.0, 2.0))),
            ),
            // a@5 again.
            cat(
                stats(1, 1.0, Some((1.0, 1.0, 1.0))),
                stats(1, 1.0, Some((1.0, 1.0, 1.0))),
            ),
            // Null key, null time: all null.
            cat(nulls(), nulls()),
            cat(nulls(), nulls()),
            // a@16: [11,16) = {8}; [6,16) = {4, 8}.
            cat(
                stats(1, 8.0, Some((8.0, 8.0, 8.0))),
                stats(2, 12.0, Some((6.0, 4.0, 8.0))),
            ),
        ]
    }

    #[test]
    fn backfill_by_hand() {
        let windows = hand_windows();
        let out = windows.backfill(&hand_events()).expect("backfill");
        assert_eq!(out.schema().fields().to_vec(), windows.fields());
        let want = hand_expected();
        assert_eq!(out.num_rows(), want.len());
        for (i, want) in want.iter().enumerate() {
            assert_eq!(&row(&out, i), want, "row {i}");
        }
    }

    #[test]
    fn backfill_of_a_slice_is_the_backfill_of_its_rows() {
        // Rows 3..9 of the hand events: a@5 (2.0), a@15, a@10 (null),
        // a@5 (−3.0), null key, null time.
        let out = hand_windows()
            .backfill(&hand_events().slice(3, 6))
            .expect("backfill");
        let empty = stats(0, 0.0, None);
        let want: Vec<Row> = vec![
            [empty.clone(), empty.clone()].concat(),
            // a@15: [10,15) has only the null; [5,15) = {−3, 2}.
            [stats(0, 0.0, None), stats(2, -1.0, Some((-0.5, -3.0, 2.0)))].concat(),
            [
                stats(2, -1.0, Some((-0.5, -3.0, 2.0))),
                stats(2, -1.0, Some((-0.5, -3.0, 2.0))),
            ]
            .concat(),
            [empty.clone(), empty].concat(),
            vec![None; 10],
            vec![None; 10],
        ];
        for (i, want) in want.iter().enumerate() {
            assert_eq!(&row(&out, i), want, "row {i}");
        }
    }

    #[test]
    fn at_by_hand() {
        let windows = hand_windows();
        let events = hand_events();
        // Entity a's events, in input order, with ones at and after `at`.
        let a: Vec<bool> = (0..events.num_rows())
            .map(|i| {
                events.column(0).as_string::<i32>().value(i) == "a" && events.column(0).is_valid(i)
            })
            .collect();
        let a = filter_record_batch(&events, &a.into()).expect("filter");
        let want = hand_expected();
        let cases: [(i64, &Row); 5] = [
            (10, &want[0]),
            (0, &want[1]),
            (5, &want[3]),
            (15, &want[4]),
            (16, &want[9]),
        ];
        for (at, want) in cases {
            let out = windows.at(&a, at).expect("at");
            assert_eq!(out.num_rows(), 1);
            assert_eq!(out.schema().fields().to_vec(), windows.fields());
            assert_eq!(&row(&out, 0), want, "at {at}");
        }
        // The key columns are not read, so they need not exist.
        let no_key = a.project(&[1, 2]).expect("ts and x");
        assert_eq!(row(&windows.at(&no_key, 10).expect("at"), 0), want[0]);
        // No events: counts 0, sums 0.0, the rest null.
        let none = windows.at(&a.slice(0, 0), 10).expect("at");
        assert_eq!(
            row(&none, 0),
            [stats(0, 0.0, None), stats(0, 0.0, None)].concat()
        );
    }

    #[test]
    fn nan_and_signed_zeros() {
        let windows =
            Windows::new(&[spec("x", &ALL, &["1h"])], &strings(&["key"]), "ts").expect("valid");
        let a = Some("a");
        let cases: Vec<(Vec<f64>, Row)> = vec![
            (
                vec![1.0, f64::NAN, 2.0],
                vec![
                    Some(3.0),
                    Some(f64::NAN),
                    Some(f64::NAN),
                    Some(f64::NAN),
                    Some(f64::NAN),
                ],
            ),
            (
                vec![-f64::NAN],
                vec![
                    Some(1.0),
                    Some(f64::NAN),
                    Some(f64::NAN),
                    Some(f64::NAN),
                    Some(f64::NAN),
                ],
            ),
            // total_cmp: −0.0 < 0.0; the sum starts from +0.0.
            (
                vec![0.0, -0.0],
                vec![Some(2.0), Some(0.0), Some(0.0), Some(-0.0), Some(0.0)],
            ),
            (
                vec![-0.0],
                vec![Some(1.0), Some(0.0), Some(0.0), Some(-0.0), Some(-0.0)],
            ),
            (
                vec![f64::INFINITY, f64::NEG_INFINITY],
                vec![
                    Some(2.0),
                    Some(f64::NAN),
                    Some(f64::NAN),
                    Some(f64::NEG_INFINITY),
                    Some(f64::INFINITY),
                ],
            ),
        ];
        for (values, want) in cases {
            // The values at time 0, then a row at time 1 (value null) that
            // sees them all.
            let n = values.len();
            let x = values.iter().copied().map(Some).chain([None]).collect();
            let ts = vec![Some(0); n].into_iter().chain([Some(1)]).collect();
            let b = events(vec![a; n + 1], ts, x);
            let out = windows.backfill(&b).expect("backfill");
            let got = row(&out, n);
            let same = got.iter().zip(&want).all(|(g, w)| match (g, w) {
                (Some(g), Some(w)) if w.is_nan() => g.is_nan(),
                (Some(g), Some(w)) => g.to_bits() == w.to_bits(),
                (g, w) => g.is_none() && w.is_none(),
            });
            assert!(same, "{values:?}: got {got:?}, want {want:?}");
        }
    }

    #[test]
    fn integer_columns_and_composite_keys() {
        let b = RecordBatch::try_from_iter([
            (
                "k1",
                Arc::new(StringArray::from(vec!["a", "a", "a", "a"])) as ArrayRef,
            ),
            (
                "k2",
                Arc::new(Int32Array::from(vec![Some(1), Some(1), Some(2), None])) as ArrayRef,
            ),
            (
                "ts",
                Arc::new(Int64Array::from(vec![0, 1, 1, 1])) as ArrayRef,
            ),
            (
                "n",
                Arc::new(UInt8Array::from(vec![3, 4, 5, 6])) as ArrayRef,
            ),
            (
                "m",
                Arc::new(UInt64Array::from(vec![u64::MAX, 0, 0, 0])) as ArrayRef,
            ),
        ])
        .expect("equal lengths");
        let windows = Windows::new(
            &[
                spec("n", &[Agg::Sum, Agg::Count], &["1s"]),
                spec("m", &[Agg::Max], &["1s"]),
            ],
            &strings(&["k1", "k2"]),
            "ts",
        )
        .expect("valid");
        let out = windows.backfill(&b).expect("backfill");
        let names: Vec<_> = out
            .schema()
            .fields()
            .iter()
            .map(|f| f.name().clone())
            .collect();
        assert_eq!(names, ["n_sum_1s", "n_count_1s", "m_max_1s"]);
        let want: Vec<Row> = vec![
            vec![Some(0.0), Some(0.0), None],
            vec![Some(3.0), Some(1.0), Some(u64::MAX as f64)],
            vec![Some(0.0), Some(0.0), None],
            vec![None, None, None],
        ];
        for (i, want) in want.iter().enumerate() {
            assert_eq!(&row(&out, i), want, "row {i}");
        }
    }

    #[test]
    fn fields_are_named_and_ordered() {
        let windows = Windows::new(
            &[
                spec("amount", &[Agg::Count, Agg::Mean], &["1h", "7d"]),
                spec("n", &[Agg::Max], &["90s"]),
            ],
            &strings(&["user"]),
            "ts",
        )
        .expect("valid");
        let fields = windows.fields();
        let got: Vec<_> = fields
            .iter()
            .map(|f| (f.name().as_str(), f.data_type().clone(), f.is_nullable()))
            .collect();
        assert_eq!(
            got,
            [
                ("amount_count_1h", DataType::Int64, true),
                ("amount_mean_1h", DataType::Float64, true),
                ("amount_count_7d", DataType::Int64, true),
                ("amount_mean_7d", DataType::Float64, true),
                ("n_max_90s", DataType::Float64, true),
            ]
        );
    }

    #[test]
    fn new_refuses_bad_specs() {
        let key = strings(&["k"]);
        let cases: Vec<(&str, Vec<WindowSpec>, &str)> = vec![
            ("no specs", vec![], "invalid windows '[]'"),
            (
                "no aggregations",
                vec![spec("x", &[], &["1h"])],
                "invalid aggregation '[]'",
            ),
            (
                "no windows",
                vec![spec("x", &[Agg::Sum], &[])],
                "invalid window '[]'",
            ),
            (
                "bad window",
                vec![spec("x", &[Agg::Sum], &["1.5h"])],
                "invalid window '1.5h': write a whole number",
            ),
            (
                "zero window",
                vec![spec("x", &[Agg::Sum], &["0s"])],
                "invalid window '0s': a window must be longer than zero",
            ),
            (
                "overflow",
                vec![spec("x", &[Agg::Sum], &["99999999999w"])],
                "invalid window '99999999999w'",
            ),
            (
                "aggregation twice",
                vec![spec("x", &[Agg::Sum, Agg::Sum], &["1h"])],
                "invalid window '1h': output column 'x_sum_1h' would be computed twice",
            ),
            (
                "two specs, one output",
                vec![
                    spec("x", &[Agg::Sum], &["1h"]),
                    spec("x", &[Agg::Min, Agg::Sum], &["2h", "1h"]),
                ],
                "invalid window '1h': output column 'x_sum_1h'",
            ),
        ];
        for (name, specs, want) in cases {
            let err = Windows::new(&specs, &key, "ts").expect_err(name);
            assert!(matches!(err, Error::Spec { .. }), "{name}: {err:?}");
            assert!(err.to_string().starts_with(want), "{name}: {err}");
        }
        // Same window written two ways: two distinct columns.
        assert!(Windows::new(&[spec("x", &[Agg::Sum], &["1h", "60m"])], &key, "ts").is_ok());
    }

    #[test]
    fn backfill_and_at_errors() {
        let windows = hand_windows();
        let e = hand_events();
        let cases: Vec<(&str, RecordBatch, &str)> = vec![
            (
                "no value column",
                e.project(&[0, 1]).expect("key, ts"),
                "column 'x' is missing from the events",
            ),
            (
                "no time column",
                e.project(&[0, 2]).expect("key, x"),
                "column 'ts' is missing from the events",
            ),
            (
                "text values",
                RecordBatch::try_from_iter([
                    ("key", Arc::new(StringArray::from(vec!["a"])) as ArrayRef),
                    ("ts", Arc::new(Int64Array::from(vec![1])) as ArrayRef),
                    ("x", Arc::new(StringArray::from(vec!["1.5"])) as ArrayRef),
                ])
                .expect("equal lengths"),
                "column 'x' of the events is Utf8; windows aggregate a numeric column",
            ),
        ];
        for (name, batch, want) in cases {
            let err = windows.at(&batch, 0).expect_err(name).to_string();
            assert!(err.starts_with(want), "{name}, at: {err}");
            let err = windows.backfill(&batch).expect_err(name).to_string();
            assert!(err.starts_with(want), "{name}, backfill: {err}");
        }
        let err = windows
            .backfill(&e.project(&[1, 2]).expect("ts, x"))
            .expect_err("no key")
            .to_string();
        assert!(
            err.starts_with("column 'key' is missing from the events"),
            "{err}"
        );
    }

    #[test]
    fn windows_at_the_ends_of_time() {
        let windows = Windows::new(&[spec("x", &[Agg::Count], &["1w"])], &[], "ts").expect("valid");
        let b = RecordBatch::try_from_iter([
            (
                "ts",
                Arc::new(Int64Array::from(vec![i64::MIN, i64::MIN + 1, i64::MAX])) as ArrayRef,
            ),
            (
                "x",
                Arc::new(Float64Array::from(vec![1.0, 1.0, 1.0])) as ArrayRef,
            ),
        ])
        .expect("equal lengths");
        let out = windows.backfill(&b).expect("no keys: one entity");
        assert_eq!(row(&out, 0), [Some(0.0)]);
        assert_eq!(row(&out, 1), [Some(1.0)]);
        assert_eq!(row(&out, 2), [Some(0.0)]);
        assert_eq!(
            row(&windows.at(&b, i64::MIN + 2).expect("at"), 0),
            [Some(2.0)]
        );
    }

    const ORDER_SENSITIVE: [f64; 10] = [1.0, 0.1, 0.2, 0.3, -2.5, 1e16, -1e16, 3.0, 0.0, -0.0];
    const ODD: [f64; 4] = [f64::NAN, f64::INFINITY, f64::NEG_INFINITY, 1e-300];

    /// Values that make float sums order-sensitive, and the odd ones.
    fn value() -> impl Strategy<Value = Option<f64>> {
        prop_oneof![
            4 => prop::sample::select(ORDER_SENSITIVE.to_vec()).prop_map(Some),
            1 => prop::sample::select(ODD.to_vec()).prop_map(Some),
            1 => Just(None),
        ]
    }

    fn event() -> impl Strategy<Value = (Option<u8>, Option<i64>, Option<f64>, Option<i32>)> {
        (
            prop::option::weighted(0.95, 0u8..3),
            prop::option::weighted(0.95, -20i64..20),
            value(),
            prop::option::weighted(0.9, -5i32..5),
        )
    }

    proptest! {
        #[test]
        fn backfill_row_equals_at_bit_for_bit(
            rows in prop::collection::vec(event(), 0..40),
            offset in 0usize..5,
        ) {
            let windows = Windows::new(
                &[
                    spec("x", &ALL, &["1us", "5us", "16us"]),
                    spec("n", &[Agg::Sum, Agg::Mean, Agg::Max], &["7us"]),
                ],
                &strings(&["key"]),
                "ts",
            ).expect("valid");
            let full = RecordBatch::try_from_iter([
                ("key", Arc::new(rows.iter().map(|r| r.0).collect::<UInt8Array>()) as ArrayRef),
                ("ts", Arc::new(rows.iter().map(|r| r.1).collect::<Int64Array>()) as ArrayRef),
                ("x", Arc::new(rows.iter().map(|r| r.2).collect::<Float64Array>()) as ArrayRef),
                ("n", Arc::new(rows.iter().map(|r| r.3).collect::<Int32Array>()) as ArrayRef),
            ]).expect("equal lengths");
            let offset = offset.min(rows.len());
            let events = full.slice(offset, rows.len() - offset);
            let rows = &rows[offset..];
            let out = windows.backfill(&events).expect("backfill");
            prop_assert_eq!(out.num_rows(), rows.len());
            for (i, (key, ts, _, _)) in rows.iter().enumerate() {
                let (Some(key), Some(ts)) = (key, ts) else {
                    prop_assert!(row(&out, i).iter().all(Option::is_none));
                    continue;
                };
                let mine: Vec<bool> = rows.iter().map(|r| r.0 == Some(*key)).collect();
                let entity = filter_record_batch(&events, &mine.into()).expect("filter");
                let at = windows.at(&entity, *ts).expect("at");
                prop_assert_eq!(bits(&out, i), bits(&at, 0), "row {}", i);
            }
        }
    }
}
