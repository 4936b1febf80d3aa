//! One device#metric series through the detector: the adaptive model and every threshold
//! rule that watches it, each with its own hysteresis; the aggregate of the window the
//! series is in; and what to tell the alert dispatcher. Pure: the caller loads the state,
//! calls `observe`, and writes the new state back with one conditional put (the open
//! window travels in it), storing the windows the series has moved past as they are.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, Utc};
use hub_events::{AnomalyCleared, AnomalyDetected, DetectionKind, Severity, Window};
use serde::{Deserialize, Serialize};

use crate::{
    window_of, AdaptiveConfig, AdaptiveState, Aggregate, Episode, Hysteresis, ThresholdRule,
    Transition,
};

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct DetectorConfig {
    /// The statistical model every series is judged by (its detections are `z_score`).
    pub anomaly: AdaptiveConfig,
    /// Severity of model detections (threshold rules carry their own).
    pub anomaly_severity: Severity,
    /// Hysteresis of threshold rules.
    pub threshold_hysteresis: Hysteresis,
    /// Width of the aggregate windows and of the alert windows episodes begin in.
    pub window: Duration,
}

impl Default for DetectorConfig {
    fn default() -> Self {
        Self {
            anomaly: AdaptiveConfig::default(),
            anomaly_severity: Severity::Warning,
            threshold_hysteresis: Hysteresis::default(),
            window: Duration::minutes(5),
        }
    }
}

/// An episode in progress and the window it began in.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct EpisodeState {
    pub episode: Episode,
    pub window: Option<Window>,
    /// Time of the first reading of the current run of anomalous readings: an episode
    /// belongs to the window its run began in, whichever reading raises it.
    pub run_start: Option<DateTime<Utc>>,
}

/// The aggregate window a series is in.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct OpenWindow {
    pub start: DateTime<Utc>,
    pub aggregate: Aggregate,
}

/// Everything the detector keeps about one device#metric. Stored compactly (see
/// [`DeviceState::encode`]): no field may be skipped when serialized.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct DetectorState {
    pub anomaly: AdaptiveState,
    pub anomaly_episode: EpisodeState,
    /// Threshold episodes by rule id.
    pub rules: BTreeMap<String, EpisodeState>,
    /// Stream position of the last reading applied: a redelivered reading is not counted
    /// twice. A series comes from one device, so from one shard, in order.
    pub applied_through: Option<String>,
    /// The newest window the series has readings in; it is stored on its own once a
    /// reading of a later window arrives.
    pub open_window: Option<OpenWindow>,
}

/// First byte of an encoded state; a state of another format is re-learned.
const STATE_FORMAT: u8 = 2;

#[derive(Debug, thiserror::Error)]
#[error("detector state is not readable: {0}")]
pub struct StateFormatError(String);

/// What the detector keeps about one device: the state of each of its metrics, in one
/// item, so a batch writes a device once however many metrics it reports.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct DeviceState {
    pub metrics: BTreeMap<String, DetectorState>,
}

impl DeviceState {
    /// A format byte and the state in postcard: about 0.6 KB per metric with a daily
    /// cycle learned, so a three-metric device is two DynamoDB write units.
    pub fn encode(&self) -> Vec<u8> {
        let mut bytes = vec![STATE_FORMAT];
        // Serializing plain data into a Vec cannot fail.
        postcard::to_io(self, &mut bytes).expect("detector state serializes");
        bytes
    }

    /// Drops the metrics heard from longest ago until the encoded state fits in
    /// `max_bytes`: a device may invent metric names without end, and DynamoDB refuses
    /// items over 400 KB. Returns the metrics dropped (their models start again if they
    /// come back).
    pub fn keep_within(&mut self, max_bytes: usize) -> Vec<String> {
        let mut dropped = Vec::new();
        while self.metrics.len() > 1 && self.encode().len() > max_bytes {
            let oldest = self
                .metrics
                .iter()
                .min_by_key(|(_, s)| s.open_window.map(|w| w.start))
                .map(|(metric, _)| metric.clone());
            if let Some(metric) = oldest {
                self.metrics.remove(&metric);
                dropped.push(metric);
            }
        }
        dropped
    }

    pub fn decode(bytes: &[u8]) -> Result<Self, StateFormatError> {
        match bytes.split_first() {
            Some((&STATE_FORMAT, rest)) => {
                postcard::from_bytes(rest).map_err(|e| StateFormatError(e.to_string()))
            }
            Some((format, _)) => Err(StateFormatError(format!("format {format}"))),
            None => Err(StateFormatError("empty".into())),
        }
    }
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

/// A window the series has moved past.
#[derive(Clone, Debug, PartialEq)]
pub struct ClosedWindow {
    pub start: DateTime<Utc>,
    pub aggregate: Aggregate,
    /// Stream position of the reading that moved the series past it: whoever applies the
    /// same readings closes it at the same position, with the same aggregate.
    pub closed_by: String,
}

/// What one batch did to a series.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Outcome {
    /// Each with the stream position of the reading that caused it.
    pub detections: Vec<(String, Detection)>,
    /// Windows the series moved past in this batch, complete: to be stored as they are.
    pub closed: Vec<ClosedWindow>,
    /// Points of windows the series had moved past before (a device's late readings), by
    /// window: to be merged into the stored aggregates.
    pub late: BTreeMap<DateTime<Utc>, Aggregate>,
    /// Points applied.
    pub applied: usize,
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
        outcome.applied += 1;
        let window = window_of(point.ts, config.window);
        match &mut state.open_window {
            Some(open) if window.start == open.start => open.aggregate.push(point.value),
            Some(open) if window.start < open.start => {
                // A window closed earlier in this batch is still being written: the
                // reading joins it there.
                match outcome.closed.iter_mut().find(|c| c.start == window.start) {
                    Some(closed) => closed.aggregate.push(point.value),
                    None => outcome
                        .late
                        .entry(window.start)
                        .or_default()
                        .push(point.value),
                }
            }
            open => {
                if let Some(done) = open.take() {
                    outcome.closed.push(ClosedWindow {
                        start: done.start,
                        aggregate: done.aggregate,
                        closed_by: point.position.clone(),
                    });
                }
                let mut aggregate = Aggregate::default();
                aggregate.push(point.value);
                *open = Some(OpenWindow {
                    start: window.start,
                    aggregate,
                });
            }
        }

        let verdict = config
            .anomaly
            .observe(&mut state.anomaly, point.ts, point.value);
        let detected = |kind, score, rule: Option<&ThresholdRule>, severity, window: Window| {
            let model = rule.is_none().then_some(verdict.model);
            Detection::Detected(AnomalyDetected {
                device_id: device_id.to_owned(),
                // Registry context is the caller's to add.
                device_type: None,
                metric: metric.to_owned(),
                value: point.value,
                kind,
                score,
                model,
                baseline: model.map(|_| verdict.baseline),
                rule_id: rule.map(|r| r.id.clone()),
                rule: rule.map(ThresholdRule::condition),
                severity,
                ts: point.ts,
                window,
            })
        };
        if let Some(d) = follow(
            &mut state.anomaly_episode,
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
                    config.anomaly_severity,
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
        // An episode is open while it holds its window: the model keeps its hysteresis in
        // its own state, so `state.episode` is not the place to ask.
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
            anomaly: AdaptiveConfig {
                warmup: 20,
                hysteresis: Hysteresis {
                    raise_after: 2,
                    clear_after: 3,
                },
                ..AdaptiveConfig::default()
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
        // The model that judged it, and what it expected: the steady series' mean (the
        // first far reading moved it a clipped step).
        assert_eq!(d.model, Some(hub_events::AnomalyModel::Level));
        assert!((d.baseline.unwrap() - 20.4).abs() < 0.05, "{d:?}");
    }

    #[test]
    fn a_redelivered_batch_changes_nothing() {
        let rule = rule();
        let mut values = vec![20.0; 25];
        values.extend([90.0, 91.0]);
        let batch = points(&values);
        let mut state = DetectorState::default();
        let first = observe(&config(), "d1", "temperature", &[&rule], &mut state, &batch);
        // The rule and the model each raise on the second hot reading.
        assert_eq!(first.detections.len(), 2, "{:?}", summary(&first));
        let before = state.clone();
        let again = observe(&config(), "d1", "temperature", &[&rule], &mut state, &batch);
        assert_eq!(again.already_applied, batch.len());
        assert!(again.detections.is_empty() && again.applied == 0);
        assert!(again.closed.is_empty() && again.late.is_empty());
        assert_eq!(state, before);
    }

    #[test]
    fn a_window_is_closed_when_the_series_moves_past_it_and_late_points_are_kept_apart() {
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
        let first: DateTime<Utc> = "2026-11-23T10:00:00Z".parse().unwrap();
        assert_eq!(outcome.applied, 40);
        assert_eq!(outcome.closed.len(), 1);
        let closed = &outcome.closed[0];
        assert_eq!(closed.start, first);
        let stats = closed.aggregate.summary().unwrap();
        assert_eq!(
            (stats.count, stats.min, stats.max, stats.avg),
            (30, 0.0, 29.0, 14.5)
        );
        let open = state.open_window.unwrap();
        assert_eq!(open.start, first + Duration::minutes(5));
        assert_eq!(open.aggregate.stats.count, 10);
        // A late reading of the first window, in a later batch: kept apart, to be merged.
        let late = Point {
            ts: "2026-11-23T10:01:00Z".parse().unwrap(),
            value: 100.0,
            position: "49000040".into(),
        };
        let outcome = observe(&config(), "d1", "temperature", &[], &mut state, &[late]);
        assert!(outcome.closed.is_empty());
        assert_eq!(outcome.late.len(), 1);
        assert_eq!(outcome.late[&first].stats.count, 1);
        assert_eq!(outcome.late[&first].max, 100.0);
        assert_eq!(state.open_window.unwrap().aggregate.stats.count, 10);
    }

    #[test]
    fn a_late_reading_of_a_window_closed_in_the_same_batch_joins_it() {
        let mut state = DetectorState::default();
        let mut batch = points(&[1.0; 31]); // the 31st opens the 10:05 window
        batch.push(Point {
            ts: "2026-11-23T10:04:59Z".parse().unwrap(),
            value: 7.0,
            position: "49000031".into(),
        });
        let outcome = observe(&config(), "d1", "temperature", &[], &mut state, &batch);
        assert!(outcome.late.is_empty(), "{:?}", outcome.late);
        assert_eq!(outcome.closed.len(), 1);
        let closed = &outcome.closed[0];
        assert_eq!(
            (closed.aggregate.stats.count, closed.aggregate.max),
            (31, 7.0)
        );
        // Closed by the reading that moved the series on, not by the late one.
        assert_eq!(closed.closed_by, "49000030");
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
    fn state_survives_its_encoding_and_stays_under_a_write_unit() {
        let rule = rule();
        let mut state = DetectorState::default();
        // A week of 5-minute readings with a daily cycle, every slot learned, an episode open.
        let start: DateTime<Utc> = "2026-11-23T00:00:00Z".parse().unwrap();
        let batch: Vec<Point> = (0..2016)
            .map(|i| Point {
                ts: start + Duration::minutes(5 * i),
                value: 50.0 + 10.0 * (i as f64 / 288.0 * std::f64::consts::TAU).sin(),
                position: format!("4959033827149025660855969254092570275932420852313{i:07}"),
            })
            .chain(points(&[90.0, 91.0]).into_iter().map(|p| Point {
                position: format!(
                    "49590338271490256608559692540925702759324208523140{}",
                    p.position
                ),
                ts: start + Duration::days(8),
                ..p
            }))
            .collect();
        observe(&config(), "d1", "temperature", &[&rule], &mut state, &batch);
        assert!(state.rules["hot"].episode.active);
        let device = DeviceState {
            metrics: BTreeMap::from([("temperature".to_owned(), state)]),
        };
        let bytes = device.encode();
        assert_eq!(DeviceState::decode(&bytes).unwrap(), device);
        assert!(bytes.len() <= 1024, "{} bytes", bytes.len());
        // Another format, or nothing, is an error the caller can act on, never a panic.
        let mut other = bytes.clone();
        other[0] = 0;
        assert!(DeviceState::decode(&other).is_err());
        assert!(DeviceState::decode(&[]).is_err());
        assert!(DeviceState::decode(&bytes[..bytes.len() / 2]).is_err());
    }

    #[test]
    fn a_state_too_large_loses_the_metrics_heard_from_longest_ago() {
        let mut device = DeviceState::default();
        for (minute, metric) in [(10, "a"), (0, "b"), (20, "c")] {
            let mut state = DetectorState::default();
            let mut batch = points(&[20.0]);
            batch[0].ts += Duration::minutes(minute);
            observe(&config(), "d1", metric, &[], &mut state, &batch);
            device.metrics.insert(metric.to_owned(), state);
        }
        let whole = device.encode().len();
        assert!(device.keep_within(whole).is_empty());
        assert_eq!(device.keep_within(whole - 1), ["b"]);
        assert_eq!(device.keep_within(1), ["a"]);
        // The last metric stays, whatever its size.
        assert_eq!(device.metrics.keys().collect::<Vec<_>>(), ["c"]);
    }

    /// Postcard does not describe its layout: a field added, moved or retyped would decode
    /// stored states wrongly without an error. This pins the bytes of a small state, so
    /// such a change fails here and comes with a new `STATE_FORMAT`.
    #[test]
    fn the_encoding_of_a_state_is_pinned() {
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
        let device = DeviceState {
            metrics: BTreeMap::from([("temperature".to_owned(), state)]),
        };
        let bytes = device.encode();
        let hex = |b: &[u8]| -> String { b.iter().map(|b| format!("{b:02x}")).collect() };
        // The map's and the model's head, and the tail: episodes, rules, position, open
        // window.
        let (head, tail) = (hex(&bytes[..40]), hex(&bytes[bytes.len() - 120..]));
        assert_eq!(
            (bytes.len(), head.as_str(), tail.as_str()),
            (PINNED_LEN, PINNED_HEAD, PINNED_TAIL),
            "the stored state's layout changed"
        );
    }

    const PINNED_LEN: usize = 645;
    const PINNED_HEAD: &str =
        "02010b74656d706572617475726503030000000000c05040abaaaaaaaa4291403000000000000000";
    const PINNED_TAIL: &str =
        "32335431303a30303a30305a14323032362d31312d32335431303a30353a30305a01\
        14323032362d31312d32335431303a30303a31305a010834393030303030320114323032362d31312d32\
        335431303a30303a30305a030000000000c050400000000000e4a94000000000000034400000000000c05640";
}
