//! Shared fixtures: plugin paths, the `kiln` binary, small tables.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use arrow::array::RecordBatch;
use kiln_host::{Engine, Plugin};

/// Path of a built guest (`standard_scaler`, `identity`, ...).
pub fn plugin_path(name: &str) -> PathBuf {
    Path::new(env!("KILN_PLUGIN_DIR")).join(format!("{name}.wasm"))
}

/// The example table shipped in the repo.
pub fn customers_csv() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/data/customers.csv")
}

/// One engine for the whole test binary (compiled components are cached).
pub fn engine() -> &'static Engine {
    static ENGINE: OnceLock<Engine> = OnceLock::new();
    ENGINE.get_or_init(|| Engine::new().expect("default engine"))
}

/// Load a built guest with the shared engine.
pub fn load(name: &str) -> Plugin {
    engine()
        .load(&plugin_path(name))
        .unwrap_or_else(|e| panic!("loading {name}: {e}"))
}

/// `kiln` with arguments; returns the finished process output.
pub fn kiln(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_kiln"))
        .args(args)
        .env("NO_COLOR", "1")
        .output()
        .expect("kiln binary runs")
}

/// `kiln` that must succeed; returns stdout.
pub fn kiln_ok(args: &[&str]) -> String {
    let out = kiln(args);
    assert!(
        out.status.success(),
        "kiln {args:?} failed: {}\n{}",
        String::from_utf8_lossy(&out.stderr),
        String::from_utf8_lossy(&out.stdout)
    );
    String::from_utf8(out.stdout).expect("utf-8 stdout")
}

/// `kiln` that must fail; returns stderr.
pub fn kiln_err(args: &[&str]) -> String {
    let out = kiln(args);
    assert!(!out.status.success(), "kiln {args:?} should have failed");
    assert_eq!(
        out.status.code(),
        Some(1),
        "errors exit with 1, not a crash: {out:?}"
    );
    let stderr = String::from_utf8(out.stderr).expect("utf-8 stderr");
    assert!(
        !stderr.contains("thread 'main' panicked"),
        "a panic reached the user: {stderr}"
    );
    stderr
}

/// Open a store's sled database directly, as someone with file access
/// would (the store must not be open in a `kiln` process). sled's
/// background writer threads can hold the database's file lock for a few
/// milliseconds after an earlier handle in this test process was dropped,
/// so a lock conflict is retried for up to ten seconds.
pub fn open_sled(store: &Path) -> sled::Db {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match sled::open(store.join("db")) {
            Ok(db) => return db,
            Err(sled::Error::Io(e))
                if e.to_string().contains("could not acquire lock")
                    && Instant::now() < deadline =>
            {
                std::thread::sleep(Duration::from_millis(20))
            }
            Err(e) => panic!("opening the database of {}: {e}", store.display()),
        }
    }
}

/// Path as &str for argument lists.
pub fn s(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

/// Read a whole data file with kiln's own reader.
pub fn read(path: &Path) -> Vec<RecordBatch> {
    kiln_host::io::read_all(path, &Default::default())
        .expect("readable output")
        .1
}

/// Concatenate batches into one.
pub fn concat(batches: &[RecordBatch]) -> RecordBatch {
    arrow::compute::concat_batches(&batches[0].schema(), batches).expect("same schema")
}

/// The customers table split in two halves (`a.csv`, `b.csv` in `dir`) with
/// different distributions.
pub fn halves(dir: &Path) -> (PathBuf, PathBuf) {
    let text = std::fs::read_to_string(customers_csv()).unwrap();
    let mut lines = text.lines();
    let header = lines.next().unwrap();
    let rows: Vec<&str> = lines.collect();
    let (a, b) = rows.split_at(rows.len() / 2);
    let write = |name: &str, rows: &[&str]| {
        let p = dir.join(name);
        std::fs::write(&p, format!("{header}\n{}\n", rows.join("\n"))).unwrap();
        p
    };
    (write("a.csv", a), write("b.csv", b))
}

/// Headless Chromium, or `None` (with a note naming `what` is skipped)
/// where it is absent, unless KILN_REQUIRE_BROWSER=1 (CI sets it and
/// installs Chromium): then its absence fails the test.
pub fn chromium(what: &str) -> Option<&'static str> {
    let browser = ["chromium", "chromium-browser", "google-chrome"]
        .into_iter()
        .find(|b| {
            Command::new(b)
                .arg("--version")
                .output()
                .is_ok_and(|o| o.status.success())
        });
    if browser.is_none() {
        assert!(
            std::env::var("KILN_REQUIRE_BROWSER").is_err(),
            "KILN_REQUIRE_BROWSER is set but no Chromium is installed"
        );
        eprintln!("note: Chromium not found; skipping {what}");
    }
    browser
}

/// `browser` headless on `url` (a `file://` page or a server on
/// loopback) with `args` added; nothing reaches the network otherwise.
fn headless(browser: &str, args: &[String], url: &str) -> Output {
    let profile = tempfile::tempdir().unwrap();
    let out = Command::new(browser)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--hide-scrollbars",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .args(args)
        .arg(url)
        .output()
        .unwrap();
    assert!(out.status.success(), "chromium failed on {url}: {out:?}");
    out
}

/// The DOM of `url` after Chromium loaded and rendered it.
pub fn dump_dom(browser: &str, url: &str) -> String {
    let out = headless(browser, &["--dump-dom".into()], url);
    String::from_utf8(out.stdout).expect("the DOM is UTF-8")
}

/// A screenshot of `url` at `width` x `height` written to `png`, as RGB
/// pixels (row by row).
pub fn screenshot(
    browser: &str,
    url: &str,
    png: &Path,
    (width, height): (u32, u32),
) -> Vec<[u8; 3]> {
    headless(
        browser,
        &[
            format!("--window-size={width},{height}"),
            format!("--screenshot={}", png.display()),
        ],
        url,
    );
    assert!(png.exists(), "chromium wrote no screenshot of {url}");
    let decoder = png::Decoder::new(std::io::BufReader::new(std::fs::File::open(png).unwrap()));
    let mut reader = decoder.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size().unwrap()];
    let info = reader.next_frame(&mut buf).unwrap();
    let channels = info.color_type.samples();
    buf[..info.buffer_size()]
        .chunks(channels)
        .map(|p| [p[0], p[1], p[2]])
        .collect()
}
