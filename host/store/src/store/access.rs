//! Access control: roles with grants on names, members, clearances for
//! sensitive columns, bearer tokens for the HTTP server, and column
//! policies (which columns are sensitive and how they are masked).
//!
//! Off until `kiln access enable` ([`Store::enable_access`]): a store
//! without it behaves as before, everyone may do everything (column
//! policies still mask for principals without clearance). Enabling makes
//! the acting principal (or the one named) a member of the `admin` role
//! with `admin` on `*`, in the same commit, and from then on no change may
//! leave the store without a principal holding `admin` on `*`: access
//! control cannot lock everyone out.
//!
//! Levels are ordered, each includes the ones below it:
//! - `read`: see a name's versions and runs; read its features (training
//!   sets, `GET /v1/transforms`);
//! - `run`: run it (`kiln run`, `kiln pipeline run`, `kiln materialize`,
//!   `kiln export`, `POST /v1/transform`, `POST /v1/windows`);
//! - `promote`: move its tags (fit under the name, `tag`, `promote`,
//!   `rollback`);
//! - `admin`: its grants and column policies; `admin` on `*` also covers
//!   roles, members, clearances, tokens, `gc` and turning access off.
//!
//! Key space: `access/config`, `access/salt`, `role/<name>`,
//! `token/<sha256 of the token>`, `policy/<name>`. Every change is audited
//! in the same commit.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::storage::Op;
use super::{key, now, Store};
use crate::mask::{Mask, Masking};
use crate::{Error, Result};

/// What a grant allows on a name; each level includes the ones below.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Permission {
    /// See versions, runs and lineage; read features.
    Read,
    /// Run it: files, pipelines, feature tables, serving, export.
    Run,
    /// Move its tags: fit under the name, tag, promote, rollback.
    Promote,
    /// Its grants and column policies (on `*`: everything).
    Admin,
}

impl Permission {
    /// `read`, `run`, `promote` or `admin`.
    pub fn as_str(self) -> &'static str {
        match self {
            Permission::Read => "read",
            Permission::Run => "run",
            Permission::Promote => "promote",
            Permission::Admin => "admin",
        }
    }
}

impl std::fmt::Display for Permission {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Permission {
    type Err = Error;
    fn from_str(s: &str) -> Result<Permission> {
        match s {
            "read" => Ok(Permission::Read),
            "run" => Ok(Permission::Run),
            "promote" => Ok(Permission::Promote),
            "admin" => Ok(Permission::Admin),
            other => Err(Error::Usage(format!(
                "'{other}' is not a permission: use read, run, promote or admin"
            ))),
        }
    }
}

/// A role: grants on name patterns, its members and its clearances.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Role {
    /// The role's name.
    pub name: String,
    /// Name pattern → level. A pattern is a name, `*`, or a prefix
    /// ending in `*` (`team-a.*`).
    pub grants: BTreeMap<String, Permission>,
    /// Principals in the role.
    pub members: BTreeSet<String>,
    /// Sensitivity labels its members may see unmasked (`pii`).
    pub clearances: BTreeSet<String>,
}

/// A bearer token for `kiln serve` (only its sha256 is stored).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TokenRecord {
    /// The first 12 hex digits of the token's sha256: how to name it.
    pub id: String,
    /// Who the token acts as.
    pub principal: String,
    /// What it is for.
    pub label: String,
    /// When it was made (RFC 3339).
    pub created_at: String,
    /// Who made it.
    pub created_by: String,
}

/// How one column of a name's output is protected.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ColumnPolicy {
    /// The sensitivity label (`pii`, `financial`); principals cleared for
    /// it see the column as it is.
    pub sensitivity: String,
    /// What everyone else sees.
    pub mask: Mask,
}

/// Whether access control is on, and since when.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct AccessConfig {
    /// Enforce grants.
    pub enabled: bool,
    /// When it was last turned on or off.
    pub changed_at: String,
    /// By whom.
    pub changed_by: String,
}

/// The role `kiln access enable` creates.
pub const ADMIN_ROLE: &str = "admin";

/// Everything access control needs, read from the store at once: cheap to
/// clone and to share between threads (the HTTP server keeps one and
/// replaces it on reload).
#[derive(Clone, Default)]
pub struct Access {
    config: AccessConfig,
    roles: Vec<Role>,
    tokens: BTreeMap<String, TokenRecord>,
    policies: BTreeMap<String, BTreeMap<String, ColumnPolicy>>,
    salt: Arc<[u8]>,
}

impl std::fmt::Debug for Access {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the salt, never token hashes.
        f.debug_struct("Access")
            .field("enabled", &self.config.enabled)
            .field("roles", &self.roles.len())
            .field("tokens", &self.tokens.len())
            .field("policies", &self.policies.len())
            .finish()
    }
}

/// Whether `pattern` (a name, `*`, or `prefix*`) covers `name`.
pub fn pattern_matches(pattern: &str, name: &str) -> bool {
    match pattern.strip_suffix('*') {
        Some(prefix) => name.starts_with(prefix),
        None => pattern == name,
    }
}

fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

impl Access {
    /// Whether grants are enforced.
    pub fn enabled(&self) -> bool {
        self.config.enabled
    }

    /// Every role, by name.
    pub fn roles(&self) -> &[Role] {
        &self.roles
    }

    /// The configuration.
    pub fn config(&self) -> &AccessConfig {
        &self.config
    }

    /// Every token's record (never the token).
    pub fn tokens(&self) -> impl Iterator<Item = &TokenRecord> {
        self.tokens.values()
    }

    /// The column policies, by name.
    pub fn policies(&self) -> &BTreeMap<String, BTreeMap<String, ColumnPolicy>> {
        &self.policies
    }

    /// The highest level `principal` holds on `name` through its roles.
    pub fn level(&self, principal: &str, name: &str) -> Option<Permission> {
        self.roles
            .iter()
            .filter(|r| r.members.contains(principal))
            .flat_map(|r| r.grants.iter())
            .filter(|(pattern, _)| pattern_matches(pattern, name))
            .map(|(_, p)| *p)
            .max()
    }

    /// Whether `principal` may do what `need` allows on `name` (always,
    /// when access control is off).
    pub fn allows(&self, principal: &str, name: &str, need: Permission) -> bool {
        !self.enabled() || self.level(principal, name).is_some_and(|l| l >= need)
    }

    /// [`Access::allows`] as a result.
    ///
    /// # Errors
    /// [`Error::Denied`] naming the principal, the level, the name and the
    /// grant that would allow it.
    pub fn check(&self, principal: &str, name: &str, need: Permission) -> Result<()> {
        if self.allows(principal, name, need) {
            return Ok(());
        }
        Err(Error::Denied {
            principal: principal.into(),
            permission: need,
            subject: name.into(),
            held: self.level(principal, name),
        })
    }

    /// Whether `principal` may act on at least one of `names`; for a
    /// version reached by id, `names` are every name that ever tagged it
    /// (none: only `admin` on `*` reaches it).
    ///
    /// # Errors
    /// [`Error::Denied`] for the first name (or `*`).
    pub fn check_any(&self, principal: &str, names: &[String], need: Permission) -> Result<()> {
        if names.iter().any(|n| self.allows(principal, n, need)) {
            return Ok(());
        }
        match names.first() {
            Some(n) => self.check(principal, n, need),
            None => self.check(principal, "*", Permission::Admin),
        }
    }

    /// The sensitivity labels `principal` is cleared for.
    pub fn clearances(&self, principal: &str) -> BTreeSet<String> {
        self.roles
            .iter()
            .filter(|r| r.members.contains(principal))
            .flat_map(|r| r.clearances.iter().cloned())
            .collect()
    }

    /// The principal a bearer token acts as.
    pub fn principal_of_token(&self, token: &str) -> Option<&str> {
        self.tokens
            .get(&token_hash(token))
            .map(|t| t.principal.as_str())
    }

    /// The masks `principal` gets on the output of `names` (the union of
    /// their policies, less what it is cleared for).
    pub fn masking(&self, names: &[String], principal: &str) -> Masking {
        let cleared = self.clearances(principal);
        let mut columns = BTreeMap::new();
        for n in names {
            for (col, p) in self.policies.get(n).into_iter().flatten() {
                if !cleared.contains(&p.sensitivity) {
                    columns.insert(col.clone(), p.clone());
                }
            }
        }
        Masking::new(columns, self.salt.clone())
    }

    /// The store's secret salt for hash masks.
    pub(crate) fn salt(&self) -> Arc<[u8]> {
        self.salt.clone()
    }

    /// `masks` (a recorded run's) with the store's salt: what re-running
    /// that run must apply to reproduce it (the salt itself stays inside).
    pub fn replay(&self, masks: &BTreeMap<String, crate::Mask>) -> Masking {
        Masking::replay(masks, self.salt.clone())
    }

    /// Principals holding `admin` on `*`.
    fn super_admins(&self) -> BTreeSet<&str> {
        self.roles
            .iter()
            .filter(|r| r.grants.get("*") == Some(&Permission::Admin))
            .flat_map(|r| r.members.iter().map(String::as_str))
            .collect()
    }
}

const CONFIG: &str = "access/config";
const SALT: &str = "access/salt";

impl Store {
    /// Everything access control needs, read at once.
    ///
    /// # Errors
    /// [`Error::Store`] for an unreadable record.
    pub fn access(&self) -> Result<Access> {
        let config = match self.db.get(CONFIG.as_bytes())? {
            Some(v) => serde_json::from_slice(&v)
                .map_err(|e| self.corrupt(format!("{CONFIG} is unreadable: {e}")))?,
            None => AccessConfig::default(),
        };
        let salt: Arc<[u8]> = self.db.get(SALT.as_bytes())?.unwrap_or_default().into();
        let roles: Vec<Role> = self.scan_json("role")?;
        let tokens = self
            .db
            .scan(b"token/")?
            .into_iter()
            .map(|(k, v)| {
                let hash = String::from_utf8_lossy(&k[6..]).into_owned();
                serde_json::from_slice::<TokenRecord>(&v)
                    .map(|t| (hash, t))
                    .map_err(|e| self.corrupt(format!("a token record is unreadable: {e}")))
            })
            .collect::<Result<_>>()?;
        let policies = self
            .db
            .scan(b"policy/")?
            .into_iter()
            .map(|(k, v)| {
                let name = String::from_utf8_lossy(&k[7..]).into_owned();
                serde_json::from_slice(&v)
                    .map(|p| (name.clone(), p))
                    .map_err(|e| self.corrupt(format!("policy/{name} is unreadable: {e}")))
            })
            .collect::<Result<_>>()?;
        Ok(Access {
            config,
            roles,
            tokens,
            policies,
            salt,
        })
    }

    /// Check that this store's actor may do `need` on `name`.
    ///
    /// # Errors
    /// [`Error::Denied`].
    pub fn authorize(&self, name: &str, need: Permission) -> Result<()> {
        self.access()?.check(&self.actor, name, need)
    }

    /// Every name whose tags ever pointed at `id` (a version or pipeline).
    ///
    /// # Errors
    /// [`Error::Store`] on a database error.
    pub fn names_of(&self, id: &str) -> Result<Vec<String>> {
        Ok(self
            .names()?
            .into_iter()
            .filter(|n| n.tags.values().any(|v| v == id) || n.history.iter().any(|m| m.to == id))
            .map(|n| n.name)
            .collect())
    }

    /// The names a spec (`name@tag` or an id) acts on, for permissions and
    /// column policies: the name itself, or every name that tagged the id.
    ///
    /// # Errors
    /// [`Error::Store`] on a database error.
    pub fn subjects_of(&self, spec: &str, resolved_id: &str) -> Result<Vec<String>> {
        match spec.split_once('@') {
            Some((name, _)) => Ok(vec![name.to_string()]),
            None => self.names_of(resolved_id),
        }
    }

    /// Check the actor may do `need` on what `spec` names (resolved to
    /// `resolved_id`), and return the masks it gets on its output.
    ///
    /// # Errors
    /// [`Error::Denied`].
    pub fn authorize_spec(
        &self,
        spec: &str,
        resolved_id: &str,
        need: Permission,
    ) -> Result<Masking> {
        let access = self.access()?;
        let names = self.subjects_of(spec, resolved_id)?;
        access.check_any(&self.actor, &names, need)?;
        Ok(access.masking(&names, &self.actor))
    }

    /// Like [`Store::authorize_spec`] for writing values out of the store's
    /// governance (a feature table, a bundle): the actor must also be
    /// cleared for every masked column. `why` ends the refusal ("a feature
    /// table stores them unmasked").
    ///
    /// # Errors
    /// [`Error::Denied`]; [`Error::Usage`] naming the columns and labels.
    pub fn authorize_unmasked(
        &self,
        spec: &str,
        resolved_id: &str,
        need: Permission,
        why: &str,
    ) -> Result<()> {
        let masking = self.authorize_spec(spec, resolved_id, need)?;
        if masking.is_empty() {
            return Ok(());
        }
        Err(Error::Usage(format!(
            "{} is not cleared for the sensitive columns {} of {spec} (labels: {}); {why}, so this needs clearance (`kiln access grant ROLE --clearance LABEL`)",
            self.actor,
            masking.columns().join(", "),
            masking.sensitivities().join(", ")
        )))
    }

    /// Check the actor may do `need` on every one of `names`, and return
    /// the masks it gets on data that came from them.
    ///
    /// # Errors
    /// [`Error::Denied`] for the first name it may not use.
    pub fn authorize_all(&self, names: &[String], need: Permission) -> Result<Masking> {
        let access = self.access()?;
        for n in names {
            access.check(&self.actor, n, need)?;
        }
        Ok(access.masking(names, &self.actor))
    }

    fn salt_ops(&self) -> Result<Vec<Op>> {
        if self.db.get(SALT.as_bytes())?.is_some() {
            return Ok(Vec::new());
        }
        let mut salt = [0u8; 32];
        getrandom::fill(&mut salt)
            .map_err(|e| Error::internal(format!("no randomness for the mask salt: {e}")))?;
        Ok(vec![Op::Put(SALT.as_bytes().to_vec(), salt.to_vec())])
    }

    /// Commit `ops` with an audit entry, after checking the invariant
    /// that an enabled store keeps a principal with `admin` on `*`.
    fn commit_access(
        &self,
        mut ops: Vec<Op>,
        after: &Access,
        action: &str,
        subject: &str,
        detail: serde_json::Value,
    ) -> Result<()> {
        if after.enabled() && after.super_admins().is_empty() {
            return Err(Error::Usage(format!(
                "refused: after this no principal would hold admin on '*' and nobody could change access again; add another admin first (`kiln access grant {ADMIN_ROLE} --member NAME`)"
            )));
        }
        let (_, audit) = self.audit_ops(action, subject, detail)?;
        ops.extend(audit);
        self.db.commit(ops)
    }

    fn role_or_new(&self, access: &Access, role: &str) -> Result<Role> {
        check_label(role, "role")?;
        Ok(access
            .roles
            .iter()
            .find(|r| r.name == role)
            .cloned()
            .unwrap_or_else(|| Role {
                name: role.into(),
                ..Role::default()
            }))
    }

    fn put_role(access: &mut Access, role: &Role) -> Op {
        access.roles.retain(|r| r.name != role.name);
        access.roles.push(role.clone());
        if role.grants.is_empty() && role.members.is_empty() && role.clearances.is_empty() {
            Op::Delete(key("role", &role.name))
        } else {
            Self::put_json("role", &role.name, role)
        }
    }

    /// Turn access control on. `admin` (default: the actor) joins the
    /// `admin` role, which holds `admin` on `*`. When it is already on,
    /// only an admin on `*` may call this (to add an admin).
    ///
    /// # Errors
    /// [`Error::Denied`] when on and the actor is not an admin on `*`.
    pub fn enable_access(&self, admin: Option<&str>) -> Result<AccessConfig> {
        let mut access = self.access()?;
        if access.enabled() {
            access.check(&self.actor, "*", Permission::Admin)?;
        }
        let admin = admin.unwrap_or(&self.actor).to_string();
        check_label(&admin, "principal")?;
        let mut role = self.role_or_new(&access, ADMIN_ROLE)?;
        role.grants.insert("*".into(), Permission::Admin);
        role.members.insert(admin.clone());
        let mut ops = vec![Self::put_role(&mut access, &role)];
        access.config = AccessConfig {
            enabled: true,
            changed_at: now(),
            changed_by: self.actor.clone(),
        };
        ops.push(Op::Put(
            CONFIG.as_bytes().to_vec(),
            serde_json::to_vec(&access.config).expect("config serializes"),
        ));
        ops.extend(self.salt_ops()?);
        self.commit_access(
            ops,
            &access,
            "access-enable",
            "store",
            serde_json::json!({"admin": admin}),
        )?;
        Ok(access.config)
    }

    /// Turn access control off (everyone may do everything again; column
    /// policies still mask). Needs `admin` on `*`.
    ///
    /// # Errors
    /// [`Error::Denied`].
    pub fn disable_access(&self) -> Result<AccessConfig> {
        let mut access = self.access()?;
        access.check(&self.actor, "*", Permission::Admin)?;
        access.config = AccessConfig {
            enabled: false,
            changed_at: now(),
            changed_by: self.actor.clone(),
        };
        let ops = vec![Op::Put(
            CONFIG.as_bytes().to_vec(),
            serde_json::to_vec(&access.config).expect("config serializes"),
        )];
        self.commit_access(
            ops,
            &access,
            "access-disable",
            "store",
            serde_json::json!({}),
        )?;
        Ok(access.config)
    }

    /// Change a role: grant `permission` on `pattern` (replacing what it
    /// had there), or remove the grant on `pattern` with `None`. Needs
    /// `admin` on `pattern` (on `*` for `*` and prefix patterns).
    ///
    /// # Errors
    /// [`Error::Denied`]; [`Error::Usage`] for a bad role name or pattern,
    /// or a change that leaves no admin on `*`.
    pub fn grant(&self, role: &str, pattern: &str, permission: Option<Permission>) -> Result<Role> {
        let mut access = self.access()?;
        check_pattern(pattern)?;
        let scope = if pattern.ends_with('*') { "*" } else { pattern };
        access.check(&self.actor, scope, Permission::Admin)?;
        let mut r = self.role_or_new(&access, role)?;
        let before = r.grants.get(pattern).copied();
        match permission {
            Some(p) => r.grants.insert(pattern.into(), p),
            None => r.grants.remove(pattern),
        };
        let ops = vec![Self::put_role(&mut access, &r)];
        let action = if permission.is_some() {
            "grant"
        } else {
            "revoke"
        };
        self.commit_access(
            ops,
            &access,
            action,
            &format!("role:{role}"),
            serde_json::json!({"on": pattern, "from": before, "to": permission}),
        )?;
        Ok(r)
    }

    /// Add (`add: true`) or remove a principal from a role. Needs `admin`
    /// on `*`.
    ///
    /// # Errors
    /// [`Error::Denied`]; [`Error::Usage`] when it would leave no admin.
    pub fn set_member(&self, role: &str, principal: &str, add: bool) -> Result<Role> {
        check_label(principal, "principal")?;
        let actions = ["member-add", "member-remove"];
        self.edit_role_set(role, principal, add, actions, "principal", |r| {
            &mut r.members
        })
    }

    /// Give (`add: true`) or take a role's clearance for a sensitivity
    /// label. Needs `admin` on `*`.
    ///
    /// # Errors
    /// [`Error::Denied`]; [`Error::Usage`] for a bad label.
    pub fn set_clearance(&self, role: &str, label: &str, add: bool) -> Result<Role> {
        check_label(label, "sensitivity label")?;
        let actions = ["clearance-add", "clearance-remove"];
        self.edit_role_set(role, label, add, actions, "sensitivity", |r| {
            &mut r.clearances
        })
    }

    /// Add `value` to (or remove it from) the set `field` picks of `role`,
    /// audited as `actions[0]` (add) or `actions[1]` (remove).
    fn edit_role_set(
        &self,
        role: &str,
        value: &str,
        add: bool,
        actions: [&str; 2],
        detail_key: &str,
        field: impl Fn(&mut Role) -> &mut BTreeSet<String>,
    ) -> Result<Role> {
        let mut access = self.access()?;
        access.check(&self.actor, "*", Permission::Admin)?;
        let mut r = self.role_or_new(&access, role)?;
        let set = field(&mut r);
        let changed = if add {
            set.insert(value.into())
        } else {
            set.remove(value)
        };
        if !changed {
            return Ok(r);
        }
        let ops = vec![Self::put_role(&mut access, &r)];
        self.commit_access(
            ops,
            &access,
            actions[usize::from(!add)],
            &format!("role:{role}"),
            serde_json::json!({ detail_key: value }),
        )?;
        Ok(r)
    }

    /// Make a bearer token acting as `principal`; returns the token (shown
    /// once: only its sha256 is kept) and its record. Needs `admin` on `*`.
    ///
    /// # Errors
    /// [`Error::Denied`]; [`Error::Usage`] for a bad principal.
    pub fn create_token(&self, principal: &str, label: &str) -> Result<(String, TokenRecord)> {
        let access = self.access()?;
        access.check(&self.actor, "*", Permission::Admin)?;
        check_label(principal, "principal")?;
        let mut bytes = [0u8; 32];
        getrandom::fill(&mut bytes)
            .map_err(|e| Error::internal(format!("no randomness for a token: {e}")))?;
        let token = format!("kiln_{}", hex::encode(bytes));
        let hash = token_hash(&token);
        let rec = TokenRecord {
            id: hash[..12].into(),
            principal: principal.into(),
            label: label.into(),
            created_at: now(),
            created_by: self.actor.clone(),
        };
        let ops = vec![Self::put_json("token", &hash, &rec)];
        self.commit_access(
            ops,
            &access,
            "token-create",
            &format!("token:{}", rec.id),
            serde_json::json!({"principal": principal, "label": label}),
        )?;
        Ok((token, rec))
    }

    /// Revoke the token whose id starts with `id_prefix`. Needs `admin` on `*`.
    ///
    /// # Errors
    /// [`Error::Denied`]; [`Error::NotFound`] if no single token matches.
    pub fn revoke_token(&self, id_prefix: &str) -> Result<TokenRecord> {
        let access = self.access()?;
        access.check(&self.actor, "*", Permission::Admin)?;
        let hash = self.resolve_prefix("token", "token", id_prefix)?;
        let rec = access
            .tokens
            .get(&hash)
            .cloned()
            .ok_or_else(|| Error::NotFound(format!("no token {id_prefix}")))?;
        let ops = vec![Op::Delete(key("token", &hash))];
        self.commit_access(
            ops,
            &access,
            "token-revoke",
            &format!("token:{}", rec.id),
            serde_json::json!({"principal": rec.principal, "label": rec.label}),
        )?;
        Ok(rec)
    }

    /// Set (or with `None` remove) the policy of `column` in the output of
    /// `name`. Needs `admin` on `name`.
    ///
    /// # Errors
    /// [`Error::Denied`]; [`Error::Usage`] for a bad name or label.
    pub fn set_policy(
        &self,
        name: &str,
        column: &str,
        policy: Option<ColumnPolicy>,
    ) -> Result<BTreeMap<String, ColumnPolicy>> {
        let access = self.access()?;
        access.check(&self.actor, name, Permission::Admin)?;
        check_pattern(name)?;
        if name.contains('*') {
            return Err(Error::Usage(
                "a column policy belongs to one name, not a pattern".into(),
            ));
        }
        if let Some(p) = &policy {
            check_label(&p.sensitivity, "sensitivity label")?;
        }
        let mut columns = access.policies.get(name).cloned().unwrap_or_default();
        let before = columns.get(column).cloned();
        match &policy {
            Some(p) => columns.insert(column.into(), p.clone()),
            None => columns.remove(column),
        };
        let mut ops = self.salt_ops()?;
        ops.push(if columns.is_empty() {
            Op::Delete(key("policy", name))
        } else {
            Self::put_json("policy", name, &columns)
        });
        self.commit_access(
            ops,
            &access,
            if policy.is_some() {
                "policy-set"
            } else {
                "policy-remove"
            },
            &format!("{name}.{column}"),
            serde_json::json!({"from": before, "to": policy}),
        )?;
        Ok(columns)
    }
}

fn check_label(s: &str, what: &str) -> Result<()> {
    if s.is_empty()
        || !s
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.@:".contains(c))
    {
        return Err(Error::Usage(format!(
            "'{s}' is not a valid {what}: use letters, digits, '-', '_', '.', '@' and ':'"
        )));
    }
    Ok(())
}

fn check_pattern(p: &str) -> Result<()> {
    let body = p.strip_suffix('*').unwrap_or(p);
    if body.contains('*')
        || !body
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
        || p.is_empty()
    {
        return Err(Error::Usage(format!(
            "'{p}' is not a name or pattern: give a name (scaler), '*', or a prefix ending in '*' (team-a.*)"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store(actor: &str) -> Store {
        Store::in_memory().with_actor(actor)
    }

    #[test]
    fn patterns_cover_names_exactly_or_by_prefix() {
        for (pattern, name, expect) in [
            ("scaler", "scaler", true),
            ("scaler", "scaler2", false),
            ("*", "anything", true),
            ("team-a.*", "team-a.ctr", true),
            ("team-a.*", "team-b.ctr", false),
        ] {
            assert_eq!(pattern_matches(pattern, name), expect, "{pattern} {name}");
        }
    }

    #[test]
    fn off_allows_everyone_and_on_enforces_levels() {
        let s = store("ada");
        assert!(s.authorize("scaler", Permission::Admin).is_ok());
        s.enable_access(None).unwrap();
        s.grant("analysts", "scaler", Some(Permission::Run))
            .unwrap();
        s.set_member("analysts", "bob", true).unwrap();
        let a = s.access().unwrap();
        assert!(a.allows("bob", "scaler", Permission::Read));
        assert!(a.allows("bob", "scaler", Permission::Run));
        assert!(!a.allows("bob", "scaler", Permission::Promote));
        assert!(!a.allows("bob", "other", Permission::Read));
        assert!(!a.allows("mallory", "scaler", Permission::Read));
        assert!(a.allows("ada", "other", Permission::Admin));
        let err = a.check("bob", "scaler", Permission::Promote).unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.contains("bob") && msg.contains("promote") && msg.contains("scaler"),
            "{msg}"
        );
        // bob cannot grant himself more.
        let s = s.with_actor("bob");
        assert!(matches!(
            s.grant("analysts", "scaler", Some(Permission::Admin)),
            Err(Error::Denied { .. })
        ));
    }

    #[test]
    fn the_last_admin_cannot_be_removed() {
        let s = store("ada");
        s.enable_access(None).unwrap();
        let err = s.set_member(ADMIN_ROLE, "ada", false).unwrap_err();
        assert!(
            err.to_string().contains("nobody could change access"),
            "{err}"
        );
        let err = s.grant(ADMIN_ROLE, "*", None).unwrap_err();
        assert!(
            err.to_string().contains("nobody could change access"),
            "{err}"
        );
        // With a second admin, the first may leave.
        s.set_member(ADMIN_ROLE, "grace", true).unwrap();
        s.set_member(ADMIN_ROLE, "ada", false).unwrap();
        assert!(!s.access().unwrap().allows("ada", "x", Permission::Read));
        assert!(s.access().unwrap().allows("grace", "x", Permission::Admin));
        // Every change is in the audit chain.
        let log = s.audit_log().unwrap();
        let actions: Vec<&str> = log.iter().map(|e| e.action.as_str()).collect();
        assert_eq!(actions, ["access-enable", "member-add", "member-remove"]);
        assert!(s.verify_audit().unwrap().ok);
    }

    #[test]
    fn tokens_map_to_principals_and_only_their_hash_is_kept() {
        let s = store("ada");
        s.enable_access(None).unwrap();
        let (token, rec) = s.create_token("svc", "batch jobs").unwrap();
        assert!(token.starts_with("kiln_") && token.len() == 5 + 64);
        let a = s.access().unwrap();
        assert_eq!(a.principal_of_token(&token), Some("svc"));
        assert_eq!(a.principal_of_token("kiln_00"), None);
        let raw = s.db.scan(b"token/").unwrap();
        assert!(raw
            .iter()
            .all(|(k, v)| !String::from_utf8_lossy(k).contains(&token[5..])
                && !String::from_utf8_lossy(v).contains(&token[5..])));
        s.revoke_token(&rec.id[..6]).unwrap();
        assert_eq!(s.access().unwrap().principal_of_token(&token), None);
    }

    #[test]
    fn clearance_removes_a_mask() {
        let s = store("ada");
        s.set_policy(
            "customers",
            "email",
            Some(ColumnPolicy {
                sensitivity: "pii".into(),
                mask: Mask::Hash,
            }),
        )
        .unwrap();
        let names = vec!["customers".to_string()];
        assert_eq!(
            s.access().unwrap().masking(&names, "bob").columns(),
            vec!["email"]
        );
        s.enable_access(None).unwrap();
        s.set_clearance("privacy", "pii", true).unwrap();
        s.set_member("privacy", "bob", true).unwrap();
        assert!(s.access().unwrap().masking(&names, "bob").is_empty());
        assert_eq!(
            s.access().unwrap().masking(&names, "carol").columns(),
            vec!["email"]
        );
    }
}
