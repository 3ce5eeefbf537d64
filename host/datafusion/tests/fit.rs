//! Fitting across DataFusion partitions gives `kiln fit`'s state bytes.

use std::sync::Arc;

use datafusion::datasource::MemTable;
use kiln_datafusion::{fit, register_files};
use kiln_io::ReadOptions;

use crate::support::*;

const BATCH: usize = 7;

#[test]
fn standard_scaler_state_equals_kiln_fit_on_1_2_and_4_partitions() {
    let plugin = load("standard_scaler");
    let p = params(r#"{"columns": ["age", "income", "monthly_spend"]}"#);
    // `kiln fit` on the file, read in batches of 7 rows (48 rows: 7 batches).
    let expected = kiln_fit(&plugin, &p, BATCH);
    let (schema, batches) =
        kiln_io::read_all(&customers_csv(), &ReadOptions { batch_size: BATCH }).unwrap();
    assert_eq!(batches.len(), 7);
    let rt = runtime();
    for n in [1usize, 2, 4] {
        // The same batches, cut into n contiguous partitions of uneven size.
        let per = batches.len().div_ceil(n);
        let partitions: Vec<Vec<_>> = batches.chunks(per).map(<[_]>::to_vec).collect();
        assert_eq!(partitions.len(), n);
        let ctx = context(n, 8192);
        let table = MemTable::try_new(schema.clone(), partitions).unwrap();
        ctx.register_table("customers", Arc::new(table)).unwrap();
        let (state, summary) = rt
            .block_on(async {
                let df = ctx.table("customers").await?;
                fit(&plugin, &p, df).await
            })
            .unwrap();
        assert_eq!(summary.partition_rows.len(), n, "{summary:?}");
        assert_eq!(summary.rows, 48);
        assert_eq!(summary.batches, 7);
        assert_eq!(
            state.as_bytes(),
            expected.as_bytes(),
            "{n} partitions: state {} vs kiln fit {}",
            String::from_utf8_lossy(state.as_bytes()),
            String::from_utf8_lossy(expected.as_bytes())
        );
    }
}

#[test]
fn a_long_input_of_many_small_batches_gives_kiln_fits_bytes() {
    // 96 one-row batches (the file twice) on 3 partitions: more partial
    // states than one merge call takes.
    let plugin = load("standard_scaler");
    let p = params(r#"{"columns": ["age", "income"]}"#);
    let csv = customers_csv();
    let opts = kiln_io::job::JobOptions {
        batch_size: 1,
        ..Default::default()
    };
    let (expected, _) =
        kiln_io::job::fit_files(&plugin, &p, &[csv.clone(), csv.clone()], &opts, &mut |_| {})
            .unwrap();
    let (schema, once) = kiln_io::read_all(&csv, &ReadOptions { batch_size: 1 }).unwrap();
    let all: Vec<_> = once.iter().chain(&once).cloned().collect();
    assert_eq!(all.len(), 96);
    let partitions: Vec<Vec<_>> = all.chunks(40).map(<[_]>::to_vec).collect();
    let ctx = context(3, 8192);
    let table = MemTable::try_new(schema, partitions).unwrap();
    ctx.register_table("t", Arc::new(table)).unwrap();
    let (state, summary) = runtime()
        .block_on(async { fit(&plugin, &p, ctx.table("t").await?).await })
        .unwrap();
    assert_eq!(
        (summary.batches, summary.partition_rows),
        (96, vec![40, 40, 16])
    );
    assert_eq!(state.as_bytes(), expected.as_bytes());
}

#[test]
fn fit_on_a_query_over_a_file_table_equals_kiln_fit_with_the_same_batches() {
    let plugin = load("standard_scaler");
    let p = params(r#"{"columns": ["age", "income"]}"#);
    let expected = kiln_fit(&plugin, &p, 10);
    let ctx = context(2, 10);
    register_files(&ctx, "customers", &[customers_csv()]).unwrap();
    let (state, summary) = runtime()
        .block_on(async {
            let df = ctx.sql("SELECT age, income FROM customers").await?;
            fit(&plugin, &p, df).await
        })
        .unwrap();
    assert_eq!(summary.rows, 48);
    assert_eq!(state.as_bytes(), expected.as_bytes());
}

#[test]
fn a_two_file_table_fits_in_file_order_whatever_the_target_partitions() {
    // Round-robin repartitioning (2 files, 4 target partitions) would
    // interleave the files' batches by arrival; the fit plans without it.
    let plugin = load("standard_scaler");
    let p = params(r#"{"columns": ["age", "income", "monthly_spend"]}"#);
    let csv = customers_csv();
    let opts = kiln_io::job::JobOptions {
        batch_size: 5,
        ..Default::default()
    };
    let (expected, _) =
        kiln_io::job::fit_files(&plugin, &p, &[csv.clone(), csv.clone()], &opts, &mut |_| {})
            .unwrap();
    let rt = runtime();
    let sql = "SELECT * FROM t WHERE customer_id >= 0";
    for _ in 0..3 {
        let ctx = context(4, 5);
        register_files(&ctx, "t", &[csv.clone(), csv.clone()]).unwrap();
        // Planned as usual, the filter would run on 4 round-robin partitions.
        let (_, plan) = rt
            .block_on(kiln_datafusion::collect(&ctx, &format!("EXPLAIN {sql}")))
            .unwrap();
        let plan = arrow::util::pretty::pretty_format_batches(&plan)
            .unwrap()
            .to_string();
        assert!(
            plan.contains("RoundRobinBatch(4), input_partitions=2"),
            "{plan}"
        );
        let (state, summary) = rt
            .block_on(async { fit(&plugin, &p, ctx.sql(sql).await?).await })
            .unwrap();
        assert_eq!(summary.partition_rows, vec![48, 48]);
        assert_eq!(state.as_bytes(), expected.as_bytes());
    }
}

#[test]
fn fit_errors_name_the_plugin_and_refuse_empty_input() {
    let plugin = load("standard_scaler");
    let ctx = context(2, 10);
    register_files(&ctx, "customers", &[customers_csv()]).unwrap();
    let rt = runtime();
    let p = params(r#"{"columns": ["nope"]}"#);
    let e = rt
        .block_on(async { fit(&plugin, &p, ctx.sql("SELECT age FROM customers").await?).await })
        .unwrap_err();
    assert!(
        e.to_string().contains("standard-scaler") && e.to_string().contains("nope"),
        "{e}"
    );
    let p = params(r#"{"columns": ["age"]}"#);
    let e = rt
        .block_on(async {
            fit(
                &plugin,
                &p,
                ctx.sql("SELECT age FROM customers WHERE age > 1000")
                    .await?,
            )
            .await
        })
        .unwrap_err();
    assert!(e.to_string().contains("no rows to fit on"), "{e}");
}
