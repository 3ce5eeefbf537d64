//! Test plugin built against a future major version of the contract
//! (`kiln:transform@1.0.0`): the host must refuse it at load with a clear
//! message, not fail at its first call.
#![cfg(target_arch = "wasm32")]

wit_bindgen::generate!({
    inline: r#"
        package kiln:transform@1.0.0;
        interface transform {
            describe: func() -> string;
        }
        world plugin {
            export transform;
        }
    "#,
    world: "plugin",
});

struct Future;

impl exports::kiln::transform::transform::Guest for Future {
    fn describe() -> String {
        "from the future".into()
    }
}

export!(Future);
