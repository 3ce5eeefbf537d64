//! Data contracts: per column type, nullability, max null fraction, min /
//! max, allowed categories and uniqueness, checked on a whole file in one
//! streaming pass. A violation names the column, the rule, the observed
//! value and example rows; each rule fails or only warns, per column.
//!
//! A contract is JSON:
//! ```json
//! { "columns": {
//!     "customer_id": { "type": "Int64", "nullable": false, "unique": true },
//!     "age":  { "min": 0, "max": 120, "max_null_fraction": 0.1 },
//!     "plan": { "allowed": ["basic", "plus", "pro"], "severity": "warn" } },
//!   "allow_extra_columns": true }
//! ```

use std::collections::{BTreeMap, HashSet};
use std::path::Path;

use arrow::array::{Array, AsArray};
use arrow::datatypes::{DataType, Float64Type};
use serde::{Deserialize, Serialize};

use kiln_io::{self as io, ReadOptions};
use kiln_runtime::{Error, Result};

/// Example rows kept per violation.
const EXAMPLES: usize = 5;

/// Whether a broken rule fails the check or only warns.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Fails the check (and the run it guards).
    #[default]
    Fail,
    /// Reported, but the check passes.
    Warn,
}

/// Rules for one column; every rule is optional.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ColumnRules {
    /// Arrow type as Arrow prints it (`Int64`, `Float64`, `Utf8`, …).
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub data_type: Option<String>,
    /// `false`: no nulls allowed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nullable: Option<bool>,
    /// Largest allowed fraction of nulls.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_null_fraction: Option<f64>,
    /// Smallest allowed value (numeric columns).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min: Option<f64>,
    /// Largest allowed value (numeric columns).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max: Option<f64>,
    /// The only values allowed (compared as text).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allowed: Option<Vec<String>>,
    /// No value may repeat.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unique: Option<bool>,
    /// What a broken rule of this column does.
    #[serde(default)]
    pub severity: Severity,
}

/// A data contract.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Contract {
    /// Rules per column name.
    pub columns: BTreeMap<String, ColumnRules>,
    /// Whether columns the contract does not name are allowed (default yes).
    #[serde(default = "yes")]
    pub allow_extra_columns: bool,
}

fn yes() -> bool {
    true
}

/// One example of a violating row.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Example {
    /// Row number (0-based, across the file).
    pub row: u64,
    /// The value, as text (`null` for a null).
    pub value: String,
}

/// One broken rule.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Violation {
    /// The column.
    pub column: String,
    /// The rule: `type`, `nullable`, `max_null_fraction`, `min`, `max`,
    /// `allowed`, `unique`, `missing_column` or `extra_column`.
    pub rule: String,
    /// What the contract asks.
    pub expected: String,
    /// What the data has.
    pub observed: String,
    /// Rows that break it (first few).
    pub examples: Vec<Example>,
    /// Rows that break it, in all (for row rules).
    pub rows: u64,
    /// Fail or warn.
    pub severity: Severity,
}

impl std::fmt::Display for Violation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "column '{}': {} expects {}, observed {}",
            self.column, self.rule, self.expected, self.observed
        )?;
        if !self.examples.is_empty() {
            let ex: Vec<String> = self
                .examples
                .iter()
                .map(|e| format!("row {} = {}", e.row, e.value))
                .collect();
            write!(f, " (e.g. {})", ex.join(", "))?;
        }
        Ok(())
    }
}

/// The outcome of checking a file against a contract.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CheckReport {
    /// Rows checked.
    pub rows: u64,
    /// Every broken rule.
    pub violations: Vec<Violation>,
    /// True unless a rule with severity `fail` is broken.
    pub passed: bool,
}

impl Contract {
    /// Read a contract from a JSON file.
    ///
    /// # Errors
    /// [`Error::Io`] or [`Error::Data`] naming the problem (unknown keys are refused).
    pub fn from_file(path: &Path) -> Result<Contract> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        serde_json::from_str(&text)
            .map_err(|e| Error::data(path, format!("not a valid contract: {e}")))
    }
}

struct RowRule {
    rule: &'static str,
    expected: String,
    examples: Vec<Example>,
    rows: u64,
}

impl RowRule {
    fn new(rule: &'static str, expected: String) -> RowRule {
        RowRule {
            rule,
            expected,
            examples: Vec::new(),
            rows: 0,
        }
    }

    fn hit(&mut self, row: u64, value: String) {
        self.rows += 1;
        if self.examples.len() < EXAMPLES {
            self.examples.push(Example { row, value });
        }
    }
}

/// `v` breaks a minimum (NaN breaks every bound).
fn below(v: f64, min: Option<f64>) -> bool {
    min.is_some_and(|m| v.is_nan() || v < m)
}

/// `v` breaks a maximum (NaN breaks every bound).
fn above(v: f64, max: Option<f64>) -> bool {
    max.is_some_and(|m| v.is_nan() || v > m)
}

/// Check `path` against `contract` in one streaming pass.
///
/// # Errors
/// As [`io::open`]; reading errors. Broken rules are reported, not returned as errors.
pub fn check_file(path: &Path, contract: &Contract) -> Result<CheckReport> {
    let reader = io::open(path, &ReadOptions::default())?;
    let schema = reader.schema();
    let mut violations = Vec::new();
    let mut tracked = Vec::new(); // (column index, name, rules, row rules, nulls, seen)
    for (name, rules) in &contract.columns {
        let Some((i, field)) = schema.column_with_name(name) else {
            violations.push(Violation {
                column: name.clone(),
                rule: "missing_column".into(),
                expected: "the column to exist".into(),
                observed: "no such column".into(),
                examples: vec![],
                rows: 0,
                severity: rules.severity,
            });
            continue;
        };
        if let Some(t) = &rules.data_type {
            if field.data_type().to_string() != *t {
                violations.push(Violation {
                    column: name.clone(),
                    rule: "type".into(),
                    expected: t.clone(),
                    observed: field.data_type().to_string(),
                    examples: vec![],
                    rows: 0,
                    severity: rules.severity,
                });
            }
        }
        let mut row_rules = Vec::new();
        if rules.nullable == Some(false) {
            row_rules.push(RowRule::new("nullable", "no nulls".into()));
        }
        if let Some(m) = rules.min {
            row_rules.push(RowRule::new("min", format!(">= {m}")));
        }
        if let Some(m) = rules.max {
            row_rules.push(RowRule::new("max", format!("<= {m}")));
        }
        if let Some(a) = &rules.allowed {
            row_rules.push(RowRule::new("allowed", format!("one of {a:?}")));
        }
        if rules.unique == Some(true) {
            row_rules.push(RowRule::new("unique", "no repeated value".into()));
        }
        tracked.push((
            i,
            name.clone(),
            rules.clone(),
            row_rules,
            0u64,
            HashSet::<String>::new(),
        ));
    }
    if !contract.allow_extra_columns {
        for f in schema.fields() {
            if !contract.columns.contains_key(f.name()) {
                violations.push(Violation {
                    column: f.name().clone(),
                    rule: "extra_column".into(),
                    expected: "only the columns the contract names".into(),
                    observed: "an extra column".into(),
                    examples: vec![],
                    rows: 0,
                    severity: Severity::Fail,
                });
            }
        }
    }
    let mut rows = 0u64;
    for batch in reader {
        let batch = batch?;
        for (i, _, rules, row_rules, nulls, seen) in tracked.iter_mut() {
            let col = batch.column(*i);
            *nulls += col.null_count() as u64;
            let text = arrow::compute::cast(col, &DataType::Utf8).ok();
            let text = text.as_ref().map(|t| t.as_string::<i32>());
            let numeric = (rules.min.is_some() || rules.max.is_some())
                .then(|| arrow::compute::cast(col, &DataType::Float64).ok())
                .flatten();
            let numeric = numeric.as_ref().map(|n| n.as_primitive::<Float64Type>());
            let show = |r: usize| match text {
                Some(t) if t.is_valid(r) => t.value(r).to_string(),
                Some(_) => "null".into(),
                None => "?".into(),
            };
            for r in 0..batch.num_rows() {
                let row = rows + r as u64;
                for rr in row_rules.iter_mut() {
                    let broken = match rr.rule {
                        "nullable" => col.is_null(r),
                        "min" => {
                            numeric.is_some_and(|n| n.is_valid(r) && below(n.value(r), rules.min))
                        }
                        "max" => {
                            numeric.is_some_and(|n| n.is_valid(r) && above(n.value(r), rules.max))
                        }
                        "allowed" => text.is_some_and(|t| {
                            t.is_valid(r)
                                && !rules
                                    .allowed
                                    .as_ref()
                                    .is_some_and(|a| a.iter().any(|v| v == t.value(r)))
                        }),
                        "unique" => text
                            .is_some_and(|t| t.is_valid(r) && !seen.insert(t.value(r).to_string())),
                        _ => false,
                    };
                    if broken {
                        rr.hit(row, show(r));
                    }
                }
            }
        }
        rows += batch.num_rows() as u64;
    }
    for (_, name, rules, row_rules, nulls, _) in tracked {
        if let Some(max) = rules.max_null_fraction {
            let frac = if rows == 0 {
                0.0
            } else {
                nulls as f64 / rows as f64
            };
            if frac > max {
                violations.push(Violation {
                    column: name.clone(),
                    rule: "max_null_fraction".into(),
                    expected: format!("<= {max}"),
                    observed: format!("{frac:.4} ({nulls} of {rows} rows)"),
                    examples: vec![],
                    rows: nulls,
                    severity: rules.severity,
                });
            }
        }
        for rr in row_rules.into_iter().filter(|rr| rr.rows > 0) {
            violations.push(Violation {
                column: name.clone(),
                rule: rr.rule.into(),
                expected: rr.expected,
                observed: format!("{} rows break it", rr.rows),
                examples: rr.examples,
                rows: rr.rows,
                severity: rules.severity,
            });
        }
    }
    let passed = violations.iter().all(|v| v.severity == Severity::Warn);
    Ok(CheckReport {
        rows,
        violations,
        passed,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(csv: &str, contract: &str) -> CheckReport {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("t.csv");
        std::fs::write(&p, csv).unwrap();
        check_file(&p, &serde_json::from_str(contract).unwrap()).unwrap()
    }

    #[test]
    fn each_rule_names_column_rule_and_rows() {
        let csv = "id,age,plan\n1,30,basic\n2,-4,pro\n2,,gold\n4,200,basic\n";
        let cases: [(&str, &str, u64, &[u64]); 7] = [
            (r#"{"columns":{"age":{"min":0}}}"#, "min", 1, &[1]),
            (r#"{"columns":{"age":{"max":120}}}"#, "max", 1, &[3]),
            (
                r#"{"columns":{"age":{"nullable":false}}}"#,
                "nullable",
                1,
                &[2],
            ),
            (
                r#"{"columns":{"plan":{"allowed":["basic","pro"]}}}"#,
                "allowed",
                1,
                &[2],
            ),
            (r#"{"columns":{"id":{"unique":true}}}"#, "unique", 1, &[2]),
            (
                r#"{"columns":{"age":{"max_null_fraction":0.1}}}"#,
                "max_null_fraction",
                1,
                &[],
            ),
            (r#"{"columns":{"id":{"type":"Utf8"}}}"#, "type", 0, &[]),
        ];
        for (contract, rule, rows, example_rows) in cases {
            let r = check(csv, contract);
            assert!(!r.passed, "{contract}");
            assert_eq!(r.violations.len(), 1, "{contract}: {:?}", r.violations);
            let v = &r.violations[0];
            assert_eq!((v.rule.as_str(), v.rows), (rule, rows), "{contract}");
            let got: Vec<u64> = v.examples.iter().map(|e| e.row).collect();
            assert_eq!(got, example_rows, "{contract}");
        }
        let r = check(
            csv,
            r#"{"columns":{"age":{"min":-10,"max":300},"plan":{"allowed":["gold"],"severity":"warn"}}}"#,
        );
        assert!(r.passed, "a warn-only violation passes: {:?}", r.violations);
        assert_eq!(r.violations[0].examples.len(), 3);
        let r = check(csv, r#"{"columns":{"nope":{}}}"#);
        assert_eq!(r.violations[0].rule, "missing_column");
        let r = check(csv, r#"{"columns":{"id":{}},"allow_extra_columns":false}"#);
        assert_eq!(r.violations.len(), 2);
    }

    #[test]
    fn unknown_keys_are_refused() {
        let e = serde_json::from_str::<Contract>(r#"{"columns":{"a":{"minimum":1}}}"#).unwrap_err();
        assert!(e.to_string().contains("minimum"), "{e}");
    }
}
