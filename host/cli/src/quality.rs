//! Data quality commands: profile, check (contracts), drift. Parsing and
//! printing only; the work is in `kiln_host::quality`.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use kiln_host::quality::{self, Contract, DriftReport, DriftStatus, Profile, Severity, Thresholds};
use kiln_host::store::DriftRecord;
use kiln_host::Engine;

use crate::registry::StoreArgs;

/// Exit codes of `kiln drift` (and promotion gates): pass 0, warn 3, fail 4.
#[derive(Debug)]
pub struct Exit(pub u8, pub String);

impl std::fmt::Display for Exit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.1)
    }
}

impl std::error::Error for Exit {}

pub fn profile(inputs: &[PathBuf], json: bool) -> Result<()> {
    let p = quality::profile_files(inputs, None)?;
    if json {
        println!("{}", serde_json::to_string_pretty(&p)?);
        return Ok(());
    }
    println!("{} rows", p.rows);
    for c in &p.columns {
        print!(
            "{:<20} {:<12} count {:<8} nulls {:<6}",
            c.name, c.data_type, c.count, c.nulls
        );
        if let Some(n) = &c.numeric {
            let q = |x: f64| {
                n.quantiles
                    .iter()
                    .find(|v| v[0] == x)
                    .map(|v| v[1])
                    .unwrap_or(f64::NAN)
            };
            print!(
                " min {:.4} max {:.4} mean {:.4} std {:.4} p50 {:.4} p95 {:.4}",
                n.min,
                n.max,
                n.mean,
                n.std,
                q(0.5),
                q(0.95)
            );
        }
        if let Some(cat) = &c.categorical {
            let top: Vec<String> = cat
                .top
                .iter()
                .take(5)
                .map(|(v, n)| format!("{v}:{n}"))
                .collect();
            print!(" distinct {} top {}", cat.distinct, top.join(" "));
        }
        println!();
    }
    Ok(())
}

pub fn check(input: &Path, contract: &Path, json: bool) -> Result<()> {
    let contract = Contract::from_file(contract)?;
    let r = quality::check_file(input, &contract)?;
    if json {
        println!("{}", serde_json::to_string_pretty(&r)?);
    } else {
        for v in &r.violations {
            let sev = if v.severity == Severity::Warn {
                "warning"
            } else {
                "violation"
            };
            println!("{sev}: {v}");
        }
        if r.violations.is_empty() {
            println!("{}: {} rows pass the contract", input.display(), r.rows);
        }
    }
    if !r.passed {
        bail!(
            "{} breaks its contract ({} violations)",
            input.display(),
            r.violations.len()
        );
    }
    Ok(())
}

/// A version in the store whose training profile is the baseline: its id
/// and the names the report is kept under.
struct Stored {
    version_id: String,
    names: Vec<String>,
}

/// The training profile: NAME@TAG or a version id (from the store), a
/// profile JSON file (`kiln profile --json`), or a data file; for the
/// store, also which version and names.
fn baseline(engine: &Engine, store: &StoreArgs, spec: &str) -> Result<(Profile, Option<Stored>)> {
    let path = Path::new(spec);
    if path.exists() {
        if path.extension().is_some_and(|e| e == "json") {
            let text = std::fs::read_to_string(path)?;
            let profile = serde_json::from_str(&text).with_context(|| {
                format!("{spec} is not a profile written by `kiln profile --json`")
            })?;
            return Ok((profile, None));
        }
        return Ok((quality::profile_file(path, None)?, None));
    }
    let reg = store.open(engine, false)?;
    let id = match reg.store().resolve_any(spec)? {
        kiln_host::store::Resolved::Version(v) => v.id,
        kiln_host::store::Resolved::Pipeline(p) => p.id,
    };
    let profile = reg.store().profile(&id)?.with_context(|| {
        format!(
            "{spec} ({}) has no training profile (fitted before profiles were kept); refit it",
            &id[..12]
        )
    })?;
    // NAME@TAG is NAME's; a version id, every name a tag of which points at it.
    let names = match spec.split_once('@') {
        Some((name, _)) => vec![name.to_string()],
        None => reg
            .store()
            .names()?
            .into_iter()
            .filter(|n| n.tags.values().any(|v| *v == id))
            .map(|n| n.name)
            .collect(),
    };
    Ok((
        profile,
        Some(Stored {
            version_id: id,
            names,
        }),
    ))
}

/// Keep `report` as the latest drift of each name of `stored` (what
/// `kiln ui` shows). The store is opened again only now: profiling live
/// data can take a while and other processes need it meanwhile.
fn save_drift(
    engine: &Engine,
    store: &StoreArgs,
    target: &str,
    stored: &Stored,
    inputs: &[PathBuf],
    report: &DriftReport,
) -> Result<()> {
    if stored.names.is_empty() {
        return Ok(());
    }
    let reg = store.open(engine, false)?;
    let inputs: Vec<String> = inputs
        .iter()
        .map(|p| {
            std::path::absolute(p)
                .unwrap_or_else(|_| p.clone())
                .display()
                .to_string()
        })
        .collect();
    for name in &stored.names {
        let record = DriftRecord::new(
            name,
            target,
            &stored.version_id,
            reg.store().actor(),
            inputs.clone(),
            report.clone(),
        );
        reg.store()
            .save_drift(&record)
            .with_context(|| format!("cannot keep the report as the latest drift of '{name}'"))?;
    }
    Ok(())
}

#[allow(clippy::too_many_arguments)]
pub fn drift(
    engine: &Engine,
    store: &StoreArgs,
    target: &str,
    inputs: &[PathBuf],
    html: Option<&Path>,
    default: Thresholds,
    per_feature: &[String],
    json: bool,
) -> Result<()> {
    let (training, stored) = baseline(engine, store, target)?;
    let given = inputs;
    // A parity log directory stands for its logged inputs.
    let inputs: Vec<PathBuf> = inputs
        .iter()
        .map(|p| {
            if p.is_dir() {
                kiln_host::parity::ParityLog::inputs_path(p)
            } else {
                p.clone()
            }
        })
        .collect();
    let live = quality::profile_files(&inputs, Some(&training))?;
    let mut custom = Vec::new();
    for spec in per_feature {
        let parse = || -> Option<(String, Thresholds)> {
            let (col, t) = spec.split_once('=')?;
            let (w, f) = t.split_once(':')?;
            Some((
                col.to_string(),
                Thresholds {
                    warn: w.parse().ok()?,
                    fail: f.parse().ok()?,
                },
            ))
        };
        custom.push(parse().with_context(|| {
            format!("--threshold '{spec}' is not COLUMN=WARN:FAIL, e.g. age=0.2:0.5")
        })?);
    }
    let report = quality::drift(&training, &live, default, &|c| {
        custom.iter().find(|(n, _)| n == c).map(|(_, t)| *t)
    });
    if let Some(stored) = &stored {
        // The report stands whether or not it can be kept: a store that is
        // busy or a missing grant is a warning, never another exit code.
        match save_drift(engine, store, target, stored, given, &report) {
            Ok(()) if !json && !stored.names.is_empty() => eprintln!(
                "kept as the latest drift report of {} (kiln ui shows it)",
                stored.names.join(", ")
            ),
            Ok(()) => {}
            Err(e) => eprintln!("warning: {e:#}"),
        }
    }
    if let Some(h) = html {
        std::fs::write(
            h,
            quality::drift_html(&report, &format!("Drift of {target}")),
        )
        .with_context(|| format!("cannot write {}", h.display()))?;
    }
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        println!(
            "{:<20} {:<12} {:>8} {:>8} {:>8}  status",
            "feature", "kind", "PSI", "JS", "KS/L∞"
        );
        for f in &report.features {
            println!(
                "{:<20} {:<12} {:>8.4} {:>8.4} {:>8.4}  {:?}",
                f.name,
                f.kind,
                f.psi,
                f.js_distance,
                f.ks.or(f.linf).unwrap_or(f64::NAN),
                f.status
            );
        }
        for m in &report.missing {
            println!("{m:<20} missing from the live data");
        }
    }
    match report.status {
        DriftStatus::Pass => Ok(()),
        DriftStatus::Warn => Err(Exit(3, String::new()).into()),
        DriftStatus::Fail => Err(Exit(4, String::new()).into()),
    }
}
