//! # kiln-quality: contracts, profiles, drift and parity
//!
//! What keeps training and serving honest, over Arrow data and files.
//!
//! The map of the crate:
//! - [`Contract`] / [`check_file`] → [`CheckReport`]: expected schema,
//!   null-count limits, value ranges and allowed categories, with the
//!   column, rule, observed value and example rows of every violation.
//! - [`Profile`] / [`profile_file`] / [`profile_files`]: mergeable column
//!   profiles (count, nulls, min/max, mean/std, quantiles, histograms with
//!   edges frozen at training time, top categories).
//! - [`drift`] → [`DriftReport`]: PSI, Jensen–Shannon, Kolmogorov–Smirnov
//!   and L∞ per feature against [`Thresholds`]; [`drift_html`]: the
//!   self-contained HTML report, and its pieces ([`drift_table_html`],
//!   [`drift_sections_html`], [`drift_status_html`]) for other pages.
//! - [`parity`]: serving logs of sampled calls ([`parity::ParityLogger`])
//!   and the bit-for-bit comparison that replays them.
//!
//! Errors are [`kiln_runtime::Error`], naming the file, column or row.

#![deny(missing_docs)]

mod contract;
mod drift;
pub mod parity;
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
pub use report::{drift_html, drift_sections_html, drift_status_html, drift_table_html};
