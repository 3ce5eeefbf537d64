//! The wire form of a [`KilnUdf`]: what a distributed engine (Ballista,
//! through its extension codecs) ships to its scheduler and executors so
//! they run the very plugin, parameters, state and masks the client
//! registered, with nothing installed on them beforehand.
//!
//! # Layout (format 1)
//!
//! ```text
//! magic      8 bytes   b"KILN-UDF"
//! format     u16 LE    1
//! header     u32 LE length, then JSON: SQL name, label, version id,
//!                      plugin id, canonical parameters, state id,
//!                      argument names, column policies, mask salt
//! wasm       u64 LE length, then the plugin's component bytes
//! state      u8 flag (0: none, 1: present), then u64 LE length and bytes
//! ```
//!
//! Nothing may follow. A reader refuses another magic, another format
//! version, a truncated or over-long envelope, and parts that do not match
//! their ids: the sha256 of the component bytes must be the plugin id, and
//! the version id recomputed from (plugin id, parameters, state id) must be
//! the one in the header. So a changed byte anywhere in the plugin, the
//! parameters or the state is refused, not run.
//!
//! # Trust
//!
//! The envelope travels inside the query plan, which a distributed engine
//! hands to its scheduler and executors in the clear (and may log). Those
//! are inside the trust boundary: they run the plugin, and they get the
//! column policies with the store's mask **salt**, which they need to hash
//! masked columns as `kiln run` does. Do not ship plans with masked
//! transforms to machines that must not learn the salt. A transform with
//! no masks (a principal cleared for every column) sends no salt.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use datafusion::logical_expr::ScalarUDFImpl;
use kiln_runtime::{Engine, Params, Plugin, State};
use kiln_store::{ColumnPolicy, Mask, Masking};
use serde::{Deserialize, Serialize};

use crate::{Error, KilnUdf, Result, Transform};

/// The first bytes of every encoded Kiln UDF.
pub const WIRE_MAGIC: [u8; 8] = *b"KILN-UDF";

/// The envelope format this build writes and reads.
pub const WIRE_FORMAT: u16 = 1;

/// Everything but the bytes, as JSON.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Header {
    name: String,
    label: String,
    version_id: String,
    plugin_id: String,
    params: String,
    state_id: Option<String>,
    arg_names: Option<Vec<String>>,
    masks: BTreeMap<String, ColumnPolicy>,
    salt: Vec<u8>,
}

/// Whether `bytes` start like an encoded Kiln UDF (of any format
/// version), so a codec can tell its own payloads from other UDFs'.
pub fn is_encoded_udf(bytes: &[u8]) -> bool {
    bytes.starts_with(&WIRE_MAGIC)
}

/// Encode `udf` (its SQL name, argument names, transform and masks) as
/// bytes for [`UdfDecoder::decode`] in another process.
///
/// The column policies travel with the store's salt when a policy hashes
/// (see the module's note on trust), so executors hash as `kiln run` does.
///
/// # Errors
/// [`Error::Wire`] for a transform without its plugin bytes (built with
/// [`Transform::from_parts`]: build it with [`Transform::from_files`],
/// [`Transform::from_bundle`] or [`Transform::from_registry`]).
///
/// # Examples
/// ```no_run
/// # fn main() -> kiln_datafusion::Result<()> {
/// use kiln_datafusion::{encode_udf, KilnUdf, Transform, UdfDecoder};
/// let engine = kiln_runtime::Engine::new()?;
/// let bundle = kiln_store::Bundle::read("scaler.kiln".as_ref())?;
/// let udf = KilnUdf::new("kiln_scaler", Transform::from_bundle(&engine, &bundle)?)?;
/// let bytes = encode_udf(&udf)?;
/// // In the executor:
/// let same = UdfDecoder::new(engine).decode(&bytes)?;
/// assert_eq!(same, udf);
/// # Ok(()) }
/// ```
pub fn encode_udf(udf: &KilnUdf) -> Result<Vec<u8>> {
    let t = udf.transform();
    let wasm = t.wasm().ok_or_else(|| {
        Error::Wire(format!(
            "{}() cannot be sent to other processes: its transform {} was built from a loaded plugin (Transform::from_parts), which keeps no component bytes; build it with Transform::from_files, Transform::from_bundle or Transform::from_registry",
            udf.name(),
            t.label()
        ))
    })?;
    let masks = t.masking().policies().clone();
    // Only a hash mask uses the salt: send none otherwise.
    let salt = if masks.values().any(|p| p.mask == Mask::Hash) {
        t.masking().salt().to_vec()
    } else {
        Vec::new()
    };
    let header = Header {
        name: udf.name().to_owned(),
        label: t.label().to_owned(),
        version_id: t.version_id().to_owned(),
        plugin_id: t.plugin().id().to_owned(),
        params: t.params().as_str().to_owned(),
        state_id: t.state().map(State::id),
        arg_names: udf.arg_names().map(<[String]>::to_vec),
        masks,
        salt,
    };
    let header = serde_json::to_vec(&header)
        .map_err(|e| Error::Wire(format!("encoding {}(): {e}", udf.name())))?;
    let header_len = u32::try_from(header.len()).map_err(|_| {
        Error::Wire(format!(
            "{}(): a header of {} bytes is too long",
            udf.name(),
            header.len()
        ))
    })?;
    let state = t.state().map(State::as_bytes);
    let mut out = Vec::with_capacity(
        WIRE_MAGIC.len() + 2 + 4 + header.len() + 8 + wasm.len() + 9 + state.map_or(0, <[u8]>::len),
    );
    out.extend_from_slice(&WIRE_MAGIC);
    out.extend_from_slice(&WIRE_FORMAT.to_le_bytes());
    out.extend_from_slice(&header_len.to_le_bytes());
    out.extend_from_slice(&header);
    out.extend_from_slice(&(wasm.len() as u64).to_le_bytes());
    out.extend_from_slice(wasm);
    match state {
        None => out.push(0),
        Some(s) => {
            out.push(1);
            out.extend_from_slice(&(s.len() as u64).to_le_bytes());
            out.extend_from_slice(s);
        }
    }
    Ok(out)
}

/// Decodes [`encode_udf`]'s bytes into [`KilnUdf`]s, on an executor or a
/// scheduler.
///
/// Plugins are compiled once per decoder: the decoder keeps each plugin it
/// loaded by plugin id, so an executor that decodes the same function in
/// every task compiles it once. Cheap to share (`Send + Sync`); one per
/// process, or one per executor to count what each decoded.
pub struct UdfDecoder {
    engine: Engine,
    plugins: Mutex<HashMap<String, Plugin>>,
    decoded: AtomicU64,
}

impl std::fmt::Debug for UdfDecoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UdfDecoder")
            .field("plugins", &self.compiled_plugins())
            .field("decoded", &self.decoded())
            .finish_non_exhaustive()
    }
}

impl UdfDecoder {
    /// A decoder loading plugins into `engine` (its limits, deadline and
    /// cache apply to the decoded functions).
    pub fn new(engine: Engine) -> UdfDecoder {
        UdfDecoder {
            engine,
            plugins: Mutex::new(HashMap::new()),
            decoded: AtomicU64::new(0),
        }
    }

    /// The engine plugins are loaded into.
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// How many distinct plugins this decoder has loaded.
    pub fn compiled_plugins(&self) -> usize {
        self.plugins.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    /// How many functions this decoder has decoded.
    pub fn decoded(&self) -> u64 {
        self.decoded.load(Ordering::Relaxed)
    }

    /// Rebuild the function `bytes` encode, after checking them.
    ///
    /// # Errors
    /// [`Error::Wire`] for bytes that are not an encoded Kiln UDF, of
    /// another format version, truncated, or whose plugin bytes,
    /// parameters or state do not match the ids they came with;
    /// [`Error::Runtime`] if the plugin does not load here.
    pub fn decode(&self, bytes: &[u8]) -> Result<KilnUdf> {
        let env = Envelope::parse(bytes)?;
        let h = env.header;
        let tampered = |what: String| {
            Error::Wire(format!(
                "refusing the encoded function {}() ({}): {what}; the plan was altered or corrupted on the way",
                h.name, h.label
            ))
        };
        let plugin_id = kiln_runtime::plugin_id(env.wasm);
        if plugin_id != h.plugin_id {
            return Err(tampered(format!(
                "its plugin bytes hash to {}, not to the plugin id {}",
                short(&plugin_id),
                short(&h.plugin_id)
            )));
        }
        let params = Params::from_json(&h.params)
            .map_err(|e| tampered(format!("its parameters do not parse: {e}")))?;
        if params.as_str() != h.params {
            return Err(tampered("its parameters are not in canonical form".into()));
        }
        let state = env.state.map(|s| State::from_bytes(s.to_vec()));
        let state_id = state.as_ref().map(State::id);
        if state_id != h.state_id {
            return Err(tampered(format!(
                "its state hashes to {}, not to the state id {}",
                state_id.as_deref().map_or("(none)", short),
                h.state_id.as_deref().map_or("(none)", short)
            )));
        }
        let plugin = self.plugin(&plugin_id, env.wasm)?;
        let transform = Transform::from_wire(
            h.label.clone(),
            plugin,
            params,
            state,
            Masking::new(h.masks.clone(), h.salt.clone().into()),
            env.wasm.into(),
        );
        if transform.version_id() != h.version_id {
            return Err(tampered(format!(
                "its parts make version {}, not the version {} it names",
                short(transform.version_id()),
                short(&h.version_id)
            )));
        }
        let udf = KilnUdf::from_wire(&h.name, transform, h.arg_names.clone())?;
        self.decoded.fetch_add(1, Ordering::Relaxed);
        Ok(udf)
    }

    /// The plugin `id` (whose bytes are `wasm`, already checked), compiled
    /// once. The lock is held while compiling, so concurrent tasks wait
    /// for one compilation instead of each doing it.
    fn plugin(&self, id: &str, wasm: &[u8]) -> Result<Plugin> {
        let mut plugins = self.plugins.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(p) = plugins.get(id) {
            return Ok(p.clone());
        }
        let label = format!("wire:{}", short(id));
        let plugin = self.engine.load_bytes(wasm, Path::new(&label))?;
        plugins.insert(id.to_owned(), plugin.clone());
        Ok(plugin)
    }
}

/// The first 12 hex digits of an id, as Kiln prints ids.
fn short(id: &str) -> &str {
    &id[..id.len().min(12)]
}

/// The parts of an envelope, borrowed from its bytes.
struct Envelope<'a> {
    header: Header,
    wasm: &'a [u8],
    state: Option<&'a [u8]>,
}

impl<'a> Envelope<'a> {
    fn parse(bytes: &'a [u8]) -> Result<Envelope<'a>> {
        if !is_encoded_udf(bytes) {
            return Err(Error::Wire(
                "these bytes are not an encoded Kiln UDF (no KILN-UDF magic)".into(),
            ));
        }
        let mut r = Reader {
            bytes: &bytes[WIRE_MAGIC.len()..],
        };
        let format = u16::from_le_bytes(r.array("the format version")?);
        if format != WIRE_FORMAT {
            return Err(Error::Wire(format!(
                "an encoded Kiln UDF of format {format}, but this build reads format {WIRE_FORMAT}; run the same Kiln version on the client, scheduler and executors"
            )));
        }
        let header_len = u32::from_le_bytes(r.array("the header length")?) as usize;
        let header = r.take(header_len, "the header")?;
        let header: Header = serde_json::from_slice(header).map_err(|e| {
            Error::Wire(format!(
                "the header of an encoded Kiln UDF is unreadable: {e}"
            ))
        })?;
        let wasm = r.sized("the plugin bytes")?;
        let state = match r.array::<1>("the state flag")?[0] {
            0 => None,
            1 => Some(r.sized("the state bytes")?),
            other => {
                return Err(Error::Wire(format!(
                    "an encoded Kiln UDF with state flag {other} (0 or 1 expected)"
                )))
            }
        };
        if !r.bytes.is_empty() {
            return Err(Error::Wire(format!(
                "an encoded Kiln UDF followed by {} unexpected bytes",
                r.bytes.len()
            )));
        }
        Ok(Envelope {
            header,
            wasm,
            state,
        })
    }
}

/// Reads the envelope front to back, refusing to run past its end.
struct Reader<'a> {
    bytes: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize, what: &str) -> Result<&'a [u8]> {
        if self.bytes.len() < n {
            return Err(Error::Wire(format!(
                "an encoded Kiln UDF is truncated: {what} needs {n} bytes, {} are left",
                self.bytes.len()
            )));
        }
        let (head, rest) = self.bytes.split_at(n);
        self.bytes = rest;
        Ok(head)
    }

    fn array<const N: usize>(&mut self, what: &str) -> Result<[u8; N]> {
        let b = self.take(N, what)?;
        Ok(b.try_into().expect("take returned N bytes"))
    }

    /// A u64 length, then that many bytes.
    fn sized(&mut self, what: &str) -> Result<&'a [u8]> {
        let len = u64::from_le_bytes(self.array(what)?);
        let len = usize::try_from(len).unwrap_or(usize::MAX);
        self.take(len, what)
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;
    use std::sync::{Arc, OnceLock};

    use super::*;

    /// As tests/support.rs finds the workspace's plugins.
    fn plugin_path(name: &str) -> PathBuf {
        let dir = std::env::var_os("KILN_PLUGIN_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| {
                Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/wasm/wasm32-wasip2/plugin")
            });
        let p = dir.join(format!("{name}.wasm"));
        assert!(
            p.exists(),
            "{} is missing: build the workspace first (`cargo build --release -p kiln-cli` builds the plugins) or set KILN_PLUGIN_DIR",
            p.display()
        );
        p
    }

    fn engine() -> Engine {
        static ENGINE: OnceLock<Engine> = OnceLock::new();
        ENGINE
            .get_or_init(|| Engine::new().expect("engine"))
            .clone()
    }

    /// A bucketize UDF from its file (stateless: no fit needed), with
    /// masks.
    fn udf(masking: Masking) -> KilnUdf {
        let path = plugin_path("bucketize");
        let params = Params::from_json(r#"{"columns":["x"],"boundaries":[0,10]}"#).unwrap();
        let t = Transform::from_files(&engine(), &path, params, None)
            .unwrap()
            .with_masking(masking);
        KilnUdf::new("kiln_b", t).unwrap().with_arg_names(["x"])
    }

    fn masking(cols: &[(&str, &str, Mask)]) -> Masking {
        Masking::new(
            cols.iter()
                .map(|(c, s, m)| {
                    (
                        c.to_string(),
                        ColumnPolicy {
                            sensitivity: s.to_string(),
                            mask: m.clone(),
                        },
                    )
                })
                .collect(),
            Arc::from(&b"salt"[..]),
        )
    }

    #[test]
    fn round_trip_keeps_name_version_arguments_and_masks() {
        let m = masking(&[
            ("x", "pii", Mask::Bucketize { width: 2.0 }),
            ("y", "", Mask::Redact),
        ]);
        let udf = udf(m.clone());
        let bytes = encode_udf(&udf).unwrap();
        assert!(is_encoded_udf(&bytes));
        let decoder = UdfDecoder::new(engine());
        let back = decoder.decode(&bytes).unwrap();
        assert_eq!(back, udf);
        assert_eq!(back.name(), "kiln_b");
        assert_eq!(back.arg_names(), Some(&["x".to_owned()][..]));
        let (t, u) = (back.transform(), udf.transform());
        assert_eq!(t.version_id(), u.version_id());
        assert_eq!(t.label(), u.label());
        assert_eq!(t.params(), u.params());
        assert_eq!(t.wasm(), u.wasm());
        assert_eq!(t.masking().policies(), m.policies());
        assert_eq!(t.masking().policies()["x"].sensitivity, "pii");
        // No hash mask: the salt stays home.
        assert_eq!(t.masking().salt(), b"");
        // Decoding again reuses the compiled plugin.
        decoder.decode(&bytes).unwrap();
        assert_eq!((decoder.compiled_plugins(), decoder.decoded()), (1, 2));
        // Encoding is deterministic.
        assert_eq!(encode_udf(&back).unwrap(), bytes);
    }

    #[test]
    fn fitted_state_travels() {
        let path = plugin_path("standard_scaler");
        let params = Params::from_json(r#"{"columns":["x"]}"#).unwrap();
        let plugin = engine().load(&path).unwrap();
        let batch = arrow::array::RecordBatch::try_from_iter([(
            "x",
            Arc::new(arrow::array::Float64Array::from(vec![1.0, 2.0, 4.0]))
                as arrow::array::ArrayRef,
        )])
        .unwrap();
        let mut fitter = plugin.fitter(&params).unwrap();
        fitter.update(&batch).unwrap();
        let state = fitter.finish().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let state_path = dir.path().join("s.state");
        std::fs::write(&state_path, state.as_bytes()).unwrap();
        let t = Transform::from_files(&engine(), &path, params, Some(&state_path)).unwrap();
        let udf = KilnUdf::new("kiln_scaler", t).unwrap();
        let back = UdfDecoder::new(engine())
            .decode(&encode_udf(&udf).unwrap())
            .unwrap();
        assert_eq!(back.transform().state(), Some(&state));
        assert_eq!(back, udf);
    }

    #[test]
    fn tampered_bytes_are_refused() {
        let udf = udf(Masking::default());
        let bytes = encode_udf(&udf).unwrap();
        let header_len = u32::from_le_bytes(bytes[10..14].try_into().unwrap()) as usize;
        let wasm_at = 14 + header_len + 8;
        let text = String::from_utf8(bytes[14..14 + header_len].to_vec()).unwrap();
        let with_header = |new: &str| {
            let mut b = bytes[..10].to_vec();
            b.extend_from_slice(&(new.len() as u32).to_le_bytes());
            b.extend_from_slice(new.as_bytes());
            b.extend_from_slice(&bytes[14 + header_len..]);
            b
        };
        let mut flipped = bytes.clone();
        flipped[wasm_at + 1000] ^= 1;
        let cases: Vec<(&str, Vec<u8>, &str)> = vec![
            ("a flipped plugin byte", flipped, "plugin bytes hash to"),
            (
                "other parameters",
                with_header(&text.replace("[0,10]", "[0,11]")),
                "parts make version",
            ),
            (
                "parameters not canonical",
                with_header(&text.replace(r#""params":"{"#, r#""params":"{ "#)),
                "canonical",
            ),
            (
                "a state added",
                {
                    let mut b = bytes.clone();
                    let last = b.len() - 1;
                    b[last] = 1;
                    b.extend_from_slice(&3u64.to_le_bytes());
                    b.extend_from_slice(b"abc");
                    b
                },
                "state hashes to",
            ),
            ("truncated", bytes[..bytes.len() - 10].to_vec(), "truncated"),
            (
                "trailing bytes",
                [&bytes[..], b"x"].concat(),
                "1 unexpected bytes",
            ),
            ("not Kiln", b"protobuf".to_vec(), "no KILN-UDF magic"),
        ];
        let decoder = UdfDecoder::new(engine());
        for (what, b, expected) in cases {
            match decoder.decode(&b) {
                Err(Error::Wire(m)) => assert!(m.contains(expected), "{what}: {m}"),
                other => panic!("{what}: {other:?}"),
            }
        }
        assert_eq!(decoder.decoded(), 0);
    }

    #[test]
    fn unknown_format_version_is_refused() {
        let udf = udf(Masking::default());
        let mut bytes = encode_udf(&udf).unwrap();
        bytes[8..10].copy_from_slice(&2u16.to_le_bytes());
        let e = UdfDecoder::new(engine()).decode(&bytes).unwrap_err();
        assert!(
            matches!(&e, Error::Wire(m) if m.contains("format 2") && m.contains("reads format 1")),
            "{e}"
        );
    }

    #[test]
    fn hash_masks_travel_with_the_salt_and_hash_as_the_client_does() {
        let m = masking(&[("x", "pii", Mask::Hash)]);
        let udf = udf(m.clone());
        let back = UdfDecoder::new(engine())
            .decode(&encode_udf(&udf).unwrap())
            .unwrap();
        assert_eq!(back.transform().masking().salt(), b"salt");
        assert_eq!(back.transform().masking().policies(), m.policies());
        // The decoded mask hashes as the client's: the same HMAC key.
        let batch = arrow::record_batch::RecordBatch::try_from_iter([(
            "x",
            Arc::new(arrow::array::StringArray::from(vec!["ada@x.org"])) as arrow::array::ArrayRef,
        )])
        .unwrap();
        let (ours, theirs) = (
            m.apply(&batch).unwrap(),
            back.transform().masking().apply(&batch).unwrap(),
        );
        assert_eq!(ours, theirs);
        // python3 -c "import hmac,hashlib;print(hmac.new(b'salt',b'ada@x.org',hashlib.sha256).hexdigest()[:32])"
        let hashed = theirs
            .column(0)
            .as_any()
            .downcast_ref::<arrow::array::StringArray>()
            .unwrap()
            .value(0)
            .to_owned();
        assert_eq!(hashed, "9eb06cf8b495b2cc2cc1b5662018cc44");
    }

    #[test]
    fn transforms_without_bytes_are_not_encoded() {
        let path = plugin_path("bucketize");
        let params = Params::from_json(r#"{"columns":["x"],"boundaries":[0]}"#).unwrap();
        let plugin = engine().load(&path).unwrap();
        let t = Transform::from_parts(plugin, params, None).unwrap();
        let e = encode_udf(&KilnUdf::new("kiln_b", t).unwrap()).unwrap_err();
        assert!(
            matches!(&e, Error::Wire(m) if m.contains("Transform::from_files")),
            "{e}"
        );
    }
}
