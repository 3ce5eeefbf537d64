//! The audit log: every administrative action (tag moves from fits, tags,
//! promotions and rollbacks; gc) as an append-only, hash-chained list.
//!
//! Entry `n` holds the sha256 of entry `n - 1`, and its own hash covers
//! every field; `audit/head` holds the last sequence number and hash. An
//! entry is written in the same atomic commit as the change it records, so
//! the log and the store never disagree. [`Store::verify_audit`] recomputes
//! the chain: an edited entry breaks its own hash, a deleted one breaks the
//! next entry's link (or the head, for the last). Someone able to rewrite
//! the whole chain and the head consistently is caught only against a head
//! hash kept elsewhere (`kiln audit head`, e.g. in a ticket or a CI log).

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::storage::Op;
use super::{key, now, Store};
use crate::Result;

/// The hash before the first entry.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// One administrative action.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditEntry {
    /// Position in the log, from 1.
    pub seq: u64,
    /// When (RFC 3339, UTC).
    pub time: String,
    /// Who: the principal of the command (`--as`, `KILN_USER`, else the
    /// OS user).
    pub actor: String,
    /// `fit`, `tag`, `promote`, `rollback`, `gc`, …
    pub action: String,
    /// What it acted on (`scaler@prod`, `store`).
    pub subject: String,
    /// The details (from / to versions, reason, what gc removed).
    pub detail: serde_json::Value,
    /// The previous entry's hash ([`GENESIS`] for the first).
    pub prev: String,
    /// sha256 over every field above.
    pub hash: String,
}

impl AuditEntry {
    /// The hash this entry should have.
    pub fn compute_hash(&self) -> String {
        let fields = serde_json::json!({
            "seq": self.seq,
            "time": self.time,
            "actor": self.actor,
            "action": self.action,
            "subject": self.subject,
            "detail": self.detail,
            "prev": self.prev,
        });
        let mut h = Sha256::new();
        h.update(b"kiln-audit-v1\n");
        h.update(fields.to_string().as_bytes());
        hex::encode(h.finalize())
    }
}

/// The last entry's position and hash.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct AuditHead {
    /// Sequence number of the last entry (0: empty log).
    pub seq: u64,
    /// Its hash ([`GENESIS`] when empty).
    pub hash: String,
}

/// What [`Store::verify_audit`] found.
#[derive(Debug, Clone, Serialize)]
pub struct AuditReport {
    /// Entries read.
    pub entries: u64,
    /// The head as stored.
    pub head: AuditHead,
    /// True when the chain is whole and every hash recomputes.
    pub ok: bool,
    /// Each break: which entry, what is wrong.
    pub problems: Vec<String>,
}

pub(crate) fn seq_key(seq: u64) -> Vec<u8> {
    key("audit", &format!("{seq:020}"))
}

const HEAD: &[u8] = b"audit-head";

/// The principal of this process: `KILN_USER`, else `USER`, else `unknown`.
pub fn default_actor() -> String {
    ["KILN_USER", "USER", "USERNAME"]
        .iter()
        .find_map(|v| std::env::var(v).ok().filter(|s| !s.is_empty()))
        .unwrap_or_else(|| "unknown".into())
}

impl Store {
    /// The audit head: last sequence number and hash.
    ///
    /// # Errors
    /// [`crate::Error::Store`] on a database error or an unreadable head.
    pub fn audit_head(&self) -> Result<AuditHead> {
        match self.db.get(HEAD)? {
            None => Ok(AuditHead {
                seq: 0,
                hash: GENESIS.into(),
            }),
            Some(v) => serde_json::from_slice(&v)
                .map_err(|e| self.corrupt(format!("audit head is unreadable: {e}"))),
        }
    }

    /// The ops that append an entry after the current head; to be committed
    /// together with the change the entry records (the store's lock keeps
    /// other processes out between reading the head and the commit).
    pub(crate) fn audit_ops(
        &self,
        action: &str,
        subject: &str,
        detail: serde_json::Value,
    ) -> Result<(AuditEntry, Vec<Op>)> {
        let head = self.audit_head()?;
        let mut entry = AuditEntry {
            seq: head.seq + 1,
            time: now(),
            actor: self.actor.clone(),
            action: action.into(),
            subject: subject.into(),
            detail,
            prev: head.hash,
            hash: String::new(),
        };
        entry.hash = entry.compute_hash();
        let new_head = AuditHead {
            seq: entry.seq,
            hash: entry.hash.clone(),
        };
        let ops = vec![
            Op::Put(
                seq_key(entry.seq),
                serde_json::to_vec(&entry).expect("audit entries serialize"),
            ),
            Op::Put(
                HEAD.to_vec(),
                serde_json::to_vec(&new_head).expect("audit head serializes"),
            ),
        ];
        Ok((entry, ops))
    }

    /// Every audit entry, oldest first, as stored (unchecked: see
    /// [`Store::verify_audit`]).
    ///
    /// # Errors
    /// [`crate::Error::Store`] for an unreadable entry.
    pub fn audit_log(&self) -> Result<Vec<AuditEntry>> {
        self.scan_json("audit")
    }

    /// Recompute the chain: sequence numbers 1, 2, … without gaps, each
    /// entry's hash, each link to the previous hash, and the head.
    ///
    /// # Errors
    /// [`crate::Error::Store`] on a database error; a broken chain is a
    /// report with `ok: false`, not an error.
    pub fn verify_audit(&self) -> Result<AuditReport> {
        let head = self.audit_head()?;
        let mut problems = Vec::new();
        let mut prev = GENESIS.to_string();
        let mut expected = 1;
        let mut entries = 0;
        for (k, v) in self.db.scan(b"audit/")? {
            entries += 1;
            let name = String::from_utf8_lossy(&k).into_owned();
            let e: AuditEntry = match serde_json::from_slice(&v) {
                Ok(e) => e,
                Err(err) => {
                    problems.push(format!("{name} is unreadable: {err}"));
                    expected += 1;
                    continue;
                }
            };
            if seq_key(e.seq) != k {
                problems.push(format!("{name} says it is entry {}", e.seq));
            }
            if e.seq != expected {
                problems.push(format!(
                    "entries {expected}..{} are missing (deleted?) before entry {}",
                    e.seq.saturating_sub(1),
                    e.seq
                ));
            } else if e.prev != prev {
                problems.push(format!(
                    "entry {} does not follow entry {}: the chain is broken there (an entry was replaced?)",
                    e.seq,
                    e.seq - 1
                ));
            }
            if e.compute_hash() != e.hash {
                problems.push(format!(
                    "entry {} ({} {} by {}) was edited: its hash does not match its content",
                    e.seq, e.action, e.subject, e.actor
                ));
            }
            prev = e.hash.clone();
            expected = e.seq + 1;
        }
        if head.seq != expected - 1 || (head.seq > 0 && head.hash != prev) {
            problems.push(format!(
                "the head names entry {} but the log ends at entry {} (the last entries were deleted?)",
                head.seq,
                expected - 1
            ));
        }
        Ok(AuditReport {
            entries,
            head,
            ok: problems.is_empty(),
            problems,
        })
    }
}
