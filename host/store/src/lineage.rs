//! The lineage graph of recorded runs as data: datasets, runs and fitted
//! states are nodes; a run reads datasets and writes datasets (a fit, its
//! state). `kiln lineage graph` prints it as Graphviz dot or mermaid
//! ([`Registry::graph`](crate::Registry::graph)); the dashboard
//! (`kiln ui`) draws the same graph as SVG.

use std::collections::BTreeMap;
use std::path::Path;

use crate::{RunKind, RunRecord};

/// What a node of a [`LineageGraph`] stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum NodeKind {
    /// A file or a feature-table version, known by its fingerprint.
    Data,
    /// A recorded run (fit, run, materialize, training set).
    Run,
    /// A fitted state written by a fit.
    State,
}

impl NodeKind {
    /// `data`, `run` or `state`.
    pub fn as_str(self) -> &'static str {
        match self {
            NodeKind::Data => "data",
            NodeKind::Run => "run",
            NodeKind::State => "state",
        }
    }
}

/// One node of a [`LineageGraph`].
#[derive(Debug, Clone, PartialEq)]
pub struct LineageNode {
    /// A stable id: `d_<fingerprint prefix>`, `r_<run id without dashes>`
    /// or `s_<state id prefix>` (what the dot output names it).
    pub id: String,
    /// What it stands for.
    pub kind: NodeKind,
    /// The label `kiln lineage graph` prints: `FILE FINGERPRINT`,
    /// `KIND PLUGIN (NAME@TAG)` or `state ID`.
    pub label: String,
    /// For a run: the run.
    pub run: Option<RunNode>,
    /// For a dataset: its full path (or table label `DIR@VERSION`),
    /// fingerprint and rows, as the last run that named it recorded them.
    pub data: Option<DataNode>,
}

/// The run behind a [`NodeKind::Run`] node.
#[derive(Debug, Clone, PartialEq)]
pub struct RunNode {
    /// The run id.
    pub id: String,
    /// What the run did.
    pub kind: RunKind,
    /// When it started (RFC 3339).
    pub started_at: String,
    /// `NAME@TAG` it was started by, if any.
    pub target: Option<String>,
    /// The plugin's name and version.
    pub plugin: String,
    /// The transform (or pipeline) version id.
    pub version_id: String,
}

/// The dataset behind a [`NodeKind::Data`] node.
#[derive(Debug, Clone, PartialEq)]
pub struct DataNode {
    /// The file, or a feature table's `DIR@VERSION`.
    pub path: String,
    /// Its content fingerprint (or table lineage id).
    pub fingerprint: String,
    /// Rows.
    pub rows: u64,
}

/// Datasets, runs and states with the edges between them, in a form to
/// print or draw.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LineageGraph {
    /// Nodes by id.
    pub nodes: BTreeMap<String, LineageNode>,
    /// Edges `(from, to)` by node id, in the order the runs name them
    /// (input → run, run → output, fit → state).
    pub edges: Vec<(String, String)>,
}

/// What a run's kind is called in a label.
pub fn run_kind_label(kind: RunKind) -> &'static str {
    match kind {
        RunKind::Fit => "fit",
        RunKind::Materialize => "materialize",
        RunKind::TrainingSet => "training-set",
        RunKind::Verify => "verify",
        RunKind::Run => "run",
        RunKind::Sql => "sql",
    }
}

impl LineageGraph {
    /// The graph of `runs` (every run given: filter first).
    pub fn from_runs<'a>(runs: impl IntoIterator<Item = &'a RunRecord>) -> LineageGraph {
        let short = |s: &str| {
            s.trim_start_matches("fp1:")
                .chars()
                .take(10)
                .collect::<String>()
        };
        let file_name = |p: &str| {
            Path::new(p)
                .file_name()
                .map(|f| f.to_string_lossy().into_owned())
                .unwrap_or_else(|| p.into())
        };
        let mut g = LineageGraph::default();
        let data_node = |g: &mut LineageGraph, d: &crate::DatasetRecord| {
            let id = format!("d_{}", short(&d.fingerprint));
            g.nodes.insert(
                id.clone(),
                LineageNode {
                    id: id.clone(),
                    kind: NodeKind::Data,
                    label: format!("{} {}", file_name(&d.path), short(&d.fingerprint)),
                    run: None,
                    data: Some(DataNode {
                        path: d.path.clone(),
                        fingerprint: d.fingerprint.clone(),
                        rows: d.rows,
                    }),
                },
            );
            id
        };
        for r in runs {
            let rn = format!("r_{}", r.id.replace('-', ""));
            let kind = match r.kind {
                // A verify re-executes a run: drawn as a run.
                RunKind::Verify => "run",
                k => run_kind_label(k),
            };
            let label = format!(
                "{kind} {}{}",
                r.transform.plugin,
                r.target
                    .as_deref()
                    .map(|t| format!(" ({t})"))
                    .unwrap_or_default()
            );
            g.nodes.insert(
                rn.clone(),
                LineageNode {
                    id: rn.clone(),
                    kind: NodeKind::Run,
                    label,
                    run: Some(RunNode {
                        id: r.id.clone(),
                        kind: r.kind,
                        started_at: r.started_at.clone(),
                        target: r.target.clone(),
                        plugin: r.transform.plugin.clone(),
                        version_id: r.transform.version_id.clone(),
                    }),
                    data: None,
                },
            );
            for d in &r.inputs {
                let dn = data_node(&mut g, d);
                g.edges.push((dn, rn.clone()));
            }
            for d in &r.outputs {
                let dn = data_node(&mut g, d);
                g.edges.push((rn.clone(), dn));
            }
            if r.kind == RunKind::Fit {
                if let Some(s) = &r.transform.state_id {
                    let short = &s[..10.min(s.len())];
                    let sn = format!("s_{short}");
                    g.nodes.insert(
                        sn.clone(),
                        LineageNode {
                            id: sn.clone(),
                            kind: NodeKind::State,
                            label: format!("state {short}"),
                            run: None,
                            data: None,
                        },
                    );
                    g.edges.push((rn.clone(), sn));
                }
            }
        }
        g
    }

    /// Graphviz `dot`: `digraph kiln { rankdir=LR; ... }`.
    pub fn to_dot(&self) -> String {
        let mut out = String::from("digraph kiln {\n  rankdir=LR;\n");
        for (id, n) in &self.nodes {
            let shape = match n.kind {
                NodeKind::Run => "box",
                NodeKind::State => "note",
                NodeKind::Data => "ellipse",
            };
            out.push_str(&format!(
                "  {id} [label=\"{}\", shape={shape}];\n",
                quote(&n.label)
            ));
        }
        for (a, b) in &self.edges {
            out.push_str(&format!("  {a} -> {b};\n"));
        }
        out.push_str("}\n");
        out
    }

    /// A mermaid `flowchart LR`.
    pub fn to_mermaid(&self) -> String {
        let mut out = String::from("flowchart LR\n");
        for (id, n) in &self.nodes {
            let (l, r) = match n.kind {
                NodeKind::Run => ("[", "]"),
                NodeKind::State => ("[/", "/]"),
                NodeKind::Data => ("([", "])"),
            };
            out.push_str(&format!("  {id}{l}\"{}\"{r}\n", quote(&n.label)));
        }
        for (a, b) in &self.edges {
            out.push_str(&format!("  {a} --> {b}\n"));
        }
        out
    }
}

/// A label inside double quotes: its own double quotes become single ones.
fn quote(s: &str) -> String {
    s.replace('"', "'")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(
        id: &str,
        kind: &str,
        inputs: &[&str],
        outputs: &[&str],
        state: Option<&str>,
    ) -> RunRecord {
        let ds = |p: &&str| serde_json::json!({"path": format!("/data/{p}"), "fingerprint": format!("fp1:{p}0123456789"), "rows": 3, "schema": []});
        serde_json::from_value(serde_json::json!({
            "id": id, "kind": kind, "started_at": "2026-01-01T00:00:00Z", "status": "ok",
            "target": "scaler@dev",
            "transform": {"version_id": "v", "plugin_id": "p", "plugin": "scaler@1.0.0", "params": "{}", "state_id": state},
            "wit_version": "0.1.0", "host_version": "0.1.0",
            "engine": {"wasmtime": "48", "determinism": [], "deadline_ms": 1, "memory_limit": 1, "max_output_ratio": 1},
            "batch_size": 1,
            "inputs": inputs.iter().map(ds).collect::<Vec<_>>(),
            "outputs": outputs.iter().map(ds).collect::<Vec<_>>(),
        }))
        .unwrap()
    }

    #[test]
    fn dot_and_mermaid_name_every_node_and_edge() {
        let runs = [
            run("01-a", "fit", &["train"], &[], Some("feedface00112233")),
            run("01-b", "run", &["train"], &["feat"], None),
        ];
        let g = LineageGraph::from_runs(&runs);
        assert_eq!(
            g.to_dot(),
            "digraph kiln {\n  rankdir=LR;\n\
             \x20 d_feat012345 [label=\"feat feat012345\", shape=ellipse];\n\
             \x20 d_train01234 [label=\"train train01234\", shape=ellipse];\n\
             \x20 r_01a [label=\"fit scaler@1.0.0 (scaler@dev)\", shape=box];\n\
             \x20 r_01b [label=\"run scaler@1.0.0 (scaler@dev)\", shape=box];\n\
             \x20 s_feedface00 [label=\"state feedface00\", shape=note];\n\
             \x20 d_train01234 -> r_01a;\n\
             \x20 r_01a -> s_feedface00;\n\
             \x20 d_train01234 -> r_01b;\n\
             \x20 r_01b -> d_feat012345;\n}\n"
        );
        let m = g.to_mermaid();
        assert!(m.starts_with("flowchart LR\n"), "{m}");
        assert!(m.contains("  d_feat012345([\"feat feat012345\"])\n"), "{m}");
        assert!(
            m.contains("  s_feedface00[/\"state feedface00\"/]\n"),
            "{m}"
        );
        assert!(m.contains("  r_01b --> d_feat012345\n"), "{m}");
        let run_node = g.nodes["r_01b"].run.as_ref().unwrap();
        assert_eq!(
            (run_node.id.as_str(), run_node.kind),
            ("01-b", RunKind::Run)
        );
        assert_eq!(
            g.nodes["d_feat012345"].data.as_ref().unwrap().path,
            "/data/feat"
        );
    }
}
