//! Reports kept beside the records: the latest drift report of each name
//! (`drift/<name>`), as `kiln drift NAME@TAG` saved it and the dashboard
//! (`kiln ui`) shows it. One record per name, overwritten by the next
//! report; not audited (it is an observation of data, not an administrative
//! action).

use serde::{Deserialize, Serialize};

use super::{now, Store};
use crate::{Permission, Result};

/// The latest drift report of a name: what was compared with what, when
/// and by whom, and the report itself.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DriftRecord {
    /// The transform name the report is kept under.
    pub name: String,
    /// The baseline as given: `NAME@TAG` or a version id.
    pub target: String,
    /// The version (or pipeline) id whose training profile was the baseline.
    pub version_id: String,
    /// When the report was saved (RFC 3339, UTC).
    pub time: String,
    /// Who ran the comparison (the store's actor).
    pub actor: String,
    /// The live data files compared, as given.
    pub inputs: Vec<String>,
    /// The report: per-feature PSI, Jensen–Shannon, KS / L∞ and the status.
    pub report: kiln_quality::DriftReport,
}

impl DriftRecord {
    /// A record of `report` for `name`, stamped now with `actor`.
    pub fn new(
        name: &str,
        target: &str,
        version_id: &str,
        actor: &str,
        inputs: Vec<String>,
        report: kiln_quality::DriftReport,
    ) -> DriftRecord {
        DriftRecord {
            name: name.into(),
            target: target.into(),
            version_id: version_id.into(),
            time: now(),
            actor: actor.into(),
            inputs,
            report,
        }
    }
}

impl Store {
    /// Keep `record` as the latest drift report of `record.name`, replacing
    /// the previous one. Needs `read` on the name (whoever may see a
    /// name's versions may record what its live data looks like).
    ///
    /// # Errors
    /// [`crate::Error::Denied`] without `read`; [`crate::Error::NotFound`]
    /// for an unknown name; [`crate::Error::Store`] on a database error.
    pub fn save_drift(&self, record: &DriftRecord) -> Result<()> {
        self.authorize(&record.name, Permission::Read)?;
        self.name(&record.name)?;
        self.db
            .commit(vec![Self::put_json("drift", &record.name, record)])?;
        self.db.flush()
    }

    /// The latest drift report of `name`, if one was saved.
    ///
    /// # Errors
    /// [`crate::Error::Store`] on a database error or an unreadable record.
    pub fn latest_drift(&self, name: &str) -> Result<Option<DriftRecord>> {
        self.get_json("drift", name)
    }

    /// The latest drift report of every name that has one, by name.
    ///
    /// # Errors
    /// [`crate::Error::Store`] on a database error or an unreadable record.
    pub fn latest_drifts(&self) -> Result<Vec<DriftRecord>> {
        self.scan_json("drift")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kiln_quality::{DriftReport, DriftStatus};

    fn report(status: DriftStatus) -> DriftReport {
        DriftReport {
            rows: [10, 20],
            features: Vec::new(),
            missing: Vec::new(),
            status,
        }
    }

    #[test]
    fn the_latest_report_replaces_the_previous_one_per_name() {
        let s = Store::in_memory();
        s.ensure_name("scaler", None, None).unwrap();
        s.ensure_name("city", None, None).unwrap();
        assert_eq!(s.latest_drift("scaler").unwrap(), None);
        let first = DriftRecord::new(
            "scaler",
            "scaler@prod",
            "v1",
            "alice",
            vec!["a.csv".into()],
            report(DriftStatus::Pass),
        );
        s.save_drift(&first).unwrap();
        let second = DriftRecord {
            report: report(DriftStatus::Fail),
            inputs: vec!["b.csv".into()],
            ..first.clone()
        };
        s.save_drift(&second).unwrap();
        assert_eq!(s.latest_drift("scaler").unwrap(), Some(second.clone()));
        assert_eq!(s.latest_drift("city").unwrap(), None);
        let city = DriftRecord {
            name: "city".into(),
            ..first
        };
        s.save_drift(&city).unwrap();
        let all = s.latest_drifts().unwrap();
        let names: Vec<&str> = all.iter().map(|d| d.name.as_str()).collect();
        assert_eq!(names, ["city", "scaler"]);
        assert_eq!(all[1].report.status, DriftStatus::Fail);
        // A report of a name the store does not know is refused.
        let e = s
            .save_drift(&DriftRecord {
                name: "nope".into(),
                ..second
            })
            .unwrap_err();
        assert!(e.to_string().contains("no transform named 'nope'"), "{e}");
    }
}
