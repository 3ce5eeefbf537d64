//! Two executors run Kiln UDFs shipped in the plan and give `kiln run`'s
//! bits.

use arrow::array::{AsArray, RecordBatch};
use arrow::datatypes::Int64Type;
use datafusion::prelude::ParquetReadOptions;
use kiln_ballista::{register, LocalCluster};
use kiln_datafusion::Transform;
use kiln_store::{ColumnPolicy, Mask, Masking};

use crate::support::*;

/// The struct column `column` of `out` equals, field by field and bit for
/// bit, the columns of the same names `kiln run` wrote; rows are matched
/// by customer id (the query orders by it, as the file is).
fn assert_matches_kiln_run(out: &RecordBatch, column: &str, kiln: &RecordBatch, fields: &[&str]) {
    let ids = out
        .column_by_name("customer_id")
        .expect("customer_id")
        .as_primitive::<Int64Type>();
    let kiln_ids = kiln
        .column_by_name("customer_id")
        .expect("kiln run keeps customer_id")
        .as_primitive::<Int64Type>();
    assert_eq!(ids, kiln_ids, "rows in the same order");
    let s = out.column_by_name(column).expect(column).as_struct();
    let names: Vec<&str> = s.fields().iter().map(|f| f.name().as_str()).collect();
    assert_eq!(names, fields, "{column}: fields");
    for f in fields {
        assert_same_bits(
            &format!("{column}.{f}"),
            s.column_by_name(f).expect("struct field"),
            kiln.column_by_name(f).expect("kiln run output column"),
        );
    }
}

#[test]
fn two_executors_give_kiln_run_bits_with_udfs_shipped_in_the_plan() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("customers.parquet");
    // 24 row groups, read as 12 partitions: 12 tasks for 2 executors of
    // one slot each, enough work that both poll some.
    write_customers(&input, 12_000, 500, &["Paris", "Milan", "Lisbon"]);

    // The oracle: `kiln fit` then `kiln run` on the same file.
    let scaler = load("standard_scaler");
    let scaler_params = params(r#"{"columns": ["age", "income"]}"#);
    let state = kiln_fit(&scaler, &scaler_params, &input);
    let state_path = dir.path().join("scaler.state");
    std::fs::write(&state_path, state.as_bytes()).unwrap();
    let scaled = kiln_run(&scaler, &scaler_params, Some(&state), &input);
    let bucket_params = params(r#"{"columns": ["income"], "boundaries": [30000, 60000, 90000]}"#);
    let bucketed = kiln_run(&load("bucketize"), &bucket_params, None, &input);
    // A principal not cleared for `income` gets it hashed with the store's
    // salt: executors must hash with the very same key.
    let masking = Masking::new(
        [(
            "income".to_owned(),
            ColumnPolicy {
                sensitivity: "pii".into(),
                mask: Mask::Hash,
            },
        )]
        .into(),
        std::sync::Arc::from(&b"the store's salt"[..]),
    );
    let bucketed_masked = masking.apply(&bucketed).unwrap();

    let rt = runtime();
    let (out, plan, cluster) = rt.block_on(async {
        let cluster = LocalCluster::start_with_config(2, 1, engine(), config(12, 256))
            .await
            .unwrap();
        let ctx = cluster.context();
        ctx.register_parquet(
            "customers",
            input.to_str().unwrap(),
            ParquetReadOptions::default(),
        )
        .await
        .unwrap();
        let e = engine();
        let t = Transform::from_files(
            &e,
            &plugin_path("standard_scaler"),
            scaler_params.clone(),
            Some(&state_path),
        )
        .unwrap();
        register(ctx, "kiln_scaler", t).unwrap();
        let t = Transform::from_files(&e, &plugin_path("bucketize"), bucket_params, None).unwrap();
        register(ctx, "kiln_bucket", t.clone()).unwrap();
        register(ctx, "kiln_bucket_masked", t.with_masking(masking.clone())).unwrap();
        let sql = "SELECT customer_id, \
                   kiln_scaler(age, income) AS z, \
                   kiln_scaler(age, income)['age'] AS age_z, \
                   kiln_bucket(income) AS b, \
                   kiln_bucket_masked(income) AS bm \
                   FROM customers ORDER BY customer_id";
        let batches = ctx.sql(sql).await.unwrap().collect().await.unwrap();
        let plan = ctx
            .sql(&format!("EXPLAIN {sql}"))
            .await
            .unwrap()
            .collect()
            .await
            .unwrap();
        (concat(&batches), concat(&plan), cluster)
    });

    assert_eq!(out.num_rows(), 12_000);
    assert_matches_kiln_run(&out, "z", &scaled, &["age", "income"]);
    assert_matches_kiln_run(&out, "b", &bucketed, &["income"]);
    assert_matches_kiln_run(&out, "bm", &bucketed_masked, &["income"]);
    assert_same_bits(
        "age_z",
        out.column_by_name("age_z").unwrap(),
        scaled.column_by_name("age").unwrap(),
    );

    // The stage calling the UDFs read the file as 12 partitions (tasks).
    let plan = arrow::util::pretty::pretty_format_batches(&[plan])
        .unwrap()
        .to_string();
    assert!(plan.contains("file_groups={12 groups"), "{plan}");
    // Both executors ran UDF tasks, each decoding the functions from the
    // task plans it received (their registries have no Kiln function:
    // see errors::functions_registered_only_on_the_client_do_not_reach_the_cluster),
    // and loading each plugin once however many tasks it ran. Each task
    // plan calls a Kiln function 4 times (z, age_z, b, bm).
    let decodes = cluster.executor_decodes();
    assert_eq!(decodes.len(), 2);
    assert!(
        decodes.iter().all(|&d| d > 0 && d % 4 == 0),
        "decodes per executor: {decodes:?}"
    );
    assert_eq!(
        decodes.iter().sum::<u64>(),
        12 * 4,
        "one decode per call per task"
    );
    assert_eq!(cluster.executor_plugins(), vec![2, 2]);
    // The scheduler got them in the logical plans (the query, its EXPLAIN).
    assert!(cluster.scheduler_decodes() > 0);
    drop(cluster);
    drop(rt);
}
