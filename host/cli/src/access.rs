//! `kiln access`: roles, grants, members, clearances, tokens and column
//! policies. Parsing and printing only; the rules are in
//! `kiln_host::store` (`Store::grant`, `Store::set_policy`, ...).

use anyhow::{bail, Result};
use clap::{Args, Subcommand};
use kiln_host::store::{Access, ColumnPolicy, Mask, Permission, ADMIN_ROLE};
use kiln_host::{Engine, Store};
use serde_json::json;

use crate::registry::StoreArgs;

/// The `kiln access` subcommands (the long help is on `Command::Access`).
#[derive(Subcommand)]
pub enum AccessCommand {
    /// Everything: whether it is on, roles, tokens (never their secrets), masks.
    Show,
    /// Turn access control on; the acting principal (or --admin) becomes a
    /// member of the `admin` role, which holds admin on '*'.
    Enable {
        /// Who becomes admin [default: the acting principal].
        #[arg(long, value_name = "PRINCIPAL")]
        admin: Option<String>,
    },
    /// Turn access control off: everyone may do everything again (masks
    /// still apply). Needs admin on '*'.
    Disable,
    /// Give a role a level on a name (--on, --allow), a member, or a
    /// clearance; the role is made if new.
    ///
    /// Examples:
    ///   kiln access grant analysts --on customers --allow read
    ///   kiln access grant deployers --on '*' --allow promote
    ///   kiln access grant analysts --member bob --member dave
    ///   kiln access grant privacy --clearance pii
    #[command(verbatim_doc_comment)]
    Grant(RoleChange),
    /// Take from a role what `grant` gave: --on NAME removes its grant
    /// there, --member and --clearance remove those.
    Revoke(RoleChange),
    /// Bearer tokens for `kiln serve` and the dashboard.
    #[command(subcommand)]
    Token(TokenCommand),
    /// Protect COLUMN of NAME's output: principals without clearance for
    /// the sensitivity label get it masked.
    ///
    /// Masks: hash (keyed HMAC-SHA256, 32 hex digits; equal values stay
    /// equal), redact (null), bucketize:W (rounded down to a multiple of W).
    ///
    /// Example:
    ///   kiln access mask customers email --sensitivity pii --with hash
    #[command(verbatim_doc_comment)]
    Mask {
        /// The transform name.
        name: String,
        /// The output column.
        column: String,
        /// The sensitivity label (pii, financial, ...).
        #[arg(long, value_name = "LABEL")]
        sensitivity: String,
        /// hash, redact or bucketize:WIDTH.
        #[arg(long = "with", value_name = "MASK")]
        mask: String,
    },
    /// Remove the mask of COLUMN of NAME.
    Unmask {
        /// The transform name.
        name: String,
        /// The output column.
        column: String,
    },
    /// Whether PRINCIPAL may do LEVEL on NAME, and which columns it would
    /// see masked; exit 0 if allowed, 1 if not.
    Check {
        /// Who.
        #[arg(value_name = "PRINCIPAL")]
        who: String,
        /// The name.
        #[arg(long, value_name = "NAME")]
        on: String,
        /// read, run, promote or admin.
        #[arg(long, value_name = "LEVEL", default_value = "read")]
        allow: String,
    },
}

/// What a `grant` or `revoke` changes in one role.
#[derive(Args)]
pub struct RoleChange {
    /// The role.
    role: String,
    /// A name, '*', or a prefix ending in '*'.
    #[arg(long, value_name = "NAME")]
    on: Option<String>,
    /// With --on (grant only): read, run, promote or admin.
    #[arg(long, value_name = "LEVEL")]
    allow: Option<String>,
    /// A principal to add (grant) or remove (revoke). Repeatable.
    #[arg(long, value_name = "PRINCIPAL")]
    member: Vec<String>,
    /// A sensitivity label the role may see unmasked. Repeatable.
    #[arg(long, value_name = "LABEL")]
    clearance: Vec<String>,
}

#[derive(Subcommand)]
pub enum TokenCommand {
    /// Make a token acting as PRINCIPAL; it is printed once, only its hash is kept.
    Create {
        /// Who the token acts as.
        #[arg(value_name = "PRINCIPAL")]
        who: String,
        /// What it is for.
        #[arg(long, default_value = "")]
        label: String,
    },
    /// Every token's id, principal and label.
    List,
    /// Revoke a token by its id (or a unique prefix); a running server
    /// stops accepting it at its next reload (SIGHUP or POST /v1/reload).
    Revoke {
        /// The token id from `kiln access token list`.
        id: String,
    },
}

pub fn command(engine: &Engine, store: &StoreArgs, cmd: &AccessCommand, json: bool) -> Result<()> {
    let create = matches!(
        cmd,
        AccessCommand::Enable { .. } | AccessCommand::Mask { .. }
    );
    let reg = store.open(engine, create)?;
    let s = reg.store();
    match cmd {
        AccessCommand::Show => show(&s.access()?, json),
        AccessCommand::Enable { admin } => {
            let c = s.enable_access(admin.as_deref())?;
            let admin = admin.as_deref().unwrap_or(s.actor());
            if json {
                println!("{}", json!({"enabled": c.enabled, "admin": admin}));
            } else {
                println!("access control is on; {admin} is a member of role '{ADMIN_ROLE}' (admin on '*')");
                println!("next: grant roles (`kiln access grant ROLE --on NAME --allow read`), make tokens for servers (`kiln access token create`)");
            }
            Ok(())
        }
        AccessCommand::Disable => {
            let c = s.disable_access()?;
            if json {
                println!("{}", json!({"enabled": c.enabled}));
            } else {
                println!(
                    "access control is off: everyone may do everything (column masks still apply)"
                );
            }
            Ok(())
        }
        AccessCommand::Grant(change) => role_change(s, change, true, json),
        AccessCommand::Revoke(change) => role_change(s, change, false, json),
        AccessCommand::Token(t) => token(s, t, json),
        AccessCommand::Mask {
            name,
            column,
            sensitivity,
            mask,
        } => {
            let mask: Mask = mask.parse()?;
            let columns = s.set_policy(
                name,
                column,
                Some(ColumnPolicy {
                    sensitivity: sensitivity.clone(),
                    mask,
                }),
            )?;
            print_policies(name, &columns, json)
        }
        AccessCommand::Unmask { name, column } => {
            let columns = s.set_policy(name, column, None)?;
            print_policies(name, &columns, json)
        }
        AccessCommand::Check { who, on, allow } => {
            let principal = who;
            let need: Permission = allow.parse()?;
            let access = s.access()?;
            let allowed = access.allows(principal, on, need);
            let policies = access.policies().get(on.as_str());
            let masked: Vec<String> = access
                .masking(std::slice::from_ref(on), principal)
                .columns()
                .into_iter()
                .map(|c| match policies.and_then(|p| p.get(c)) {
                    Some(p) => format!("{c} ({})", p.mask),
                    None => c.to_string(),
                })
                .collect();
            if json {
                println!(
                    "{}",
                    json!({
                        "principal": principal, "on": on, "need": need,
                        "held": access.level(principal, on), "allowed": allowed,
                        "enforced": access.enabled(), "masked": masked,
                    })
                );
            } else {
                let held = access
                    .level(principal, on)
                    .map_or("nothing".to_string(), |l| l.to_string());
                let verdict = if allowed { "may" } else { "may NOT" };
                let note = if access.enabled() {
                    ""
                } else {
                    " (access control is off)"
                };
                println!("{principal} {verdict} {need} {on}: holds {held}{note}");
                if !masked.is_empty() {
                    println!("sees masked: {}", masked.join(", "));
                }
            }
            if !allowed {
                bail!(kiln_host::store::Error::Denied {
                    principal: principal.clone(),
                    permission: need,
                    subject: on.clone(),
                    held: access.level(principal, on),
                });
            }
            Ok(())
        }
    }
}

fn role_change(s: &Store, c: &RoleChange, grant: bool, json: bool) -> Result<()> {
    if c.on.is_none() && c.member.is_empty() && c.clearance.is_empty() {
        bail!(
            "nothing to change in role '{}': give --on NAME{}, --member PRINCIPAL or --clearance LABEL",
            c.role,
            if grant { " --allow LEVEL" } else { "" }
        );
    }
    let mut role = None;
    if let Some(on) = &c.on {
        let level = match (&c.allow, grant) {
            (Some(a), true) => Some(a.parse::<Permission>()?),
            (None, true) => bail!("--on {on} needs --allow read|run|promote|admin"),
            (Some(_), false) => bail!("revoke --on removes the role's grant on the name whatever its level; drop --allow (or grant a lower level instead)"),
            (None, false) => None,
        };
        role = Some(s.grant(&c.role, on, level)?);
    } else if c.allow.is_some() {
        bail!("--allow needs --on NAME");
    }
    for m in &c.member {
        role = Some(s.set_member(&c.role, m, grant)?);
    }
    for l in &c.clearance {
        role = Some(s.set_clearance(&c.role, l, grant)?);
    }
    let role = role.expect("one change was made");
    if json {
        println!("{}", serde_json::to_string_pretty(&role)?);
    } else {
        print_role(&role);
    }
    Ok(())
}

fn print_role(r: &kiln_host::store::Role) {
    let grants: Vec<String> = r
        .grants
        .iter()
        .map(|(p, l)| format!("{l} on {p}"))
        .collect();
    let list = |v: Vec<String>| {
        if v.is_empty() {
            "-".to_string()
        } else {
            v.join(", ")
        }
    };
    println!("role {}", r.name);
    println!("  grants:     {}", list(grants));
    println!(
        "  members:    {}",
        list(r.members.iter().cloned().collect())
    );
    println!(
        "  clearances: {}",
        list(r.clearances.iter().cloned().collect())
    );
}

fn token(s: &Store, cmd: &TokenCommand, json: bool) -> Result<()> {
    match cmd {
        TokenCommand::Create { who, label } => {
            let principal = who;
            let (token, rec) = s.create_token(principal, label)?;
            if json {
                println!(
                    "{}",
                    json!({"token": token, "id": rec.id, "principal": rec.principal, "label": rec.label})
                );
            } else {
                println!("{token}");
                eprintln!(
                    "token {} acts as {principal}; it is shown once (only its hash is kept). Send it as `Authorization: Bearer TOKEN`; running servers accept it after their next reload.",
                    rec.id
                );
            }
        }
        TokenCommand::List => {
            let access = s.access()?;
            let tokens: Vec<_> = access.tokens().collect();
            if json {
                println!("{}", serde_json::to_string_pretty(&tokens)?);
            } else if tokens.is_empty() {
                println!("no tokens; make one with `kiln access token create PRINCIPAL`");
            } else {
                println!(
                    "{:<12}  {:<16}  {:<20}  {:<24}  label",
                    "id", "principal", "created", "by"
                );
                for t in tokens {
                    println!(
                        "{:<12}  {:<16}  {:<20}  {:<24}  {}",
                        t.id,
                        t.principal,
                        &t.created_at[..t.created_at.len().min(19)],
                        t.created_by,
                        t.label
                    );
                }
            }
        }
        TokenCommand::Revoke { id } => {
            let rec = s.revoke_token(id)?;
            if json {
                println!("{}", json!({"revoked": rec.id, "principal": rec.principal}));
            } else {
                println!(
                    "revoked token {} of {}; reload running servers (SIGHUP or POST /v1/reload)",
                    rec.id, rec.principal
                );
            }
        }
    }
    Ok(())
}

fn print_policies(
    name: &str,
    columns: &std::collections::BTreeMap<String, ColumnPolicy>,
    json: bool,
) -> Result<()> {
    if json {
        println!("{}", json!({"name": name, "columns": columns}));
    } else if columns.is_empty() {
        println!("{name}: no masked columns");
    } else {
        for (c, p) in columns {
            println!(
                "{name}.{c}: {} ({}) for principals without clearance",
                p.mask, p.sensitivity
            );
        }
    }
    Ok(())
}

fn show(access: &Access, json: bool) -> Result<()> {
    if json {
        let tokens: Vec<_> = access.tokens().collect();
        println!(
            "{}",
            serde_json::to_string_pretty(&json!({
                "enabled": access.enabled(),
                "config": access.config(),
                "roles": access.roles(),
                "tokens": tokens,
                "policies": access.policies(),
            }))?
        );
        return Ok(());
    }
    let c = access.config();
    if access.enabled() {
        println!(
            "access control: on (since {} by {})",
            c.changed_at, c.changed_by
        );
    } else {
        println!(
            "access control: off; everyone may do everything (turn on with `kiln access enable`)"
        );
    }
    for r in access.roles() {
        print_role(r);
    }
    let n = access.tokens().count();
    println!("tokens: {n} (`kiln access token list`)");
    if access.policies().is_empty() {
        println!("column masks: none");
    }
    for (name, columns) in access.policies() {
        print_policies(name, columns, false)?;
    }
    Ok(())
}
