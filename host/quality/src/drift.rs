//! Drift between a training profile and live data, per feature: population
//! stability index (PSI), Jensen–Shannon distance, the Kolmogorov–Smirnov
//! statistic (numeric) and the L-infinity distance between category
//! frequencies (categorical), with warn / fail thresholds.
//!
//! Numeric features are compared over the training histogram's frozen bins
//! (the live profile must be computed with the training profile as
//! baseline, see [`profile_file`](super::profile_file)); categorical ones
//! over the training top categories plus one `other` bucket. Conventions:
//! PSI floors every proportion at 1e-4 (an empty bin would make it
//! infinite); JS distance is the square root of the JS divergence in base 2
//! (0 = same, 1 = disjoint), as `scipy.spatial.distance.jensenshannon(p, q,
//! base=2)`; the profile-based KS statistic is the largest CDF gap at the bin
//! edges (a lower bound of the exact statistic, which [`ks_statistic`]
//! computes from samples).

use serde::{Deserialize, Serialize};

use crate::profile::{ColumnProfile, Profile};

/// Proportions are floored at this in PSI.
pub const PSI_EPSILON: f64 = 1e-4;

/// How a feature (or a whole report) came out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DriftStatus {
    /// Below the warn threshold.
    Pass,
    /// At or above warn, below fail.
    Warn,
    /// At or above fail.
    Fail,
}

/// PSI thresholds (defaults 0.1 warn, 0.25 fail).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Thresholds {
    /// PSI at which a feature warns.
    pub warn: f64,
    /// PSI at which a feature fails.
    pub fail: f64,
}

impl Default for Thresholds {
    fn default() -> Self {
        Thresholds {
            warn: 0.1,
            fail: 0.25,
        }
    }
}

/// The drift of one feature.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FeatureDrift {
    /// Column name.
    pub name: String,
    /// `numeric` or `categorical`.
    pub kind: String,
    /// Population stability index.
    pub psi: f64,
    /// Jensen–Shannon distance (base 2).
    pub js_distance: f64,
    /// Kolmogorov–Smirnov statistic over the bins (numeric).
    pub ks: Option<f64>,
    /// Largest absolute difference of category frequencies (categorical).
    pub linf: Option<f64>,
    /// Null fraction in training and live.
    pub null_fraction: [f64; 2],
    /// Bin labels.
    pub bins: Vec<String>,
    /// Training proportions per bin.
    pub expected: Vec<f64>,
    /// Live proportions per bin.
    pub actual: Vec<f64>,
    /// Thresholds applied.
    pub thresholds: Thresholds,
    /// Outcome.
    pub status: DriftStatus,
}

/// Drift of every feature present in both profiles.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DriftReport {
    /// Rows in training and live data.
    pub rows: [u64; 2],
    /// Per feature.
    pub features: Vec<FeatureDrift>,
    /// Training columns missing from live data.
    pub missing: Vec<String>,
    /// The worst feature status (fail if a feature is missing).
    pub status: DriftStatus,
}

/// PSI of `actual` against `expected` proportions.
pub fn psi(expected: &[f64], actual: &[f64]) -> f64 {
    expected
        .iter()
        .zip(actual)
        .map(|(e, a)| {
            let (e, a) = (e.max(PSI_EPSILON), a.max(PSI_EPSILON));
            (a - e) * (a / e).ln()
        })
        .sum()
}

/// Jensen–Shannon distance (base 2) between two distributions.
pub fn js_distance(p: &[f64], q: &[f64]) -> f64 {
    let kl = |a: &[f64], m: &[f64]| -> f64 {
        a.iter()
            .zip(m)
            .filter(|(x, _)| **x > 0.0)
            .map(|(x, y)| x * (x / y).log2())
            .sum()
    };
    let m: Vec<f64> = p.iter().zip(q).map(|(a, b)| (a + b) / 2.0).collect();
    ((kl(p, &m) + kl(q, &m)) / 2.0).max(0.0).sqrt()
}

/// Largest gap between the cumulative sums of two distributions.
pub fn ks_binned(p: &[f64], q: &[f64]) -> f64 {
    let (mut cp, mut cq, mut d) = (0.0f64, 0.0f64, 0.0f64);
    for (a, b) in p.iter().zip(q) {
        cp += a;
        cq += b;
        d = d.max((cp - cq).abs());
    }
    d
}

/// The exact two-sample Kolmogorov–Smirnov statistic (as
/// `scipy.stats.ks_2samp(a, b).statistic`); NaNs are ignored.
pub fn ks_statistic(a: &[f64], b: &[f64]) -> f64 {
    let sorted = |v: &[f64]| {
        let mut v: Vec<f64> = v.iter().copied().filter(|x| !x.is_nan()).collect();
        v.sort_by(f64::total_cmp);
        v
    };
    let (a, b) = (sorted(a), sorted(b));
    if a.is_empty() || b.is_empty() {
        return 0.0;
    }
    let (mut i, mut j, mut d) = (0, 0, 0.0f64);
    while i < a.len() && j < b.len() {
        let x = a[i].min(b[j]);
        while i < a.len() && a[i] <= x {
            i += 1;
        }
        while j < b.len() && b[j] <= x {
            j += 1;
        }
        d = d.max((i as f64 / a.len() as f64 - j as f64 / b.len() as f64).abs());
    }
    d
}

fn status(psi: f64, t: &Thresholds) -> DriftStatus {
    if psi >= t.fail {
        DriftStatus::Fail
    } else if psi >= t.warn {
        DriftStatus::Warn
    } else {
        DriftStatus::Pass
    }
}

fn proportions(counts: &[u64]) -> Vec<f64> {
    let total: u64 = counts.iter().sum();
    counts
        .iter()
        .map(|c| {
            if total == 0 {
                0.0
            } else {
                *c as f64 / total as f64
            }
        })
        .collect()
}

fn compare(train: &ColumnProfile, live: &ColumnProfile, t: Thresholds) -> Option<FeatureDrift> {
    let (kind, bins, expected, actual) = match (
        &train.numeric,
        &live.numeric,
        &train.categorical,
        &live.categorical,
    ) {
        (Some(a), Some(b), _, _) if a.histogram.edges == b.histogram.edges => {
            let e = &a.histogram.edges;
            let bins = (0..a.histogram.counts.len())
                .map(|i| format!("[{:.4}, {:.4})", e[i], e[i + 1]))
                .collect();
            (
                "numeric",
                bins,
                a.histogram.proportions(),
                b.histogram.proportions(),
            )
        }
        (_, _, Some(a), Some(b)) => {
            let mut bins: Vec<String> = a.top.iter().map(|(v, _)| v.clone()).collect();
            let mut e: Vec<u64> = a.top.iter().map(|(_, c)| *c).collect();
            e.push(a.other);
            let mut l: Vec<u64> = bins
                .iter()
                .map(|v| {
                    b.top
                        .iter()
                        .find(|(w, _)| w == v)
                        .map(|(_, c)| *c)
                        .unwrap_or(0)
                })
                .collect();
            let live_total: u64 = b.top.iter().map(|(_, c)| c).sum::<u64>() + b.other;
            l.push(live_total - l.iter().sum::<u64>());
            bins.push("(other)".into());
            ("categorical", bins, proportions(&e), proportions(&l))
        }
        _ => return None,
    };
    let p = psi(&expected, &actual);
    let numeric = kind == "numeric";
    let linf = expected
        .iter()
        .zip(&actual)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0, f64::max);
    Some(FeatureDrift {
        name: train.name.clone(),
        kind: kind.into(),
        psi: p,
        js_distance: js_distance(&expected, &actual),
        ks: numeric.then(|| ks_binned(&expected, &actual)),
        linf: (!numeric).then_some(linf),
        null_fraction: [train.null_fraction(), live.null_fraction()],
        bins,
        expected,
        actual,
        thresholds: t,
        status: status(p, &t),
    })
}

/// Compare `live` (profiled with `training` as baseline) with `training`.
/// `thresholds` gives per-feature PSI thresholds, `default` the rest.
pub fn drift(
    training: &Profile,
    live: &Profile,
    default: Thresholds,
    thresholds: &dyn Fn(&str) -> Option<Thresholds>,
) -> DriftReport {
    let mut features = Vec::new();
    let mut missing = Vec::new();
    for t in &training.columns {
        match live.columns.iter().find(|c| c.name == t.name) {
            None => missing.push(t.name.clone()),
            Some(l) => features.extend(compare(t, l, thresholds(&t.name).unwrap_or(default))),
        }
    }
    let mut status = features
        .iter()
        .map(|f| f.status)
        .max()
        .unwrap_or(DriftStatus::Pass);
    if !missing.is_empty() {
        status = DriftStatus::Fail;
    }
    DriftReport {
        rows: [training.rows, live.rows],
        features,
        missing,
        status,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Oracle values computed with scipy 1.17 / numpy 2.4 (commands in comments).
    #[test]
    fn js_distance_matches_scipy() {
        // jensenshannon([0.1,0.4,0.5], [0.8,0.15,0.05], base=2)
        let d = js_distance(&[0.1, 0.4, 0.5], &[0.8, 0.15, 0.05]);
        assert!((d - 0.648_228_794_775_712_8).abs() < 1e-12, "{d}");
        assert_eq!(js_distance(&[0.1, 0.4, 0.5], &[0.1, 0.4, 0.5]), 0.0);
        assert!((js_distance(&[1.0, 0.0], &[0.0, 1.0]) - 1.0).abs() < 1e-12);
    }

    #[test]
    fn psi_matches_the_numpy_formula() {
        // e, a floored at 1e-4; np.sum((a-e)*np.log(a/e))
        let p = psi(&[0.25, 0.25, 0.5, 0.0], &[0.1, 0.3, 0.4, 0.2]);
        assert!((p - 1.688_294_444_414_704_3).abs() < 1e-12, "{p}");
        assert_eq!(psi(&[0.5, 0.5], &[0.5, 0.5]), 0.0);
    }

    #[test]
    fn ks_matches_scipy_ks_2samp() {
        let a = [
            0.0, 0.3, -0.27, -0.89, -0.45, -0.99, 0.06, 1.34, -0.49, -0.62, 0.49, 0.36, 0.11,
            -0.93, -0.03, 0.7, -1.34, -0.46, -1.9, -1.29, -1.84, -0.24, -1.27, 0.27, 0.16, -0.19,
            -2.52, -0.54, -0.05, 0.11, -1.53, -0.48, -0.98, -0.81, 1.06, -0.81, -0.03, 0.88, -0.58,
            -0.11,
        ];
        let b = [
            0.63, 0.58, -0.97, 0.59, 2.13, -1.36, 1.53, 0.64, -0.27, 2.9, 1.41, -0.94, 0.59, 1.19,
            0.27, 1.32, 0.42, 1.3, 2.23, -0.31, 0.74, -0.06, 0.65, -0.92, -0.2, 0.26, 1.58, 1.87,
            -1.09, -0.45,
        ];
        // rng = np.random.default_rng(7); rounded normals; ks_2samp(a, b).statistic
        assert!((ks_statistic(&a, &b) - 0.475).abs() < 1e-12);
        // Ties: ks_2samp([1,1,2,3],[1,2,2,4,5]).statistic == 0.4
        assert!(
            (ks_statistic(&[1.0, 1.0, 2.0, 3.0], &[1.0, 2.0, 2.0, 4.0, 5.0]) - 0.4).abs() < 1e-12
        );
        assert!((ks_binned(&[0.5, 0.5, 0.0], &[0.0, 0.5, 0.5]) - 0.5).abs() < 1e-12);
    }

    #[test]
    fn status_follows_thresholds() {
        let t = Thresholds::default();
        let cases = [
            (0.0, DriftStatus::Pass),
            (0.099, DriftStatus::Pass),
            (0.1, DriftStatus::Warn),
            (0.25, DriftStatus::Fail),
        ];
        for (p, s) in cases {
            assert_eq!(status(p, &t), s, "{p}");
        }
    }
}
