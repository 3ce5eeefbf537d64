//! Fuzz the input file readers (Parquet, CSV, Arrow IPC file/stream, JSON-lines).
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| kiln_host::fuzzing::input_file(data));
