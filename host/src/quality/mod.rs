//! Data quality: contracts checked on files, column profiles with frozen
//! histogram edges, drift between a training profile and live data, and a
//! self-contained HTML drift report.

mod contract;
mod drift;
mod profile;
mod report;

pub use contract::{check_file, CheckReport, ColumnRules, Contract, Example, Severity, Violation};
pub use drift::{
    drift, js_distance, ks_binned, ks_statistic, psi, DriftReport, DriftStatus, FeatureDrift,
    Thresholds, PSI_EPSILON,
};
pub use profile::{
    profile_file, profile_files, CategoricalProfile, ColumnProfile, Histogram, NumericProfile,
    Profile, DEFAULT_BINS, QUANTILES, TOP_CATEGORIES,
};
pub use report::drift_html;
