//! What each simulated device will send, decided up front from a seed: realistic readings
//! for its type, heartbeats, and the faults and anomalies the run asked for. Because the
//! script is known, so is what the pipeline must make of it (`Expected`).

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, SecondsFormat, Utc};
use serde::Serialize;
use serde_json::{json, Value};

/// Kinds of device in the fleet, with the metrics each reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum DeviceType {
    /// Temperature, humidity and battery voltage; v2 payloads.
    EnvironmentSensor,
    /// DC power meter: voltage, current, power, energy.
    DcPowerMeter,
    /// AC power meter: RMS voltage and current, power, power factor, frequency.
    AcPowerMeter,
    /// An older temperature/voltage sensor that sends the bare v1 object (no seq).
    LegacySensor,
}

impl DeviceType {
    pub const ALL: [DeviceType; 4] = [
        DeviceType::EnvironmentSensor,
        DeviceType::DcPowerMeter,
        DeviceType::AcPowerMeter,
        DeviceType::LegacySensor,
    ];

    pub fn name(self) -> &'static str {
        match self {
            DeviceType::EnvironmentSensor => "environment-sensor",
            DeviceType::DcPowerMeter => "dc-power-meter",
            DeviceType::AcPowerMeter => "ac-power-meter",
            DeviceType::LegacySensor => "legacy-sensor",
        }
    }

    /// A threshold rule condition that the injected anomalies of this type break and its
    /// normal readings never do (for demos and tests of alerting).
    pub fn anomaly_condition(self) -> &'static str {
        match self {
            DeviceType::EnvironmentSensor | DeviceType::LegacySensor => "temperature > 40",
            DeviceType::DcPowerMeter | DeviceType::AcPowerMeter => "power > 2000",
        }
    }

    /// The metric an injected anomaly disturbs.
    fn anomaly_metric(self) -> &'static str {
        match self {
            DeviceType::EnvironmentSensor | DeviceType::LegacySensor => "temperature",
            DeviceType::DcPowerMeter | DeviceType::AcPowerMeter => "power",
        }
    }
}

/// Fault rates, as fractions of the telemetry messages; `anomaly` is the chance that an
/// anomaly episode starts at a reading.
#[derive(Debug, Clone, PartialEq)]
pub struct Faults {
    pub malformed: f64,
    pub duplicate: f64,
    pub out_of_order: f64,
    pub clock_skew: f64,
    pub anomaly: f64,
    /// One heartbeat every this many telemetry messages (0: none).
    pub heartbeat_every: u64,
    /// How far an anomaly leaves the normal band: 1 is far outside it (+45 °C on a
    /// temperature), smaller values bring it close to the signal's own spread.
    pub anomaly_scale: f64,
}

impl Default for Faults {
    fn default() -> Self {
        Self {
            malformed: 0.0,
            duplicate: 0.0,
            out_of_order: 0.0,
            clock_skew: 0.0,
            anomaly: 0.0,
            heartbeat_every: 10,
            anomaly_scale: 1.0,
        }
    }
}

/// Why a message is in the script, and so what the pipeline should do with it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Intent {
    Telemetry,
    Heartbeat,
    /// A second copy of an earlier message (same seq): deduplicated.
    Duplicate,
    /// Not a valid payload: dead-lettered.
    Malformed,
}

/// A labelled anomaly episode: consecutive readings of one metric far outside the
/// device's normal band, for scoring a detector.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AnomalyLabel {
    pub device_id: String,
    pub metric: &'static str,
    /// Device times of the first and last anomalous reading.
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    /// Sequence number of the first anomalous reading (none for v1 devices).
    pub first_seq: Option<u64>,
    pub readings: u32,
    /// The first anomalous value and the normal value it replaced.
    pub value: f64,
    pub normal: f64,
}

/// Readings an injected episode lasts: long enough for any sensible hysteresis to raise.
pub const EPISODE_READINGS: std::ops::RangeInclusive<u32> = 4..=6;

#[derive(Debug, Clone, PartialEq)]
pub struct Message {
    pub intent: Intent,
    pub payload: Vec<u8>,
    /// Set on telemetry whose device time is deliberately off.
    pub skewed: bool,
}

/// What the pipeline must report for a script, if it loses and doubles nothing.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Expected {
    pub messages: u64,
    pub stored: u64,
    pub deduplicated: u64,
    pub dead_lettered: u64,
    pub heartbeats: u64,
    pub clock_skewed: u64,
    /// Hot-store rows: one per metric of each stored reading.
    pub rows: u64,
    pub anomalies: u64,
}

impl Expected {
    pub fn add(&mut self, other: &Expected) {
        self.messages += other.messages;
        self.stored += other.stored;
        self.deduplicated += other.deduplicated;
        self.dead_lettered += other.dead_lettered;
        self.heartbeats += other.heartbeats;
        self.clock_skewed += other.clock_skewed;
        self.rows += other.rows;
        self.anomalies += other.anomalies;
    }
}

#[derive(Debug, Clone)]
pub struct DeviceScript {
    pub device_id: String,
    pub device_type: DeviceType,
    pub messages: Vec<Message>,
    pub expected: Expected,
    pub anomalies: Vec<AnomalyLabel>,
}

impl DeviceScript {
    /// No telemetry: a device that only answers (commands, shadow, jobs).
    pub fn silent(device_id: &str, device_type: DeviceType) -> Self {
        Self {
            device_id: device_id.to_owned(),
            device_type,
            messages: Vec::new(),
            expected: Expected::default(),
            anomalies: Vec::new(),
        }
    }
}

/// How far a skewed device clock is off: well past any sensible threshold.
const SKEW: Duration = Duration::hours(2);

pub fn device_type_for(index: usize) -> DeviceType {
    DeviceType::ALL[index % DeviceType::ALL.len()]
}

/// The script of one device: `telemetry` readings, `tick` apart in device time from
/// `start`, plus heartbeats and injected faults.
pub fn script(
    device_id: &str,
    device_type: DeviceType,
    telemetry: u64,
    faults: &Faults,
    start: DateTime<Utc>,
    tick: Duration,
    seed: u64,
) -> DeviceScript {
    // Distinct times per reading, so no two readings of a device share a hot-store key.
    let tick = tick.max(Duration::milliseconds(1));
    let mut rng = fastrand::Rng::with_seed(seed);
    let mut signal = Signal::new(device_type, &mut rng);
    let legacy = device_type == DeviceType::LegacySensor;
    let mut messages: Vec<Message> = Vec::new();
    let mut expected = Expected::default();
    let mut anomalies: Vec<AnomalyLabel> = Vec::new();
    // Readings left in the anomaly episode under way.
    let mut episode: Option<u32> = None;
    // Sequence numbers continue from the start time in milliseconds, so a device that
    // runs again (its id and certificate are reused) never repeats an earlier run's seq,
    // which the hub would rightly drop as a duplicate.
    let first_seq = u64::try_from(start.timestamp_millis()).unwrap_or(0);
    let mut seq = first_seq;
    // The first reading is stamped `start`; a device sends no earlier than it is stamped.
    let mut ts = start - tick;
    for n in 0..telemetry {
        ts += tick;
        if faults.heartbeat_every > 0 && n > 0 && n % faults.heartbeat_every == 0 && !legacy {
            seq += 1;
            let payload = json!({"v": 2, "seq": seq, "msg_type": "heartbeat", "ts": iso(ts), "simulated": true});
            messages.push(Message {
                intent: Intent::Heartbeat,
                payload: bytes(&payload),
                skewed: false,
            });
            expected.heartbeats += 1;
        }
        if rng.f64() < faults.malformed {
            messages.push(Message {
                intent: Intent::Malformed,
                payload: malformed(&mut rng, ts),
                skewed: false,
            });
            expected.dead_lettered += 1;
            continue;
        }
        let mut metrics = signal.next(&mut rng);
        if episode.is_none() && rng.f64() < faults.anomaly {
            let metric = device_type.anomaly_metric();
            let normal = metrics[metric];
            anomalies.push(AnomalyLabel {
                device_id: device_id.to_owned(),
                metric,
                start: ts,
                end: ts,
                first_seq: (!legacy).then_some(seq + 1),
                readings: 0,
                value: anomalous(metric, normal, faults.anomaly_scale),
                normal,
            });
            episode = Some(rng.u32(EPISODE_READINGS));
        }
        if let Some(left) = episode {
            let label = anomalies.last_mut().expect("an episode has its label");
            let normal = metrics[label.metric];
            metrics.insert(
                label.metric,
                anomalous(label.metric, normal, faults.anomaly_scale),
            );
            label.end = ts;
            label.readings += 1;
            episode = (left > 1).then_some(left - 1);
        }
        let skewed = rng.f64() < faults.clock_skew;
        let device_ts = if skewed {
            if rng.bool() {
                ts + SKEW
            } else {
                ts - SKEW
            }
        } else {
            ts
        };
        let payload = if legacy {
            let mut object = serde_json::Map::new();
            object.insert("ts".into(), iso(device_ts).into());
            for (name, value) in &metrics {
                object.insert((*name).into(), (*value).into());
            }
            object.insert("status".into(), "OK".into());
            object.insert("simulated".into(), true.into());
            Value::Object(object)
        } else {
            seq += 1;
            json!({"v": 2, "seq": seq, "msg_type": "telemetry", "ts": iso(device_ts),
                   "metrics": metrics, "status": "OK", "simulated": true})
        };
        let message = Message {
            intent: Intent::Telemetry,
            payload: bytes(&payload),
            skewed,
        };
        expected.stored += 1;
        expected.rows += metrics.len() as u64;
        expected.clock_skewed += u64::from(skewed);
        // Out of order: this reading goes out before the previous one.
        let swap = rng.f64() < faults.out_of_order
            && messages
                .last()
                .is_some_and(|m| m.intent == Intent::Telemetry);
        if swap {
            let at = messages.len() - 1;
            messages.insert(at, message.clone());
        } else {
            messages.push(message.clone());
        }
        // A duplicate is sent again later, as a network or device retry would be (the hub
        // knows a v1 copy, which has no seq, by its time and content).
        if rng.f64() < faults.duplicate {
            messages.push(Message {
                intent: Intent::Duplicate,
                payload: message.payload,
                skewed,
            });
            expected.deduplicated += 1;
        }
    }
    expected.messages = messages.len() as u64;
    expected.anomalies = anomalies.len() as u64;
    DeviceScript {
        device_id: device_id.to_owned(),
        device_type,
        messages,
        expected,
        anomalies,
    }
}

/// A value outside the device's normal band (`scale` 1: far outside), yet within what
/// the sensor can report (so it is stored, not rejected).
fn anomalous(metric: &str, normal: f64, scale: f64) -> f64 {
    match metric {
        "temperature" => normal + 45.0 * scale,
        _ => normal + (normal * 3.0 + 500.0) * scale,
    }
}

fn iso(ts: DateTime<Utc>) -> String {
    ts.to_rfc3339_opts(SecondsFormat::Millis, true)
}

fn bytes(value: &Value) -> Vec<u8> {
    serde_json::to_vec(value).expect("JSON values serialise")
}

/// The ways devices get payloads wrong, each one the normalizer must dead-letter.
fn malformed(rng: &mut fastrand::Rng, ts: DateTime<Utc>) -> Vec<u8> {
    let ts = iso(ts);
    match rng.u8(0..7) {
        0 => b"{\"v\":2,\"seq\":".to_vec(),
        1 => format!("{{\"v\":2,\"seq\":\"seven\",\"msg_type\":\"telemetry\",\"ts\":\"{ts}\",\"metrics\":{{\"temperature\":21.5}}}}").into_bytes(),
        2 => format!("{{\"v\":2,\"msg_type\":\"telemetry\",\"ts\":\"{ts}\",\"metrics\":{{\"temperature\":\"NaN\"}}}}").into_bytes(),
        3 => format!("{{\"v\":2,\"msg_type\":\"telemetry\",\"ts\":\"{ts}\",\"metrics\":{{\"temperature\":1e400}}}}").into_bytes(),
        4 => b"{\"v\":2,\"msg_type\":\"telemetry\",\"metrics\":{\"temperature\":21.5}}".to_vec(),
        5 => vec![0xff, 0xfe, 0x00, 0x13],
        _ => format!("{{\"v\":2,\"msg_type\":\"telemetry\",\"ts\":\"{ts}\",\"metrics\":{{\"temperature\":9000}}}}").into_bytes(),
    }
}

/// A slowly drifting, noisy signal per metric, like a real sensor's.
struct Signal {
    device_type: DeviceType,
    phase: f64,
    energy: f64,
    base: f64,
}

impl Signal {
    fn new(device_type: DeviceType, rng: &mut fastrand::Rng) -> Self {
        Self {
            device_type,
            phase: rng.f64() * std::f64::consts::TAU,
            energy: rng.f64() * 1000.0,
            base: rng.f64(),
        }
    }

    fn next(&mut self, rng: &mut fastrand::Rng) -> BTreeMap<&'static str, f64> {
        self.phase += 0.01;
        let wave = self.phase.sin();
        let noise = |rng: &mut fastrand::Rng, scale: f64| (rng.f64() - 0.5) * scale;
        let round = |v: f64, places: i32| (v * 10f64.powi(places)).round() / 10f64.powi(places);
        let mut metrics = BTreeMap::new();
        match self.device_type {
            DeviceType::EnvironmentSensor | DeviceType::LegacySensor => {
                metrics.insert(
                    "temperature",
                    round(21.0 + 4.0 * self.base + 2.0 * wave + noise(rng, 0.4), 2),
                );
                metrics.insert(
                    "voltage",
                    round(3.7 - 0.1 * self.base + noise(rng, 0.02), 3),
                );
                if self.device_type == DeviceType::EnvironmentSensor {
                    metrics.insert("humidity", round(45.0 + 10.0 * wave + noise(rng, 2.0), 1));
                }
            }
            DeviceType::DcPowerMeter => {
                let voltage = round(48.0 + noise(rng, 0.5), 2);
                let current = round(10.0 + 5.0 * self.base + 3.0 * wave + noise(rng, 0.3), 2);
                self.energy += voltage * current / 3_600_000.0;
                metrics.insert("voltage", voltage);
                metrics.insert("current", current);
                metrics.insert("power", round(voltage * current, 1));
                metrics.insert("energy", round(self.energy, 4));
            }
            DeviceType::AcPowerMeter => {
                let voltage = round(230.0 + 3.0 * wave + noise(rng, 1.0), 1);
                let current = round(4.0 + 2.0 * self.base + noise(rng, 0.2), 2);
                let power_factor = round(0.92 + noise(rng, 0.04), 3);
                metrics.insert("voltage", voltage);
                metrics.insert("current", current);
                metrics.insert("power", round(voltage * current * power_factor, 1));
                metrics.insert("power_factor", power_factor);
                metrics.insert("frequency", round(50.0 + noise(rng, 0.05), 3));
            }
        }
        metrics
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_device_type_is_chosen_on_the_command_line_by_its_registry_name() {
        use clap::ValueEnum as _;
        for t in DeviceType::ALL {
            assert_eq!(DeviceType::from_str(t.name(), false), Ok(t));
        }
        assert!(DeviceType::from_str("env-sensor", false).is_err());
    }

    fn start() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-11-23T10:00:00Z")
            .unwrap()
            .to_utc()
    }

    #[test]
    fn a_clean_script_is_all_telemetry_and_heartbeats() {
        let s = script(
            "d1",
            DeviceType::DcPowerMeter,
            100,
            &Faults::default(),
            start(),
            Duration::seconds(1),
            7,
        );
        assert_eq!(s.expected.stored, 100);
        assert_eq!(s.expected.heartbeats, 9);
        assert_eq!(s.expected.messages, 109);
        assert_eq!(s.expected.rows, 400);
        assert_eq!((s.expected.dead_lettered, s.expected.deduplicated), (0, 0));
    }

    #[test]
    fn the_same_seed_gives_the_same_script() {
        let faults = Faults {
            malformed: 0.1,
            duplicate: 0.1,
            out_of_order: 0.1,
            clock_skew: 0.1,
            anomaly: 0.1,
            heartbeat_every: 5,
            anomaly_scale: 1.0,
        };
        let a = script(
            "d",
            DeviceType::AcPowerMeter,
            200,
            &faults,
            start(),
            Duration::seconds(1),
            42,
        );
        let b = script(
            "d",
            DeviceType::AcPowerMeter,
            200,
            &faults,
            start(),
            Duration::seconds(1),
            42,
        );
        assert_eq!(a.messages, b.messages);
        assert_eq!(a.expected, b.expected);
    }

    #[test]
    fn fault_counts_match_the_messages() {
        let faults = Faults {
            malformed: 0.05,
            duplicate: 0.02,
            out_of_order: 0.05,
            clock_skew: 0.03,
            anomaly: 0.01,
            heartbeat_every: 10,
            anomaly_scale: 1.0,
        };
        let s = script(
            "d",
            DeviceType::EnvironmentSensor,
            2000,
            &faults,
            start(),
            Duration::seconds(1),
            3,
        );
        let count = |intent| s.messages.iter().filter(|m| m.intent == intent).count() as u64;
        assert_eq!(count(Intent::Malformed), s.expected.dead_lettered);
        assert_eq!(count(Intent::Duplicate), s.expected.deduplicated);
        assert_eq!(count(Intent::Heartbeat), s.expected.heartbeats);
        assert_eq!(count(Intent::Telemetry), s.expected.stored);
        // Roughly the asked-for rates.
        assert!(
            (60..=140).contains(&s.expected.dead_lettered),
            "{:?}",
            s.expected
        );
        assert!(
            (15..=70).contains(&s.expected.deduplicated),
            "{:?}",
            s.expected
        );
        assert!(
            s.messages
                .iter()
                .filter(|m| m.skewed && m.intent == Intent::Telemetry)
                .count() as u64
                == s.expected.clock_skewed
        );
    }

    #[test]
    fn out_of_order_messages_keep_every_seq_once() {
        let faults = Faults {
            out_of_order: 0.3,
            heartbeat_every: 0,
            ..Faults::default()
        };
        let s = script(
            "d",
            DeviceType::EnvironmentSensor,
            300,
            &faults,
            start(),
            Duration::seconds(1),
            9,
        );
        let seqs: Vec<u64> = s
            .messages
            .iter()
            .map(|m| {
                serde_json::from_slice::<Value>(&m.payload).unwrap()["seq"]
                    .as_u64()
                    .unwrap()
            })
            .collect();
        assert!(
            seqs.windows(2).any(|w| w[0] > w[1]),
            "some messages are out of order"
        );
        let mut sorted = seqs.clone();
        sorted.sort_unstable();
        let first = start().timestamp_millis() as u64;
        assert_eq!(sorted, (first + 1..=first + 300).collect::<Vec<_>>());
    }

    #[test]
    fn the_hub_accepts_what_should_be_accepted_and_rejects_the_malformed() {
        let faults = Faults {
            malformed: 0.2,
            duplicate: 0.1,
            clock_skew: 0.1,
            anomaly: 0.1,
            ..Faults::default()
        };
        for (i, device_type) in DeviceType::ALL.into_iter().enumerate() {
            let s = script(
                "d",
                device_type,
                500,
                &faults,
                start(),
                Duration::seconds(1),
                i as u64,
            );
            for message in &s.messages {
                let parsed = hub_telemetry::payload::parse(&message.payload);
                match message.intent {
                    Intent::Malformed => assert!(
                        parsed.is_err(),
                        "accepted {}",
                        String::from_utf8_lossy(&message.payload)
                    ),
                    _ => {
                        let parsed = parsed.unwrap_or_else(|e| {
                            panic!("{e}: {}", String::from_utf8_lossy(&message.payload))
                        });
                        assert!(parsed.simulated);
                    }
                }
            }
        }
    }

    #[test]
    fn anomalies_come_as_labelled_episodes_of_consecutive_readings() {
        let faults = Faults {
            anomaly: 0.02,
            ..Faults::default()
        };
        let s = script(
            "d",
            DeviceType::EnvironmentSensor,
            3000,
            &faults,
            start(),
            Duration::seconds(1),
            5,
        );
        assert!(s.anomalies.len() > 20, "{}", s.anomalies.len());
        assert_eq!(s.expected.anomalies, s.anomalies.len() as u64);
        // The anomalous readings are exactly those the labels cover.
        let hot: Vec<DateTime<Utc>> = s
            .messages
            .iter()
            .filter_map(|m| hub_telemetry::payload::parse(&m.payload).ok())
            .filter(|m| m.metrics.get("temperature").is_some_and(|t| *t > 40.0))
            .map(|m| m.device_ts)
            .collect();
        let labelled: u32 = s.anomalies.iter().map(|l| l.readings).sum();
        assert_eq!(hot.len() as u32, labelled);
        for pair in s.anomalies.windows(2) {
            assert!(pair[0].end < pair[1].start, "episodes overlap");
        }
        for label in &s.anomalies[..s.anomalies.len() - 1] {
            assert!(EPISODE_READINGS.contains(&label.readings), "{label:?}");
            assert!(
                hot.iter()
                    .filter(|t| (label.start..=label.end).contains(t))
                    .count() as u32
                    == label.readings
            );
        }
    }

    #[test]
    fn the_anomaly_conditions_separate_anomalies_from_normal_readings() {
        let faults = Faults {
            anomaly: 0.02,
            ..Faults::default()
        };
        for (i, device_type) in DeviceType::ALL.into_iter().enumerate() {
            let s = script(
                "d",
                device_type,
                3000,
                &faults,
                start(),
                Duration::seconds(1),
                i as u64,
            );
            let condition = device_type.anomaly_condition();
            let (metric, threshold) = condition.split_once(" > ").unwrap();
            let threshold: f64 = threshold.parse().unwrap();
            let breaking = s
                .messages
                .iter()
                .filter_map(|m| hub_telemetry::payload::parse(&m.payload).ok())
                .filter(|m| m.metrics.get(metric).is_some_and(|v| *v > threshold))
                .count() as u32;
            assert_eq!(
                breaking,
                s.anomalies.iter().map(|l| l.readings).sum::<u32>(),
                "{condition}"
            );
        }
    }

    #[test]
    fn legacy_sensors_send_bare_v1_objects() {
        let s = script(
            "old",
            DeviceType::LegacySensor,
            5,
            &Faults::default(),
            start(),
            Duration::seconds(1),
            1,
        );
        let first: Value = serde_json::from_slice(&s.messages[0].payload).unwrap();
        assert!(first.get("v").is_none() && first.get("seq").is_none());
        assert!(first["temperature"].is_f64() && first["voltage"].is_f64());
        assert_eq!(first["simulated"], true);
    }
}
