//! `datetime-parts`: calendar features of timestamps, in the right time zone.
//!
//! For each listed column and each requested part, a `UInt8` column
//! `<column>_<part>` is added after the (kept) source column, parts in the
//! order `parts` lists them:
//!
//! | part           | range | meaning (pandas `Series.dt` accessor)  |
//! |----------------|-------|----------------------------------------|
//! | `hour`         | 0–23  | `dt.hour`                              |
//! | `day_of_week`  | 0–6   | `dt.dayofweek`: Monday 0 … Sunday 6    |
//! | `day_of_month` | 1–31  | `dt.day`                               |
//! | `month`        | 1–12  | `dt.month`                             |
//!
//! # Input types and time zones
//! - `Timestamp` of any unit (s, ms, µs, ns), before or after 1970. The
//!   values of a timestamp with a zone are UTC instants; the parts are those
//!   of the local time in that zone: an IANA name such as
//!   `America/New_York` (daylight saving applied, from the tz database
//!   compiled into the plugin by `chrono-tz`) or a fixed offset `+05:30`,
//!   `+0530` or `+05`. A timestamp without a zone is read as is (as UTC).
//! - `Date32` and `Date64`: the date's parts, `hour` 0 (`Date64` values that
//!   are not whole days give their hour). Dates have no zone and the
//!   `timezone` parameter does not apply to them.
//!
//! The `timezone` parameter overrides the zone of every timestamp column:
//! the values are read as UTC instants and the parts are those of the local
//! time in `timezone`, whether the column had a zone or not. Nulls stay null.
//!
//! # Parameters
//! ```json
//! {"columns": ["pickup_at"]}
//! {"columns": ["pickup_at", "dropoff_at"], "parts": ["hour", "day_of_week"], "timezone": "Europe/Paris"}
//! ```

use std::collections::BTreeSet;
use std::str::FromStr;
use std::sync::Arc;

use chrono::{DateTime, Offset, TimeZone};
use kiln_sdk::arrow_array::cast::AsArray;
use kiln_sdk::arrow_array::types::{
    Date32Type, Date64Type, TimestampMicrosecondType, TimestampMillisecondType,
    TimestampNanosecondType, TimestampSecondType,
};
use kiln_sdk::arrow_array::{Array, ArrayRef, RecordBatch, UInt8Array};
use kiln_sdk::arrow_schema::{DataType, Field, Schema, TimeUnit};
use kiln_sdk::{columns, Error, PluginInfo, Result, StatelessTransform};
use serde::Deserialize;

/// A calendar part to extract.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Part {
    /// Hour of the day, 0–23.
    Hour,
    /// Day of the week, Monday 0 to Sunday 6.
    DayOfWeek,
    /// Day of the month, 1–31.
    DayOfMonth,
    /// Month, 1–12.
    Month,
}

impl Part {
    /// All parts, in their default order.
    pub const ALL: [Part; 4] = [Part::Hour, Part::DayOfWeek, Part::DayOfMonth, Part::Month];

    /// Position in [`Part::ALL`] and in the array [`parts_of`] returns.
    fn index(self) -> usize {
        match self {
            Part::Hour => 0,
            Part::DayOfWeek => 1,
            Part::DayOfMonth => 2,
            Part::Month => 3,
        }
    }

    /// The name used in parameters and output column names.
    pub fn name(self) -> &'static str {
        match self {
            Part::Hour => "hour",
            Part::DayOfWeek => "day_of_week",
            Part::DayOfMonth => "day_of_month",
            Part::Month => "month",
        }
    }
}

fn all_parts() -> Vec<Part> {
    Part::ALL.to_vec()
}

/// Parameters of `datetime-parts`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Params {
    /// Timestamp, Date32 or Date64 columns.
    pub columns: Vec<String>,
    /// Parts to extract, in output order (default: all four).
    #[serde(default = "all_parts")]
    pub parts: Vec<Part>,
    /// A time zone (IANA name or fixed offset) overriding the columns' zones.
    #[serde(default)]
    pub timezone: Option<String>,
}

/// A parsed time zone.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Zone {
    /// No zone: values are taken as they are.
    Naive,
    /// A fixed offset east of UTC, in seconds.
    Fixed(i32),
    /// An IANA zone.
    Named(chrono_tz::Tz),
}

impl Zone {
    /// Parse an Arrow time zone string: a fixed offset `±HH:MM`, `±HHMM` or
    /// `±HH`, or an IANA name (case-sensitive, e.g. `Asia/Kolkata`, `UTC`).
    pub fn parse(s: &str) -> Option<Zone> {
        if let Some(rest) = s.strip_prefix('+').or_else(|| s.strip_prefix('-')) {
            let digits: [u8; 4] = match rest.as_bytes() {
                [h1, h2] => [*h1, *h2, b'0', b'0'],
                [h1, h2, m1, m2] | [h1, h2, b':', m1, m2] => [*h1, *h2, *m1, *m2],
                _ => return None,
            };
            if !digits.iter().all(u8::is_ascii_digit) {
                return None;
            }
            let d = digits.map(|b| i32::from(b - b'0'));
            let (h, m) = (d[0] * 10 + d[1], d[2] * 10 + d[3]);
            if h > 23 || m > 59 {
                return None;
            }
            let secs = h * 3600 + m * 60;
            return Some(Zone::Fixed(if s.starts_with('-') { -secs } else { secs }));
        }
        chrono_tz::Tz::from_str(s).ok().map(Zone::Named)
    }

    /// Local seconds since the epoch of the UTC instant `utc` (seconds), or
    /// `None` if that overflows `i64`.
    fn local(self, utc: i64) -> Option<i64> {
        let offset = match self {
            Zone::Naive => 0,
            Zone::Fixed(o) => o,
            Zone::Named(tz) => named_offset(tz, utc),
        };
        utc.checked_add(i64::from(offset))
    }
}

/// 2100-01-01T00:00:00Z. chrono-tz's transition tables stop before it.
const TABLES_END: i64 = 4_102_444_800;
/// 0001-01-01T00:00:00Z. No zone has a transition before it.
const TABLES_START: i64 = -62_135_596_800;

/// The UTC offset in seconds of `tz` at the UTC instant `utc` (seconds).
///
/// chrono-tz lists transitions up to 2099 and keeps the last offset after
/// that, where the tz database (and pandas through `zoneinfo`) goes on
/// applying the zone's current rule. An instant from 2100 on is therefore
/// moved, whole days at a time, to the year among 2072–2099 that is
/// calendar-identical to its own (same leap-ness, same weekday on January 1),
/// where the same rule gives the same offset. Instants before year 1 take the
/// offset of year 1 (local mean time: no zone has transitions that early),
/// so every `i64` instant has an offset.
fn named_offset(tz: chrono_tz::Tz, utc: i64) -> i32 {
    let probe = if utc >= TABLES_END {
        fold_into_tables(utc)
    } else {
        utc.max(TABLES_START)
    };
    let t = DateTime::from_timestamp(probe, 0)
        .expect("instants between year 1 and 2100 are in chrono's range")
        .naive_utc();
    tz.offset_from_utc_datetime(&t).fix().local_minus_utc()
}

/// `utc` (from 2100 on) moved by whole days into the calendar-identical year
/// among 2072–2099.
fn fold_into_tables(utc: i64) -> i64 {
    let days = utc.div_euclid(86_400);
    let (year, _, _) = civil(days);
    let jan1 = days_from_civil(year, 1, 1);
    let alike = |y: i64| {
        is_leap(y) == is_leap(year) && (days_from_civil(y, 1, 1) - jan1).rem_euclid(7) == 0
    };
    // Any 28 consecutive years without a skipped leap day hold every
    // (leap-ness, weekday) pair.
    let target = (2072..=2099)
        .find(|y| alike(*y))
        .expect("2072..=2099 holds every kind of year");
    utc - (jan1 - days_from_civil(target, 1, 1)) * 86_400
}

fn is_leap(y: i64) -> bool {
    y % 4 == 0 && (y % 100 != 0 || y % 400 == 0)
}

/// The parts of a local time given as seconds since 1970-01-01T00:00:00:
/// `[hour, day_of_week, day_of_month, month]`.
pub fn parts_of(local: i64) -> [u8; 4] {
    let days = local.div_euclid(86_400);
    let hour = local.rem_euclid(86_400) / 3600;
    // 1970-01-01 was a Thursday: 3 with Monday = 0.
    let dow = (days + 3).rem_euclid(7);
    let (_, month, day) = civil(days);
    [hour as u8, dow as u8, day, month]
}

/// Year, month and day of a day count since 1970-01-01 in the proleptic
/// Gregorian calendar (Howard Hinnant's `civil_from_days`; exact for any
/// `i64 / 86400`).
fn civil(days: i64) -> (i64, u8, u8) {
    let z = days + 719_468; // days since 0000-03-01
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097; // [0, 146096]
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365; // [0, 399]
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100); // [0, 365], from March 1
    let mp = (5 * doy + 2) / 153; // [0, 11], March = 0
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month as u8, day as u8)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Hinnant's
/// `days_from_civil`), the inverse of [`civil`].
fn days_from_civil(year: i64, month: u8, day: u8) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400; // [0, 399]
    let mp = (i64::from(month) + 9) % 12; // March = 0
    let doy = (153 * mp + 2) / 5 + i64::from(day) - 1; // [0, 365]
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy; // [0, 146096]
    era * 146_097 + doe - 719_468
}

/// The configured transform.
pub struct DatetimeParts {
    columns: Vec<String>,
    parts: Vec<Part>,
    timezone: Option<Zone>,
}

const EXPECTED: &str = "Timestamp (any unit, with or without time zone), Date32 or Date64";

impl DatetimeParts {
    /// The zone to compute column `c` of type `t` in, after checking the type.
    fn zone(&self, c: &str, t: &DataType) -> Result<Zone> {
        match (t, self.timezone) {
            (DataType::Date32 | DataType::Date64, _) => Ok(Zone::Naive),
            (DataType::Timestamp(_, _), Some(z)) => Ok(z),
            (DataType::Timestamp(_, None), None) => Ok(Zone::Naive),
            (DataType::Timestamp(_, Some(tz)), None) => Zone::parse(tz).ok_or_else(|| {
                Error::column(
                    c,
                    format!("unknown time zone '{tz}': expected an IANA name like 'Europe/Paris' or an offset like '+05:30'; set `timezone` to override it"),
                )
            }),
            (other, _) => Err(columns::wrong_type(c, EXPECTED, other)),
        }
    }

    /// The output fields for column `c` of `schema`, after checking its type
    /// and that their names are free.
    fn out_fields(&self, schema: &Schema, c: &str) -> Result<Vec<Field>> {
        let f = columns::field(schema, c)?;
        self.zone(c, f.data_type())?;
        self.parts
            .iter()
            .map(|p| {
                let name = format!("{c}_{}", p.name());
                if schema.field_with_name(&name).is_ok() {
                    return Err(Error::column(
                        c,
                        format!(
                            "the output column '{name}' already exists; rename or drop it first"
                        ),
                    ));
                }
                Ok(Field::new(name, DataType::UInt8, f.is_nullable()))
            })
            .collect()
    }

    /// The requested parts of column `c` of `batch`, one array per part.
    fn compute(&self, batch: &RecordBatch, c: &str) -> Result<Vec<ArrayRef>> {
        let a = columns::column(batch, c)?;
        let zone = self.zone(c, a.data_type())?;
        // Seconds since the epoch of each value, by floor division, so that
        // an instant before 1970 falls in the second (hour, day) it is in.
        let all = match a.data_type() {
            DataType::Timestamp(TimeUnit::Second, _) => {
                let v = a.as_primitive::<TimestampSecondType>().values();
                parts_per_row(a.as_ref(), c, zone, |i| v[i])?
            }
            DataType::Timestamp(TimeUnit::Millisecond, _) => {
                let v = a.as_primitive::<TimestampMillisecondType>().values();
                parts_per_row(a.as_ref(), c, zone, |i| v[i].div_euclid(1_000))?
            }
            DataType::Timestamp(TimeUnit::Microsecond, _) => {
                let v = a.as_primitive::<TimestampMicrosecondType>().values();
                parts_per_row(a.as_ref(), c, zone, |i| v[i].div_euclid(1_000_000))?
            }
            DataType::Timestamp(TimeUnit::Nanosecond, _) => {
                let v = a.as_primitive::<TimestampNanosecondType>().values();
                parts_per_row(a.as_ref(), c, zone, |i| v[i].div_euclid(1_000_000_000))?
            }
            DataType::Date32 => {
                let v = a.as_primitive::<Date32Type>().values();
                parts_per_row(a.as_ref(), c, zone, |i| i64::from(v[i]) * 86_400)?
            }
            DataType::Date64 => {
                let v = a.as_primitive::<Date64Type>().values();
                parts_per_row(a.as_ref(), c, zone, |i| v[i].div_euclid(1_000))?
            }
            other => return Err(columns::wrong_type(c, EXPECTED, other)),
        };
        let mut all = all.map(Some);
        Ok(self
            .parts
            .iter()
            .map(|p| {
                let values = all[p.index()].take().expect("parts are distinct");
                Arc::new(UInt8Array::new(values.into(), a.nulls().cloned())) as ArrayRef
            })
            .collect())
    }
}

/// All four parts of every row of `a` (0 in null slots), where `seconds(i)`
/// is the UTC (or naive) seconds of row `i`, converted to local time in `zone`.
fn parts_per_row(
    a: &dyn Array,
    column: &str,
    zone: Zone,
    seconds: impl Fn(usize) -> i64,
) -> Result<[Vec<u8>; 4]> {
    let mut out: [Vec<u8>; 4] = std::array::from_fn(|_| Vec::with_capacity(a.len()));
    for row in 0..a.len() {
        // Null slots hold arbitrary values: do not convert them.
        let p = if a.is_null(row) {
            [0; 4]
        } else {
            let local = zone.local(seconds(row)).ok_or_else(|| {
                Error::value(column, row, "the local time overflows 64-bit seconds")
            })?;
            parts_of(local)
        };
        for (o, v) in out.iter_mut().zip(p) {
            o.push(v);
        }
    }
    Ok(out)
}

impl StatelessTransform for DatetimeParts {
    type Params = Params;

    fn info() -> PluginInfo {
        PluginInfo::new(
            "datetime-parts",
            env!("CARGO_PKG_VERSION"),
            "Add UInt8 columns <column>_hour, _day_of_week (Monday=0), _day_of_month and _month of timestamp or date columns, in the column's time zone (IANA or fixed offset) or `timezone`.",
        )
        .with_params_schema(
            r#"{"type":"object","required":["columns"],"additionalProperties":false,"properties":{"columns":{"type":"array","items":{"type":"string"},"minItems":1,"uniqueItems":true,"description":"Timestamp (any unit, any zone), Date32 or Date64 columns"},"parts":{"type":"array","items":{"enum":["hour","day_of_week","day_of_month","month"]},"minItems":1,"uniqueItems":true,"default":["hour","day_of_week","day_of_month","month"],"description":"parts to add as <column>_<part> (UInt8), in this order; day_of_week is Monday=0..Sunday=6"},"timezone":{"type":"string","description":"IANA name (e.g. America/New_York) or fixed offset (+05:30) overriding the zone of timestamp columns; values are read as UTC instants"}}}"#,
        )
    }

    fn new(params: Params) -> Result<Self> {
        if params.columns.is_empty() {
            return Err(Error::InvalidParams("`columns` lists no column".into()));
        }
        let mut seen = BTreeSet::new();
        if let Some(dup) = params.columns.iter().find(|c| !seen.insert(c.as_str())) {
            return Err(Error::InvalidParams(format!(
                "`columns` lists '{dup}' twice"
            )));
        }
        if params.parts.is_empty() {
            return Err(Error::InvalidParams("`parts` lists no part".into()));
        }
        let mut seen = BTreeSet::new();
        if let Some(dup) = params.parts.iter().find(|p| !seen.insert(**p)) {
            return Err(Error::InvalidParams(format!(
                "`parts` lists '{}' twice",
                dup.name()
            )));
        }
        let timezone = match &params.timezone {
            None => None,
            Some(tz) => Some(Zone::parse(tz).ok_or_else(|| {
                Error::InvalidParams(format!(
                    "`timezone` '{tz}' is neither an IANA name like 'America/New_York' nor an offset like '+05:30'"
                ))
            })?),
        };
        Ok(DatetimeParts {
            columns: params.columns,
            parts: params.parts,
            timezone,
        })
    }

    fn output_schema(&self, input: &Schema) -> Result<Schema> {
        let mut schema = input.clone();
        for c in &self.columns {
            let new = self.out_fields(&schema, c)?;
            schema = columns::splice_schema(&schema, c, new, true)?;
        }
        Ok(schema)
    }

    fn transform(&self, batch: &RecordBatch) -> Result<RecordBatch> {
        let mut batch = batch.clone();
        for c in &self.columns {
            let fields = self.out_fields(batch.schema_ref(), c)?;
            let arrays = self.compute(&batch, c)?;
            batch = columns::splice(&batch, c, fields.into_iter().zip(arrays).collect(), true)?;
        }
        Ok(batch)
    }
}

kiln_sdk::export!(DatetimeParts);

#[cfg(test)]
mod tests {
    use super::*;
    use kiln_sdk::arrow_array::types::UInt8Type;
    use kiln_sdk::arrow_array::{
        Date32Array, Date64Array, Float64Array, StringArray, TimestampMicrosecondArray,
        TimestampMillisecondArray, TimestampNanosecondArray, TimestampSecondArray,
    };
    use kiln_sdk::testing;

    const ALL: &str = r#"{"columns":["t"]}"#;

    /// The four parts of column `t` of `out`, row by row.
    fn parts(out: &RecordBatch) -> Vec<Option<[u8; 4]>> {
        let cols: Vec<Vec<Option<u8>>> = Part::ALL
            .iter()
            .map(|p| {
                let a = columns::column(out, &format!("t_{}", p.name())).unwrap();
                assert_eq!(a.data_type(), &DataType::UInt8);
                a.as_primitive::<UInt8Type>().iter().collect()
            })
            .collect();
        (0..out.num_rows())
            .map(|i| {
                let row: Vec<Option<u8>> = cols.iter().map(|c| c[i]).collect();
                match row[..] {
                    [Some(h), Some(w), Some(d), Some(m)] => Some([h, w, d, m]),
                    [None, None, None, None] => None,
                    _ => panic!("row {i} is null in some parts only: {row:?}"),
                }
            })
            .collect()
    }

    fn run(params: &str, a: ArrayRef) -> Result<Vec<Option<[u8; 4]>>> {
        testing::apply::<DatetimeParts>(params, None, &testing::batch(vec![("t", a)]))
            .map(|out| parts(&out))
    }

    fn secs(values: &[i64], zone: &str) -> ArrayRef {
        let a = TimestampSecondArray::from(values.to_vec());
        Arc::new(if zone.is_empty() {
            a
        } else {
            a.with_timezone(zone)
        })
    }

    /// `[hour, day_of_week, day_of_month, month]` of UTC instants (seconds)
    /// in a zone (`""`: no zone). Expected values from pandas 3.1.1:
    /// `s.dt.tz_localize("UTC").dt.tz_convert(zone)` then `.dt.hour`,
    /// `.dt.day_of_week`, `.dt.day`, `.dt.month` (fixed offsets as
    /// `datetime.timezone`; no zone: the naive series as is). Rows where
    /// Python cannot represent the local time (after year 9999) are left out.
    #[rustfmt::skip]
    const PANDAS: &[(&str, i64, [u8; 4])] = &[
            ("", 1710053999, [6, 6, 10, 3]), // 2024-03-10T06:59:59Z
            ("", 1710054000, [7, 6, 10, 3]), // 2024-03-10T07:00:00Z
            ("", 1730613599, [5, 6, 3, 11]), // 2024-11-03T05:59:59Z
            ("", 1730613600, [6, 6, 3, 11]), // 2024-11-03T06:00:00Z
            ("", -1, [23, 2, 31, 12]), // 1969-12-31T23:59:59Z
            ("", -14182940, [20, 6, 20, 7]), // 1969-07-20T20:17:40Z
            ("", 0, [0, 3, 1, 1]), // 1970-01-01T00:00:00Z
            ("", -2208988800, [0, 0, 1, 1]), // 1900-01-01T00:00:00Z
            ("", -3772526400, [12, 5, 15, 6]), // 1850-06-15T12:00:00Z
            ("", 951867000, [23, 1, 29, 2]), // 2000-02-29T23:30:00Z
            ("", 4107535200, [22, 6, 28, 2]), // 2100-02-28T22:00:00Z
            ("", 4107546000, [1, 0, 1, 3]), // 2100-03-01T01:00:00Z
            ("", 2147483648, [3, 1, 19, 1]), // 2038-01-19T03:14:08Z
            ("", 5696236800, [16, 5, 4, 7]), // 2150-07-04T16:00:00Z
            ("", -62135596800, [0, 0, 1, 1]), // 0001-01-01T00:00:00Z
            ("", 253402300799, [23, 4, 31, 12]), // 9999-12-31T23:59:59Z
            ("", 1704047400, [18, 6, 31, 12]), // 2023-12-31T18:30:00Z
            ("", -11670955200, [12, 1, 29, 2]), // 1600-02-29T12:00:00Z
            ("", 1712419199, [15, 5, 6, 4]), // 2024-04-06T15:59:59Z
            ("", 1712419200, [16, 5, 6, 4]), // 2024-04-06T16:00:00Z
            ("UTC", 1710053999, [6, 6, 10, 3]), // 2024-03-10T06:59:59Z
            ("UTC", 1710054000, [7, 6, 10, 3]), // 2024-03-10T07:00:00Z
            ("UTC", 1730613599, [5, 6, 3, 11]), // 2024-11-03T05:59:59Z
            ("UTC", 1730613600, [6, 6, 3, 11]), // 2024-11-03T06:00:00Z
            ("UTC", -1, [23, 2, 31, 12]), // 1969-12-31T23:59:59Z
            ("UTC", -14182940, [20, 6, 20, 7]), // 1969-07-20T20:17:40Z
            ("UTC", 0, [0, 3, 1, 1]), // 1970-01-01T00:00:00Z
            ("UTC", -2208988800, [0, 0, 1, 1]), // 1900-01-01T00:00:00Z
            ("UTC", -3772526400, [12, 5, 15, 6]), // 1850-06-15T12:00:00Z
            ("UTC", 951867000, [23, 1, 29, 2]), // 2000-02-29T23:30:00Z
            ("UTC", 4107535200, [22, 6, 28, 2]), // 2100-02-28T22:00:00Z
            ("UTC", 4107546000, [1, 0, 1, 3]), // 2100-03-01T01:00:00Z
            ("UTC", 2147483648, [3, 1, 19, 1]), // 2038-01-19T03:14:08Z
            ("UTC", 5696236800, [16, 5, 4, 7]), // 2150-07-04T16:00:00Z
            ("UTC", -62135596800, [0, 0, 1, 1]), // 0001-01-01T00:00:00Z
            ("UTC", 253402300799, [23, 4, 31, 12]), // 9999-12-31T23:59:59Z
            ("UTC", 1704047400, [18, 6, 31, 12]), // 2023-12-31T18:30:00Z
            ("UTC", -11670955200, [12, 1, 29, 2]), // 1600-02-29T12:00:00Z
            ("UTC", 1712419199, [15, 5, 6, 4]), // 2024-04-06T15:59:59Z
            ("UTC", 1712419200, [16, 5, 6, 4]), // 2024-04-06T16:00:00Z
            ("America/New_York", 1710053999, [1, 6, 10, 3]), // 2024-03-10T06:59:59Z
            ("America/New_York", 1710054000, [3, 6, 10, 3]), // 2024-03-10T07:00:00Z
            ("America/New_York", 1730613599, [1, 6, 3, 11]), // 2024-11-03T05:59:59Z
            ("America/New_York", 1730613600, [1, 6, 3, 11]), // 2024-11-03T06:00:00Z
            ("America/New_York", -1, [18, 2, 31, 12]), // 1969-12-31T23:59:59Z
            ("America/New_York", -14182940, [16, 6, 20, 7]), // 1969-07-20T20:17:40Z
            ("America/New_York", 0, [19, 2, 31, 12]), // 1970-01-01T00:00:00Z
            ("America/New_York", -2208988800, [19, 6, 31, 12]), // 1900-01-01T00:00:00Z
            ("America/New_York", -3772526400, [7, 5, 15, 6]), // 1850-06-15T12:00:00Z
            ("America/New_York", 951867000, [18, 1, 29, 2]), // 2000-02-29T23:30:00Z
            ("America/New_York", 4107535200, [17, 6, 28, 2]), // 2100-02-28T22:00:00Z
            ("America/New_York", 4107546000, [20, 6, 28, 2]), // 2100-03-01T01:00:00Z
            ("America/New_York", 2147483648, [22, 0, 18, 1]), // 2038-01-19T03:14:08Z
            ("America/New_York", 5696236800, [12, 5, 4, 7]), // 2150-07-04T16:00:00Z
            ("America/New_York", -62135596800, [19, 6, 31, 12]), // 0001-01-01T00:00:00Z
            ("America/New_York", 253402300799, [18, 4, 31, 12]), // 9999-12-31T23:59:59Z
            ("America/New_York", 1704047400, [13, 6, 31, 12]), // 2023-12-31T18:30:00Z
            ("America/New_York", -11670955200, [7, 1, 29, 2]), // 1600-02-29T12:00:00Z
            ("America/New_York", 1712419199, [11, 5, 6, 4]), // 2024-04-06T15:59:59Z
            ("America/New_York", 1712419200, [12, 5, 6, 4]), // 2024-04-06T16:00:00Z
            ("Asia/Kolkata", 1710053999, [12, 6, 10, 3]), // 2024-03-10T06:59:59Z
            ("Asia/Kolkata", 1710054000, [12, 6, 10, 3]), // 2024-03-10T07:00:00Z
            ("Asia/Kolkata", 1730613599, [11, 6, 3, 11]), // 2024-11-03T05:59:59Z
            ("Asia/Kolkata", 1730613600, [11, 6, 3, 11]), // 2024-11-03T06:00:00Z
            ("Asia/Kolkata", -1, [5, 3, 1, 1]), // 1969-12-31T23:59:59Z
            ("Asia/Kolkata", -14182940, [1, 0, 21, 7]), // 1969-07-20T20:17:40Z
            ("Asia/Kolkata", 0, [5, 3, 1, 1]), // 1970-01-01T00:00:00Z
            ("Asia/Kolkata", -2208988800, [5, 0, 1, 1]), // 1900-01-01T00:00:00Z
            ("Asia/Kolkata", -3772526400, [17, 5, 15, 6]), // 1850-06-15T12:00:00Z
            ("Asia/Kolkata", 951867000, [5, 2, 1, 3]), // 2000-02-29T23:30:00Z
            ("Asia/Kolkata", 4107535200, [3, 0, 1, 3]), // 2100-02-28T22:00:00Z
            ("Asia/Kolkata", 4107546000, [6, 0, 1, 3]), // 2100-03-01T01:00:00Z
            ("Asia/Kolkata", 2147483648, [8, 1, 19, 1]), // 2038-01-19T03:14:08Z
            ("Asia/Kolkata", 5696236800, [21, 5, 4, 7]), // 2150-07-04T16:00:00Z
            ("Asia/Kolkata", -62135596800, [5, 0, 1, 1]), // 0001-01-01T00:00:00Z
            ("Asia/Kolkata", 253402300799, [5, 5, 1, 1]), // 9999-12-31T23:59:59Z
            ("Asia/Kolkata", 1704047400, [0, 0, 1, 1]), // 2023-12-31T18:30:00Z
            ("Asia/Kolkata", -11670955200, [17, 1, 29, 2]), // 1600-02-29T12:00:00Z
            ("Asia/Kolkata", 1712419199, [21, 5, 6, 4]), // 2024-04-06T15:59:59Z
            ("Asia/Kolkata", 1712419200, [21, 5, 6, 4]), // 2024-04-06T16:00:00Z
            ("Asia/Kathmandu", 1710053999, [12, 6, 10, 3]), // 2024-03-10T06:59:59Z
            ("Asia/Kathmandu", 1710054000, [12, 6, 10, 3]), // 2024-03-10T07:00:00Z
            ("Asia/Kathmandu", 1730613599, [11, 6, 3, 11]), // 2024-11-03T05:59:59Z
            ("Asia/Kathmandu", 1730613600, [11, 6, 3, 11]), // 2024-11-03T06:00:00Z
            ("Asia/Kathmandu", -1, [5, 3, 1, 1]), // 1969-12-31T23:59:59Z
            ("Asia/Kathmandu", -14182940, [1, 0, 21, 7]), // 1969-07-20T20:17:40Z
            ("Asia/Kathmandu", 0, [5, 3, 1, 1]), // 1970-01-01T00:00:00Z
            ("Asia/Kathmandu", -2208988800, [5, 0, 1, 1]), // 1900-01-01T00:00:00Z
            ("Asia/Kathmandu", -3772526400, [17, 5, 15, 6]), // 1850-06-15T12:00:00Z
            ("Asia/Kathmandu", 951867000, [5, 2, 1, 3]), // 2000-02-29T23:30:00Z
            ("Asia/Kathmandu", 4107535200, [3, 0, 1, 3]), // 2100-02-28T22:00:00Z
            ("Asia/Kathmandu", 4107546000, [6, 0, 1, 3]), // 2100-03-01T01:00:00Z
            ("Asia/Kathmandu", 2147483648, [8, 1, 19, 1]), // 2038-01-19T03:14:08Z
            ("Asia/Kathmandu", 5696236800, [21, 5, 4, 7]), // 2150-07-04T16:00:00Z
            ("Asia/Kathmandu", -62135596800, [5, 0, 1, 1]), // 0001-01-01T00:00:00Z
            ("Asia/Kathmandu", 253402300799, [5, 5, 1, 1]), // 9999-12-31T23:59:59Z
            ("Asia/Kathmandu", 1704047400, [0, 0, 1, 1]), // 2023-12-31T18:30:00Z
            ("Asia/Kathmandu", -11670955200, [17, 1, 29, 2]), // 1600-02-29T12:00:00Z
            ("Asia/Kathmandu", 1712419199, [21, 5, 6, 4]), // 2024-04-06T15:59:59Z
            ("Asia/Kathmandu", 1712419200, [21, 5, 6, 4]), // 2024-04-06T16:00:00Z
            ("Australia/Lord_Howe", 1710053999, [17, 6, 10, 3]), // 2024-03-10T06:59:59Z
            ("Australia/Lord_Howe", 1710054000, [18, 6, 10, 3]), // 2024-03-10T07:00:00Z
            ("Australia/Lord_Howe", 1730613599, [16, 6, 3, 11]), // 2024-11-03T05:59:59Z
            ("Australia/Lord_Howe", 1730613600, [17, 6, 3, 11]), // 2024-11-03T06:00:00Z
            ("Australia/Lord_Howe", -1, [9, 3, 1, 1]), // 1969-12-31T23:59:59Z
            ("Australia/Lord_Howe", -14182940, [6, 0, 21, 7]), // 1969-07-20T20:17:40Z
            ("Australia/Lord_Howe", 0, [10, 3, 1, 1]), // 1970-01-01T00:00:00Z
            ("Australia/Lord_Howe", -2208988800, [10, 0, 1, 1]), // 1900-01-01T00:00:00Z
            ("Australia/Lord_Howe", -3772526400, [22, 5, 15, 6]), // 1850-06-15T12:00:00Z
            ("Australia/Lord_Howe", 951867000, [10, 2, 1, 3]), // 2000-02-29T23:30:00Z
            ("Australia/Lord_Howe", 4107535200, [9, 0, 1, 3]), // 2100-02-28T22:00:00Z
            ("Australia/Lord_Howe", 4107546000, [12, 0, 1, 3]), // 2100-03-01T01:00:00Z
            ("Australia/Lord_Howe", 2147483648, [14, 1, 19, 1]), // 2038-01-19T03:14:08Z
            ("Australia/Lord_Howe", 5696236800, [2, 6, 5, 7]), // 2150-07-04T16:00:00Z
            ("Australia/Lord_Howe", -62135596800, [10, 0, 1, 1]), // 0001-01-01T00:00:00Z
            ("Australia/Lord_Howe", 1704047400, [5, 0, 1, 1]), // 2023-12-31T18:30:00Z
            ("Australia/Lord_Howe", -11670955200, [22, 1, 29, 2]), // 1600-02-29T12:00:00Z
            ("Australia/Lord_Howe", 1712419199, [2, 6, 7, 4]), // 2024-04-06T15:59:59Z
            ("Australia/Lord_Howe", 1712419200, [2, 6, 7, 4]), // 2024-04-06T16:00:00Z
            ("Europe/London", 1710053999, [6, 6, 10, 3]), // 2024-03-10T06:59:59Z
            ("Europe/London", 1710054000, [7, 6, 10, 3]), // 2024-03-10T07:00:00Z
            ("Europe/London", 1730613599, [5, 6, 3, 11]), // 2024-11-03T05:59:59Z
            ("Europe/London", 1730613600, [6, 6, 3, 11]), // 2024-11-03T06:00:00Z
            ("Europe/London", -1, [0, 3, 1, 1]), // 1969-12-31T23:59:59Z
            ("Europe/London", -14182940, [21, 6, 20, 7]), // 1969-07-20T20:17:40Z
            ("Europe/London", 0, [1, 3, 1, 1]), // 1970-01-01T00:00:00Z
            ("Europe/London", -2208988800, [0, 0, 1, 1]), // 1900-01-01T00:00:00Z
            ("Europe/London", -3772526400, [12, 5, 15, 6]), // 1850-06-15T12:00:00Z
            ("Europe/London", 951867000, [23, 1, 29, 2]), // 2000-02-29T23:30:00Z
            ("Europe/London", 4107535200, [22, 6, 28, 2]), // 2100-02-28T22:00:00Z
            ("Europe/London", 4107546000, [1, 0, 1, 3]), // 2100-03-01T01:00:00Z
            ("Europe/London", 2147483648, [3, 1, 19, 1]), // 2038-01-19T03:14:08Z
            ("Europe/London", 5696236800, [17, 5, 4, 7]), // 2150-07-04T16:00:00Z
            ("Europe/London", -62135596800, [23, 6, 31, 12]), // 0001-01-01T00:00:00Z
            ("Europe/London", 253402300799, [23, 4, 31, 12]), // 9999-12-31T23:59:59Z
            ("Europe/London", 1704047400, [18, 6, 31, 12]), // 2023-12-31T18:30:00Z
            ("Europe/London", -11670955200, [11, 1, 29, 2]), // 1600-02-29T12:00:00Z
            ("Europe/London", 1712419199, [16, 5, 6, 4]), // 2024-04-06T15:59:59Z
            ("Europe/London", 1712419200, [17, 5, 6, 4]), // 2024-04-06T16:00:00Z
            ("Pacific/Chatham", 1710053999, [20, 6, 10, 3]), // 2024-03-10T06:59:59Z
            ("Pacific/Chatham", 1710054000, [20, 6, 10, 3]), // 2024-03-10T07:00:00Z
            ("Pacific/Chatham", 1730613599, [19, 6, 3, 11]), // 2024-11-03T05:59:59Z
            ("Pacific/Chatham", 1730613600, [19, 6, 3, 11]), // 2024-11-03T06:00:00Z
            ("Pacific/Chatham", -1, [12, 3, 1, 1]), // 1969-12-31T23:59:59Z
            ("Pacific/Chatham", -14182940, [9, 0, 21, 7]), // 1969-07-20T20:17:40Z
            ("Pacific/Chatham", 0, [12, 3, 1, 1]), // 1970-01-01T00:00:00Z
            ("Pacific/Chatham", -2208988800, [12, 0, 1, 1]), // 1900-01-01T00:00:00Z
            ("Pacific/Chatham", -3772526400, [0, 6, 16, 6]), // 1850-06-15T12:00:00Z
            ("Pacific/Chatham", 951867000, [13, 2, 1, 3]), // 2000-02-29T23:30:00Z
            ("Pacific/Chatham", 4107535200, [11, 0, 1, 3]), // 2100-02-28T22:00:00Z
            ("Pacific/Chatham", 4107546000, [14, 0, 1, 3]), // 2100-03-01T01:00:00Z
            ("Pacific/Chatham", 2147483648, [16, 1, 19, 1]), // 2038-01-19T03:14:08Z
            ("Pacific/Chatham", 5696236800, [4, 6, 5, 7]), // 2150-07-04T16:00:00Z
            ("Pacific/Chatham", -62135596800, [12, 0, 1, 1]), // 0001-01-01T00:00:00Z
            ("Pacific/Chatham", 1704047400, [8, 0, 1, 1]), // 2023-12-31T18:30:00Z
            ("Pacific/Chatham", -11670955200, [0, 2, 1, 3]), // 1600-02-29T12:00:00Z
            ("Pacific/Chatham", 1712419199, [4, 6, 7, 4]), // 2024-04-06T15:59:59Z
            ("Pacific/Chatham", 1712419200, [4, 6, 7, 4]), // 2024-04-06T16:00:00Z
            ("+05:30", 1710053999, [12, 6, 10, 3]), // 2024-03-10T06:59:59Z
            ("+05:30", 1710054000, [12, 6, 10, 3]), // 2024-03-10T07:00:00Z
            ("+05:30", 1730613599, [11, 6, 3, 11]), // 2024-11-03T05:59:59Z
            ("+05:30", 1730613600, [11, 6, 3, 11]), // 2024-11-03T06:00:00Z
            ("+05:30", -1, [5, 3, 1, 1]), // 1969-12-31T23:59:59Z
            ("+05:30", -14182940, [1, 0, 21, 7]), // 1969-07-20T20:17:40Z
            ("+05:30", 0, [5, 3, 1, 1]), // 1970-01-01T00:00:00Z
            ("+05:30", -2208988800, [5, 0, 1, 1]), // 1900-01-01T00:00:00Z
            ("+05:30", -3772526400, [17, 5, 15, 6]), // 1850-06-15T12:00:00Z
            ("+05:30", 951867000, [5, 2, 1, 3]), // 2000-02-29T23:30:00Z
            ("+05:30", 4107535200, [3, 0, 1, 3]), // 2100-02-28T22:00:00Z
            ("+05:30", 4107546000, [6, 0, 1, 3]), // 2100-03-01T01:00:00Z
            ("+05:30", 2147483648, [8, 1, 19, 1]), // 2038-01-19T03:14:08Z
            ("+05:30", 5696236800, [21, 5, 4, 7]), // 2150-07-04T16:00:00Z
            ("+05:30", -62135596800, [5, 0, 1, 1]), // 0001-01-01T00:00:00Z
            ("+05:30", 253402300799, [5, 5, 1, 1]), // 9999-12-31T23:59:59Z
            ("+05:30", 1704047400, [0, 0, 1, 1]), // 2023-12-31T18:30:00Z
            ("+05:30", -11670955200, [17, 1, 29, 2]), // 1600-02-29T12:00:00Z
            ("+05:30", 1712419199, [21, 5, 6, 4]), // 2024-04-06T15:59:59Z
            ("+05:30", 1712419200, [21, 5, 6, 4]), // 2024-04-06T16:00:00Z
            ("-08:00", 1710053999, [22, 5, 9, 3]), // 2024-03-10T06:59:59Z
            ("-08:00", 1710054000, [23, 5, 9, 3]), // 2024-03-10T07:00:00Z
            ("-08:00", 1730613599, [21, 5, 2, 11]), // 2024-11-03T05:59:59Z
            ("-08:00", 1730613600, [22, 5, 2, 11]), // 2024-11-03T06:00:00Z
            ("-08:00", -1, [15, 2, 31, 12]), // 1969-12-31T23:59:59Z
            ("-08:00", -14182940, [12, 6, 20, 7]), // 1969-07-20T20:17:40Z
            ("-08:00", 0, [16, 2, 31, 12]), // 1970-01-01T00:00:00Z
            ("-08:00", -2208988800, [16, 6, 31, 12]), // 1900-01-01T00:00:00Z
            ("-08:00", -3772526400, [4, 5, 15, 6]), // 1850-06-15T12:00:00Z
            ("-08:00", 951867000, [15, 1, 29, 2]), // 2000-02-29T23:30:00Z
            ("-08:00", 4107535200, [14, 6, 28, 2]), // 2100-02-28T22:00:00Z
            ("-08:00", 4107546000, [17, 6, 28, 2]), // 2100-03-01T01:00:00Z
            ("-08:00", 2147483648, [19, 0, 18, 1]), // 2038-01-19T03:14:08Z
            ("-08:00", 5696236800, [8, 5, 4, 7]), // 2150-07-04T16:00:00Z
            ("-08:00", -62135596800, [16, 6, 31, 12]), // 0001-01-01T00:00:00Z
            ("-08:00", 253402300799, [15, 4, 31, 12]), // 9999-12-31T23:59:59Z
            ("-08:00", 1704047400, [10, 6, 31, 12]), // 2023-12-31T18:30:00Z
            ("-08:00", -11670955200, [4, 1, 29, 2]), // 1600-02-29T12:00:00Z
            ("-08:00", 1712419199, [7, 5, 6, 4]), // 2024-04-06T15:59:59Z
            ("-08:00", 1712419200, [8, 5, 6, 4]), // 2024-04-06T16:00:00Z
            ("+0545", 1710053999, [12, 6, 10, 3]), // 2024-03-10T06:59:59Z
            ("+0545", 1710054000, [12, 6, 10, 3]), // 2024-03-10T07:00:00Z
            ("+0545", 1730613599, [11, 6, 3, 11]), // 2024-11-03T05:59:59Z
            ("+0545", 1730613600, [11, 6, 3, 11]), // 2024-11-03T06:00:00Z
            ("+0545", -1, [5, 3, 1, 1]), // 1969-12-31T23:59:59Z
            ("+0545", -14182940, [2, 0, 21, 7]), // 1969-07-20T20:17:40Z
            ("+0545", 0, [5, 3, 1, 1]), // 1970-01-01T00:00:00Z
            ("+0545", -2208988800, [5, 0, 1, 1]), // 1900-01-01T00:00:00Z
            ("+0545", -3772526400, [17, 5, 15, 6]), // 1850-06-15T12:00:00Z
            ("+0545", 951867000, [5, 2, 1, 3]), // 2000-02-29T23:30:00Z
            ("+0545", 4107535200, [3, 0, 1, 3]), // 2100-02-28T22:00:00Z
            ("+0545", 4107546000, [6, 0, 1, 3]), // 2100-03-01T01:00:00Z
            ("+0545", 2147483648, [8, 1, 19, 1]), // 2038-01-19T03:14:08Z
            ("+0545", 5696236800, [21, 5, 4, 7]), // 2150-07-04T16:00:00Z
            ("+0545", -62135596800, [5, 0, 1, 1]), // 0001-01-01T00:00:00Z
            ("+0545", 253402300799, [5, 5, 1, 1]), // 9999-12-31T23:59:59Z
            ("+0545", 1704047400, [0, 0, 1, 1]), // 2023-12-31T18:30:00Z
            ("+0545", -11670955200, [17, 1, 29, 2]), // 1600-02-29T12:00:00Z
            ("+0545", 1712419199, [21, 5, 6, 4]), // 2024-04-06T15:59:59Z
            ("+0545", 1712419200, [21, 5, 6, 4]), // 2024-04-06T16:00:00Z
            ("-03", 1710053999, [3, 6, 10, 3]), // 2024-03-10T06:59:59Z
            ("-03", 1710054000, [4, 6, 10, 3]), // 2024-03-10T07:00:00Z
            ("-03", 1730613599, [2, 6, 3, 11]), // 2024-11-03T05:59:59Z
            ("-03", 1730613600, [3, 6, 3, 11]), // 2024-11-03T06:00:00Z
            ("-03", -1, [20, 2, 31, 12]), // 1969-12-31T23:59:59Z
            ("-03", -14182940, [17, 6, 20, 7]), // 1969-07-20T20:17:40Z
            ("-03", 0, [21, 2, 31, 12]), // 1970-01-01T00:00:00Z
            ("-03", -2208988800, [21, 6, 31, 12]), // 1900-01-01T00:00:00Z
            ("-03", -3772526400, [9, 5, 15, 6]), // 1850-06-15T12:00:00Z
            ("-03", 951867000, [20, 1, 29, 2]), // 2000-02-29T23:30:00Z
            ("-03", 4107535200, [19, 6, 28, 2]), // 2100-02-28T22:00:00Z
            ("-03", 4107546000, [22, 6, 28, 2]), // 2100-03-01T01:00:00Z
            ("-03", 2147483648, [0, 1, 19, 1]), // 2038-01-19T03:14:08Z
            ("-03", 5696236800, [13, 5, 4, 7]), // 2150-07-04T16:00:00Z
            ("-03", -62135596800, [21, 6, 31, 12]), // 0001-01-01T00:00:00Z
            ("-03", 253402300799, [20, 4, 31, 12]), // 9999-12-31T23:59:59Z
            ("-03", 1704047400, [15, 6, 31, 12]), // 2023-12-31T18:30:00Z
            ("-03", -11670955200, [9, 1, 29, 2]), // 1600-02-29T12:00:00Z
            ("-03", 1712419199, [12, 5, 6, 4]), // 2024-04-06T15:59:59Z
            ("-03", 1712419200, [13, 5, 6, 4]), // 2024-04-06T16:00:00Z
        // Daylight-saving transitions after 2099, where chrono-tz's tables end
        // (the second before and the second of each switch, found and
        // converted with Python's zoneinfo / pandas 3.1.1).
            ("America/New_York", 4140140399, [1, 6, 13, 3]), // 2101-03-13T06:59:59Z -> 2101-03-13 01:59:59-05:00
            ("America/New_York", 4140140400, [3, 6, 13, 3]), // 2101-03-13T07:00:00Z -> 2101-03-13 03:00:00-04:00
            ("America/New_York", 4160699999, [1, 6, 6, 11]), // 2101-11-06T05:59:59Z -> 2101-11-06 01:59:59-04:00
            ("America/New_York", 4160700000, [1, 6, 6, 11]), // 2101-11-06T06:00:00Z -> 2101-11-06 01:00:00-05:00
            ("America/New_York", 13575625199, [1, 6, 12, 3]), // 2400-03-12T06:59:59Z -> 2400-03-12 01:59:59-05:00
            ("America/New_York", 13575625200, [3, 6, 12, 3]), // 2400-03-12T07:00:00Z -> 2400-03-12 03:00:00-04:00
            ("America/New_York", 13596184799, [1, 6, 5, 11]), // 2400-11-05T05:59:59Z -> 2400-11-05 01:59:59-04:00
            ("America/New_York", 13596184800, [1, 6, 5, 11]), // 2400-11-05T06:00:00Z -> 2400-11-05 01:00:00-05:00
            ("America/New_York", 16320812399, [1, 6, 9, 3]), // 2487-03-09T06:59:59Z -> 2487-03-09 01:59:59-05:00
            ("America/New_York", 16320812400, [3, 6, 9, 3]), // 2487-03-09T07:00:00Z -> 2487-03-09 03:00:00-04:00
            ("America/New_York", 16341371999, [1, 6, 2, 11]), // 2487-11-02T05:59:59Z -> 2487-11-02 01:59:59-04:00
            ("America/New_York", 16341372000, [1, 6, 2, 11]), // 2487-11-02T06:00:00Z -> 2487-11-02 01:00:00-05:00
            ("Australia/Lord_Howe", 4141897199, [1, 6, 3, 4]), // 2101-04-02T14:59:59Z -> 2101-04-03 01:59:59+11:00
            ("Australia/Lord_Howe", 4141897200, [1, 6, 3, 4]), // 2101-04-02T15:00:00Z -> 2101-04-03 01:30:00+10:30
            ("Australia/Lord_Howe", 4157623799, [1, 6, 2, 10]), // 2101-10-01T15:29:59Z -> 2101-10-02 01:59:59+10:30
            ("Australia/Lord_Howe", 4157623800, [2, 6, 2, 10]), // 2101-10-01T15:30:00Z -> 2101-10-02 02:30:00+11:00
            ("Australia/Lord_Howe", 13577381999, [1, 6, 2, 4]), // 2400-04-01T14:59:59Z -> 2400-04-02 01:59:59+11:00
            ("Australia/Lord_Howe", 13577382000, [1, 6, 2, 4]), // 2400-04-01T15:00:00Z -> 2400-04-02 01:30:00+10:30
            ("Australia/Lord_Howe", 13593108599, [1, 6, 1, 10]), // 2400-09-30T15:29:59Z -> 2400-10-01 01:59:59+10:30
            ("Australia/Lord_Howe", 13593108600, [2, 6, 1, 10]), // 2400-09-30T15:30:00Z -> 2400-10-01 02:30:00+11:00
            ("Australia/Lord_Howe", 16323173999, [1, 6, 6, 4]), // 2487-04-05T14:59:59Z -> 2487-04-06 01:59:59+11:00
            ("Australia/Lord_Howe", 16323174000, [1, 6, 6, 4]), // 2487-04-05T15:00:00Z -> 2487-04-06 01:30:00+10:30
            ("Australia/Lord_Howe", 16338900599, [1, 6, 5, 10]), // 2487-10-04T15:29:59Z -> 2487-10-05 01:59:59+10:30
            ("Australia/Lord_Howe", 16338900600, [2, 6, 5, 10]), // 2487-10-04T15:30:00Z -> 2487-10-05 02:30:00+11:00
            ("Europe/London", 4141328399, [0, 6, 27, 3]), // 2101-03-27T00:59:59Z -> 2101-03-27 00:59:59+00:00
            ("Europe/London", 4141328400, [2, 6, 27, 3]), // 2101-03-27T01:00:00Z -> 2101-03-27 02:00:00+01:00
            ("Europe/London", 4160077199, [1, 6, 30, 10]), // 2101-10-30T00:59:59Z -> 2101-10-30 01:59:59+01:00
            ("Europe/London", 4160077200, [1, 6, 30, 10]), // 2101-10-30T01:00:00Z -> 2101-10-30 01:00:00+00:00
            ("Europe/London", 13576813199, [0, 6, 26, 3]), // 2400-03-26T00:59:59Z -> 2400-03-26 00:59:59+00:00
            ("Europe/London", 13576813200, [2, 6, 26, 3]), // 2400-03-26T01:00:00Z -> 2400-03-26 02:00:00+01:00
            ("Europe/London", 13595561999, [1, 6, 29, 10]), // 2400-10-29T00:59:59Z -> 2400-10-29 01:59:59+01:00
            ("Europe/London", 13595562000, [1, 6, 29, 10]), // 2400-10-29T01:00:00Z -> 2400-10-29 01:00:00+00:00
            ("Europe/London", 16322605199, [0, 6, 30, 3]), // 2487-03-30T00:59:59Z -> 2487-03-30 00:59:59+00:00
            ("Europe/London", 16322605200, [2, 6, 30, 3]), // 2487-03-30T01:00:00Z -> 2487-03-30 02:00:00+01:00
            ("Europe/London", 16340749199, [1, 6, 26, 10]), // 2487-10-26T00:59:59Z -> 2487-10-26 01:59:59+01:00
            ("Europe/London", 16340749200, [1, 6, 26, 10]), // 2487-10-26T01:00:00Z -> 2487-10-26 01:00:00+00:00
            ("Pacific/Chatham", 4141893599, [3, 6, 3, 4]), // 2101-04-02T13:59:59Z -> 2101-04-03 03:44:59+13:45
            ("Pacific/Chatham", 4141893600, [2, 6, 3, 4]), // 2101-04-02T14:00:00Z -> 2101-04-03 02:45:00+12:45
            ("Pacific/Chatham", 4157013599, [2, 6, 25, 9]), // 2101-09-24T13:59:59Z -> 2101-09-25 02:44:59+12:45
            ("Pacific/Chatham", 4157013600, [3, 6, 25, 9]), // 2101-09-24T14:00:00Z -> 2101-09-25 03:45:00+13:45
            ("Pacific/Chatham", 13577378399, [3, 6, 2, 4]), // 2400-04-01T13:59:59Z -> 2400-04-02 03:44:59+13:45
            ("Pacific/Chatham", 13577378400, [2, 6, 2, 4]), // 2400-04-01T14:00:00Z -> 2400-04-02 02:45:00+12:45
            ("Pacific/Chatham", 13592498399, [2, 6, 24, 9]), // 2400-09-23T13:59:59Z -> 2400-09-24 02:44:59+12:45
            ("Pacific/Chatham", 13592498400, [3, 6, 24, 9]), // 2400-09-23T14:00:00Z -> 2400-09-24 03:45:00+13:45
            ("Pacific/Chatham", 16323170399, [3, 6, 6, 4]), // 2487-04-05T13:59:59Z -> 2487-04-06 03:44:59+13:45
            ("Pacific/Chatham", 16323170400, [2, 6, 6, 4]), // 2487-04-05T14:00:00Z -> 2487-04-06 02:45:00+12:45
            ("Pacific/Chatham", 16338290399, [2, 6, 28, 9]), // 2487-09-27T13:59:59Z -> 2487-09-28 02:44:59+12:45
            ("Pacific/Chatham", 16338290400, [3, 6, 28, 9]), // 2487-09-27T14:00:00Z -> 2487-09-28 03:45:00+13:45
    ];

    #[test]
    fn parts_match_pandas_in_every_zone() {
        let zones: BTreeSet<&str> = PANDAS.iter().map(|(z, _, _)| *z).collect();
        for zone in zones {
            let rows: Vec<&(&str, i64, [u8; 4])> =
                PANDAS.iter().filter(|(z, _, _)| *z == zone).collect();
            let values: Vec<i64> = rows.iter().map(|(_, s, _)| *s).collect();
            let got = run(ALL, secs(&values, zone)).unwrap();
            for (row, got) in rows.iter().zip(got) {
                assert_eq!(got, Some(row.2), "zone {zone:?}, {} s", row.1);
            }
        }
    }

    /// Hand-computed: New York springs forward at 2024-03-10 02:00 EST, so
    /// 06:59:59Z is 01:59:59 EST and 07:00:00Z is 03:00:00 EDT; in every
    /// unit, with the zone on the column.
    #[test]
    fn dst_gap_in_every_unit() {
        let zone = "America/New_York";
        let s = [1_710_053_999_i64, 1_710_054_000];
        let want = vec![Some([1, 6, 10, 3]), Some([3, 6, 10, 3])];
        let arrays: Vec<ArrayRef> = vec![
            secs(&s, zone),
            Arc::new(
                TimestampMillisecondArray::from(s.map(|v| v * 1_000).to_vec()).with_timezone(zone),
            ),
            Arc::new(
                TimestampMicrosecondArray::from(s.map(|v| v * 1_000_000).to_vec())
                    .with_timezone(zone),
            ),
            Arc::new(
                TimestampNanosecondArray::from(s.map(|v| v * 1_000_000_000).to_vec())
                    .with_timezone(zone),
            ),
        ];
        for a in arrays {
            let t = a.data_type().clone();
            assert_eq!(run(ALL, a).unwrap(), want, "{t}");
        }
    }

    /// Hand-computed: one tick before the epoch is 1969-12-31 23:59:59.x, a
    /// Wednesday, in every unit (floor, not truncating, division); one day
    /// and one tick before is Tuesday the 30th; 1 tick after is Thursday
    /// 1970-01-01 00:00. pandas agrees: `pd.Timestamp(-1, unit="ns")`.
    #[test]
    fn instants_before_1970_round_down() {
        let want = vec![
            Some([23, 2, 31, 12]),
            Some([23, 1, 30, 12]),
            Some([0, 3, 1, 1]),
            None,
        ];
        for per_sec in [1_000_i64, 1_000_000, 1_000_000_000] {
            let v = vec![Some(-1), Some(-86_400 * per_sec - 1), Some(1), None];
            let a: ArrayRef = match per_sec {
                1_000 => Arc::new(TimestampMillisecondArray::from(v)),
                1_000_000 => Arc::new(TimestampMicrosecondArray::from(v)),
                _ => Arc::new(TimestampNanosecondArray::from(v)),
            };
            assert_eq!(run(ALL, a).unwrap(), want, "{per_sec} ticks per second");
        }
    }

    /// Dates: expected from Python's `datetime.date(1970, 1, 1) +
    /// timedelta(days=d)` (`.weekday()` is Monday=0); hour is 0.
    #[test]
    fn date32_parts_match_python_dates() {
        let cases: &[(i32, [u8; 4])] = &[
            (-1, [0, 2, 31, 12]),      // 1969-12-31
            (0, [0, 3, 1, 1]),         // 1970-01-01
            (11016, [0, 1, 29, 2]),    // 2000-02-29
            (19783, [0, 4, 1, 3]),     // 2024-03-01
            (-25567, [0, 0, 1, 1]),    // 1900-01-01
            (-719162, [0, 0, 1, 1]),   // 0001-01-01
            (2932896, [0, 4, 31, 12]), // 9999-12-31
            (-141428, [0, 3, 14, 10]), // 1582-10-14 (proleptic Gregorian)
        ];
        let a = Date32Array::from(cases.iter().map(|(d, _)| *d).collect::<Vec<_>>());
        let want: Vec<_> = cases.iter().map(|(_, p)| Some(*p)).collect();
        // `timezone` does not apply to dates.
        assert_eq!(
            run(r#"{"columns":["t"],"timezone":"Asia/Tokyo"}"#, Arc::new(a)).unwrap(),
            want
        );
    }

    /// Hand-computed: Date64 milliseconds; 2024-03-01 is a Friday, and a
    /// value that is not a whole day gives its hour.
    #[test]
    fn date64_parts() {
        let day = 19_783_i64 * 86_400_000;
        let a = Date64Array::from(vec![Some(day), Some(day + 13 * 3_600_000), None, Some(-1)]);
        let want = vec![
            Some([0, 4, 1, 3]),
            Some([13, 4, 1, 3]),
            None,
            Some([23, 2, 31, 12]),
        ];
        assert_eq!(run(ALL, Arc::new(a)).unwrap(), want);
    }

    /// Extremes of `i64` seconds without a zone: expected from numpy 2.4.6,
    /// `str(numpy.datetime64(v, "s"))` for the date and hour and
    /// `numpy.is_busday(day, weekmask=...)` for the weekday.
    #[test]
    fn extreme_seconds_match_numpy() {
        let cases: &[(i64, [u8; 4])] = &[
            (i64::MAX, [15, 6, 4, 12]),         // 292277026596-12-04T15:30:07
            (i64::MIN + 1, [8, 6, 27, 1]),      // -292277022657-01-27T08:29:53
            (1 << 62, [7, 1, 19, 6]),           // 146138514283-06-19T07:45:04
            (-(1 << 62), [16, 4, 14, 7]),       // -146138510344-07-14T16:14:56
            (-62_135_596_801, [23, 6, 31, 12]), // 0000-12-31T23:59:59
        ];
        let values: Vec<i64> = cases.iter().map(|(v, _)| *v).collect();
        let want: Vec<_> = cases.iter().map(|(_, p)| Some(*p)).collect();
        assert_eq!(run(ALL, secs(&values, "")).unwrap(), want);
        // In New York, hand-computed from the rows above: i64::MAX is in
        // December, so EST (-5 h): 10:30:07 the same day; -(2^62) is before
        // any transition, so local mean time (-4:56:02): 11:18:54.
        let got = run(ALL, secs(&[i64::MAX, -(1 << 62)], "America/New_York")).unwrap();
        assert_eq!(got, vec![Some([10, 6, 4, 12]), Some([11, 4, 14, 7])]);
    }

    #[test]
    fn local_time_beyond_i64_is_an_error_naming_row_and_column() {
        for (v, zone) in [(i64::MAX, "+01:00"), (i64::MIN + 1, "America/New_York")] {
            let err = run(ALL, secs(&[0, v], zone)).unwrap_err();
            assert!(
                matches!(&err, Error::InvalidInput { column: Some(c), row: Some(1), .. } if c == "t"),
                "{err}"
            );
        }
    }

    /// Null slots may hold any value (here one that would overflow): they stay
    /// null and are not converted.
    #[test]
    fn nulls_stay_null_whatever_their_slot_holds() {
        let values = TimestampSecondArray::from(vec![i64::MAX, 0, 1_710_054_000]);
        let nulls = TimestampSecondArray::from(vec![None, Some(0), Some(0)])
            .nulls()
            .cloned();
        let a = TimestampSecondArray::new(values.values().clone(), nulls).with_timezone("+14:00");
        // Hand-computed: 1970-01-01T14:00 (Thursday); 2024-03-10T21:00 (Sunday).
        assert_eq!(
            run(ALL, Arc::new(a)).unwrap(),
            vec![None, Some([14, 3, 1, 1]), Some([21, 6, 10, 3])]
        );
    }

    #[test]
    fn sliced_input_is_read_from_its_offset() {
        let a = TimestampSecondArray::from(vec![Some(0), None, Some(-1), Some(86_400)]).slice(1, 3);
        assert_eq!(
            run(ALL, Arc::new(a)).unwrap(),
            vec![None, Some([23, 2, 31, 12]), Some([0, 4, 2, 1])]
        );
    }

    /// Hand-computed offsets of 2024-03-10T07:00:00Z, a Sunday.
    #[test]
    fn fixed_offsets_in_every_spelling() {
        let cases = [
            ("+05:30", [12, 6, 10, 3]),
            ("+0530", [12, 6, 10, 3]),
            ("+05", [12, 6, 10, 3]),
            ("-08:00", [23, 5, 9, 3]),
            ("-0745", [23, 5, 9, 3]),
            ("+00:00", [7, 6, 10, 3]),
            ("-00", [7, 6, 10, 3]),
            ("+23:59", [6, 0, 11, 3]),
            ("UTC", [7, 6, 10, 3]),
            ("Asia/Kolkata", [12, 6, 10, 3]),
        ];
        for (zone, want) in cases {
            assert_eq!(
                run(ALL, secs(&[1_710_054_000], zone)).unwrap(),
                vec![Some(want)],
                "{zone}"
            );
        }
    }

    /// `timezone` replaces the column's zone, and gives a zone-less column
    /// one (values read as UTC). Hand-computed for 2024-03-10T07:00:00Z.
    #[test]
    fn timezone_parameter_overrides_the_column() {
        let p = r#"{"columns":["t"],"timezone":"Asia/Tokyo"}"#;
        let want = vec![Some([16, 6, 10, 3])];
        for zone in ["", "America/New_York", "-02:00", "Not/AZone"] {
            assert_eq!(
                run(p, secs(&[1_710_054_000], zone)).unwrap(),
                want,
                "column zone {zone:?}"
            );
        }
    }

    #[test]
    fn unknown_zones_are_refused() {
        for zone in [
            "Mars/Olympus",
            "america/new_york",
            "+5:30",
            "+24:00",
            "+05:60",
            "05:30",
            "+05:3",
            "EST5EDT6",
            "",
        ] {
            if !zone.is_empty() {
                let err = run(ALL, secs(&[0], zone)).unwrap_err();
                assert!(
                    matches!(&err, Error::InvalidInput { column: Some(c), .. } if c == "t")
                        && err.to_string().contains("unknown time zone"),
                    "{zone}: {err}"
                );
            }
            let p = format!(r#"{{"columns":["t"],"timezone":"{zone}"}}"#);
            let err = run(&p, secs(&[0], "")).unwrap_err();
            assert!(matches!(err, Error::InvalidParams(_)), "{zone}: {err}");
        }
    }

    #[test]
    fn parts_subset_in_order_after_each_source_column() {
        let b = testing::batch(vec![
            ("t", secs(&[1_710_054_000], "America/New_York")),
            ("x", Arc::new(Float64Array::from(vec![1.5])) as ArrayRef),
            ("d", Arc::new(Date32Array::from(vec![19_783])) as ArrayRef),
        ]);
        let out = testing::apply::<DatetimeParts>(
            r#"{"columns":["d","t"],"parts":["month","hour"]}"#,
            None,
            &b,
        )
        .unwrap();
        let names: Vec<&str> = out
            .schema_ref()
            .fields()
            .iter()
            .map(|f| f.name().as_str())
            .collect();
        assert_eq!(
            names,
            ["t", "t_month", "t_hour", "x", "d", "d_month", "d_hour"]
        );
        let col = |n: &str| {
            columns::column(&out, n)
                .unwrap()
                .as_primitive::<UInt8Type>()
                .value(0)
        };
        assert_eq!(
            [col("t_month"), col("t_hour"), col("d_month"), col("d_hour")],
            [3, 3, 3, 0]
        );
        assert_eq!(out.column(0).data_type(), b.column(0).data_type());
    }

    #[test]
    fn output_nullability_follows_the_source() {
        let input = Schema::new(vec![
            Field::new(
                "a",
                DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into())),
                false,
            ),
            Field::new("b", DataType::Date32, true),
        ]);
        let params = serde_json::from_str(r#"{"columns":["a","b"],"parts":["hour"]}"#).unwrap();
        let t = <DatetimeParts as StatelessTransform>::new(params).unwrap();
        let out = t.output_schema(&input).unwrap();
        let got: Vec<(&str, bool)> = out
            .fields()
            .iter()
            .map(|f| (f.name().as_str(), f.is_nullable()))
            .collect();
        assert_eq!(
            got,
            [
                ("a", false),
                ("a_hour", false),
                ("b", true),
                ("b_hour", true)
            ]
        );
    }

    #[test]
    fn existing_output_name_is_refused() {
        let b = testing::batch(vec![
            ("t", secs(&[0], "")),
            (
                "t_month",
                Arc::new(Float64Array::from(vec![1.0])) as ArrayRef,
            ),
        ]);
        let err = testing::apply::<DatetimeParts>(ALL, None, &b).unwrap_err();
        assert!(
            err.to_string().contains("'t_month' already exists"),
            "{err}"
        );
    }

    #[test]
    fn wrong_type_and_missing_column_name_the_column() {
        let b = testing::batch(vec![
            (
                "s",
                Arc::new(StringArray::from(vec!["2024-01-01"])) as ArrayRef,
            ),
            ("f", Arc::new(Float64Array::from(vec![0.0])) as ArrayRef),
        ]);
        let cases = [
            (r#"{"columns":["s"]}"#, "'s'", "expected Timestamp"),
            (r#"{"columns":["f"]}"#, "'f'", "expected Timestamp"),
            (r#"{"columns":["nope"]}"#, "'nope'", "no such column"),
        ];
        for (params, column, msg) in cases {
            let err = testing::apply::<DatetimeParts>(params, None, &b).unwrap_err();
            assert!(
                err.to_string().contains(column) && err.to_string().contains(msg),
                "{err}"
            );
        }
    }

    #[test]
    fn bad_params_are_invalid_params() {
        let cases = [
            (r#"{"columns":[]}"#, "no column"),
            (r#"{"columns":["t","t"]}"#, "twice"),
            (r#"{"columns":["t"],"parts":[]}"#, "no part"),
            (
                r#"{"columns":["t"],"parts":["hour","hour"]}"#,
                "'hour' twice",
            ),
            (r#"{"columns":["t"],"parts":["minute"]}"#, "unknown variant"),
            (
                r#"{"columns":["t"],"parts":["dayofweek"]}"#,
                "unknown variant",
            ),
            (r#"{"column":"t"}"#, "unknown field"),
            (r#"{"columns":["t"],"tz":"UTC"}"#, "unknown field"),
            (r#"{"columns":"t"}"#, "invalid type"),
            (r#"{}"#, "missing field"),
        ];
        for (params, want) in cases {
            let err = run(params, secs(&[0], "")).unwrap_err();
            assert!(matches!(err, Error::InvalidParams(_)), "{params}: {err}");
            assert!(err.to_string().contains(want), "{params}: {err}");
        }
    }

    #[test]
    fn civil_round_trips() {
        for days in (-800_000..3_000_000)
            .step_by(97)
            .chain([i64::MAX / 86_400, i64::MIN / 86_400])
        {
            let (y, m, d) = civil(days);
            assert_eq!(days_from_civil(y, m, d), days, "{y}-{m}-{d}");
        }
    }
}
