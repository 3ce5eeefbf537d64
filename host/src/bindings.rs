//! Host bindings generated from `wit/kiln.wit`. Crate-private: the public
//! API speaks Arrow and Kiln types, never generated ones.

wasmtime::component::bindgen!({
    world: "plugin",
    path: "../wit",
});

/// The exported interface's name, with the contract version this host speaks.
pub(crate) const TRANSFORM_INTERFACE: &str = "kiln:transform/transform@0.1.0";
