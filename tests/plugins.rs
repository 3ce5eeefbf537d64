//! The six plugins, sandboxed, on the example table, against oracles
//! computed here independently (by hand from the CSV text, or published
//! reference values).

use arrow::array::{Array, AsArray};
use arrow::datatypes::{Float64Type, UInt32Type, UInt8Type};
use kiln_host::job::{self, JobOptions};
use kiln_host::Params;

use crate::support::*;

/// Column `name` of the example CSV as text, parsed by hand.
fn csv_text(name: &str) -> Vec<String> {
    let text = std::fs::read_to_string(customers_csv()).unwrap();
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    let idx = header.iter().position(|h| *h == name).unwrap();
    lines
        .map(|l| l.split(',').nth(idx).unwrap().to_owned())
        .collect()
}

/// Fit (if needed) and run a plugin over the example table in the sandbox.
fn run_on_customers(plugin: &str, params: &str) -> arrow::array::RecordBatch {
    let p = load(plugin);
    let params = Params::from_json(params).unwrap();
    let inputs = [customers_csv()];
    let opts = JobOptions {
        batch_size: 10,
        ..Default::default()
    };
    let state = if p.needs_fit(&params).unwrap() {
        Some(
            job::fit_files(&p, &params, &inputs, &opts, &mut |_| {})
                .unwrap()
                .0,
        )
    } else {
        None
    };
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.arrow");
    job::run_files(
        &p,
        &params,
        state.as_ref(),
        &inputs,
        &out,
        &opts,
        &mut |_| {},
    )
    .unwrap();
    concat(&read(&out))
}

#[test]
fn one_hot_encodes_sorted_categories() {
    let out = run_on_customers("one_hot", r#"{"columns":["plan"]}"#);
    let plans = csv_text("plan");
    let names: Vec<String> = out
        .schema()
        .fields()
        .iter()
        .map(|f| f.name().clone())
        .collect();
    let pos = names
        .iter()
        .position(|n| n == "plan_basic")
        .expect("plan_basic column");
    assert_eq!(
        &names[pos..pos + 3],
        ["plan_basic", "plan_plus", "plan_pro"]
    );
    assert!(!names.contains(&"plan".to_string()), "replaced in place");
    for cat in ["basic", "plus", "pro"] {
        let col = out
            .column_by_name(&format!("plan_{cat}"))
            .unwrap()
            .as_primitive::<Float64Type>();
        for (i, p) in plans.iter().enumerate() {
            assert_eq!(col.value(i), if p == cat { 1.0 } else { 0.0 }, "row {i}");
        }
    }
}

#[test]
fn hash_encode_matches_published_murmur3_vectors_in_the_sandbox() {
    // MurmurHash3_x86_32("Hello, world!", seed 1234) = 0xFAF6CDB3 and
    // ("The quick brown fox jumps over the lazy dog", 0) = 0x2E4FF723.
    let p = load("hash_encode");
    let batch = arrow::array::RecordBatch::try_from_iter([(
        "s",
        std::sync::Arc::new(arrow::array::StringArray::from(vec![
            Some("Hello, world!"),
            None,
        ])) as arrow::array::ArrayRef,
    )])
    .unwrap();
    let params =
        Params::from_json(r#"{"columns":["s"],"buckets":4294967295,"seed":1234}"#).unwrap();
    let out = p.transformer(&params, None).unwrap().apply(&batch).unwrap();
    let h = out.column(0).as_primitive::<UInt32Type>();
    assert_eq!(h.value(0), 0xFAF6_CDB3);
    assert!(h.is_null(1));
    let batch = arrow::array::RecordBatch::try_from_iter([(
        "s",
        std::sync::Arc::new(arrow::array::StringArray::from(vec![
            "The quick brown fox jumps over the lazy dog",
        ])) as arrow::array::ArrayRef,
    )])
    .unwrap();
    let params = Params::from_json(r#"{"columns":["s"],"buckets":1000}"#).unwrap();
    let out = p.transformer(&params, None).unwrap().apply(&batch).unwrap();
    assert_eq!(
        out.column(0).as_primitive::<UInt32Type>().value(0),
        0x2E4F_F723 % 1000
    );
}

/// MurmurHash3_x86_32 as Appleby's reference states it, a byte at a time:
/// the oracle for the plugin's block-wise loop.
fn murmur3_reference(data: &[u8], seed: u32) -> u32 {
    let (c1, c2) = (0xcc9e_2d51_u32, 0x1b87_3593_u32);
    let blocks = data.len() / 4;
    let mut h = seed;
    for i in 0..blocks {
        let mut k = 0u32;
        for j in 0..4 {
            k |= u32::from(data[4 * i + j]) << (8 * j);
        }
        h ^= k.wrapping_mul(c1).rotate_left(15).wrapping_mul(c2);
        h = h.rotate_left(13).wrapping_mul(5).wrapping_add(0xe654_6b64);
    }
    let mut k = 0u32;
    for (j, b) in data[4 * blocks..].iter().enumerate() {
        k ^= u32::from(*b) << (8 * j);
    }
    if !data.len().is_multiple_of(4) {
        h ^= k.wrapping_mul(c1).rotate_left(15).wrapping_mul(c2);
    }
    h ^= data.len() as u32;
    h ^= h >> 16;
    h = h.wrapping_mul(0x85eb_ca6b);
    h ^= h >> 13;
    h = h.wrapping_mul(0xc2b2_ae35);
    h ^ (h >> 16)
}

/// Every length from 0 to 40 bytes (each split of blocks the plugin's loop
/// takes: pairs, a single block, a 1-3 byte tail), in a sliced array with
/// nulls, against the reference above; the reference itself is pinned by
/// the published vectors in the test before.
#[test]
fn hash_encode_matches_the_reference_murmur3_at_every_length() {
    use arrow::array::{Array, ArrayRef, RecordBatch, StringArray};
    use std::sync::Arc;

    let text = "Kiln hashes é, ü and ✓ as their UTF-8 bytes; 0123456789";
    let values: Vec<Option<&str>> = (0..=40)
        .flat_map(|len| {
            let end = (0..=len).rev().find(|&e| text.is_char_boundary(e)).unwrap();
            let start = (text.len() - len..=text.len())
                .find(|&s| text.is_char_boundary(s))
                .unwrap();
            [Some(&text[..end]), None, Some(&text[start..])]
        })
        .collect();
    let all = StringArray::from(values);
    let sliced = all.slice(1, all.len() - 1);
    let seed = 0x5082_edee_u32;
    let params = Params::from_json(&format!(
        r#"{{"columns":["s"],"buckets":4294967295,"seed":{seed}}}"#
    ))
    .unwrap();
    let batch = RecordBatch::try_from_iter([("s", Arc::new(sliced.clone()) as ArrayRef)]).unwrap();
    let out = load("hash_encode")
        .transformer(&params, None)
        .unwrap()
        .apply(&batch)
        .unwrap();
    let h = out.column(0).as_primitive::<UInt32Type>();
    assert_eq!(h.len(), sliced.len());
    for i in 0..sliced.len() {
        if sliced.is_null(i) {
            assert!(h.is_null(i), "row {i}");
            continue;
        }
        let s = sliced.value(i);
        assert_eq!(
            h.value(i),
            murmur3_reference(s.as_bytes(), seed) % u32::MAX,
            "row {i}: {s:?}"
        );
    }
}

#[test]
fn impute_median_fills_nulls_with_the_median() {
    let ages: Vec<Option<f64>> = csv_text("age").iter().map(|v| v.parse().ok()).collect();
    let mut present: Vec<f64> = ages.iter().flatten().copied().collect();
    present.sort_by(f64::total_cmp);
    let n = present.len();
    let median = if n % 2 == 1 {
        present[n / 2]
    } else {
        (present[n / 2 - 1] + present[n / 2]) / 2.0
    };
    assert!(
        ages.iter().any(Option::is_none),
        "the example has missing ages"
    );
    let out = run_on_customers("impute", r#"{"columns":["age"],"strategy":"median"}"#);
    let col = out
        .column_by_name("age")
        .unwrap()
        .as_primitive::<Float64Type>();
    assert_eq!(col.null_count(), 0);
    for (i, a) in ages.iter().enumerate() {
        assert_eq!(col.value(i), a.unwrap_or(median), "row {i}");
    }
}

#[test]
fn bucketize_with_explicit_boundaries_counts_boundaries_below() {
    let spend: Vec<f64> = csv_text("monthly_spend")
        .iter()
        .map(|v| v.parse().unwrap())
        .collect();
    let out = run_on_customers(
        "bucketize",
        r#"{"columns":["monthly_spend"],"boundaries":[30.0,60.0]}"#,
    );
    let col = out
        .column_by_name("monthly_spend")
        .unwrap()
        .as_primitive::<UInt32Type>();
    for (i, x) in spend.iter().enumerate() {
        let want = if *x < 30.0 {
            0
        } else if *x < 60.0 {
            1
        } else {
            2
        };
        assert_eq!(col.value(i), want, "row {i}: {x}");
    }
}

/// The sandboxed bucketize (a SIMD count for up to 16 boundaries, a binary
/// search above) against numpy.digitize's definition, `right=False`: the
/// bucket of `x` is how many boundaries are `<= x` (IEEE comparison, so
/// `-0.0` sits on a `0.0` boundary); NaN and null rows are null. The values
/// mix the hard cases (NaN, both zeros, both infinities, each boundary and
/// its neighbouring doubles) with random ones; the lengths cross the
/// kernel's 4,096-value blocks and every remainder of its four-value steps.
#[test]
fn bucketize_matches_digitize_on_edge_values_at_every_length_and_boundary_count() {
    use arrow::array::{ArrayRef, Float64Array, RecordBatch};
    use std::sync::Arc;

    let plugin = load("bucketize");
    let mut state = 0x9e37_79b9_7f4a_7c15_u64;
    let mut next = move || {
        // SplitMix64: a reproducible stream without a dependency.
        state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    };
    for (count, rows) in [
        (1, 0),
        (1, 3),
        (9, 4),
        (9, 4_101),
        (16, 8_195),
        (2, 5),
        (16, 7),
        (17, 4_099),
        (40, 1_000),
    ] {
        // Strictly increasing finite boundaries, 0.0 among them.
        let mut boundaries: Vec<f64> = (0..count)
            .map(|i| (i as f64 - (count / 2) as f64) * 1.5)
            .collect();
        boundaries[count / 2] = 0.0;
        let mut palette = vec![
            f64::NAN,
            -0.0,
            0.0,
            f64::INFINITY,
            f64::NEG_INFINITY,
            f64::MAX,
            f64::MIN,
        ];
        for &b in &boundaries {
            palette.extend([b, b.next_down(), b.next_up()]);
        }
        let x: Float64Array = (0..rows)
            .map(|_| {
                let r = next();
                match r % 10 {
                    0 => None,
                    1..=5 => Some(palette[(r >> 8) as usize % palette.len()]),
                    _ => Some(((r >> 11) as f64 / (1u64 << 53) as f64 - 0.5) * 4.0 * count as f64),
                }
            })
            .collect();
        let params = serde_json::json!({"columns": ["x"], "boundaries": boundaries}).to_string();
        let params = Params::from_json(&params).unwrap();
        let batch = RecordBatch::try_from_iter([("x", Arc::new(x.clone()) as ArrayRef)]).unwrap();
        let out = plugin
            .transformer(&params, None)
            .unwrap()
            .apply(&batch)
            .unwrap();
        let got = out
            .column_by_name("x")
            .unwrap()
            .as_primitive::<UInt32Type>();
        assert_eq!(got.len(), rows);
        for (i, v) in x.iter().enumerate() {
            let want = match v {
                Some(v) if !v.is_nan() => {
                    Some(boundaries.iter().filter(|b| **b <= v).count() as u32)
                }
                _ => None,
            };
            assert_eq!(
                got.is_valid(i).then(|| got.value(i)),
                want,
                "{count} boundaries, {rows} rows, row {i}: {v:?}"
            );
        }
    }
}

#[test]
fn bucketize_quantiles_give_balanced_buckets() {
    let out = run_on_customers("bucketize", r#"{"columns":["income"],"quantiles":4}"#);
    let col = out
        .column_by_name("income")
        .unwrap()
        .as_primitive::<UInt32Type>();
    let mut counts = [0usize; 4];
    for v in col.values().iter() {
        counts[*v as usize] += 1;
    }
    // 48 distinct incomes into quartiles: 12 each.
    assert_eq!(counts, [12, 12, 12, 12]);
}

#[test]
fn datetime_parts_of_known_dates() {
    let out = run_on_customers("datetime_parts", r#"{"columns":["signup_at"]}"#);
    let ts = csv_text("signup_at");
    assert_eq!(ts[0], "2024-11-24T00:09:06");
    assert_eq!(ts[1], "2024-07-05T07:57:03");
    let get = |name: &str, i: usize| {
        out.column_by_name(name)
            .unwrap()
            .as_primitive::<UInt8Type>()
            .value(i)
    };
    // 2024-11-24 was a Sunday (Monday = 0), 2024-07-05 a Friday.
    assert_eq!(
        (
            get("signup_at_hour", 0),
            get("signup_at_day_of_week", 0),
            get("signup_at_day_of_month", 0),
            get("signup_at_month", 0)
        ),
        (0, 6, 24, 11)
    );
    assert_eq!(
        (
            get("signup_at_hour", 1),
            get("signup_at_day_of_week", 1),
            get("signup_at_day_of_month", 1),
            get("signup_at_month", 1)
        ),
        (7, 4, 5, 7)
    );
}
