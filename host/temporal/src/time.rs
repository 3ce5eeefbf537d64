//! Durations and time columns, both as i64 microseconds since the Unix
//! epoch (UTC).

use arrow::array::{Array, ArrowPrimitiveType, AsArray, Int64Array, PrimitiveArray, RecordBatch};
use arrow::datatypes::{
    DataType, Date32Type, Date64Type, Int64Type, TimeUnit, TimestampMicrosecondType,
    TimestampMillisecondType, TimestampNanosecondType, TimestampSecondType,
};

use crate::error::{column_type, Error, Result};

const MICROS_PER_MILLI: i64 = 1_000;
const MICROS_PER_SECOND: i64 = 1_000_000;
const MICROS_PER_DAY: i64 = 86_400 * MICROS_PER_SECOND;

/// What [`parse_duration`] accepts, as advice.
const DURATION_HINT: &str =
    "write a whole number and one unit: us, ms, s, m, h, d or w (e.g. 90s, 15m, 1h, 7d)";

/// Parse a duration such as `90s`, `15m`, `1h`, `7d`, `2w` (a whole number
/// and one unit: `us`, `ms`, `s`, `m`, `h`, `d`, `w`) into microseconds.
///
/// No sign, spaces or fractions are accepted; `0s` is read as 0 (callers
/// that need a positive length, like [`Windows::new`](crate::Windows::new),
/// refuse it).
///
/// # Errors
/// [`Error::Spec`] naming what was written and what is accepted, also when
/// the duration does not fit in i64 microseconds.
///
/// # Examples
/// ```
/// assert_eq!(kiln_temporal::parse_duration("15m").unwrap(), 15 * 60 * 1_000_000);
/// assert!(kiln_temporal::parse_duration("1.5h").is_err());
/// ```
pub fn parse_duration(s: &str) -> Result<i64> {
    duration_micros(s).map_err(|hint| Error::Spec {
        what: "duration".to_string(),
        value: s.to_string(),
        hint,
    })
}

/// [`parse_duration`] with the advice alone as the error, for callers that
/// name what the duration is for.
pub(crate) fn duration_micros(s: &str) -> Result<i64, String> {
    let digits = s.bytes().take_while(u8::is_ascii_digit).count();
    let (number, unit) = s.split_at(digits);
    let per_unit: i64 = match unit {
        "us" => 1,
        "ms" => MICROS_PER_MILLI,
        "s" => MICROS_PER_SECOND,
        "m" => 60 * MICROS_PER_SECOND,
        "h" => 3_600 * MICROS_PER_SECOND,
        "d" => MICROS_PER_DAY,
        "w" => 7 * MICROS_PER_DAY,
        _ => return Err(DURATION_HINT.to_string()),
    };
    if number.is_empty() {
        return Err(DURATION_HINT.to_string());
    }
    let too_long =
        || format!("'{s}' is too long to count in i64 microseconds (about 292,000 years)");
    let n: i64 = number.parse().map_err(|_| too_long())?;
    n.checked_mul(per_unit).ok_or_else(too_long)
}

/// Read a time column (Timestamp of any unit and zone, Date32, Date64,
/// Int64 microseconds, or RFC 3339 / ISO 8601 text, zone-less read as UTC)
/// as microseconds since the epoch, UTC; nulls stay null.
///
/// Nanoseconds are floored (`-1ns` is `-1µs`), so a time keeps its order
/// against whole microseconds.
///
/// # Errors
/// [`Error::MissingColumn`] when `batch` has no such column;
/// [`Error::ColumnType`] for other types (`side` and `column` name it), for
/// text that is not a time, and for a value too far from 1970 to count in
/// i64 microseconds.
pub fn time_micros(batch: &RecordBatch, column: &str, side: &str) -> Result<Int64Array> {
    let array = crate::error::column(batch, column, side)?;
    let overflow = |row: Option<usize>| {
        let at = row.map(|r| format!(" (row {r})")).unwrap_or_default();
        column_type(
            array,
            column,
            side,
            format!(
                "a value{at} is too far from 1970 to count in i64 microseconds \
                 (about ±292,000 years)"
            ),
        )
    };
    let micros = match array.data_type() {
        DataType::Int64 => array.as_primitive::<Int64Type>().clone(),
        DataType::Timestamp(TimeUnit::Microsecond, _) => array
            .as_primitive::<TimestampMicrosecondType>()
            .reinterpret_cast::<Int64Type>(),
        DataType::Timestamp(TimeUnit::Nanosecond, _) => array
            .as_primitive::<TimestampNanosecondType>()
            .unary(|ns: i64| ns.div_euclid(1_000)),
        DataType::Timestamp(TimeUnit::Millisecond, _) => scale(
            array.as_primitive::<TimestampMillisecondType>(),
            MICROS_PER_MILLI,
        )
        .map_err(overflow)?,
        DataType::Timestamp(TimeUnit::Second, _) => scale(
            array.as_primitive::<TimestampSecondType>(),
            MICROS_PER_SECOND,
        )
        .map_err(overflow)?,
        DataType::Date32 => {
            scale(array.as_primitive::<Date32Type>(), MICROS_PER_DAY).map_err(overflow)?
        }
        DataType::Date64 => {
            scale(array.as_primitive::<Date64Type>(), MICROS_PER_MILLI).map_err(overflow)?
        }
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => {
            // Text from JSON or a CSV column that did not infer as a time:
            // ISO 8601 / RFC 3339, a zone-less value read as UTC.
            let to = DataType::Timestamp(TimeUnit::Microsecond, Some("+00:00".into()));
            let strict = arrow::compute::CastOptions {
                safe: false,
                ..Default::default()
            };
            let parsed = arrow::compute::cast_with_options(array, &to, &strict).map_err(|e| {
                column_type(
                    array,
                    column,
                    side,
                    format!("text that is not a time ({e}); write times as RFC 3339, e.g. 2026-12-01T10:00:00Z"),
                )
            })?;
            parsed
                .as_primitive::<TimestampMicrosecondType>()
                .reinterpret_cast::<Int64Type>()
        }
        _ => {
            return Err(column_type(
                array,
                column,
                side,
                "expected a time column: Timestamp (any unit, any zone), Date32, Date64, \
                 Int64 microseconds since the epoch, or RFC 3339 text"
                    .to_string(),
            ))
        }
    };
    Ok(micros)
}

/// `array` times `factor`, as i64; on overflow, the first row that overflows.
fn scale<T>(array: &PrimitiveArray<T>, factor: i64) -> Result<Int64Array, Option<usize>>
where
    T: ArrowPrimitiveType,
    T::Native: Into<i64>,
{
    array
        .try_unary::<_, Int64Type, ()>(|v| v.into().checked_mul(factor).ok_or(()))
        .map_err(|()| {
            (0..array.len())
                .find(|&i| array.is_valid(i) && array.value(i).into().checked_mul(factor).is_none())
        })
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::array::{
        ArrayRef, Date32Array, Date64Array, Float64Array, TimestampMillisecondArray,
        TimestampNanosecondArray, TimestampSecondArray,
    };

    use super::*;

    #[test]
    fn parse_duration_table() {
        let cases: &[(&str, Option<i64>)] = &[
            ("1us", Some(1)),
            ("250ms", Some(250_000)),
            ("90s", Some(90_000_000)),
            ("15m", Some(900_000_000)),
            ("1h", Some(3_600_000_000)),
            ("7d", Some(604_800_000_000)),
            ("2w", Some(1_209_600_000_000)),
            ("0s", Some(0)),
            ("007s", Some(7_000_000)),
            ("9223372036854775807us", Some(i64::MAX)),
            // Overflow: of the number, and of the multiplication.
            ("9223372036854775808us", None),
            ("9223372036854776s", None),
            ("106751991d", Some(106_751_991 * 86_400_000_000)),
            ("106751992d", None),
            ("", None),
            ("h", None),
            ("1", None),
            ("1.5h", None),
            ("-1h", None),
            ("+1h", None),
            ("1 h", None),
            (" 1h", None),
            ("1h ", None),
            ("1H", None),
            ("1hr", None),
            ("1y", None),
            ("1h30m", None),
        ];
        for (text, want) in cases {
            let got = parse_duration(text);
            match (want, got) {
                (Some(w), Ok(g)) => assert_eq!(*w, g, "{text}"),
                (None, Err(Error::Spec { what, value, hint })) => {
                    assert_eq!(what, "duration", "{text}");
                    assert_eq!(&value, text);
                    assert!(!hint.is_empty());
                }
                (want, got) => panic!("{text}: want {want:?}, got {got:?}"),
            }
        }
    }

    fn batch(array: ArrayRef) -> RecordBatch {
        RecordBatch::try_from_iter([("ts", array)]).expect("one column")
    }

    #[test]
    fn time_micros_table() {
        let cases: Vec<(ArrayRef, Vec<Option<i64>>)> = vec![
            (
                Arc::new(Int64Array::from(vec![Some(-5), None, Some(7)])),
                vec![Some(-5), None, Some(7)],
            ),
            (
                Arc::new(TimestampSecondArray::from(vec![Some(-1), None, Some(2)])),
                vec![Some(-1_000_000), None, Some(2_000_000)],
            ),
            (
                Arc::new(
                    TimestampMillisecondArray::from(vec![Some(-1), Some(3), None])
                        .with_timezone("Europe/Paris"),
                ),
                vec![Some(-1_000), Some(3_000), None],
            ),
            (
                Arc::new(
                    arrow::array::TimestampMicrosecondArray::from(vec![Some(-3), None])
                        .with_timezone("+05:00"),
                ),
                vec![Some(-3), None],
            ),
            (
                // Floored: -1ns is in the microsecond before the epoch.
                Arc::new(TimestampNanosecondArray::from(vec![
                    Some(-1),
                    Some(-1_000),
                    Some(-1_001),
                    Some(999),
                    Some(1_000),
                    None,
                    Some(i64::MIN),
                ])),
                vec![
                    Some(-1),
                    Some(-1),
                    Some(-2),
                    Some(0),
                    Some(1),
                    None,
                    Some(i64::MIN.div_euclid(1_000)),
                ],
            ),
            (
                Arc::new(Date32Array::from(vec![Some(-1), None, Some(1)])),
                vec![Some(-86_400_000_000), None, Some(86_400_000_000)],
            ),
            (
                Arc::new(Date64Array::from(vec![Some(1_500), None])),
                vec![Some(1_500_000), None],
            ),
            (
                // RFC 3339 text (JSON rows): zones honoured, none read as UTC.
                Arc::new(arrow::array::StringArray::from(vec![
                    Some("1970-01-01T00:00:01Z"),
                    None,
                    Some("1970-01-01T01:00:00+01:00"),
                    Some("1970-01-01T00:00:00.000002"),
                ])),
                vec![Some(1_000_000), None, Some(0), Some(2)],
            ),
        ];
        for (array, want) in cases {
            let data_type = array.data_type().clone();
            let got = time_micros(&batch(array.clone()), "ts", "spine").expect("a time column");
            let got: Vec<Option<i64>> = got.iter().collect();
            assert_eq!(got, want, "{data_type}");
            // The same column sliced reads the same values, shifted.
            let sliced = batch(array.slice(1, array.len() - 1));
            let got = time_micros(&sliced, "ts", "spine").expect("a time column");
            assert_eq!(
                got.iter().collect::<Vec<_>>(),
                want[1..],
                "{data_type} sliced"
            );
        }
    }

    #[test]
    fn time_micros_overflow_is_an_error_naming_the_row() {
        let cases: Vec<ArrayRef> = vec![
            Arc::new(TimestampSecondArray::from(vec![
                Some(0),
                None,
                Some(i64::MAX / 10),
            ])),
            Arc::new(TimestampMillisecondArray::from(vec![
                Some(0),
                None,
                Some(i64::MIN),
            ])),
            Arc::new(Date32Array::from(vec![Some(0), None, Some(i32::MAX)])),
            Arc::new(Date64Array::from(vec![Some(0), None, Some(i64::MAX)])),
        ];
        for array in cases {
            let err = time_micros(&batch(array), "ts", "spine").expect_err("overflow");
            let Error::ColumnType {
                column,
                side,
                expected,
                ..
            } = &err
            else {
                panic!("want ColumnType, got {err:?}");
            };
            assert_eq!((column.as_str(), side.as_str()), ("ts", "spine"));
            assert!(expected.contains("row 2"), "{err}");
        }
    }

    #[test]
    fn time_micros_refuses_other_types_and_missing_columns() {
        let b = batch(Arc::new(Float64Array::from(vec![1.0])));
        let err = time_micros(&b, "ts", "features").expect_err("a float is not a time");
        assert!(
            matches!(&err, Error::ColumnType { column, side, found, .. }
                if column == "ts" && side == "features" && found == "Float64"),
            "{err:?}"
        );
        let text = batch(Arc::new(arrow::array::StringArray::from(vec![
            "2026-01-01",
            "soon",
        ])));
        let err = time_micros(&text, "ts", "events").expect_err("not a time");
        assert!(err.to_string().contains("RFC 3339"), "{err}");
        let err = time_micros(&b, "when", "events").expect_err("no such column");
        assert!(
            matches!(&err, Error::MissingColumn { column, side, available }
                if column == "when" && side == "events" && available == "ts"),
            "{err:?}"
        );
    }
}
