//! Hostile test plugin: implements the contract directly (not through the
//! SDK's safe conversions) and returns malformed batches. The `mode`
//! parameter picks the lie; the input must be one Utf8 column `s`, and the
//! declared output is one Utf8 column `s` (with field and schema metadata
//! for the modes starting `meta_`).
#![cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]

#[cfg(target_arch = "wasm32")]
mod imp {
    use kiln_sdk::__private::bindings::exports::kiln::transform::transform as t;
    use kiln_sdk::__private::bindings::kiln::transform::types as w;

    pub struct Liar;
    pub struct Lie(String);

    fn utf8_field(name: &str) -> w::Field {
        w::Field {
            name: name.into(),
            data_type: w::DataType::Utf8,
            nullable: true,
            metadata: vec![],
        }
    }

    fn schema() -> w::Schema {
        w::Schema {
            fields: vec![utf8_field("s")],
            metadata: vec![],
        }
    }

    /// What `output_schema` declares for `mode`.
    fn declared(mode: &str) -> w::Schema {
        let mut s = schema();
        if mode.starts_with("meta_") {
            s.fields[0].metadata = vec![("unit".into(), "chars".into())];
            s.metadata = vec![("owner".into(), "kiln".into()), ("v".into(), "1".into())];
        }
        s
    }

    impl Lie {
        fn mode(&self) -> String {
            self.0.split('"').nth(3).unwrap_or("honest").to_owned()
        }
    }

    /// Two rows, "ab" and "c", as offsets [0,2,3] and values "abc".
    fn good_array() -> w::Array {
        w::Array {
            length: 2,
            offset: 0,
            null_count: 0,
            validity: None,
            buffers: vec![
                [0i32, 2, 3].iter().flat_map(|o| o.to_le_bytes()).collect(),
                b"abc".to_vec(),
            ],
        }
    }

    impl t::Guest for Liar {
        type Transformer = Lie;
        fn describe() -> t::PluginInfo {
            t::PluginInfo {
                name: "liar".into(),
                version: "0.1.0".into(),
                description: "Returns malformed batches".into(),
                kind: t::PluginKind::Stateless,
                params_schema: "{}".into(),
                deterministic: true,
            }
        }
        fn needs_fit(_: String) -> Result<bool, w::Error> {
            Ok(false)
        }
        fn fit_partial(_: String, _: w::Batch) -> Result<Vec<u8>, w::Error> {
            Err(w::Error::InvalidParams("stateless".into()))
        }
        fn fit_merge(_: String, _: Vec<Vec<u8>>) -> Result<Vec<u8>, w::Error> {
            Err(w::Error::InvalidParams("stateless".into()))
        }
        fn fit_finish(_: String, _: Vec<u8>) -> Result<Vec<u8>, w::Error> {
            Err(w::Error::InvalidParams("stateless".into()))
        }
        fn configure(params: String, _: Option<Vec<u8>>) -> Result<t::Transformer, w::Error> {
            Ok(t::Transformer::new(Lie(params)))
        }
    }

    impl t::GuestTransformer for Lie {
        fn output_schema(&self, _: w::Schema) -> Result<w::Schema, w::Error> {
            Ok(declared(&self.mode()))
        }
        fn apply(&self, _input: w::Batch) -> Result<w::Batch, w::Error> {
            let mode = self.mode();
            let mut a = good_array();
            let mut num_rows = 2;
            let mut s = declared(&mode);
            let mut arrays = vec![];
            match mode.as_str() {
                "honest" => {}
                "wrong_length" => a.length = 5,
                "offsets_past_end" => {
                    a.buffers[0] = [0i32, 2, 9].iter().flat_map(|o| o.to_le_bytes()).collect()
                }
                "decreasing_offsets" => {
                    a.buffers[0] = [0i32, 2, 1].iter().flat_map(|o| o.to_le_bytes()).collect()
                }
                "invalid_utf8" => a.buffers[1] = vec![b'a', 0xff, 0xfe],
                "short_validity" => {
                    a.length = 20;
                    a.null_count = 1;
                    a.validity = Some(vec![0b1]);
                    num_rows = 20;
                }
                "missing_buffer" => {
                    a.buffers.pop();
                }
                "undeclared_schema" => s.fields[0].data_type = w::DataType::Int64,
                // Names that differ from the declared `s` by one byte, by
                // length, or only in the metadata's last value.
                "renamed_column" => s.fields[0].name = "t".into(),
                "longer_name" => s.fields[0].name = "s2".into(),
                "meta_renamed_column" => s.fields[0].name = "r".into(),
                // Differences the host tolerates (the output carries the
                // declared schema): nullability and metadata.
                "not_nullable" => s.fields[0].nullable = false,
                "extra_metadata" => s.fields[0].metadata = vec![("k".into(), "v".into())],
                "meta_honest" => {}
                "meta_other_value" => s.metadata[1].1 = "2".into(),
                "meta_dropped" => s = schema(),
                "extra_column" => {
                    s.fields.push(utf8_field("t"));
                    arrays.push(good_array());
                }
                "too_many_rows" => {
                    let n = 100_000u32;
                    a.length = n as u64;
                    num_rows = n as u64;
                    a.buffers = vec![
                        (0..=n).flat_map(|o| o.to_le_bytes()).collect(),
                        vec![b'x'; n as usize],
                    ];
                }
                other => return Err(w::Error::InvalidParams(format!("unknown mode {other}"))),
            }
            arrays.insert(0, a);
            Ok(w::Batch {
                schema: s,
                num_rows,
                arrays,
            })
        }
    }

    kiln_sdk::__private::bindings::__export_kiln_plugin!(Liar with_types_in kiln_sdk::__private::bindings);
}
