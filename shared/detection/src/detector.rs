//! One device#metric series through the detector: z-score and every threshold rule that
//! watches it, each with its own hysteresis; the readings' window aggregates; and what to
//! tell the alert dispatcher. Pure: the caller loads the state, calls `observe`, and writes
//! the new state back (with the aggregates, atomically) under optimistic concurrency.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, Utc};
use hub_events::{AnomalyCleared, AnomalyDetected, DetectionKind, Severity, Window};
use serde::{Deserialize, Serialize};

use crate::{
    window_of, Aggregate, Episode, Hysteresis, SeriesState, ThresholdRule, Transition, ZScore,
};

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct DetectorConfig {
    pub zscore: ZScore,
    /// Severity of z-score detections (threshold rules carry their own).
    pub zscore_severity: Severity,
    /// Hysteresis of threshold rules.
    pub threshold_hysteresis: Hysteresis,
    /// Width of the aggregate windows and of the alert windows episodes begin in.
    pub window: Duration,
}

impl Default for DetectorConfig {
    fn default() -> Self {
        Self {
            zscore: ZScore::default(),
            zscore_severity: Severity::Warning,
            threshold_hysteresis: Hysteresis::default(),
            window: Duration::minutes(5),
        }
    }
}

/// An episode in progress and the window it began in.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct EpisodeState {
    pub episode: Episode,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub window: Option<Window>,
    /// Time of the first reading of the current run of anomalous readings: an episode
    /// belongs to the window its run began in, whichever reading raises it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_start: Option<DateTime<Utc>>,
}

/// Everything the detector keeps about one device#metric.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct DetectorState {
    pub zscore: SeriesState,
    #[serde(default)]
    pub zscore_episode: EpisodeState,
    /// Threshold episodes by rule id.
    #[serde(default)]
    pub rules: BTreeMap<String, EpisodeState>,
    /// Stream position of the last reading applied: a redelivered reading is not counted
    /// twice. A series comes from one device, so from one shard, in order.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub applied_through: Option<String>,
}

/// One reading of the series.
#[derive(Clone, Debug, PartialEq)]
pub struct Point {
    pub ts: DateTime<Utc>,
    pub value: f64,
    /// Kinesis sequence number of the record that carried it.
    pub position: String,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Detection {
    Detected(AnomalyDetected),
    Cleared(AnomalyCleared),
}

/// What one batch did to a series.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Outcome {
    /// Each with the stream position of the reading that caused it.
    pub detections: Vec<(String, Detection)>,
    /// Aggregates of the points applied, by window start; to be merged into the stored ones.
    pub windows: BTreeMap<DateTime<Utc>, Aggregate>,
    /// Points skipped because they were applied before.
    pub already_applied: usize,
}

/// Kinesis sequence numbers are decimal strings of varying length.
pub fn position_after(position: &str, than: &str) -> bool {
    (position.len(), position) > (than.len(), than)
}

pub fn observe(
    config: &DetectorConfig,
    device_id: &str,
    metric: &str,
    rules: &[&ThresholdRule],
    state: &mut DetectorState,
    points: &[Point],
) -> Outcome {
    let mut outcome = Outcome::default();
    for point in points {
        if let Some(through) = &state.applied_through {
            if !position_after(&point.position, through) {
                outcome.already_applied += 1;
                continue;
            }
        }
        state.applied_through = Some(point.position.clone());
        let window = window_of(point.ts, config.window);
        outcome
            .windows
            .entry(window.start)
            .or_default()
            .push(point.value);

        let verdict = config.zscore.observe(&mut state.zscore, point.value);
        let detected = |kind, score, rule: Option<&ThresholdRule>, severity, window: Window| {
            Detection::Detected(AnomalyDetected {
                device_id: device_id.to_owned(),
                // Registry context is the caller's to add.
                device_type: None,
                metric: metric.to_owned(),
                value: point.value,
                kind,
                score,
                rule_id: rule.map(|r| r.id.clone()),
                rule: rule.map(ThresholdRule::condition),
                severity,
                ts: point.ts,
                window,
            })
        };
        if let Some(d) = follow(
            &mut state.zscore_episode,
            verdict.transition,
            verdict.anomalous,
            point.ts,
            config.window,
        ) {
            let detection = match d {
                Step::Detected(w) => detected(
                    DetectionKind::ZScore,
                    verdict.score,
                    None,
                    config.zscore_severity,
                    w,
                ),
                Step::Cleared(w) => {
                    cleared(device_id, metric, DetectionKind::ZScore, None, point.ts, w)
                }
            };
            outcome.detections.push((point.position.clone(), detection));
        }

        for rule in rules {
            let fires = rule.fires(metric, point.value);
            let episode = state.rules.entry(rule.id.clone()).or_default();
            let transition = config
                .threshold_hysteresis
                .step(&mut episode.episode, fires);
            if let Some(d) = follow(episode, transition, fires, point.ts, config.window) {
                let detection = match d {
                    Step::Detected(w) => {
                        detected(DetectionKind::Threshold, None, Some(rule), rule.severity, w)
                    }
                    Step::Cleared(w) => cleared(
                        device_id,
                        metric,
                        DetectionKind::Threshold,
                        Some(rule.id.clone()),
                        point.ts,
                        w,
                    ),
                };
                outcome.detections.push((point.position.clone(), detection));
            }
        }
    }
    // Episodes of rules that no longer exist are forgotten once they are over.
    state
        .rules
        .retain(|id, e| e.episode.active || rules.iter().any(|r| &r.id == id));
    outcome
}

enum Step {
    Detected(Window),
    Cleared(Window),
}

/// Keeps the episode's window: set when it is raised (the window its anomalous run began
/// in), reported with every anomalous point while it lasts, handed to the clear.
fn follow(
    state: &mut EpisodeState,
    transition: Transition,
    anomalous: bool,
    ts: DateTime<Utc>,
    width: Duration,
) -> Option<Step> {
    if !anomalous {
        state.run_start = None;
    } else if state.run_start.is_none() {
        state.run_start = Some(ts);
    }
    match transition {
        Transition::Raised => {
            let window = window_of(state.run_start.unwrap_or(ts), width);
            state.window = Some(window.clone());
            Some(Step::Detected(window))
        }
        Transition::Cleared => state.window.take().map(Step::Cleared),
        // An episode is open while it holds its window: the z-score keeps its hysteresis
        // in its own series state, so `state.episode` is not the place to ask.
        Transition::Stay if anomalous && state.window.is_some() => Some(Step::Detected(
            state.window.clone().unwrap_or_else(|| window_of(ts, width)),
        )),
        Transition::Stay => None,
    }
}

fn cleared(
    device_id: &str,
    metric: &str,
    kind: DetectionKind,
    rule_id: Option<String>,
    ts: DateTime<Utc>,
    window: Window,
) -> Detection {
    Detection::Cleared(AnomalyCleared {
        device_id: device_id.to_owned(),
        metric: metric.to_owned(),
        kind,
        rule_id,
        ts,
        window,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::RuleScope;

    fn config() -> DetectorConfig {
        DetectorConfig {
            zscore: ZScore {
                threshold: 4.0,
                warmup: 20,
                hysteresis: Hysteresis {
                    raise_after: 2,
                    clear_after: 3,
                },
            },
            threshold_hysteresis: Hysteresis {
                raise_after: 2,
                clear_after: 3,
            },
            ..DetectorConfig::default()
        }
    }

    fn points(values: &[f64]) -> Vec<Point> {
        let start: DateTime<Utc> = "2026-11-23T10:00:00Z".parse().unwrap();
        values
            .iter()
            .enumerate()
            .map(|(i, v)| Point {
                ts: start + Duration::seconds(10 * i as i64),
                value: *v,
                position: format!("{}", 49_000_000 + i),
            })
            .collect()
    }

    fn rule() -> ThresholdRule {
        ThresholdRule::new(
            "hot".into(),
            RuleScope::DeviceType("env".into()),
            "temperature > 80",
            Severity::Critical,
        )
        .unwrap()
    }

    fn summary(outcome: &Outcome) -> Vec<String> {
        outcome
            .detections
            .iter()
            .map(|(_, d)| match d {
                Detection::Detected(a) => format!("{:?}@{}", a.kind, a.ts.format("%M:%S")),
                Detection::Cleared(c) => format!("clear {:?}@{}", c.kind, c.ts.format("%M:%S")),
            })
            .collect()
    }

    #[test]
    fn a_threshold_episode_is_detections_with_one_window_then_a_clear() {
        let rule = rule();
        let mut state = DetectorState::default();
        // 10 s apart: the episode is raised at 04:50, in the 10:00 window, and runs past 10:05.
        let mut values = vec![20.0; 28];
        values.extend([90.0, 91.0, 92.0, 93.0, 20.0, 95.0, 20.0, 20.0, 20.0, 20.0]);
        let outcome = observe(
            &config(),
            "d1",
            "temperature",
            &[&rule],
            &mut state,
            &points(&values),
        );
        let threshold: Vec<&Detection> = outcome
            .detections
            .iter()
            .map(|(_, d)| d)
            .filter(|d| {
                matches!(d, Detection::Detected(a) if a.kind == DetectionKind::Threshold)
                    || matches!(d, Detection::Cleared(c) if c.kind == DetectionKind::Threshold)
            })
            .collect();
        // Raised on the second hot point; one more hot point after a single normal one is
        // the same episode; three normal points clear it.
        assert_eq!(threshold.len(), 5, "{:?}", summary(&outcome));
        let windows: Vec<&Window> = threshold
            .iter()
            .map(|d| match d {
                Detection::Detected(a) => &a.window,
                Detection::Cleared(c) => &c.window,
            })
            .collect();
        assert!(windows
            .iter()
            .all(|w| w.start == "2026-11-23T10:00:00Z".parse::<DateTime<Utc>>().unwrap()));
        let Detection::Detected(first) = threshold[0] else {
            panic!()
        };
        assert_eq!(
            (first.value, first.rule.as_deref(), first.severity),
            (91.0, Some("temperature > 80"), Severity::Critical)
        );
        assert!(
            matches!(threshold[4], Detection::Cleared(c) if c.rule_id.as_deref() == Some("hot"))
        );
        assert!(!state.rules["hot"].episode.active);
    }

    #[test]
    fn every_anomalous_point_of_a_zscore_episode_is_reported_until_it_clears() {
        let mut state = DetectorState::default();
        // A steady series, then five points far out, then normal again.
        let mut values: Vec<f64> = (0..40).map(|i| 20.0 + (i % 5) as f64 * 0.1).collect();
        values.extend([60.0, 61.0, 62.0, 63.0, 64.0, 20.1, 20.2, 20.3, 20.1]);
        let outcome = observe(
            &config(),
            "d1",
            "temperature",
            &[],
            &mut state,
            &points(&values),
        );
        let zscore: Vec<String> = summary(&outcome)
            .into_iter()
            .filter(|s| s.contains("ZScore"))
            .collect();
        // Raised on the second far point, then reported with each of the three after it,
        // then cleared once: an alert counts every anomalous reading of its episode.
        let detected = zscore.iter().filter(|s| !s.starts_with("clear")).count();
        assert_eq!(detected, 4, "{zscore:?}");
        assert_eq!(
            zscore.iter().filter(|s| s.starts_with("clear")).count(),
            1,
            "{zscore:?}"
        );
        assert!(zscore.last().unwrap().starts_with("clear"), "{zscore:?}");
    }

    #[test]
    fn an_episode_belongs_to_the_window_its_run_began_in() {
        let rule = rule();
        let mut state = DetectorState::default();
        // Hot from 04:50; raised by the reading at 05:00, in the next window.
        let mut values = vec![20.0; 29];
        values.extend([90.0, 91.0, 92.0]);
        let outcome = observe(
            &config(),
            "d1",
            "temperature",
            &[&rule],
            &mut state,
            &points(&values),
        );
        let windows: Vec<DateTime<Utc>> = outcome
            .detections
            .iter()
            .filter_map(|(_, d)| match d {
                Detection::Detected(a) if a.kind == DetectionKind::Threshold => {
                    Some(a.window.start)
                }
                _ => None,
            })
            .collect();
        assert_eq!(
            windows,
            ["2026-11-23T10:00:00Z".parse::<DateTime<Utc>>().unwrap(); 2]
        );
    }

    #[test]
    fn z_score_detections_carry_their_score() {
        let mut state = DetectorState::default();
        let mut values: Vec<f64> = (0..40).map(|i| 20.0 + (i % 5) as f64 * 0.2).collect();
        values.extend([35.0, 36.0, 20.2, 20.4, 20.0]);
        let outcome = observe(
            &config(),
            "d1",
            "temperature",
            &[],
            &mut state,
            &points(&values),
        );
        assert_eq!(summary(&outcome), ["ZScore@06:50", "clear ZScore@07:20"]);
        let (_, Detection::Detected(d)) = &outcome.detections[0] else {
            panic!()
        };
        assert!(d.score.unwrap() > 4.0 && d.rule_id.is_none());
    }

    #[test]
    fn a_redelivered_batch_changes_nothing() {
        let rule = rule();
        let mut values = vec![20.0; 25];
        values.extend([90.0, 91.0]);
        let batch = points(&values);
        let mut state = DetectorState::default();
        let first = observe(&config(), "d1", "temperature", &[&rule], &mut state, &batch);
        assert_eq!(first.detections.len(), 1);
        let before = state.clone();
        let again = observe(&config(), "d1", "temperature", &[&rule], &mut state, &batch);
        assert_eq!(again.already_applied, batch.len());
        assert!(again.detections.is_empty() && again.windows.is_empty());
        assert_eq!(state, before);
    }

    #[test]
    fn points_are_aggregated_into_their_windows() {
        let mut state = DetectorState::default();
        let values: Vec<f64> = (0..40).map(|i| i as f64).collect();
        let outcome = observe(
            &config(),
            "d1",
            "temperature",
            &[],
            &mut state,
            &points(&values),
        );
        // 10 s apart from 10:00:00: 30 points in the first window, 10 in the second.
        let counts: Vec<u64> = outcome.windows.values().map(|a| a.stats.count).collect();
        assert_eq!(counts, [30, 10]);
        let first = outcome.windows.values().next().unwrap().summary().unwrap();
        assert_eq!((first.min, first.max, first.avg), (0.0, 29.0, 14.5));
    }

    #[test]
    fn positions_compare_as_numbers() {
        assert!(position_after("100", "99"));
        assert!(!position_after("99", "100"));
        assert!(!position_after("100", "100"));
        assert!(position_after(
            "49590338271490256608559692540925702759324208523137515618",
            "49590338271490256608559692538361571095921575989136588898"
        ));
    }

    #[test]
    fn state_survives_json() {
        let rule = rule();
        let mut state = DetectorState::default();
        observe(
            &config(),
            "d1",
            "temperature",
            &[&rule],
            &mut state,
            &points(&[20.0, 90.0, 91.0]),
        );
        let back: DetectorState =
            serde_json::from_str(&serde_json::to_string(&state).unwrap()).unwrap();
        assert_eq!(back, state);
    }
}
