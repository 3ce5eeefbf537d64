//! Column profiles: count, nulls, min, max, mean, std, quantiles, a
//! histogram whose bin edges can be frozen (taken from a training profile),
//! and top categories with frequencies.
//!
//! A file is profiled in two streaming passes (moments and categories, then
//! histograms), so memory stays bounded by one batch plus the category
//! counts. Numeric profiles merge exactly (counts, Chan's parallel moments,
//! histograms over the same edges); quantiles are read off a 1,024-bin
//! histogram between min and max, so they are within (max − min) / 1024 of
//! the exact value.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use arrow::array::{Array, ArrayRef, AsArray, RecordBatch};
use arrow::datatypes::{DataType, Float64Type};
use serde::{Deserialize, Serialize};

use kiln_io::{self as io, ReadOptions};
use kiln_runtime::{Error, Result};

/// Bins of a histogram when no frozen edges are given.
pub const DEFAULT_BINS: usize = 20;
/// Categories kept (most frequent first) in a categorical profile.
pub const TOP_CATEGORIES: usize = 50;
/// Distinct values counted exactly before the rest go to `other`.
const MAX_DISTINCT: usize = 100_000;
/// Bins of the fine histogram that quantiles are read from.
const FINE_BINS: usize = 1024;
/// The quantiles reported.
pub const QUANTILES: [f64; 7] = [0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99];

/// The profile of a table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Profile {
    /// Rows.
    pub rows: u64,
    /// One profile per column, in schema order.
    pub columns: Vec<ColumnProfile>,
}

/// The profile of one column.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ColumnProfile {
    /// Column name.
    pub name: String,
    /// Arrow type.
    pub data_type: String,
    /// Non-null values.
    pub count: u64,
    /// Null values.
    pub nulls: u64,
    /// Numeric statistics, for numeric columns.
    pub numeric: Option<NumericProfile>,
    /// Category frequencies, for string, boolean and dictionary columns.
    pub categorical: Option<CategoricalProfile>,
}

impl ColumnProfile {
    /// Nulls as a fraction of rows (0 for an empty column).
    pub fn null_fraction(&self) -> f64 {
        let n = self.count + self.nulls;
        if n == 0 {
            0.0
        } else {
            self.nulls as f64 / n as f64
        }
    }
}

/// Statistics of a numeric column (NaNs are counted apart and excluded).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NumericProfile {
    /// Smallest value.
    pub min: f64,
    /// Largest value.
    pub max: f64,
    /// Mean.
    pub mean: f64,
    /// Population standard deviation.
    pub std: f64,
    /// Sum of squared deviations from the mean (for merging).
    pub m2: f64,
    /// NaN values.
    pub nans: u64,
    /// `[q, value]` for each of [`QUANTILES`].
    pub quantiles: Vec<[f64; 2]>,
    /// The histogram.
    pub histogram: Histogram,
}

/// Counts between bin edges. Bin `i` holds `edges[i] <= x < edges[i+1]`;
/// the first bin also takes everything below and the last everything from
/// its lower edge up, so data outside frozen training edges is still counted.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Histogram {
    /// `bins + 1` increasing edges.
    pub edges: Vec<f64>,
    /// `bins` counts.
    pub counts: Vec<u64>,
}

impl Histogram {
    /// Equal-width edges over `[min, max]` (one bin if they are equal).
    pub fn equal_width(min: f64, max: f64, bins: usize) -> Histogram {
        let bins = if max > min { bins.max(1) } else { 1 };
        let width = if max > min {
            (max - min) / bins as f64
        } else {
            1.0
        };
        let mut edges: Vec<f64> = (0..=bins).map(|i| min + width * i as f64).collect();
        edges[bins] = if max > min { max } else { min + 1.0 };
        Histogram {
            counts: vec![0; bins],
            edges,
        }
    }

    /// Empty counts over the same edges.
    pub fn frozen(&self) -> Histogram {
        Histogram {
            edges: self.edges.clone(),
            counts: vec![0; self.counts.len()],
        }
    }

    /// The bin of `x`.
    pub fn bin(&self, x: f64) -> usize {
        let n = self.counts.len();
        // First edge greater than x, minus one: the bin whose lower edge is <= x.
        let i = self.edges[1..n].partition_point(|e| *e <= x);
        i.min(n - 1)
    }

    fn add(&mut self, x: f64) {
        let b = self.bin(x);
        self.counts[b] += 1;
    }

    /// Counts as fractions of their total.
    pub fn proportions(&self) -> Vec<f64> {
        let total: u64 = self.counts.iter().sum();
        self.counts
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
}

/// Category frequencies of a column.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CategoricalProfile {
    /// Distinct values seen (exact up to 100,000).
    pub distinct: u64,
    /// The most frequent values, `[value, count]`, most frequent first (ties by value).
    pub top: Vec<(String, u64)>,
    /// Non-null values not in `top`.
    pub other: u64,
}

enum Kind {
    Numeric,
    Categorical,
    Other,
}

fn kind(t: &DataType) -> Kind {
    use DataType as T;
    match t {
        T::Int8 | T::Int16 | T::Int32 | T::Int64 | T::UInt8 | T::UInt16 | T::UInt32 | T::UInt64 => {
            Kind::Numeric
        }
        T::Float16 | T::Float32 | T::Float64 | T::Decimal128(..) | T::Decimal256(..) => {
            Kind::Numeric
        }
        // Dates and times count as numbers (days, or units since the epoch).
        T::Date32 | T::Date64 | T::Timestamp(..) | T::Time32(_) | T::Time64(_) | T::Duration(_) => {
            Kind::Numeric
        }
        T::Utf8 | T::LargeUtf8 | T::Utf8View | T::Boolean => Kind::Categorical,
        T::Dictionary(_, v) if matches!(kind(v), Kind::Categorical) => Kind::Categorical,
        _ => Kind::Other,
    }
}

fn as_f64(a: &ArrayRef) -> Result<ArrayRef> {
    let err = |e: arrow::error::ArrowError| Error::Internal(format!("profile: {e}"));
    if a.data_type().is_temporal() {
        let ints = arrow::compute::cast(a, &DataType::Int64).map_err(err)?;
        return arrow::compute::cast(&ints, &DataType::Float64).map_err(err);
    }
    arrow::compute::cast(a, &DataType::Float64).map_err(err)
}

fn as_utf8(a: &ArrayRef) -> Result<ArrayRef> {
    arrow::compute::cast(a, &DataType::Utf8).map_err(|e| Error::Internal(format!("profile: {e}")))
}

/// Accumulates a profile batch by batch (pass one: moments and categories).
#[derive(Debug)]
struct Pass1 {
    count: u64,
    nulls: u64,
    nans: u64,
    min: f64,
    max: f64,
    mean: f64,
    m2: f64,
    cats: HashMap<String, u64>,
    overflow: u64,
}

impl Pass1 {
    fn new() -> Pass1 {
        Pass1 {
            count: 0,
            nulls: 0,
            nans: 0,
            min: f64::INFINITY,
            max: f64::NEG_INFINITY,
            mean: 0.0,
            m2: 0.0,
            cats: HashMap::new(),
            overflow: 0,
        }
    }

    fn update(&mut self, col: &ArrayRef) -> Result<()> {
        self.nulls += col.null_count() as u64;
        match kind(col.data_type()) {
            Kind::Numeric => {
                let f = as_f64(col)?;
                for x in f.as_primitive::<Float64Type>().iter().flatten() {
                    if x.is_nan() {
                        self.nans += 1;
                        continue;
                    }
                    self.count += 1;
                    // Welford's update.
                    let d = x - self.mean;
                    self.mean += d / self.count as f64;
                    self.m2 += d * (x - self.mean);
                    self.min = self.min.min(x);
                    self.max = self.max.max(x);
                }
            }
            Kind::Categorical => {
                let s = as_utf8(col)?;
                for v in s.as_string::<i32>().iter().flatten() {
                    self.count += 1;
                    if let Some(c) = self.cats.get_mut(v) {
                        *c += 1;
                    } else if self.cats.len() < MAX_DISTINCT {
                        self.cats.insert(v.to_string(), 1);
                    } else {
                        self.overflow += 1;
                    }
                }
            }
            Kind::Other => self.count += (col.len() - col.null_count()) as u64,
        }
        Ok(())
    }
}

/// Profile a data file (two streaming passes). With `baseline`, numeric
/// histograms use the baseline's bin edges for columns of the same name,
/// so the two profiles can be compared bin by bin.
///
/// # Errors
/// As [`io::open`], and any error while reading.
pub fn profile_file(path: &Path, baseline: Option<&Profile>) -> Result<Profile> {
    profile_files(&[path.to_path_buf()], baseline)
}

/// Profile several files read in order as one table (see [`profile_file`]).
///
/// # Errors
/// As [`io::open_many`], and any error while reading.
pub fn profile_files(paths: &[PathBuf], baseline: Option<&Profile>) -> Result<Profile> {
    let opts = ReadOptions::default();
    let reader = io::open_many(paths, &opts)?;
    let schema = reader.schema();
    let mut pass1: Vec<Pass1> = schema.fields().iter().map(|_| Pass1::new()).collect();
    let mut rows = 0u64;
    for batch in reader {
        let batch = batch?;
        rows += batch.num_rows() as u64;
        for (p, col) in pass1.iter_mut().zip(batch.columns()) {
            p.update(col)?;
        }
    }
    // Pass two: histograms over edges now known.
    let mut hists: Vec<Option<(Histogram, Histogram)>> = schema
        .fields()
        .iter()
        .zip(&pass1)
        .map(|(f, p)| {
            if !matches!(kind(f.data_type()), Kind::Numeric) || p.count == 0 {
                return None;
            }
            let frozen = baseline
                .and_then(|b| b.columns.iter().find(|c| c.name == *f.name()))
                .and_then(|c| c.numeric.as_ref())
                .map(|n| n.histogram.frozen());
            Some((
                frozen.unwrap_or_else(|| Histogram::equal_width(p.min, p.max, DEFAULT_BINS)),
                Histogram::equal_width(p.min, p.max, FINE_BINS),
            ))
        })
        .collect();
    if hists.iter().any(Option::is_some) {
        for batch in io::open_many(paths, &opts)? {
            let batch: RecordBatch = batch?;
            for (h, col) in hists.iter_mut().zip(batch.columns()) {
                if let Some((coarse, fine)) = h {
                    let f = as_f64(col)?;
                    for x in f.as_primitive::<Float64Type>().iter().flatten() {
                        if !x.is_nan() {
                            coarse.add(x);
                            fine.add(x);
                        }
                    }
                }
            }
        }
    }
    let columns = schema
        .fields()
        .iter()
        .zip(pass1)
        .zip(hists)
        .map(|((f, p), h)| {
            let numeric = h.map(|(coarse, fine)| NumericProfile {
                min: p.min,
                max: p.max,
                mean: p.mean,
                std: (p.m2 / p.count as f64).sqrt(),
                m2: p.m2,
                nans: p.nans,
                quantiles: QUANTILES
                    .iter()
                    .map(|q| [*q, quantile(&fine, p.count, *q)])
                    .collect(),
                histogram: coarse,
            });
            let categorical = matches!(kind(f.data_type()), Kind::Categorical).then(|| {
                let distinct = p.cats.len() as u64;
                let mut all: Vec<(String, u64)> = p.cats.into_iter().collect();
                all.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
                let other = all.iter().skip(TOP_CATEGORIES).map(|c| c.1).sum::<u64>() + p.overflow;
                all.truncate(TOP_CATEGORIES);
                CategoricalProfile {
                    distinct,
                    top: all,
                    other,
                }
            });
            ColumnProfile {
                name: f.name().clone(),
                data_type: f.data_type().to_string(),
                count: p.count,
                nulls: p.nulls,
                numeric,
                categorical,
            }
        })
        .collect();
    Ok(Profile { rows, columns })
}

/// The `q` quantile read off a histogram of `n` values (linear within a bin).
fn quantile(h: &Histogram, n: u64, q: f64) -> f64 {
    let target = q * n as f64;
    let mut seen = 0.0;
    for (i, c) in h.counts.iter().enumerate() {
        let c = *c as f64;
        if c > 0.0 && seen + c >= target {
            let within = ((target - seen) / c).clamp(0.0, 1.0);
            return h.edges[i] + within * (h.edges[i + 1] - h.edges[i]);
        }
        seen += c;
    }
    *h.edges.last().expect("a histogram has edges")
}

impl NumericProfile {
    /// Merge with the profile of other rows of the same column (same
    /// histogram edges), exactly for counts, moments and histogram
    /// (quantiles are read off the merged histogram).
    ///
    /// # Errors
    /// [`Error::Internal`] if the histogram edges differ.
    pub fn merge(
        &self,
        n_self: u64,
        other: &NumericProfile,
        n_other: u64,
    ) -> Result<NumericProfile> {
        if self.histogram.edges != other.histogram.edges {
            return Err(Error::Internal(
                "profiles with different histogram edges cannot merge".into(),
            ));
        }
        let n = (n_self + n_other) as f64;
        let d = other.mean - self.mean;
        let mean = self.mean + d * n_other as f64 / n;
        let m2 = self.m2 + other.m2 + d * d * n_self as f64 * n_other as f64 / n;
        let mut histogram = self.histogram.clone();
        for (a, b) in histogram.counts.iter_mut().zip(&other.histogram.counts) {
            *a += b;
        }
        let total = n_self + n_other;
        Ok(NumericProfile {
            min: self.min.min(other.min),
            max: self.max.max(other.max),
            mean,
            std: (m2 / n).sqrt(),
            m2,
            nans: self.nans + other.nans,
            quantiles: QUANTILES
                .iter()
                .map(|q| [*q, quantile(&histogram, total, *q)])
                .collect(),
            histogram,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write_csv(dir: &Path, name: &str, text: &str) -> std::path::PathBuf {
        let p = dir.join(name);
        std::fs::write(&p, text).unwrap();
        p
    }

    #[test]
    fn numeric_and_categorical_profiles_match_hand_values() {
        let dir = tempfile::tempdir().unwrap();
        let p = write_csv(dir.path(), "t.csv", "x,c\n1,a\n2,b\n3,a\n4,\n,a\n");
        let prof = profile_file(&p, None).unwrap();
        assert_eq!(prof.rows, 5);
        let x = &prof.columns[0];
        assert_eq!((x.count, x.nulls), (4, 1));
        let n = x.numeric.as_ref().unwrap();
        assert_eq!((n.min, n.max, n.mean), (1.0, 4.0, 2.5));
        // Population std of 1..4 = sqrt(1.25) (numpy.std([1,2,3,4])).
        assert!((n.std - 1.25f64.sqrt()).abs() < 1e-12);
        assert_eq!(n.histogram.counts.iter().sum::<u64>(), 4);
        assert_eq!(n.histogram.edges.len(), DEFAULT_BINS + 1);
        let median = n.quantiles.iter().find(|q| q[0] == 0.5).unwrap()[1];
        assert!((median - 2.0).abs() <= 3.0 / 1024.0 + 1e-9, "{median}");
        let c = &prof.columns[1];
        assert_eq!((c.count, c.nulls), (4, 1));
        let cat = c.categorical.as_ref().unwrap();
        assert_eq!(cat.top, vec![("a".to_string(), 3), ("b".to_string(), 1)]);
        assert_eq!(cat.distinct, 2);
    }

    #[test]
    fn frozen_edges_put_outliers_in_the_end_bins() {
        let h = Histogram::equal_width(0.0, 10.0, 5);
        assert_eq!(h.edges, vec![0.0, 2.0, 4.0, 6.0, 8.0, 10.0]);
        let cases = [
            (-5.0, 0),
            (0.0, 0),
            (1.99, 0),
            (2.0, 1),
            (9.99, 4),
            (10.0, 4),
            (1e9, 4),
        ];
        for (x, bin) in cases {
            assert_eq!(h.bin(x), bin, "{x}");
        }
    }

    #[test]
    fn merged_moments_equal_the_whole() {
        let dir = tempfile::tempdir().unwrap();
        let all =
            profile_file(&write_csv(dir.path(), "a.csv", "x\n1\n5\n2\n8\n3\n"), None).unwrap();
        let base = all.columns[0].numeric.clone().unwrap();
        let frozen = Profile {
            rows: 0,
            columns: vec![all.columns[0].clone()],
        };
        let p1 = profile_file(&write_csv(dir.path(), "b.csv", "x\n1\n5\n"), Some(&frozen)).unwrap();
        let p2 = profile_file(
            &write_csv(dir.path(), "c.csv", "x\n2\n8\n3\n"),
            Some(&frozen),
        )
        .unwrap();
        let m = p1.columns[0]
            .numeric
            .as_ref()
            .unwrap()
            .merge(2, p2.columns[0].numeric.as_ref().unwrap(), 3)
            .unwrap();
        assert!((m.mean - base.mean).abs() < 1e-12 && (m.std - base.std).abs() < 1e-12);
        assert_eq!(m.histogram, base.histogram);
        assert_eq!((m.min, m.max), (1.0, 8.0));
    }
}
