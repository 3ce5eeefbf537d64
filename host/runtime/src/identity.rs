//! Content identities: what pins a result to the exact binary, parameters
//! and state that produced it.
//!
//! - plugin id = sha256 of the component bytes ([`plugin_id`]);
//! - state id = sha256 of the fitted-state bytes ([`crate::State::id`]);
//! - transform version = sha256 over (plugin id, canonical parameters,
//!   state id) ([`version_id`]).

use sha2::{Digest, Sha256};

use crate::Params;

/// The plugin id: sha256 of the component bytes, lowercase hex.
pub fn plugin_id(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// The id of a transform version: sha256 over the plugin id, the canonical
/// parameters and the state id.
///
/// # Examples
/// ```
/// let p = kiln_runtime::Params::from_json(r#"{"columns":["x"]}"#).unwrap();
/// let a = kiln_runtime::version_id("ab", &p, Some("cd"));
/// assert_ne!(a, kiln_runtime::version_id("ab", &p, None));
/// assert_eq!(a.len(), 64);
/// ```
pub fn version_id(plugin_id: &str, params: &Params, state_id: Option<&str>) -> String {
    let mut h = Sha256::new();
    h.update(b"kiln-version-v1\n");
    h.update(plugin_id.as_bytes());
    h.update(b"\n");
    h.update(params.as_str().as_bytes());
    h.update(b"\n");
    h.update(state_id.unwrap_or("-").as_bytes());
    hex::encode(h.finalize())
}
