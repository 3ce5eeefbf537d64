//! One process at a time per store: an advisory lock on `DIR/kiln.lock`
//! holding who took it (pid, command, time), so that a second process can
//! say who is in the way instead of surfacing a raw lock error. The kernel
//! drops the lock when its process dies, so a killed `kiln` never leaves a
//! stale lock behind.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};

use crate::{Error, Result};

/// The held lock; released on drop (or by the kernel if the process dies).
#[derive(Debug)]
pub(crate) struct Lock {
    _file: File,
}

/// Who holds a store, as they wrote it when they took the lock.
pub(crate) fn holder(path: &Path) -> String {
    let mut text = String::new();
    let _ = File::open(path).and_then(|mut f| f.read_to_string(&mut text));
    let v: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
    match (
        v["pid"].as_u64(),
        v["command"].as_str(),
        v["since"].as_str(),
    ) {
        (Some(pid), Some(cmd), Some(since)) => format!("pid {pid} (`{cmd}`, since {since})"),
        _ => "another process".into(),
    }
}

/// Take the lock of the store in `dir`; if it is held, fail naming the
/// holder, or with `wait`, call `waiting` once and block until it is free.
pub(crate) fn acquire(dir: &Path, wait: bool, waiting: &mut dyn FnMut(&str)) -> Result<Lock> {
    let path: PathBuf = dir.join("kiln.lock");
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .map_err(|e| Error::io(&path, e))?;
    match file.try_lock() {
        Ok(()) => {}
        Err(TryLockError::WouldBlock) => {
            let who = holder(&path);
            if !wait {
                return Err(Error::StoreBusy {
                    dir: dir.to_path_buf(),
                    holder: who,
                });
            }
            waiting(&who);
            file.lock().map_err(|e| Error::io(&path, e))?;
        }
        Err(TryLockError::Error(e)) => return Err(Error::io(&path, e)),
    }
    let info = serde_json::json!({
        "pid": std::process::id(),
        "command": std::env::args().collect::<Vec<_>>().join(" "),
        "since": super::now(),
    });
    // Best effort: the lock is what matters, the note only helps the next process.
    let _ = file
        .set_len(0)
        .and_then(|_| file.rewind())
        .and_then(|_| file.write_all(info.to_string().as_bytes()));
    Ok(Lock { _file: file })
}
