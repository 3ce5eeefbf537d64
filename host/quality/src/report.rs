//! The drift report as one self-contained HTML page: a summary table and,
//! per feature, training and live histograms side by side (inline SVG, no
//! scripts, no external files).

use crate::drift::{DriftReport, DriftStatus, FeatureDrift};

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn color(s: DriftStatus) -> &'static str {
    match s {
        DriftStatus::Pass => "#2e7d32",
        DriftStatus::Warn => "#ef6c00",
        DriftStatus::Fail => "#c62828",
    }
}

fn label(s: DriftStatus) -> &'static str {
    match s {
        DriftStatus::Pass => "pass",
        DriftStatus::Warn => "warn",
        DriftStatus::Fail => "fail",
    }
}

/// Paired bars: training (grey-blue) and live (orange) per bin.
fn chart(f: &FeatureDrift) -> String {
    let (w, h, pad) = (640.0, 220.0, 30.0);
    let n = f.bins.len().max(1) as f64;
    let top = f
        .expected
        .iter()
        .chain(&f.actual)
        .fold(0.0f64, |a, b| a.max(*b))
        .max(1e-9);
    let slot = (w - 2.0 * pad) / n;
    let bar = (slot * 0.4).max(1.0);
    let mut svg = format!(
        r##"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" viewBox="0 0 {w} {h}" role="img" aria-label="histogram of {name}"><rect width="100%" height="100%" fill="#fff"/>"##,
        name = esc(&f.name)
    );
    for (i, (e, a)) in f.expected.iter().zip(&f.actual).enumerate() {
        let x = pad + i as f64 * slot;
        for (k, (v, fill)) in [(e, "#5c7cfa"), (a, "#fd7e14")].iter().enumerate() {
            let bh = (h - 2.0 * pad) * *v / top;
            svg.push_str(&format!(
                r##"<rect x="{:.1}" y="{:.1}" width="{bar:.1}" height="{bh:.1}" fill="{fill}"><title>{}: {} {:.4}</title></rect>"##,
                x + k as f64 * bar,
                h - pad - bh,
                esc(&f.bins[i]),
                if k == 0 { "training" } else { "live" },
                v
            ));
        }
    }
    if let (Some(first), Some(last)) = (f.bins.first(), f.bins.last()) {
        svg.push_str(&format!(
            r##"<text x="{pad}" y="{ty}" font-size="11" fill="#555">{}</text><text x="{rx}" y="{ty}" font-size="11" fill="#555" text-anchor="end">{}</text>"##,
            esc(first),
            esc(last),
            ty = h - pad + 16.0,
            rx = w - pad,
        ));
    }
    svg.push_str(&format!(
        r##"<line x1="{pad}" y1="{y}" x2="{x2}" y2="{y}" stroke="#333"/><text x="{pad}" y="16" font-size="12" fill="#5c7cfa">■ training</text><text x="{lx}" y="16" font-size="12" fill="#fd7e14">■ live</text></svg>"##,
        y = h - pad,
        x2 = w - pad,
        lx = pad + 90.0
    ));
    svg
}

/// A drift status as a coloured label: `<span class="status status-fail"
/// data-status="fail" ...>fail</span>` (green pass, orange warn, red fail).
pub fn drift_status_html(status: DriftStatus) -> String {
    format!(
        "<span class=\"status status-{s}\" data-status=\"{s}\" style=\"color:{c};font-weight:bold\">{s}</span>",
        s = label(status),
        c = color(status),
    )
}

/// The summary table of a report (one row per feature, worst first:
/// PSI, JS distance, KS / L∞, null fractions, status) and a line naming
/// the training columns missing from the live data. Feature names link to
/// `#{anchor}f-FEATURE`, the sections of [`drift_sections_html`] with the
/// same `anchor` prefix.
pub fn drift_table_html(report: &DriftReport, anchor: &str) -> String {
    let mut rows = String::new();
    for f in worst_first(report) {
        rows.push_str(&format!(
            "<tr><td><a href=\"#{a}f-{id}\">{name}</a></td><td>{kind}</td><td>{psi:.4}</td><td>{js:.4}</td><td>{ks}</td><td>{n0:.3} → {n1:.3}</td><td style=\"color:{c};font-weight:bold\">{s}</td></tr>",
            a = esc(anchor),
            id = esc(&f.name),
            name = esc(&f.name),
            kind = f.kind,
            psi = f.psi,
            js = f.js_distance,
            ks = f.ks.or(f.linf).map(|v| format!("{v:.4}")).unwrap_or_default(),
            n0 = f.null_fraction[0],
            n1 = f.null_fraction[1],
            c = color(f.status),
            s = label(f.status),
        ));
    }
    let missing = if report.missing.is_empty() {
        String::new()
    } else {
        format!(
            "<p style=\"color:#c62828\">Missing in live data: {}</p>",
            esc(&report.missing.join(", "))
        )
    };
    format!(
        "{missing}\n<table><tr><th>feature</th><th>kind</th><th>PSI</th><th>JS distance</th><th>KS / L∞</th><th>null fraction</th><th>status</th></tr>\n{rows}</table>"
    )
}

/// Per feature, worst first: a section `id="{anchor}f-FEATURE"` with its
/// status, PSI against the thresholds, JS distance, KS or L∞, and the
/// training and live histograms side by side (inline SVG).
pub fn drift_sections_html(report: &DriftReport, anchor: &str) -> String {
    let mut sections = String::new();
    for f in worst_first(report) {
        sections.push_str(&format!(
            "<section id=\"{a}f-{id}\"><h2>{name} <span style=\"color:{c}\">{s}</span></h2><p>PSI {psi:.4} (warn {w}, fail {fl}) · JS distance {js:.4}{extra}</p>{chart}</section>",
            a = esc(anchor),
            id = esc(&f.name),
            name = esc(&f.name),
            c = color(f.status),
            s = label(f.status),
            psi = f.psi,
            w = f.thresholds.warn,
            fl = f.thresholds.fail,
            js = f.js_distance,
            extra = match (f.ks, f.linf) {
                (Some(k), _) => format!(" · KS {k:.4}"),
                (_, Some(l)) => format!(" · L∞ {l:.4}"),
                _ => String::new(),
            },
            chart = chart(f),
        ));
    }
    sections
}

/// Worst first: what needs a look comes first.
fn worst_first(report: &DriftReport) -> Vec<&FeatureDrift> {
    let mut features: Vec<&FeatureDrift> = report.features.iter().collect();
    features.sort_by_key(|f| std::cmp::Reverse(f.status));
    features
}

/// The report as a complete HTML document.
pub fn drift_html(report: &DriftReport, title: &str) -> String {
    format!(
        r##"<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{t}</title>
<style>body{{font-family:system-ui,sans-serif;margin:2em;color:#222}}table{{border-collapse:collapse}}td,th{{border:1px solid #ccc;padding:4px 10px;text-align:left}}section{{margin-top:2em}}</style>
</head><body>
<h1>{t} <span style="color:{c}">{s}</span></h1>
<p>Training rows: {r0} · live rows: {r1}</p>{table}
{sections}
</body></html>
"##,
        t = esc(title),
        c = color(report.status),
        s = label(report.status),
        r0 = report.rows[0],
        r1 = report.rows[1],
        table = drift_table_html(report, ""),
        sections = drift_sections_html(report, ""),
    )
}
