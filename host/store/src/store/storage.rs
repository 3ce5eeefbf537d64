//! The storage trait the store is written against, and its sled backend.
//!
//! Everything lives in one ordered key space with prefixed keys, so that one
//! [`Storage::commit`] can change records of several kinds atomically.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Mutex;

use crate::{Error, Result};

/// One change in an atomic commit.
#[derive(Debug, Clone)]
pub(crate) enum Op {
    /// Set `key` to `value`.
    Put(Vec<u8>, Vec<u8>),
    /// Remove `key` (absent is fine).
    Delete(Vec<u8>),
}

/// An ordered key-value space with atomic multi-key commits.
pub(crate) trait Storage: Send + Sync {
    /// The value of `key`.
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>>;
    /// Every key and value starting with `prefix`, in key order.
    fn scan(&self, prefix: &[u8]) -> Result<Vec<(Vec<u8>, Vec<u8>)>>;
    /// Apply all `ops` or none of them.
    fn commit(&self, ops: Vec<Op>) -> Result<()>;
    /// Make every commit so far durable.
    fn flush(&self) -> Result<()>;
}

/// sled 0.34: crash-consistent (atomic batches, log recovery on open).
pub(crate) struct Sled {
    db: sled::Db,
    dir: std::path::PathBuf,
}

impl Sled {
    pub(crate) fn open(dir: &Path) -> Result<Sled> {
        let db = sled::Config::new()
            .path(dir)
            .mode(sled::Mode::HighThroughput)
            .open()
            .map_err(|e| sled_error(dir, e))?;
        Ok(Sled {
            db,
            dir: dir.to_path_buf(),
        })
    }
}

fn sled_error(dir: &Path, e: sled::Error) -> Error {
    Error::Store {
        dir: dir.to_path_buf(),
        message: format!("database error: {e}; run `kiln store check`"),
    }
}

impl Storage for Sled {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        self.db
            .get(key)
            .map(|v| v.map(|v| v.to_vec()))
            .map_err(|e| sled_error(&self.dir, e))
    }

    fn scan(&self, prefix: &[u8]) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
        self.db
            .scan_prefix(prefix)
            .map(|kv| {
                kv.map(|(k, v)| (k.to_vec(), v.to_vec()))
                    .map_err(|e| sled_error(&self.dir, e))
            })
            .collect()
    }

    fn commit(&self, ops: Vec<Op>) -> Result<()> {
        let mut batch = sled::Batch::default();
        for op in ops {
            match op {
                Op::Put(k, v) => batch.insert(k, v),
                Op::Delete(k) => batch.remove(k),
            }
        }
        self.db
            .apply_batch(batch)
            .map_err(|e| sled_error(&self.dir, e))
    }

    fn flush(&self) -> Result<()> {
        self.db
            .flush()
            .map(|_| ())
            .map_err(|e| sled_error(&self.dir, e))
    }
}

/// An in-memory backend for unit tests.
#[derive(Default)]
pub(crate) struct Memory(Mutex<BTreeMap<Vec<u8>, Vec<u8>>>);

impl Storage for Memory {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        Ok(self
            .0
            .lock()
            .expect("memory storage lock")
            .get(key)
            .cloned())
    }

    fn scan(&self, prefix: &[u8]) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
        let map = self.0.lock().expect("memory storage lock");
        Ok(map
            .range(prefix.to_vec()..)
            .take_while(|(k, _)| k.starts_with(prefix))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect())
    }

    fn commit(&self, ops: Vec<Op>) -> Result<()> {
        let mut map = self.0.lock().expect("memory storage lock");
        for op in ops {
            match op {
                Op::Put(k, v) => {
                    map.insert(k, v);
                }
                Op::Delete(k) => {
                    map.remove(&k);
                }
            }
        }
        Ok(())
    }

    fn flush(&self) -> Result<()> {
        Ok(())
    }
}
