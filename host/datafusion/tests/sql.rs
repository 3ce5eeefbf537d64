//! Files as tables and the `kiln sql` helpers.

use std::path::Path;

use arrow::array::AsArray;
use arrow::datatypes::Int64Type;
use kiln_datafusion::{register, sql, sql_to_file, Error, Transform};
use kiln_io::ReadOptions;

use crate::support::*;

#[test]
fn tables_have_kiln_io_types_and_sql_collects() {
    let ctx = context(2, 16);
    let csv = customers_csv();
    let (schema, batches) = sql(
        &ctx,
        "SELECT plan, count(*) AS n, sum(age) AS ages FROM customers GROUP BY plan ORDER BY plan",
        &[("customers", &csv)],
    )
    .unwrap();
    assert_eq!(schema.field(0).name(), "plan");
    let out = concat(&batches);
    let n: i64 = out
        .column(1)
        .as_primitive::<Int64Type>()
        .values()
        .iter()
        .sum();
    assert_eq!(n, 48);
    // The table's schema is the one kiln-io (and so `kiln run`) reads.
    let (kiln_schema, _) = kiln_io::read_all(&csv, &ReadOptions::default()).unwrap();
    let ctx = context(1, 8192);
    let (schema, _) = sql(&ctx, "SELECT * FROM t LIMIT 1", &[("t", &csv)]).unwrap();
    assert_eq!(schema.fields(), kiln_schema.fields());
}

#[test]
fn two_files_make_one_table_with_a_partition_each() {
    let ctx = context(2, 8192);
    let csv = customers_csv();
    let (_, batches) = sql(
        &ctx,
        "SELECT count(*) AS n FROM t",
        &[("t", &csv), ("t", &csv)],
    )
    .unwrap();
    assert_eq!(
        concat(&batches)
            .column(0)
            .as_primitive::<Int64Type>()
            .value(0),
        96
    );
}

#[test]
fn sql_to_file_writes_the_udf_output_atomically() {
    let plugin = load("standard_scaler");
    let p = params(r#"{"columns": ["age", "income"]}"#);
    let state = kiln_fit(&plugin, &p, 65_536);
    let kiln = kiln_run(&plugin, &p, Some(&state)).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("features.parquet");
    let ctx = context(2, 10);
    register(
        &ctx,
        "kiln_scaler",
        Transform::from_parts(plugin, p, Some(state)).unwrap(),
    )
    .unwrap();
    let csv = customers_csv();
    let summary = sql_to_file(
        &ctx,
        "SELECT customer_id, kiln_scaler(age, income)['age'] AS age_z FROM customers ORDER BY customer_id",
        &[("customers", &csv)],
        &out,
    )
    .unwrap();
    assert_eq!(summary.rows, 48);
    let (_, batches) = kiln_io::read_all(&out, &ReadOptions::default()).unwrap();
    let written = concat(&batches);
    assert_same_bits(
        "age_z",
        written.column(1),
        kiln.column_by_name("age").unwrap(),
    );

    // A failing query leaves no file behind and an existing file untouched.
    let ctx = context(1, 8192);
    let e = sql_to_file(&ctx, "SELECT nope FROM t", &[("t", &csv)], &out).unwrap_err();
    assert!(matches!(e, Error::DataFusion(_)), "{e:?}");
    let (_, again) = kiln_io::read_all(&out, &ReadOptions::default()).unwrap();
    assert_eq!(concat(&again), written);
}

#[test]
fn bad_tables_are_refused_up_front() {
    let csv = customers_csv();
    let cases: Vec<(Vec<(&str, &Path)>, &str)> = vec![
        (vec![("Customers", csv.as_path())], "'customers'"),
        (vec![("t", Path::new("nope.xlsx"))], "unknown file format"),
        (vec![("t", Path::new("missing.csv"))], "missing.csv"),
    ];
    for (tables, needle) in cases {
        let ctx = context(1, 8192);
        let e = sql(&ctx, "SELECT 1", &tables).unwrap_err().to_string();
        assert!(e.contains(needle), "{tables:?}: {e}");
    }
    // Blocking inside a runtime is refused, not a panic.
    let ctx = context(1, 8192);
    let e = runtime().block_on(async { sql(&ctx, "SELECT 1", &[]).unwrap_err() });
    assert!(e.to_string().contains("inside an async runtime"), "{e}");
}
