//! Detection quality from the simulator's labels: the fleet's scripted readings are fed,
//! in the order devices send them, through the same parser and the same detector code the
//! Lambdas run, and every episode the detector raises is matched against the labelled
//! episodes. No stack is needed, so the figures are reproducible from a seed.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use hub_detection::{
    detector::{observe, Detection, DetectorConfig, DetectorState, Point},
    ThresholdRule,
};
use hub_telemetry::MessageKind;
use serde::Serialize;

use crate::script::DeviceScript;

/// An episode the detector raised: device, metric and the time of the raising reading.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Raised {
    pub device_id: String,
    pub metric: String,
    pub at: DateTime<Utc>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Score {
    pub labelled: u64,
    pub raised: u64,
    /// Raised episodes inside a labelled one (the first per label).
    pub true_positives: u64,
    /// Raised episodes outside every label, or a second one inside the same label.
    pub false_positives: u64,
    /// Labelled episodes nothing was raised for.
    pub missed: u64,
    pub precision: f64,
    pub recall: f64,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Evaluation {
    pub devices: u64,
    pub readings: u64,
    pub overall: Score,
    /// By device type.
    pub by_type: BTreeMap<String, Score>,
    /// Raised episodes that matched no label, for inspection.
    pub false_alarms: Vec<Raised>,
}

/// Runs every script's readings through the detector (z-score, and `rules` if any).
pub fn evaluate(
    config: &DetectorConfig,
    rules: &[ThresholdRule],
    fleet: &[DeviceScript],
) -> Evaluation {
    let mut evaluation = Evaluation {
        devices: fleet.len() as u64,
        ..Evaluation::default()
    };
    for script in fleet {
        let raised = detect(config, rules, script, &mut evaluation.readings);
        let (tp, fp_list) = score_device(script, &raised);
        let type_score = evaluation
            .by_type
            .entry(script.device_type.name().to_owned())
            .or_default();
        type_score.labelled += script.anomalies.len() as u64;
        type_score.raised += raised.len() as u64;
        type_score.true_positives += tp;
        type_score.false_positives += fp_list.len() as u64;
        evaluation.false_alarms.extend(fp_list);
    }
    for score in evaluation.by_type.values_mut() {
        score.finish();
        evaluation.overall.labelled += score.labelled;
        evaluation.overall.raised += score.raised;
        evaluation.overall.true_positives += score.true_positives;
        evaluation.overall.false_positives += score.false_positives;
    }
    evaluation.overall.finish();
    evaluation
}

impl Score {
    fn finish(&mut self) {
        self.missed = self.labelled - self.true_positives;
        self.precision = ratio(self.true_positives, self.raised);
        self.recall = ratio(self.true_positives, self.labelled);
    }
}

fn ratio(a: u64, b: u64) -> f64 {
    if b == 0 {
        1.0
    } else {
        a as f64 / b as f64
    }
}

/// The episodes the detector raises on one device's script.
fn detect(
    config: &DetectorConfig,
    rules: &[ThresholdRule],
    script: &DeviceScript,
    readings: &mut u64,
) -> Vec<Raised> {
    let mut states: BTreeMap<String, DetectorState> = BTreeMap::new();
    let mut active: BTreeSet<(String, Option<String>)> = BTreeSet::new();
    let mut seen_seq = BTreeSet::new();
    let mut raised = Vec::new();
    for (position, message) in script.messages.iter().enumerate() {
        // What the normalizer keeps: valid telemetry, each seq once.
        let Ok(parsed) = hub_telemetry::payload::parse(&message.payload) else {
            continue;
        };
        if parsed.kind != MessageKind::Telemetry
            || parsed.seq.is_some_and(|seq| !seen_seq.insert(seq))
        {
            continue;
        }
        *readings += 1;
        for (metric, value) in &parsed.metrics {
            let rules: Vec<&ThresholdRule> = rules
                .iter()
                .filter(|r| {
                    r.metric == *metric
                        && r.applies_to(&script.device_id, Some(script.device_type.name()))
                })
                .collect();
            let state = states.entry(metric.clone()).or_default();
            let point = Point {
                ts: parsed.device_ts,
                value: *value,
                position: position.to_string(),
            };
            let outcome = observe(config, &script.device_id, metric, &rules, state, &[point]);
            for (_, detection) in outcome.detections {
                match detection {
                    Detection::Detected(d) => {
                        if active.insert((metric.clone(), d.rule_id.clone())) {
                            raised.push(Raised {
                                device_id: script.device_id.clone(),
                                metric: metric.clone(),
                                at: d.ts,
                            });
                        }
                    }
                    Detection::Cleared(c) => {
                        active.remove(&(metric.clone(), c.rule_id.clone()));
                    }
                }
            }
        }
    }
    raised
}

/// True positives and the false alarms of one device.
fn score_device(script: &DeviceScript, raised: &[Raised]) -> (u64, Vec<Raised>) {
    let mut matched = vec![false; script.anomalies.len()];
    let mut false_alarms = Vec::new();
    for r in raised {
        let label = script
            .anomalies
            .iter()
            .position(|l| l.metric == r.metric && l.start <= r.at && r.at <= l.end);
        match label {
            Some(i) if !matched[i] => matched[i] = true,
            _ => false_alarms.push(r.clone()),
        }
    }
    (matched.iter().filter(|m| **m).count() as u64, false_alarms)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::script::{script, DeviceType, Faults};
    use chrono::Duration;

    fn fleet(anomaly: f64) -> Vec<DeviceScript> {
        fleet_scaled(anomaly, 1.0)
    }

    fn fleet_scaled(anomaly: f64, anomaly_scale: f64) -> Vec<DeviceScript> {
        let start = "2026-11-23T10:00:00Z".parse().unwrap();
        let faults = Faults {
            anomaly,
            anomaly_scale,
            ..Faults::default()
        };
        DeviceType::ALL
            .into_iter()
            .enumerate()
            .map(|(i, t)| {
                script(
                    &format!("d{i}"),
                    t,
                    1500,
                    &faults,
                    start,
                    Duration::seconds(10),
                    i as u64,
                )
            })
            .collect()
    }

    #[test]
    fn a_detector_that_raises_nothing_has_zero_recall() {
        let never = DetectorConfig {
            anomaly: hub_detection::AdaptiveConfig {
                threshold: f64::MAX,
                cusum_h: f64::MAX,
                ..hub_detection::AdaptiveConfig::default()
            },
            ..DetectorConfig::default()
        };
        let e = evaluate(&never, &[], &fleet(0.01));
        assert!(e.overall.labelled > 0);
        assert_eq!((e.overall.raised, e.overall.recall), (0, 0.0));
    }

    /// Anomalies a tenth of the usual size (+4.5 °C on a temperature that swings ±2 °C with
    /// its daily wave), seeded: the deployed detector must keep finding them. The floors
    /// sit under today's figures (printed), so a regression fails here.
    #[test]
    fn anomalies_close_to_the_noise_are_still_found() {
        let e = evaluate(&DetectorConfig::default(), &[], &fleet_scaled(0.01, 0.1));
        let o = &e.overall;
        println!(
            "labelled {}, raised {}, precision {:.3}, recall {:.3}",
            o.labelled, o.raised, o.precision, o.recall
        );
        assert!(o.labelled >= 20, "{o:?}");
        assert!(o.precision >= PRECISION_FLOOR, "{o:?}");
        assert!(o.recall >= RECALL_FLOOR, "{o:?}");
    }

    // Measured 2026-12-02 with the adaptive model: precision 0.970, recall 0.533 (60
    // labelled, 33 raised); the z-score before it: 1.000, 0.400.
    const PRECISION_FLOOR: f64 = 0.9;
    const RECALL_FLOOR: f64 = 0.45;

    #[test]
    fn scores_add_up() {
        let e = evaluate(&DetectorConfig::default(), &[], &fleet(0.01));
        let o = &e.overall;
        assert_eq!(o.true_positives + o.false_positives, o.raised);
        assert_eq!(o.true_positives + o.missed, o.labelled);
        assert_eq!(e.false_alarms.len() as u64, o.false_positives);
        assert_eq!(e.by_type.len(), 4);
    }
}
