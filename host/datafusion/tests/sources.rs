//! A transform pinned from a registry tag, a bundle or loose files is the
//! same version and gives the same output.

use arrow::array::AsArray;
use kiln_datafusion::{register, register_files, sql, Transform};
use kiln_io::job::JobOptions;
use kiln_store::{Bundle, FitTarget, OpenOptions, Registry, Store, TagRef};

use crate::support::*;

#[test]
fn registry_tag_bundle_and_files_pin_the_same_version() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(
        &dir.path().join("store"),
        &OpenOptions {
            create: true,
            wait: false,
        },
        &mut |_| {},
    )
    .unwrap();
    let registry = Registry::new(engine(), store);
    let plugin_file = plugin_path("standard_scaler");
    let (plugin, _) = registry.add_plugin(&plugin_file).unwrap();
    let p = params(r#"{"columns": ["age", "income"]}"#);
    let target = FitTarget {
        name: "scaler".into(),
        tag: "prod".into(),
        reason: "test".into(),
        ..FitTarget::default()
    };
    let fitted = registry
        .fit(
            &plugin,
            &p,
            &[customers_csv()],
            Some(&target),
            &JobOptions::default(),
            &mut |_| {},
        )
        .unwrap();

    let from_tag = Transform::from_registry(&registry, "scaler@prod").unwrap();
    let from_id = Transform::from_registry(&registry, &fitted.version.id[..16]).unwrap();
    let bundle_path = dir.path().join("scaler.kiln");
    registry
        .export(&TagRef::parse("scaler@prod").unwrap(), &bundle_path)
        .unwrap();
    let from_bundle =
        Transform::from_bundle(&engine(), &Bundle::read(&bundle_path).unwrap()).unwrap();
    let state_file = dir.path().join("scaler.state");
    let state = registry
        .store()
        .state(fitted.version.state_id.as_deref().unwrap())
        .unwrap();
    std::fs::write(&state_file, state.as_bytes()).unwrap();
    let from_files =
        Transform::from_files(&engine(), &plugin_file, p.clone(), Some(&state_file)).unwrap();

    assert_eq!(from_tag.label(), "scaler@prod");
    assert_eq!(from_bundle.label(), "scaler@prod");
    for t in [&from_tag, &from_id, &from_bundle, &from_files] {
        assert_eq!(t.version_id(), fitted.version.id, "{}", t.label());
    }

    // The registry's UDF output is `kiln run`'s output, bit for bit.
    let kiln = kiln_run(&plugin, &p, Some(&state)).unwrap();
    let ctx = context(2, 10);
    register_files(&ctx, "customers", &[customers_csv()]).unwrap();
    for (name, t) in [
        ("from_tag", from_tag),
        ("from_bundle", from_bundle),
        ("from_files", from_files),
    ] {
        register(&ctx, name, t).unwrap();
    }
    let (_, batches) = sql(
        &ctx,
        "SELECT from_tag(age, income)['income'] AS a, from_bundle(age, income)['income'] AS b, from_files(age, income)['income'] AS c FROM customers ORDER BY customer_id",
        &[],
    )
    .unwrap();
    let out = concat(&batches);
    for i in 0..3 {
        assert_same_bits(
            "income",
            out.column(i),
            kiln.column_by_name("income").unwrap(),
        );
    }
    assert!(
        out.column(0)
            .as_primitive::<arrow::datatypes::Float64Type>()
            .len()
            == 48
    );
}

#[test]
fn unknown_tags_and_missing_stores_are_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(
        &dir.path().join("store"),
        &OpenOptions {
            create: true,
            wait: false,
        },
        &mut |_| {},
    )
    .unwrap();
    let registry = Registry::new(engine(), store);
    let e = Transform::from_registry(&registry, "scaler@prod")
        .unwrap_err()
        .to_string();
    assert!(e.contains("no transform named 'scaler'"), "{e}");
}
