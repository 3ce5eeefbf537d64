//! Registry and lineage commands: add, versions, tag, promote, rollback,
//! lineage, verify, gc, export, store check. Parsing and printing only; the
//! work is in `kiln_host::Registry` and `kiln_host::store`.

use std::path::{Path, PathBuf};

use anyhow::{bail, Result};
use clap::{Args, Subcommand};
use kiln_host::openlineage::Sink;
use kiln_host::store::{OpenOptions, Resolved, RunRecord, TagRef};
use kiln_host::{Engine, Registry, Store, TraceNode};
use serde_json::json;

/// Where the store is and how to open it.
#[derive(Args, Clone)]
pub struct StoreArgs {
    /// Registry store directory [default: $KILN_HOME, else ./.kiln].
    #[arg(long, global = true, value_name = "DIR")]
    pub store: Option<PathBuf>,
    /// If another kiln process holds the store, wait for it instead of failing.
    #[arg(long, global = true)]
    pub wait: bool,
    /// Append OpenLineage run events (START, COMPLETE/FAIL) to this JSON-lines file.
    #[arg(long, global = true, value_name = "FILE")]
    pub openlineage_file: Option<PathBuf>,
    /// POST OpenLineage run events to this URL (e.g. http://localhost:5000/api/v1/lineage).
    #[arg(long, global = true, value_name = "URL")]
    pub openlineage_url: Option<String>,
    /// Act as this principal (recorded in the audit log) [default: $KILN_USER, else the OS user].
    #[arg(long = "as", global = true, value_name = "PRINCIPAL")]
    pub principal: Option<String>,
}

impl StoreArgs {
    /// Whether runs of plugin files should be recorded: a store was named
    /// (--store or KILN_HOME) or ./.kiln exists.
    pub fn active(&self) -> bool {
        self.store.is_some()
            || std::env::var_os("KILN_HOME").is_some_and(|h| !h.is_empty())
            || Path::new(".kiln/db").exists()
    }

    /// Open the store (creating it if `create`) with the engine.
    pub fn open(&self, engine: &Engine, create: bool) -> Result<Registry> {
        let dir = Store::resolve_dir(self.store.as_deref());
        let store = Store::open(
            &dir,
            &OpenOptions {
                create,
                wait: self.wait,
            },
            &mut |who| eprintln!("waiting for store {} held by {who} ...", dir.display()),
        )?;
        let store = match &self.principal {
            Some(p) => store.with_actor(p.clone()),
            None => store,
        };
        let mut reg = Registry::new(engine.clone(), store);
        if let Some(f) = &self.openlineage_file {
            reg = reg.with_openlineage(Sink::File(f.clone()));
        }
        if let Some(u) = &self.openlineage_url {
            reg = reg.with_openlineage(Sink::Http(u.clone()));
        }
        Ok(reg)
    }
}

#[derive(Subcommand)]
pub enum LineageCommand {
    /// List recorded runs, newest last.
    Log {
        /// Only runs of this transform name.
        #[arg(long)]
        name: Option<String>,
        /// Show at most this many (the newest).
        #[arg(long, default_value_t = 50)]
        limit: usize,
    },
    /// Show one run in full: transform parts, engine settings, inputs and outputs.
    Show {
        /// Run id (or a unique prefix).
        run: String,
    },
    /// Find the run that produced FILE (by its content fingerprint), or a
    /// feature table version (DIR or DIR@VERSION), and print the chain back
    /// to raw inputs.
    Trace {
        /// A data file Kiln wrote (or a copy of it, in any format), or a
        /// feature table DIR[@VERSION].
        file: PathBuf,
    },
    /// Print the lineage graph of all runs.
    Graph {
        /// dot (Graphviz) or mermaid.
        #[arg(long, default_value = "dot")]
        format: String,
        /// Only runs of this transform name.
        #[arg(long)]
        name: Option<String>,
    },
}

#[derive(Subcommand)]
pub enum StoreCommand {
    /// Check every record and blob of the store (hashes, references, the audit chain).
    Check,
}

#[derive(Subcommand)]
pub enum AuditCommand {
    /// Every administrative action, oldest first: tag moves (fit, tag,
    /// promote, rollback) and gc, with who, when and why.
    Log {
        /// Show at most this many (the newest).
        #[arg(long, default_value_t = 100)]
        limit: usize,
    },
    /// Recompute the hash chain; exit 1 naming each edited or deleted entry.
    Verify,
    /// The last entry's number and hash: keep it elsewhere to detect a
    /// rewritten log later.
    Head,
}

pub fn audit(engine: &Engine, store: &StoreArgs, cmd: &AuditCommand, json: bool) -> Result<()> {
    let reg = store.open(engine, false)?;
    let s = reg.store();
    match cmd {
        AuditCommand::Log { limit } => {
            let log = s.audit_log()?;
            let shown = &log[log.len().saturating_sub(*limit)..];
            if json {
                println!("{}", serde_json::to_string_pretty(shown)?);
            } else if shown.is_empty() {
                println!("no audited actions yet");
            } else {
                for e in shown {
                    println!(
                        "{:>5} {} {:<10} {:<9} {:<24} {}",
                        e.seq, e.time, e.actor, e.action, e.subject, e.detail
                    );
                }
            }
        }
        AuditCommand::Verify => {
            let r = s.verify_audit()?;
            if json {
                println!("{}", serde_json::to_string_pretty(&r)?);
            } else if r.ok {
                println!(
                    "audit log intact: {} entries, head {} {}",
                    r.entries, r.head.seq, r.head.hash
                );
            } else {
                for p in &r.problems {
                    println!("problem: {p}");
                }
            }
            if !r.ok {
                bail!(
                    "the audit log was tampered with: {} problems",
                    r.problems.len()
                );
            }
        }
        AuditCommand::Head => {
            let h = s.audit_head()?;
            if json {
                println!("{}", serde_json::to_string_pretty(&h)?);
            } else {
                println!("{} {}", h.seq, h.hash);
            }
        }
    }
    Ok(())
}

pub fn add(engine: &Engine, store: &StoreArgs, plugin: &Path, json: bool) -> Result<()> {
    let reg = store.open(engine, true)?;
    let (_, rec) = reg.add_plugin(plugin)?;
    reg.store().flush()?;
    if json {
        println!("{}", serde_json::to_string_pretty(&rec)?);
    } else {
        println!("added {}@{} {}", rec.name, rec.version, rec.id);
    }
    Ok(())
}

pub fn versions(engine: &Engine, store: &StoreArgs, name: Option<&str>, json: bool) -> Result<()> {
    let reg = store.open(engine, false)?;
    let s = reg.store();
    let Some(name) = name else {
        let names = s.names()?;
        if json {
            println!("{}", serde_json::to_string_pretty(&names)?);
        } else if names.is_empty() {
            println!("no transforms yet; `kiln fit PLUGIN --input FILE --name NAME` registers one");
        } else {
            for n in names {
                let tags: Vec<String> = n
                    .tags
                    .iter()
                    .map(|(t, v)| format!("{t}={}", &v[..12]))
                    .collect();
                println!("{:<24} {}", n.name, tags.join(" "));
            }
        }
        return Ok(());
    };
    let rec = s.name(name)?;
    let mut ids: Vec<String> = Vec::new();
    for m in &rec.history {
        if !ids.contains(&m.to) {
            ids.push(m.to.clone());
        }
    }
    let mut versions = Vec::new();
    let mut pipelines = Vec::new();
    for id in &ids {
        match s.resolve_any(id)? {
            Resolved::Version(v) => versions.push(v),
            Resolved::Pipeline(p) => pipelines.push(p),
        }
    }
    let access = s.access()?;
    let policies = access.policies().get(name).cloned().unwrap_or_default();
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&json!({
                "name": rec.name, "description": rec.description, "owner": rec.owner,
                "tags": rec.tags, "versions": versions, "pipelines": pipelines, "history": rec.history,
                "column_policies": policies,
            }))?
        );
        return Ok(());
    }
    println!("{}  {}", rec.name, rec.description);
    if !rec.owner.is_empty() {
        println!("owner: {}", rec.owner);
    }
    for (column, p) in &policies {
        println!(
            "column {column}: sensitivity {}, masked ({}) for principals without clearance",
            p.sensitivity, p.mask
        );
    }
    println!("\nversions and pipelines (oldest first):");
    for v in &versions {
        let tags: Vec<&str> = rec
            .tags
            .iter()
            .filter(|(_, t)| **t == v.id)
            .map(|(k, _)| k.as_str())
            .collect();
        println!(
            "  {}  {}  state {}  params {}  {}",
            &v.id[..12],
            v.plugin_name,
            v.state_id.as_deref().map(|s| &s[..12]).unwrap_or("-"),
            v.params,
            if tags.is_empty() {
                String::new()
            } else {
                format!("<- {}", tags.join(", "))
            }
        );
    }
    for p in &pipelines {
        let tags: Vec<&str> = rec
            .tags
            .iter()
            .filter(|(_, t)| **t == p.id)
            .map(|(k, _)| k.as_str())
            .collect();
        println!(
            "  {}  pipeline of {} steps: {}  {}",
            &p.id[..12],
            p.steps.len(),
            p.steps
                .iter()
                .map(|s| &s[..12])
                .collect::<Vec<_>>()
                .join(" -> "),
            if tags.is_empty() {
                String::new()
            } else {
                format!("<- {}", tags.join(", "))
            }
        );
    }
    println!("\ntag history:");
    for m in &rec.history {
        println!(
            "  {}  {:<8} {:<8} {} -> {}  {}",
            &m.time[..19],
            m.tag,
            m.action,
            m.from
                .as_deref()
                .map(|f| &f[..12])
                .unwrap_or("(none)      "),
            &m.to[..12],
            m.reason
        );
    }
    Ok(())
}

fn print_move(mv: &kiln_host::store::TagMove, tag: &TagRef, json: bool) -> Result<()> {
    if json {
        println!("{}", serde_json::to_string_pretty(mv)?);
    } else {
        println!(
            "{tag}: {} -> {} ({})",
            mv.from.as_deref().map(|f| &f[..12]).unwrap_or("(none)"),
            &mv.to[..12],
            mv.action
        );
    }
    Ok(())
}

pub fn tag(
    engine: &Engine,
    store: &StoreArgs,
    tag: &str,
    version: &str,
    reason: &str,
    json: bool,
) -> Result<()> {
    let reg = store.open(engine, false)?;
    let t = TagRef::parse(tag)?;
    let v = reg.store().resolve(version)?;
    reg.store().ensure_name(&t.name, None, None)?;
    let mv = reg.store().set_tag(&t, &v.id, "tag", reason)?;
    reg.store().flush()?;
    print_move(&mv, &t, json)
}

pub fn promote(
    engine: &Engine,
    store: &StoreArgs,
    name: &str,
    from: &str,
    to: &str,
    reason: &str,
    json: bool,
) -> Result<()> {
    let reg = store.open(engine, false)?;
    let mv = reg.promote(name, from, to, reason)?;
    print_move(
        &mv,
        &TagRef {
            name: name.into(),
            tag: to.into(),
        },
        json,
    )
}

pub fn rollback(
    engine: &Engine,
    store: &StoreArgs,
    tag: &str,
    reason: &str,
    json: bool,
) -> Result<()> {
    let reg = store.open(engine, false)?;
    let t = TagRef::parse(tag)?;
    let mv = reg.store().rollback(&t, reason)?;
    reg.store().flush()?;
    print_move(&mv, &t, json)
}

fn short(id: &str) -> &str {
    &id[..id.len().min(12)]
}

fn run_line(r: &RunRecord) -> String {
    format!(
        "{}  {}  {:<6} {:<7} {:<28} {} in -> {} out{}",
        r.id,
        &r.started_at[..19],
        format!("{:?}", r.kind).to_lowercase(),
        format!("{:?}", r.status).to_lowercase(),
        r.target
            .clone()
            .unwrap_or_else(|| r.transform.plugin.clone()),
        r.inputs.iter().map(|d| d.rows).sum::<u64>(),
        r.outputs.iter().map(|d| d.rows).sum::<u64>(),
        r.error
            .as_deref()
            .map(|e| format!("  error: {e}"))
            .unwrap_or_default()
    )
}

pub fn lineage(engine: &Engine, store: &StoreArgs, cmd: &LineageCommand, json: bool) -> Result<()> {
    let reg = store.open(engine, false)?;
    match cmd {
        LineageCommand::Log { name, limit } => {
            let mut runs: Vec<RunRecord> = reg
                .store()
                .runs()?
                .into_iter()
                .filter(|r| r.is_of(name.as_deref()))
                .collect();
            let skip = runs.len().saturating_sub(*limit);
            runs.drain(..skip);
            if json {
                println!("{}", serde_json::to_string_pretty(&runs)?);
            } else {
                for r in &runs {
                    println!("{}", run_line(r));
                }
            }
        }
        LineageCommand::Show { run } => {
            let r = reg.store().run(run)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&r)?);
            } else {
                println!("{}", run_line(&r));
                println!("  version   {}", r.transform.version_id);
                println!(
                    "  plugin    {} {}",
                    r.transform.plugin, r.transform.plugin_id
                );
                println!("  params    {}", r.transform.params);
                println!(
                    "  state     {}",
                    r.transform.state_id.as_deref().unwrap_or("-")
                );
                println!(
                    "  wit {}  host {}  wasmtime {}",
                    r.wit_version, r.host_version, r.engine.wasmtime
                );
                println!("  engine    {}", serde_json::to_string(&r.engine)?);
                if let Some(ms) = r.wall_ms {
                    println!("  wall      {ms:.1} ms");
                }
                for (label, list) in [("input ", &r.inputs), ("output", &r.outputs)] {
                    for d in list {
                        println!(
                            "  {label}    {} ({} rows) {}",
                            d.path, d.rows, d.fingerprint
                        );
                    }
                }
                if let Some(v) = &r.verifies {
                    println!("  verifies  {v}");
                }
            }
        }
        LineageCommand::Trace { file } => {
            let t = match crate::table::trace_target(file)? {
                Some((id, label)) => reg.trace_fingerprint(&id, &label)?,
                None => reg.trace(file)?,
            };
            if json {
                println!("{}", serde_json::to_string_pretty(&t)?);
            } else {
                if t.produced_by.is_none() {
                    println!(
                        "{} ({}) was not produced by any recorded run: it is a raw input or was made outside this store",
                        file.display(),
                        t.fingerprint
                    );
                }
                print_trace(&t, 0);
            }
        }
        LineageCommand::Graph { format, name } => {
            print!("{}", reg.graph(format, name.as_deref())?);
        }
    }
    Ok(())
}

fn print_trace(node: &TraceNode, depth: usize) {
    let pad = "  ".repeat(depth);
    match &node.produced_by {
        None => println!("{pad}raw input {} {}", node.path, node.fingerprint),
        Some(r) => {
            println!("{pad}{} {}", node.path, node.fingerprint);
            println!(
                "{pad}  <- run {} {}{}",
                r.run,
                r.transform.plugin,
                r.target
                    .as_deref()
                    .map(|t| format!(" as {t}"))
                    .unwrap_or_default()
            );
            let or_dash = |s: &str| {
                if s.is_empty() {
                    "-".to_string()
                } else {
                    s.to_string()
                }
            };
            println!("{pad}     plugin {}", or_dash(&r.transform.plugin_id));
            println!(
                "{pad}     state  {}",
                r.transform.state_id.as_deref().unwrap_or("-")
            );
            println!("{pad}     params {}", r.transform.params);
            for i in &r.inputs {
                print_trace(i, depth + 2);
            }
        }
    }
}

pub fn verify(engine: &Engine, store: &StoreArgs, run: &str, json: bool) -> Result<()> {
    let reg = store.open(engine, false)?;
    let report = if reg.store().run(run)?.kind == kiln_host::store::RunKind::Sql {
        // A SQL run re-runs its query through kiln-datafusion.
        kiln_host::sql::verify(&std::sync::Arc::new(reg), run)?
    } else {
        reg.verify(run)?
    };
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else if report.identical {
        println!(
            "run {} reproduced bit for bit (verify run {})",
            report.run,
            short(&report.verify_run)
        );
    } else {
        for d in &report.differences {
            eprintln!("  {d}");
        }
    }
    if !report.identical {
        bail!(
            "run {} was NOT reproduced: {}",
            report.run,
            report.differences.join("; ")
        );
    }
    Ok(())
}

pub fn gc(
    engine: &Engine,
    store: &StoreArgs,
    keep_days: u64,
    apply: bool,
    json: bool,
) -> Result<()> {
    let reg = store.open(engine, false)?;
    let r = reg.store().gc(keep_days, apply)?;
    if json {
        println!("{}", serde_json::to_string_pretty(&r)?);
    } else {
        println!(
            "{} {} runs, {} versions, {} states, {} plugins ({} bytes){}",
            if apply { "removed" } else { "would remove" },
            r.runs.len(),
            r.versions.len(),
            r.states.len(),
            r.plugins.len(),
            r.bytes,
            if apply {
                ""
            } else {
                "; pass --apply to remove them"
            }
        );
    }
    Ok(())
}

pub fn export(engine: &Engine, store: &StoreArgs, tag: &str, out: &Path, json: bool) -> Result<()> {
    let reg = store.open(engine, false)?;
    let m = reg.export(&TagRef::parse(tag)?, out)?;
    if json {
        println!("{}", serde_json::to_string_pretty(&m)?);
    } else {
        println!(
            "{tag} (version {}) -> {}",
            short(&m.version_id),
            out.display()
        );
    }
    Ok(())
}

pub fn store_cmd(engine: &Engine, store: &StoreArgs, cmd: &StoreCommand, json: bool) -> Result<()> {
    match cmd {
        StoreCommand::Check => {
            let reg = store.open(engine, false)?;
            let r = reg.store().check()?;
            if json {
                println!("{}", serde_json::to_string_pretty(&r)?);
            } else {
                println!("{}: {:?}", reg.store().dir().display(), r.counts);
                if !r.interrupted_runs.is_empty() {
                    println!(
                        "{} interrupted runs (killed or still running)",
                        r.interrupted_runs.len()
                    );
                }
                for p in &r.problems {
                    println!("problem: {p}");
                }
            }
            if !r.problems.is_empty() {
                bail!("store check found {} problems", r.problems.len());
            }
            Ok(())
        }
    }
}

pub fn parity(engine: &Engine, store: &StoreArgs, log: &Path, json: bool) -> Result<()> {
    let reg = store.open(engine, false)?;
    let r = reg.parity(log)?;
    if json {
        println!("{}", serde_json::to_string_pretty(&r)?);
    } else {
        for m in &r.mismatches {
            println!("call {}: {}", m.call, m.message);
        }
        if r.mismatches.is_empty() {
            println!(
                "{} logged calls reproduced bit for bit by {}",
                r.calls,
                short(&r.id)
            );
        }
    }
    if !r.mismatches.is_empty() {
        bail!(
            "{} of {} logged calls differ from the pinned version",
            r.mismatches.len(),
            r.calls
        );
    }
    Ok(())
}
