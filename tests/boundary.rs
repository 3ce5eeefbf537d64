//! What a plugin returns is untrusted: every malformed batch is refused with
//! an error naming the plugin and the column, never a panic or undefined
//! behaviour, and the host keeps working.

use std::sync::Arc;

use arrow::array::{ArrayRef, RecordBatch, StringArray};
use kiln_host::{Error, Params};

use crate::support::*;

fn input() -> RecordBatch {
    RecordBatch::try_from_iter([("s", Arc::new(StringArray::from(vec!["x", "y"])) as ArrayRef)])
        .unwrap()
}

fn lie(mode: &str) -> Result<RecordBatch, Error> {
    let p = load("liar");
    let params = Params::from_json(&format!(r#"{{"mode":"{mode}"}}"#)).unwrap();
    p.transformer(&params, None).unwrap().apply(&input())
}

#[test]
fn an_honest_batch_from_the_raw_contract_is_accepted() {
    let out = lie("honest").unwrap();
    let s = out
        .column(0)
        .as_any()
        .downcast_ref::<StringArray>()
        .unwrap();
    assert_eq!((s.value(0), s.value(1)), ("ab", "c"));
}

/// The host compares a returned schema with the declared one where it
/// lies in the plugin's memory; one that is the declared schema, or differs
/// only where the host tolerates it (nullability, metadata), gives the
/// declared schema, metadata included, and the data.
#[test]
fn the_output_carries_the_declared_schema() {
    use std::collections::HashMap;
    let map = |kv: &[(&str, &str)]| -> HashMap<String, String> {
        kv.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    };
    for (mode, with_metadata) in [
        ("honest", false),
        ("not_nullable", false),
        ("extra_metadata", false),
        ("meta_honest", true),
        ("meta_other_value", true),
        ("meta_dropped", true),
    ] {
        let out = lie(mode).unwrap_or_else(|e| panic!("{mode}: {e}"));
        let schema = out.schema();
        let f = schema.field(0);
        assert_eq!((f.name().as_str(), f.is_nullable()), ("s", true), "{mode}");
        let (field_md, schema_md) = if with_metadata {
            (
                map(&[("unit", "chars")]),
                map(&[("owner", "kiln"), ("v", "1")]),
            )
        } else {
            (map(&[]), map(&[]))
        };
        assert_eq!(f.metadata(), &field_md, "{mode}");
        assert_eq!(schema.metadata(), &schema_md, "{mode}");
        let s = out
            .column(0)
            .as_any()
            .downcast_ref::<StringArray>()
            .unwrap();
        assert_eq!((s.value(0), s.value(1)), ("ab", "c"), "{mode}");
    }
}

/// A returned schema that is the declared one is compared where it lies,
/// not lifted; any difference, even one the host tolerates, lifts it.
#[test]
fn a_declared_schema_is_compared_in_place() {
    use kiln_host::wire::host_schema_counts;
    for (mode, in_place) in [
        ("honest", true),
        ("meta_honest", true),
        ("renamed_column", false),
        ("longer_name", false),
        ("not_nullable", false),
        ("extra_metadata", false),
        ("meta_other_value", false),
        ("meta_dropped", false),
    ] {
        let p = load("liar");
        let params = Params::from_json(&format!(r#"{{"mode":"{mode}"}}"#)).unwrap();
        let mut t = p.transformer(&params, None).unwrap();
        // (Calls run on the caller's thread, whose counts these are.)
        let (a, b) = host_schema_counts();
        let _ = t.apply(&input());
        let (a2, b2) = host_schema_counts();
        let want = if in_place { (1, 0) } else { (0, 1) };
        assert_eq!((a2 - a, b2 - b), want, "{mode}");
    }
}

#[test]
fn malformed_batches_are_refused_naming_the_column() {
    let cases = [
        ("wrong_length", "s", "bytes in buffers"),
        ("offsets_past_end", "s", "offset"),
        ("decreasing_offsets", "s", "offset"),
        ("invalid_utf8", "s", "utf"),
        ("short_validity", "s", "bitmap"),
        ("missing_buffer", "s", "buffers"),
        ("undeclared_schema", "s", "declared"),
        ("renamed_column", "s", "declared"),
        ("longer_name", "s", "declared"),
        ("meta_renamed_column", "s", "declared"),
        ("extra_column", "", "columns returned"),
        ("too_many_rows", "", "cap"),
    ];
    for (mode, column, needle) in cases {
        let err = lie(mode).expect_err(mode);
        match &err {
            Error::InvalidOutput { column: c, .. } => {
                if !column.is_empty() {
                    assert_eq!(c.as_deref(), Some(column), "{mode}: {err}");
                }
            }
            other => panic!("{mode}: expected InvalidOutput, got {other}"),
        }
        let msg = err.to_string().to_lowercase();
        assert!(msg.contains(needle), "{mode}: '{needle}' not in: {msg}");
        assert!(
            msg.contains("liar@0.1.0"),
            "{mode}: names the plugin: {msg}"
        );
    }
    // The host is fine afterwards.
    assert!(lie("honest").is_ok());
}

#[test]
fn files_that_are_not_usable_components_are_refused_at_load() {
    let dir = tempfile::tempdir().unwrap();
    let good = std::fs::read(plugin_path("identity")).unwrap();
    // A core module (the 8-byte header of an empty one).
    let core = b"\0asm\x01\x00\x00\x00".to_vec();
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("text.wasm", b"hello".to_vec(), "not a WebAssembly file"),
        ("core.wasm", core, "core WebAssembly module"),
        (
            "truncated.wasm",
            good[..good.len() / 3].to_vec(),
            "not a valid WebAssembly component",
        ),
    ];
    for (name, bytes, needle) in cases {
        let path = dir.path().join(name);
        std::fs::write(&path, bytes).unwrap();
        let err = engine().load(&path).expect_err(name);
        assert!(matches!(err, Error::Load { .. }), "{name}: {err}");
        assert!(
            err.to_string().contains(needle) && err.to_string().contains(name),
            "{name}: {err}"
        );
        let e = kiln_err(&["inspect", s(&path)]);
        assert!(e.contains(needle), "{name}: {e}");
    }
}
