//! Failures surface as errors: a plugin failing on an executor, a bad
//! argument type, a function the executors cannot get, a transform that
//! cannot be shipped.

use std::sync::Arc;
use std::time::Duration;

use arrow::datatypes::DataType;
use datafusion::execution::FunctionRegistry;
use datafusion::logical_expr::{create_udf, ColumnarValue, Volatility};
use datafusion::prelude::ParquetReadOptions;
use kiln_ballista::{register, LocalCluster};
use kiln_datafusion::Transform;

use crate::support::*;

/// No query may hang: each gets this long.
const DEADLINE: Duration = Duration::from_secs(20);

/// Run `sql` on a 2-executor cluster over a customers table with the
/// cities `cities`, after `setup` registered functions on the context.
fn query(
    cities: &[&str],
    setup: impl FnOnce(&datafusion::prelude::SessionContext),
    sql: &str,
) -> Result<Vec<arrow::array::RecordBatch>, String> {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("customers.parquet");
    write_customers(&input, 2_000, 250, cities);
    let rt = runtime();
    rt.block_on(async {
        let cluster = LocalCluster::start_with_config(2, 1, engine(), config(4, 256))
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
        setup(ctx);
        let run = async { ctx.sql(sql).await?.collect().await };
        match tokio::time::timeout(DEADLINE, run).await {
            Ok(r) => r.map_err(|e| e.to_string()),
            Err(_) => panic!("the query did not finish within {DEADLINE:?}: {sql}"),
        }
    })
}

#[test]
fn a_plugin_error_on_an_executor_fails_the_query() {
    // one-hot fitted on Paris and Milan, refusing unknown cities; the
    // table has Lisbon too, so executors fail while applying it.
    let dir = tempfile::tempdir().unwrap();
    let fit_input = dir.path().join("fit.parquet");
    write_customers(&fit_input, 100, 100, &["Paris", "Milan"]);
    let p = params(r#"{"columns": ["city"], "handle_unknown": "error"}"#);
    let state = kiln_fit(&load("one_hot"), &p, &fit_input);
    let state_path = dir.path().join("one_hot.state");
    std::fs::write(&state_path, state.as_bytes()).unwrap();
    let err = query(
        &["Paris", "Milan", "Lisbon"],
        |ctx| {
            let t = Transform::from_files(&engine(), &plugin_path("one_hot"), p, Some(&state_path))
                .unwrap();
            register(ctx, "kiln_city", t).unwrap();
        },
        "SELECT customer_id, kiln_city(city) FROM customers",
    )
    .unwrap_err();
    assert!(err.contains("Lisbon"), "{err}");
    assert!(err.contains("city"), "{err}");
}

#[test]
fn a_bad_argument_type_is_refused_while_planning() {
    let err = query(
        &["Paris"],
        |ctx| {
            let t = Transform::from_files(
                &engine(),
                &plugin_path("bucketize"),
                params(r#"{"columns": ["x"], "boundaries": [0]}"#),
                None,
            )
            .unwrap();
            register(ctx, "kiln_bucket", t).unwrap();
        },
        "SELECT kiln_bucket(city) FROM customers",
    )
    .unwrap_err();
    assert!(err.contains("bucketize"), "{err}");
    assert!(err.contains("Utf8"), "{err}");
}

#[test]
fn functions_registered_only_on_the_client_do_not_reach_the_cluster() {
    // A plain DataFusion UDF has no codec: the scheduler looks it up by
    // name in its own registry, which does not have it. So the Kiln
    // functions that do run there came through the codec.
    let err = query(
        &["Paris"],
        |ctx| {
            ctx.register_udf(create_udf(
                "plus_one",
                vec![DataType::Int64],
                DataType::Int64,
                Volatility::Immutable,
                Arc::new(|args: &[ColumnarValue]| Ok(args[0].clone())),
            ));
        },
        "SELECT plus_one(customer_id) FROM customers",
    )
    .unwrap_err();
    assert!(err.contains("plus_one"), "{err}");
}

#[test]
fn a_transform_without_plugin_bytes_is_refused_at_registration() {
    let t = Transform::from_parts(
        load("bucketize"),
        params(r#"{"columns": ["x"], "boundaries": [0]}"#),
        None,
    )
    .unwrap();
    let ctx = datafusion::prelude::SessionContext::new();
    let err = register(&ctx, "kiln_bucket", t).unwrap_err();
    assert!(
        matches!(&err, kiln_ballista::Error::Kiln(kiln_datafusion::Error::Wire(m)) if m.contains("Transform::from_files")),
        "{err}"
    );
    assert!(ctx.udf("kiln_bucket").is_err(), "not registered");
}
