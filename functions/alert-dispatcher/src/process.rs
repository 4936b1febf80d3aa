//! One batch of the anomaly stream: detections counted against their alert (the first
//! one raises and notifies), clears resolving theirs.

use std::collections::BTreeMap;

use futures::{StreamExt as _, TryStreamExt as _};
use hub_detection::alert::dedup_key;
use hub_events::{
    AlertRaised, AnomalyCleared, AnomalyDetected, Envelope, RolloutEvent, RolloutEventKind,
    Severity, Window,
};
use hub_runtime::stream::StreamRecord;
use tracing::warn;

use crate::ports::{AlertRow, Alerts, Claims, Notifier, PortError, Trigger};

pub const SOURCE: &str = "alert-dispatcher";
/// Devices worked on at once; one device's events are taken in stream order.
const CONCURRENCY: usize = 16;
/// Alert ids are derived from (device, rule, window), so every writer agrees on them.
const ALERT_ID_NAMESPACE: uuid::Uuid =
    uuid::Uuid::from_u128(0x2c9e_41d7_8a5b_4f63_b1e0_94d2_7c3a_5f18);

#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Summary {
    pub detections: u64,
    /// Alerts raised (and notified) by this batch.
    pub raised: u64,
    /// Detections absorbed by an alert that was already raised.
    pub deduplicated: u64,
    pub cleared: u64,
    pub resolved: u64,
    pub unreadable: u64,
}

impl Summary {
    fn add(&mut self, other: &Summary) {
        self.detections += other.detections;
        self.raised += other.raised;
        self.deduplicated += other.deduplicated;
        self.cleared += other.cleared;
        self.resolved += other.resolved;
        self.unreadable += other.unreadable;
    }
}

pub struct Ports<'a, C, A, N> {
    pub claims: &'a C,
    pub alerts: &'a A,
    pub notifier: &'a N,
}

enum Incoming {
    Detected(Envelope<AnomalyDetected>),
    Cleared(Envelope<AnomalyCleared>),
    /// A firmware rollout aborted: operators hear of it as an alert.
    RolloutAborted(Envelope<RolloutEvent>),
    /// Another step of a rollout, for other consumers of the stream.
    Rollout,
}

fn read(record: &StreamRecord) -> Option<Incoming> {
    if let Ok(event) = Envelope::<AnomalyDetected>::from_slice(&record.data) {
        return Some(Incoming::Detected(event));
    }
    if let Ok(event) = Envelope::<RolloutEvent>::from_slice(&record.data) {
        return Some(match event.data.kind {
            RolloutEventKind::Aborted => Incoming::RolloutAborted(event),
            _ => Incoming::Rollout,
        });
    }
    Envelope::<AnomalyCleared>::from_slice(&record.data)
        .ok()
        .map(Incoming::Cleared)
}

/// When a rollout began: the millisecond timestamp at the front of its UUID v7 id.
fn rollout_started(rollout_id: &str) -> Option<chrono::DateTime<chrono::Utc>> {
    let hex = rollout_id.strip_prefix("ota-")?.get(..12)?;
    let millis = i64::from_str_radix(hex, 16).ok()?;
    chrono::DateTime::from_timestamp_millis(millis)
}

/// The rule id of rollout alerts.
pub const ROLLOUT_ABORTED_RULE: &str = "firmware_rollout_aborted";

/// The alert of an aborted rollout: one per rollout (its id is the window's key), about
/// the target group.
pub fn rollout_trigger(event: &Envelope<RolloutEvent>) -> Trigger {
    let d = &event.data;
    let finished = d.counts.succeeded + d.counts.failed + d.counts.timed_out;
    let failed = d.counts.failed + d.counts.timed_out;
    let share = if finished == 0 {
        0.0
    } else {
        failed as f64 * 100.0 / finished as f64
    };
    // The window runs from the rollout's start, which its id (a UUID v7) carries: a
    // resent event lands on the same alert.
    let start = rollout_started(&d.rollout_id).unwrap_or(event.time);
    let window = Window {
        start,
        end: event.time.max(start),
    };
    let device_id = format!("group:{}", d.target);
    Trigger {
        alert_id: alert_id(&device_id, ROLLOUT_ABORTED_RULE, &window),
        dedup_key: dedup_key(&device_id, ROLLOUT_ABORTED_RULE, window.start),
        event_id: event.id.clone(),
        device_id,
        device_type: None,
        rule_id: ROLLOUT_ABORTED_RULE.into(),
        metric: "firmware_rollout_failure_percent".into(),
        summary: format!(
            "firmware {} rollout {} to {} aborted: {}",
            d.firmware_version,
            d.rollout_id,
            d.target,
            d.reason.as_deref().unwrap_or("failure threshold passed")
        ),
        severity: Severity::Critical,
        value: share,
        ts: event.time,
        window,
        simulated: event.simulated,
    }
}

/// The rule an alert is about: the threshold rule, or the z-score of the metric.
pub fn rule_of(rule_id: Option<&str>, metric: &str) -> String {
    rule_id.map_or_else(|| format!("z_score:{metric}"), str::to_owned)
}

pub fn alert_id(device_id: &str, rule: &str, window: &Window) -> String {
    let key = dedup_key(device_id, rule, window.start);
    uuid::Uuid::new_v5(&ALERT_ID_NAMESPACE, key.as_bytes()).to_string()
}

pub fn trigger(event: &Envelope<AnomalyDetected>) -> Trigger {
    let d = &event.data;
    let rule_id = rule_of(d.rule_id.as_deref(), &d.metric);
    let summary = match (&d.rule, d.score) {
        (Some(rule), _) => format!("{rule} (value {})", d.value),
        (None, Some(z)) => format!(
            "{} {} is {z:.1} standard deviations from its usual level",
            d.metric, d.value
        ),
        (None, None) => format!("{} {} is anomalous", d.metric, d.value),
    };
    Trigger {
        alert_id: alert_id(&d.device_id, &rule_id, &d.window),
        dedup_key: dedup_key(&d.device_id, &rule_id, d.window.start),
        event_id: event.id.clone(),
        device_id: d.device_id.clone(),
        device_type: d.device_type.clone(),
        rule_id,
        metric: d.metric.clone(),
        summary,
        severity: d.severity,
        value: d.value,
        ts: d.ts,
        window: d.window.clone(),
        simulated: event.simulated,
    }
}

/// The notification subscribers receive, once per alert.
pub fn raised_event(trigger: &Trigger, row: &AlertRow) -> Envelope<AlertRaised> {
    let mut event = Envelope::new(
        SOURCE,
        trigger.device_id.clone(),
        row.raised_at,
        AlertRaised {
            alert_id: row.alert_id.clone(),
            device_id: trigger.device_id.clone(),
            rule_id: trigger.rule_id.clone(),
            severity: trigger.severity,
            state: row.state,
            count: row.count,
            raised_at: row.raised_at,
            window: trigger.window.clone(),
            device_type: trigger.device_type.clone(),
            summary: trigger.summary.clone(),
        },
    )
    .simulated(trigger.simulated);
    // One notification id per alert, so a resent notification is recognisably the same.
    event.id = uuid::Uuid::new_v5(
        &ALERT_ID_NAMESPACE,
        format!("{}|raised", row.alert_id).as_bytes(),
    )
    .to_string();
    event
}

pub async fn process<C: Claims + Sync, A: Alerts + Sync, N: Notifier + Sync>(
    ports: &Ports<'_, C, A, N>,
    records: &[StreamRecord],
) -> Result<Summary, PortError> {
    let mut summary = Summary::default();
    let mut by_device: BTreeMap<String, Vec<Incoming>> = BTreeMap::new();
    for record in records {
        match read(record) {
            Some(incoming) => {
                let device = match &incoming {
                    Incoming::Detected(e) => e.data.device_id.clone(),
                    Incoming::Cleared(e) => e.data.device_id.clone(),
                    Incoming::RolloutAborted(e) => format!("group:{}", e.data.target),
                    Incoming::Rollout => continue,
                };
                by_device.entry(device).or_default().push(incoming);
            }
            None => {
                warn!(position = %record.position, "not an anomaly event; skipped");
                summary.unreadable += 1;
            }
        }
    }
    let results: Vec<Summary> = futures::stream::iter(by_device.into_values())
        .map(|events| dispatch_device(ports, events))
        .buffer_unordered(CONCURRENCY)
        .try_collect()
        .await?;
    for result in &results {
        summary.add(result);
    }
    Ok(summary)
}

async fn dispatch_device<C: Claims, A: Alerts, N: Notifier>(
    ports: &Ports<'_, C, A, N>,
    events: Vec<Incoming>,
) -> Result<Summary, PortError> {
    let mut summary = Summary::default();
    for incoming in events {
        match incoming {
            Incoming::Detected(event) => {
                summary.detections += 1;
                let outcome = dispatch(ports, &trigger(&event)).await?;
                summary.raised += u64::from(outcome.raised);
                summary.deduplicated += u64::from(!outcome.raised);
            }
            Incoming::RolloutAborted(event) => {
                let outcome = dispatch(ports, &rollout_trigger(&event)).await?;
                summary.raised += u64::from(outcome.raised);
                summary.deduplicated += u64::from(!outcome.raised);
            }
            Incoming::Rollout => {}
            Incoming::Cleared(event) => {
                summary.cleared += 1;
                let c = &event.data;
                let rule = rule_of(c.rule_id.as_deref(), &c.metric);
                let id = alert_id(&c.device_id, &rule, &c.window);
                summary.resolved += u64::from(ports.alerts.auto_resolve(&id, c.ts).await?);
            }
        }
    }
    Ok(summary)
}

#[derive(Debug, Clone, PartialEq)]
pub struct Dispatched {
    /// This trigger raised the alert and sent its notification.
    pub raised: bool,
    pub alert: AlertRow,
}

/// Counts one detection against its alert; the claimant of the alert's key notifies.
pub async fn dispatch<C: Claims, A: Alerts, N: Notifier>(
    ports: &Ports<'_, C, A, N>,
    trigger: &Trigger,
) -> Result<Dispatched, PortError> {
    let claimed = ports.claims.claim(trigger).await?;
    let alert = ports.alerts.count(trigger).await?;
    if claimed {
        ports
            .notifier
            .publish(&raised_event(trigger, &alert))
            .await?;
        ports.claims.notified(trigger).await?;
    }
    Ok(Dispatched {
        raised: claimed,
        alert,
    })
}
