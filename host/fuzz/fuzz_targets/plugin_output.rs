//! Fuzz the host's validation and conversion of what a plugin returns.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| kiln_host::fuzzing::plugin_output(data));
