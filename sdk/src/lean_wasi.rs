//! The WASI a plugin never needs, answered inside the plugin so the
//! component does not import it.
//!
//! Rust's standard library on `wasm32-wasip2` links wasi-libc, whose start-up
//! and stdio code refer to `wasi:cli/environment` (environment, arguments,
//! working directory) and the five `wasi:cli/terminal-*` interfaces. A
//! component imports every interface its code refers to, and the host links
//! each import into every instance it creates: Kiln creates one per call, so
//! each import costs every call. Kiln's sandbox answers these the same way
//! every time (no environment, no arguments, no working directory, no
//! terminal; `host/runtime/src/sandbox/wasi.rs`), so the plugin can answer
//! them itself: this module defines the functions wasi-libc declares as
//! those imports (`__wasm_import_*`, the names of wasi-libc's generated
//! bindings), the linker resolves wasi-libc's references to them, and the
//! imports are gone: six fewer interfaces per component, and instantiate +
//! configure of a `one-hot` instance 7.5 – 7.6 → 6.8 – 7.1 µs
//! (docs/performance.md, fourteenth round).
//!
//! What a plugin observes is unchanged (the sandbox test's `snoop` plugin
//! still sees no environment and no arguments). `std::env::args` is the one
//! query the standard library asks through its own binding rather than
//! wasi-libc's, so a plugin that calls it still imports
//! `wasi:cli/environment` for `get-arguments` (and gets none from the
//! host). Interfaces whose answer matters stay imported: `wasi:cli/stderr`
//! (the host logs it and reports it with a trap), `wasi:cli/exit` (a call
//! that exits ends as a trap naming the status), streams, clocks, random.
//!
//! Should a toolchain rename these symbols, the functions here are simply
//! unused and the plugin imports the interfaces as before; the test
//! `sdk_plugins_import_no_environment_and_no_terminal` (`tests/sandbox.rs`)
//! then fails and says which. Like every `#[no_mangle]` function of a
//! `cdylib`, they are also exports of the plugin's core module (not of its
//! component). Compiled on `wasm32-wasip2` with the `lean-wasi` feature
//! (default): `cfg(kiln_lean_wasi)`, set by `build.rs`.
//!
//! Each function writes the canonical ABI's flat form of its result to
//! `ret`, as the wasi-libc binding expects: a `list` is `(ptr, len)` and an
//! `option` a discriminant byte (0 = none).

/// `wasi:cli/environment.get-environment`: an empty
/// `list<tuple<string, string>>`.
///
/// # Safety
/// `ret` is valid for writing 8 bytes (the binding's return area).
#[no_mangle]
pub unsafe extern "C" fn __wasm_import_environment_get_environment(ret: *mut u8) {
    // SAFETY: the caller's return area holds a list's (ptr, len).
    unsafe { ret.cast::<[u32; 2]>().write_unaligned([0, 0]) }
}

/// `wasi:cli/environment.get-arguments`: an empty `list<string>`.
///
/// # Safety
/// `ret` is valid for writing 8 bytes.
#[no_mangle]
pub unsafe extern "C" fn __wasm_import_environment_get_arguments(ret: *mut u8) {
    // SAFETY: as above.
    unsafe { ret.cast::<[u32; 2]>().write_unaligned([0, 0]) }
}

/// `wasi:cli/environment.initial-cwd`: `none`.
///
/// # Safety
/// `ret` is valid for writing 1 byte (the option's discriminant).
#[no_mangle]
pub unsafe extern "C" fn __wasm_import_environment_initial_cwd(ret: *mut u8) {
    // SAFETY: the caller's return area starts with the discriminant.
    unsafe { ret.write(0) }
}

/// `wasi:cli/terminal-stdin.get-terminal-stdin`: `none` (not a terminal).
///
/// # Safety
/// `ret` is valid for writing 1 byte.
#[no_mangle]
pub unsafe extern "C" fn __wasm_import_terminal_stdin_get_terminal_stdin(ret: *mut u8) {
    // SAFETY: as above.
    unsafe { ret.write(0) }
}

/// `wasi:cli/terminal-stdout.get-terminal-stdout`: `none`.
///
/// # Safety
/// `ret` is valid for writing 1 byte.
#[no_mangle]
pub unsafe extern "C" fn __wasm_import_terminal_stdout_get_terminal_stdout(ret: *mut u8) {
    // SAFETY: as above.
    unsafe { ret.write(0) }
}

/// `wasi:cli/terminal-stderr.get-terminal-stderr`: `none`.
///
/// # Safety
/// `ret` is valid for writing 1 byte.
#[no_mangle]
pub unsafe extern "C" fn __wasm_import_terminal_stderr_get_terminal_stderr(ret: *mut u8) {
    // SAFETY: as above.
    unsafe { ret.write(0) }
}

/// Dropping a `terminal-input`: none is ever handed out.
#[no_mangle]
pub extern "C" fn __wasm_import_terminal_input_terminal_input_drop(_handle: i32) {}

/// Dropping a `terminal-output`: none is ever handed out.
#[no_mangle]
pub extern "C" fn __wasm_import_terminal_output_terminal_output_drop(_handle: i32) {}
