//! The UDF gives `kiln run`'s bits, one fresh instance per batch, and
//! clear errors.

use std::hash::{DefaultHasher, Hash, Hasher};

use arrow::array::{AsArray, RecordBatch};
use arrow::datatypes::{Int64Type, UInt64Type};
use datafusion::logical_expr::ScalarUDFImpl;
use kiln_datafusion::{
    collect, register, register_files, runtime_error, Error, KilnUdf, Transform,
};

use crate::support::*;

/// Run `query` on the example table registered as `customers`.
fn query(
    partitions: usize,
    batch_size: usize,
    udfs: Vec<(&str, Transform)>,
    query: &str,
) -> kiln_datafusion::Result<RecordBatch> {
    let ctx = context(partitions, batch_size);
    register_files(&ctx, "customers", &[customers_csv()])?;
    for (name, t) in udfs {
        register(&ctx, name, t)?;
    }
    let (_, batches) = runtime().block_on(collect(&ctx, query))?;
    Ok(concat(&batches))
}

/// Every field of the UDF's struct equals, bit for bit, the column of the
/// same name that `kiln run` wrote; rows are matched by customer id.
fn assert_matches_kiln_run(out: &RecordBatch, kiln: &RecordBatch, fields: &[&str]) {
    let ids = out.column(0).as_primitive::<Int64Type>();
    let kiln_ids = kiln
        .column_by_name("customer_id")
        .expect("customer_id")
        .as_primitive::<Int64Type>();
    assert_eq!(
        ids, kiln_ids,
        "the query orders by customer_id, as the file is"
    );
    let s = out.column(1).as_struct();
    let names: Vec<&str> = s.fields().iter().map(|f| f.name().as_str()).collect();
    assert_eq!(names, fields);
    for f in fields {
        let kiln_col = kiln.column_by_name(f).expect("kiln run output column");
        assert_same_bits(f, s.column_by_name(f).expect("struct field"), kiln_col);
    }
}

fn scaler() -> (
    kiln_runtime::Plugin,
    kiln_runtime::Params,
    kiln_runtime::State,
) {
    let plugin = load("standard_scaler");
    let p = params(r#"{"columns": ["age", "income"]}"#);
    let state = kiln_fit(&plugin, &p, 65_536);
    (plugin, p, state)
}

#[test]
fn fitted_scaler_matches_kiln_run_bit_for_bit_across_partitions_and_batches() {
    let (plugin, p, state) = scaler();
    let kiln = kiln_run(&plugin, &p, Some(&state)).expect("kiln run");
    // 48 rows: one batch on one partition; 5 batches on 2 and 4 partitions.
    let sql =
        "SELECT customer_id, kiln_scaler(age, income) AS z FROM customers ORDER BY customer_id";
    for (partitions, batch_size) in [(1, 8192), (2, 10), (4, 7)] {
        let t = || Transform::from_parts(plugin.clone(), p.clone(), Some(state.clone())).unwrap();
        let out = query(partitions, batch_size, vec![("kiln_scaler", t())], sql).unwrap();
        assert_matches_kiln_run(&out, &kiln, &["age", "income"]);
        // The UDF really ran on `partitions` partitions (the file is one;
        // DataFusion splits its batches round-robin below the UDF).
        let plan = query(
            partitions,
            batch_size,
            vec![("kiln_scaler", t())],
            &format!("EXPLAIN {sql}"),
        )
        .unwrap();
        let plan = arrow::util::pretty::pretty_format_batches(&[plan])
            .unwrap()
            .to_string();
        let below_udf = plan
            .split("kiln_scaler(age@1, income@2) as z")
            .nth(1)
            .unwrap_or_default();
        assert_eq!(
            below_udf.contains(&format!("RoundRobinBatch({partitions})")),
            partitions > 1,
            "{plan}"
        );
    }
}

#[test]
fn stateless_hash_encode_matches_kiln_run_bit_for_bit() {
    let plugin = load("hash_encode");
    let p = params(r#"{"columns": ["city", "plan"], "buckets": 16, "seed": 7}"#);
    let kiln = kiln_run(&plugin, &p, None).expect("kiln run");
    let t = Transform::from_parts(plugin, p, None).unwrap();
    let out = query(
        2,
        10,
        vec![("kiln_hash", t)],
        "SELECT customer_id, kiln_hash(city, plan) AS h FROM customers ORDER BY customer_id",
    )
    .unwrap();
    assert_matches_kiln_run(&out, &kiln, &["city", "plan"]);
}

#[test]
fn fields_come_out_with_brackets_get_field_and_unnest() {
    let (plugin, p, state) = scaler();
    let kiln = kiln_run(&plugin, &p, Some(&state)).expect("kiln run");
    let t = || Transform::from_parts(plugin.clone(), p.clone(), Some(state.clone())).unwrap();
    let want = kiln.column_by_name("income").unwrap();
    for sql in [
        "SELECT kiln_scaler(age, income)['income'] AS income FROM customers ORDER BY customer_id",
        "SELECT get_field(kiln_scaler(age, income), 'income') AS income FROM customers ORDER BY customer_id",
        // Arguments are positional: expressions and renamed columns work.
        "SELECT kiln_scaler(CAST(a AS BIGINT), i * 1.0)['income'] AS income FROM (SELECT customer_id, age AS a, income AS i FROM customers) ORDER BY customer_id",
    ] {
        let out = query(2, 10, vec![("kiln_scaler", t())], sql).unwrap_or_else(|e| panic!("{sql}: {e}"));
        let got = out.column_by_name("income").unwrap_or_else(|| panic!("{sql}: {:?}", out.schema()));
        assert_same_bits(sql, got, want);
    }
    // unnest spreads the struct into one column per field, named
    // `<struct expression>.<field>`.
    let out = query(
        2,
        10,
        vec![("kiln_scaler", t())],
        "SELECT * FROM (SELECT customer_id, unnest(z) FROM (SELECT customer_id, kiln_scaler(age, income) AS z FROM customers)) ORDER BY customer_id",
    )
    .unwrap();
    let names: Vec<String> = out
        .schema()
        .fields()
        .iter()
        .map(|f| f.name().clone())
        .collect();
    assert_eq!(names, ["customer_id", "z.age", "z.income"]);
    assert_same_bits("unnest", out.column(2), want);
}

#[test]
fn arguments_in_the_wrong_order_or_number_are_refused_while_planning() {
    let (plugin, p, state) = scaler();
    let t = || Transform::from_parts(plugin.clone(), p.clone(), Some(state.clone())).unwrap();
    for (sql, needle) in [
        (
            "SELECT kiln_scaler(income, age) FROM customers",
            "argument 1 is column 'income', which standard-scaler expects as argument 2; pass the columns in the order (age, income)",
        ),
        ("SELECT kiln_scaler(age) FROM customers", "takes 2 arguments (age, income)"),
    ] {
        let e = query(1, 8192, vec![("kiln_scaler", t())], sql).unwrap_err().to_string();
        assert!(e.contains(needle), "{sql}: {e}");
    }
}

#[test]
fn each_batch_runs_in_a_fresh_instance() {
    // Control: the counter plugin does see a reused instance.
    let counter = load("counter");
    let p = params("{}");
    let batch = RecordBatch::try_new(
        std::sync::Arc::new(arrow::datatypes::Schema::new(vec![
            arrow::datatypes::Field::new("x", arrow::datatypes::DataType::Int64, true),
        ])),
        vec![arc(arrow::array::Int64Array::from(vec![1, 2]))],
    )
    .unwrap();
    let sig = counter.signature(&p, None, batch.schema_ref()).unwrap();
    let mut ready = counter.ready(&p, None).unwrap();
    let first = counter.apply_ready(&mut ready, &batch, &sig).unwrap();
    let second = counter.apply_ready(&mut ready, &batch, &sig).unwrap();
    assert_eq!(first.column(0).as_primitive::<UInt64Type>().value(0), 1);
    assert_eq!(second.column(0).as_primitive::<UInt64Type>().value(0), 2);

    // 48 rows in batches of 5 on 2 partitions: 10 calls, each sees count 1.
    let t = Transform::from_parts(counter, p, None).unwrap();
    let ctx = context(2, 5);
    register_files(&ctx, "customers", &[customers_csv()]).unwrap();
    register(&ctx, "kiln_counter", t).unwrap();
    let rt = runtime();
    let (_, batches) = rt
        .block_on(collect(
            &ctx,
            "SELECT kiln_counter(customer_id)['calls'] AS calls FROM customers",
        ))
        .unwrap();
    assert!(batches.len() >= 10, "{} batches", batches.len());
    let mut rows = 0;
    for b in &batches {
        let calls = b.column(0).as_primitive::<UInt64Type>();
        assert!(calls.values().iter().all(|&c| c == 1), "{calls:?}");
        rows += b.num_rows();
    }
    assert_eq!(rows, 48);
}

#[test]
fn a_plugin_error_is_a_datafusion_error_with_kiln_runs_text() {
    // hash-encode on an integer column: refused while planning, with the
    // same message `kiln run` gives for the same plugin and parameters.
    let plugin = load("hash_encode");
    let p = params(r#"{"columns": ["age"], "buckets": 4}"#);
    let kiln_err = kiln_run(&plugin, &p, None).unwrap_err().to_string();
    assert!(
        kiln_err.contains("hash-encode") && kiln_err.contains("'age'"),
        "{kiln_err}"
    );

    let ctx = context(1, 8192);
    register_files(&ctx, "customers", &[customers_csv()]).unwrap();
    register(
        &ctx,
        "kiln_hash",
        Transform::from_parts(plugin, p, None).unwrap(),
    )
    .unwrap();
    let rt = runtime();
    let df_err = rt
        .block_on(async { ctx.sql("SELECT kiln_hash(age) FROM customers").await })
        .unwrap_err();
    assert!(df_err.to_string().contains(&kiln_err), "{df_err}");
    assert_eq!(
        runtime_error(&df_err).map(ToString::to_string),
        Some(kiln_err.clone())
    );
    match Error::from(df_err) {
        Error::Runtime(e @ kiln_runtime::Error::InvalidInput { .. }) => {
            assert_eq!(e.to_string(), kiln_err)
        }
        other => panic!("{other:?}"),
    }

    // A trap while executing: typed, naming the plugin and the panic.
    let panicky = Transform::from_parts(load("panicky"), params("{}"), None).unwrap();
    let e = query(
        2,
        10,
        vec![("kiln_panicky", panicky)],
        "SELECT kiln_panicky(age, city) FROM customers",
    )
    .unwrap_err();
    let text = e.to_string();
    assert!(
        text.contains("plugin 'panicky@0.1.0'") && text.contains("kiln test panic: boom"),
        "{text}"
    );
    assert!(
        matches!(e.as_runtime(), Some(kiln_runtime::Error::Trap { .. })),
        "{e:?}"
    );
}

#[test]
fn a_plugin_that_needs_a_state_is_refused_without_one() {
    let e = Transform::from_parts(
        load("standard_scaler"),
        params(r#"{"columns": ["age"]}"#),
        None,
    )
    .unwrap_err();
    assert!(
        matches!(
            e.as_runtime(),
            Some(kiln_runtime::Error::InvalidState { .. })
        ),
        "{e}"
    );
    assert!(e.to_string().contains("run `kiln fit` first"), "{e}");
}

#[test]
fn udfs_are_equal_by_name_and_version() {
    let (plugin, p, state) = scaler();
    let t = Transform::from_parts(plugin.clone(), p.clone(), Some(state.clone())).unwrap();
    let a = KilnUdf::new("kiln_scaler", t.clone()).unwrap();
    let b = KilnUdf::new("kiln_scaler", t.clone()).unwrap();
    let hash = |u: &KilnUdf| {
        let mut h = DefaultHasher::new();
        u.hash(&mut h);
        h.finish()
    };
    assert!(a == b && hash(&a) == hash(&b));
    assert_eq!(a.name(), "kiln_scaler");
    assert_eq!(
        a.signature().volatility,
        datafusion::logical_expr::Volatility::Immutable
    );
    let other_version = Transform::from_parts(
        plugin,
        params(r#"{"columns": ["age", "income"], "with_mean": false}"#),
        Some(state),
    )
    .unwrap();
    assert_ne!(other_version.version_id(), t.version_id());
    assert!(a != KilnUdf::new("kiln_scaler", other_version).unwrap());
    assert!(a != KilnUdf::new("kiln_other", t.clone()).unwrap());
    assert!(
        a != KilnUdf::new("kiln_scaler", t)
            .unwrap()
            .with_arg_names(["x", "y"])
    );
    let e = KilnUdf::new("Kiln-Scaler", scaler_transform()).unwrap_err();
    assert!(e.to_string().contains("'kiln_scaler'"), "{e}");
}

fn scaler_transform() -> Transform {
    let (plugin, p, state) = scaler();
    Transform::from_parts(plugin, p, Some(state)).unwrap()
}

#[test]
fn constant_arguments_are_folded_through_the_plugin() {
    let (plugin, p, state) = scaler();
    let t = Transform::from_parts(plugin.clone(), p.clone(), Some(state.clone())).unwrap();
    let out = query(
        1,
        8192,
        vec![("kiln_scaler", t)],
        "SELECT kiln_scaler(CAST(40 AS BIGINT), 50000.0)['age'] AS a FROM customers LIMIT 3",
    )
    .unwrap();
    // The oracle: the plugin called directly on the one row.
    let one = RecordBatch::try_new(
        std::sync::Arc::new(arrow::datatypes::Schema::new(vec![
            arrow::datatypes::Field::new("age", arrow::datatypes::DataType::Int64, true),
            arrow::datatypes::Field::new("income", arrow::datatypes::DataType::Float64, true),
        ])),
        vec![
            arc(arrow::array::Int64Array::from(vec![40])),
            arc(arrow::array::Float64Array::from(vec![50000.0])),
        ],
    )
    .unwrap();
    let direct = plugin
        .transformer(&p, Some(&state))
        .unwrap()
        .apply(&one)
        .unwrap();
    let want = direct
        .column(0)
        .as_primitive::<arrow::datatypes::Float64Type>()
        .value(0);
    let a = out
        .column(0)
        .as_primitive::<arrow::datatypes::Float64Type>();
    assert_eq!(a.len(), 3);
    assert!(
        a.values().iter().all(|v| v.to_bits() == want.to_bits()),
        "{a:?} vs {want}"
    );
}
