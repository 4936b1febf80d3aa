//! The Numenta Anomaly Benchmark (NAB): real series with labelled anomaly windows, and
//! its scoring. A user clones NAB (github.com/numenta/NAB) and points the report at the
//! checkout; nothing of it is kept here.
//!
//! Scoring, as NAB publishes it: the first 15% of each file (at most 750 points) is a
//! probation period and not scored. A detection inside a labelled window earns the
//! window a reward on a scaled sigmoid of its place in the window — nearly the full
//! weight at the window's start, nothing at its end — and only a window's earliest
//! detection counts; a window without one costs the false-negative weight. A detection
//! outside every window costs the false-positive weight, less if it comes soon after a
//! window ends. A set of files scores `100 · (S − S_null) / (S_perfect − S_null)`, where
//! the null detector never detects and the perfect one detects each window at its start.

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
};

use anyhow::{anyhow, bail, Context, Result};
use chrono::NaiveDateTime;
use hub_detection::{observe, DetectorConfig, DetectorState, Point};
use serde::{Deserialize, Serialize};

/// A cost matrix: what a detected window earns and what a miss and a false alarm cost.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Profile {
    pub true_positive: f64,
    pub false_positive: f64,
    pub false_negative: f64,
}

/// NAB's standard profile.
pub const STANDARD: Profile = Profile {
    true_positive: 1.0,
    false_positive: 0.11,
    false_negative: 1.0,
};

/// Share of each file, and the most points, that are not scored.
const PROBATION_SHARE: f64 = 0.15;
const PROBATION_MAX: usize = 750;

/// A labelled window by its first and last point.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Window {
    pub first: usize,
    pub last: usize,
}

impl Window {
    fn width(&self) -> usize {
        self.last - self.first + 1
    }

    fn holds(&self, i: usize) -> bool {
        (self.first..=self.last).contains(&i)
    }
}

/// One data file with its windows.
#[derive(Clone, Debug)]
pub struct Series {
    /// `category/file.csv`, as NAB's labels name it.
    pub name: String,
    pub timestamps: Vec<NaiveDateTime>,
    pub values: Vec<f64>,
    pub windows: Vec<Window>,
}

impl Series {
    pub fn category(&self) -> &str {
        self.name.split('/').next().unwrap_or_default()
    }
}

/// A file's score and its counts: NAB's point counts (`tp`: detected points in windows)
/// and window-level ones.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct FileScore {
    pub score: f64,
    pub tp: usize,
    pub fp: usize,
    pub fn_: usize,
    pub tn: usize,
    pub windows: usize,
    pub windows_detected: usize,
    /// Detections after the probation period.
    pub detections: usize,
    pub detections_in_windows: usize,
}

fn scaled_sigmoid(position: f64) -> f64 {
    if position > 3.0 {
        -1.0
    } else {
        2.0 / (1.0 + (5.0 * position).exp()) - 1.0
    }
}

/// Points before this index are not scored.
pub fn probation(points: usize) -> usize {
    ((PROBATION_SHARE * points as f64).floor() as usize).min(PROBATION_MAX)
}

/// Scores one file's detections (`detected[i]`: the detector fired at point i).
pub fn score(detected: &[bool], windows: &[Window], profile: &Profile) -> FileScore {
    let start = probation(detected.len());
    let full_reward = scaled_sigmoid(-1.0);
    // Each window with scored points starts as a miss; its earliest detection replaces it.
    let mut parts: BTreeMap<usize, f64> = windows
        .iter()
        .enumerate()
        .filter(|(_, w)| w.last >= start)
        .map(|(k, _)| (k, -profile.false_negative))
        .collect();
    let mut false_alarms = 0.0;
    let mut out = FileScore {
        windows: windows.len(),
        ..FileScore::default()
    };
    for (i, &fired) in detected.iter().enumerate().skip(start) {
        let inside = windows.iter().position(|w| w.holds(i));
        match (inside, fired) {
            (Some(k), true) => {
                let w = windows[k];
                let position = -((w.last - i + 1) as f64) / w.width() as f64;
                let reward = scaled_sigmoid(position) * profile.true_positive / full_reward;
                let part = parts.get_mut(&k).expect("a window with scored points");
                *part = part.max(reward);
                out.tp += 1;
                out.detections += 1;
                out.detections_in_windows += 1;
            }
            (Some(_), false) => out.fn_ += 1,
            (None, true) => {
                let before = windows.iter().rev().find(|w| w.last < i);
                let relative = match before {
                    Some(w) if w.width() > 1 => {
                        scaled_sigmoid((i - w.last) as f64 / (w.width() - 1) as f64)
                    }
                    _ => -1.0,
                };
                false_alarms += relative * profile.false_positive;
                out.fp += 1;
                out.detections += 1;
            }
            (None, false) => out.tn += 1,
        }
    }
    out.windows_detected = parts
        .values()
        .filter(|&&p| p > -profile.false_negative)
        .count();
    out.score = parts.values().sum::<f64>() + false_alarms;
    out
}

/// A set of files' scores summed, and the set's normalized score.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct SetScore {
    pub files: usize,
    pub raw: FileScore,
    /// What the detector that never fires scores on these files.
    pub null: f64,
    /// What the detector that fires at each window's start scores.
    pub perfect: f64,
    pub normalized: f64,
}

impl SetScore {
    pub fn add(&mut self, file: &FileScore, null: &FileScore, profile: &Profile) {
        self.files += 1;
        let raw = &mut self.raw;
        raw.score += file.score;
        raw.tp += file.tp;
        raw.fp += file.fp;
        raw.fn_ += file.fn_;
        raw.tn += file.tn;
        raw.windows += file.windows;
        raw.windows_detected += file.windows_detected;
        raw.detections += file.detections;
        raw.detections_in_windows += file.detections_in_windows;
        self.null += null.score;
        self.perfect += file.windows as f64 * profile.true_positive;
        let span = self.perfect - self.null;
        self.normalized = if span > 0.0 {
            100.0 * (self.raw.score - self.null) / span
        } else {
            0.0
        };
    }

    pub fn recall(&self) -> f64 {
        ratio(self.raw.windows_detected, self.raw.windows)
    }

    pub fn precision(&self) -> f64 {
        ratio(self.raw.detections_in_windows, self.raw.detections)
    }
}

fn ratio(a: usize, b: usize) -> f64 {
    if b == 0 {
        0.0
    } else {
        a as f64 / b as f64
    }
}

fn timestamp(text: &str) -> Result<NaiveDateTime> {
    let text = text.trim();
    NaiveDateTime::parse_from_str(text, "%Y-%m-%d %H:%M:%S%.f")
        .or_else(|_| NaiveDateTime::parse_from_str(text, "%Y-%m-%d %H:%M:%S"))
        .with_context(|| format!("timestamp {text:?}"))
}

#[derive(Deserialize)]
struct DataRow {
    timestamp: String,
    value: f64,
}

/// A NAB checkout: its data files and labelled windows.
pub struct Corpus {
    pub root: PathBuf,
    pub series: Vec<Series>,
}

impl Corpus {
    /// Reads every data file the labels name, in the categories given (all if empty).
    pub fn read(root: &Path, categories: &[String]) -> Result<Self> {
        let labels_path = root.join("labels/combined_windows.json");
        let labels: BTreeMap<String, Vec<(String, String)>> = serde_json::from_str(
            &std::fs::read_to_string(&labels_path)
                .with_context(|| format!("{} (is this a NAB checkout?)", labels_path.display()))?,
        )
        .with_context(|| labels_path.display().to_string())?;
        let mut series = Vec::new();
        for (name, windows) in labels {
            let category = name.split('/').next().unwrap_or_default();
            if !categories.is_empty() && !categories.iter().any(|c| c == category) {
                continue;
            }
            let path = root.join("data").join(&name);
            let mut reader =
                csv::Reader::from_path(&path).with_context(|| path.display().to_string())?;
            let (mut timestamps, mut values) = (Vec::new(), Vec::new());
            for row in reader.deserialize::<DataRow>() {
                let row = row.with_context(|| path.display().to_string())?;
                timestamps.push(timestamp(&row.timestamp)?);
                values.push(row.value);
            }
            let windows = windows
                .iter()
                .map(|(first, last)| {
                    let index = |t: &str| -> Result<usize> {
                        let t = timestamp(t)?;
                        timestamps
                            .iter()
                            .position(|&x| x == t)
                            .ok_or_else(|| anyhow!("{name}: window bound {t} is no point"))
                    };
                    Ok(Window {
                        first: index(first)?,
                        last: index(last)?,
                    })
                })
                .collect::<Result<Vec<_>>>()?;
            series.push(Series {
                name,
                timestamps,
                values,
                windows,
            });
        }
        if series.is_empty() {
            bail!("no NAB data files in {} for {categories:?}", root.display());
        }
        Ok(Self {
            root: root.to_owned(),
            series,
        })
    }

    /// A published detector's detections from its result files in the checkout: its
    /// anomaly scores at or above its standard-profile threshold.
    pub fn reference_detections(&self, detector: &str) -> Result<(f64, Vec<Vec<bool>>)> {
        let thresholds: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(
            self.root.join("config/thresholds.json"),
        )?)?;
        let threshold = thresholds[detector]["standard"]["threshold"]
            .as_f64()
            .ok_or_else(|| anyhow!("no standard threshold for {detector}"))?;
        let mut all = Vec::new();
        for series in &self.series {
            let (category, file) = series.name.split_once('/').unwrap_or_default();
            let path = self
                .root
                .join("results")
                .join(detector)
                .join(category)
                .join(format!("{detector}_{file}"));
            let mut reader =
                csv::Reader::from_path(&path).with_context(|| path.display().to_string())?;
            let column = reader
                .headers()?
                .iter()
                .position(|h| h == "anomaly_score")
                .ok_or_else(|| anyhow!("{}: no anomaly_score column", path.display()))?;
            let mut detected = Vec::new();
            for record in reader.records() {
                let score: f64 = record?[column]
                    .parse()
                    .with_context(|| path.display().to_string())?;
                detected.push(score >= threshold);
            }
            if detected.len() != series.values.len() {
                bail!(
                    "{}: {} rows for {} points",
                    path.display(),
                    detected.len(),
                    series.values.len()
                );
            }
            all.push(detected);
        }
        Ok((threshold, all))
    }

    /// The per-file standard-profile scores NAB published for a detector.
    pub fn published_scores(&self, detector: &str) -> Result<BTreeMap<String, f64>> {
        let path = self
            .root
            .join("results")
            .join(detector)
            .join(format!("{detector}_standard_scores.csv"));
        let mut reader =
            csv::Reader::from_path(&path).with_context(|| path.display().to_string())?;
        let headers = reader.headers()?.clone();
        let col = |name: &str| {
            headers
                .iter()
                .position(|h| h == name)
                .ok_or_else(|| anyhow!("{}: no {name} column", path.display()))
        };
        let (file, score) = (col("File")?, col("Score")?);
        let mut scores = BTreeMap::new();
        for record in reader.records() {
            let record = record?;
            if !record[file].is_empty() {
                scores.insert(record[file].to_owned(), record[score].parse()?);
            }
        }
        Ok(scores)
    }
}

/// Where the deployed detector raises an alert on a series: its whole path (`observe`,
/// the adaptive model with its hysteresis; no threshold rules), one reading at a time as the
/// stream delivers them. A raise is a detection; the readings of an episode after it
/// belong to the same alert.
pub fn raises(config: &DetectorConfig, series: &Series) -> Vec<bool> {
    let mut state = DetectorState::default();
    series
        .timestamps
        .iter()
        .zip(&series.values)
        .enumerate()
        .map(|(i, (ts, &value))| {
            let was_active = state.anomaly.episode.active;
            let point = Point {
                ts: ts.and_utc(),
                value,
                position: format!("{i:012}"),
            };
            observe(config, "nab", "value", &[], &mut state, &[point]);
            !was_active && state.anomaly.episode.active
        })
        .collect()
}

/// Scores per category, for the tuning categories together, and over everything.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Report {
    pub by_category: BTreeMap<String, SetScore>,
    pub tuning: SetScore,
    pub overall: SetScore,
    pub files: BTreeMap<String, FileScore>,
}

/// The categories detection is tuned on; the others are kept for checking.
pub const TUNING: [&str; 2] = ["realKnownCause", "realAWSCloudwatch"];

pub fn report(corpus: &Corpus, detections: &[Vec<bool>], profile: &Profile) -> Report {
    let mut report = Report::default();
    for (series, detected) in corpus.series.iter().zip(detections) {
        let file = score(detected, &series.windows, profile);
        let null = score(&vec![false; detected.len()], &series.windows, profile);
        report
            .by_category
            .entry(series.category().to_owned())
            .or_default()
            .add(&file, &null, profile);
        if TUNING.contains(&series.category()) {
            report.tuning.add(&file, &null, profile);
        }
        report.overall.add(&file, &null, profile);
        report.files.insert(series.name.clone(), file);
    }
    report
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 1,000 points, the first 150 on probation, one window of ten at 500..=509.
    fn window() -> Vec<Window> {
        vec![Window {
            first: 500,
            last: 509,
        }]
    }

    fn firing_at(points: &[usize]) -> Vec<bool> {
        let mut detected = vec![false; 1000];
        for &i in points {
            detected[i] = true;
        }
        detected
    }

    #[test]
    fn a_window_caught_at_its_start_earns_the_full_reward_and_a_miss_costs_it() {
        let caught = score(&firing_at(&[500]), &window(), &STANDARD);
        assert!((caught.score - 1.0).abs() < 1e-12, "{caught:?}");
        assert_eq!(caught.windows_detected, 1);
        let missed = score(&firing_at(&[]), &window(), &STANDARD);
        assert_eq!(missed.score, -1.0);
        assert_eq!(missed.windows_detected, 0);
    }

    #[test]
    fn only_the_earliest_detection_of_a_window_counts_and_late_ones_earn_less() {
        let early = score(&firing_at(&[501, 508]), &window(), &STANDARD).score;
        let late = score(&firing_at(&[508]), &window(), &STANDARD).score;
        let only_early = score(&firing_at(&[501]), &window(), &STANDARD).score;
        assert_eq!(early, only_early);
        assert!(late < early && late > 0.0, "late {late}, early {early}");
    }

    #[test]
    fn false_alarms_cost_their_weight_less_just_after_a_window_and_none_on_probation() {
        let far = score(&firing_at(&[300]), &window(), &STANDARD).score;
        assert!((far - (-1.0 - 0.11)).abs() < 1e-12, "{far}");
        let soon_after = score(&firing_at(&[511]), &window(), &STANDARD).score;
        assert!(soon_after > far && soon_after < -1.0, "{soon_after}");
        let on_probation = score(&firing_at(&[100]), &window(), &STANDARD).score;
        assert_eq!(on_probation, -1.0);
    }

    #[test]
    fn a_set_normalizes_between_the_null_and_the_perfect_detector() {
        let mut set = SetScore::default();
        let null = score(&firing_at(&[]), &window(), &STANDARD);
        set.add(
            &score(&firing_at(&[500]), &window(), &STANDARD),
            &null,
            &STANDARD,
        );
        assert!((set.normalized - 100.0).abs() < 1e-9);
        let mut never = SetScore::default();
        never.add(&null, &null, &STANDARD);
        assert_eq!(never.normalized, 0.0);
    }
}
