//! What the pusher makes of its inputs. Each batch comes from one source, and what a
//! record is follows from that source's ARN alone (never from fields inside it):
//!
//! - the normalized stream: readings, thinned per device per second ([`crate::coalesce`]);
//! - the events stream: detections (`iot.anomaly.*`) and rollout events;
//! - DynamoDB streams of the alerts, devices, commands and rollout-devices tables: every
//!   change the platform makes there, by whichever function made it (an alert raised,
//!   acknowledged or resolved; a device connected, quarantined or edited; a command
//!   answered; a rollout's device moving on), so a console never has to poll.
//!
//! A table change is forwarded as the item's listed attributes in plain JSON, the names
//! the admin API answers with, so a console merges a push into what it read.

use chrono::SecondsFormat;
use hub_events::{AnomalyCleared, AnomalyDetected, Envelope, NormalizedTelemetry, RolloutEvent};
use serde::Deserialize;
use serde_json::{json, Map, Value};

use crate::{
    channel::{device_channels, Channel},
    coalesce::{coalesce, Reading},
    push::Outgoing,
};

/// The tables whose changes consoles hear of.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Table {
    Alerts,
    Devices,
    Commands,
    RolloutDevices,
}

/// Where a batch came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    Readings,
    Events,
    Table(Table),
}

/// The ARNs the pusher is wired to.
#[derive(Clone, Debug, Default)]
pub struct Sources {
    pub readings_stream: String,
    pub events_stream: String,
    /// Table ARN and what it holds; its stream ARNs are `{table ARN}/stream/{label}`.
    pub tables: Vec<(String, Table)>,
}

impl Sources {
    pub fn of(&self, event_source_arn: &str) -> Option<Source> {
        if event_source_arn == self.readings_stream {
            return Some(Source::Readings);
        }
        if event_source_arn == self.events_stream {
            return Some(Source::Events);
        }
        self.tables.iter().find_map(|(arn, table)| {
            event_source_arn
                .strip_prefix(arn.as_str())
                .filter(|rest| rest.starts_with("/stream/"))
                .map(|_| Source::Table(*table))
        })
    }
}

/// What one batch came to: the events to push and what was left out.
#[derive(Debug, Default, PartialEq)]
pub struct Translated {
    pub outgoing: Vec<Outgoing>,
    /// Readings thinned away by the per-device-per-second rule.
    pub coalesced: usize,
    /// Records that were not what their source carries (logged, skipped: a console
    /// gains nothing from a retry of them).
    pub unreadable: usize,
}

fn time(t: chrono::DateTime<chrono::Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// Readings from the normalized stream's record payloads.
pub fn readings<'a>(records: impl IntoIterator<Item = &'a [u8]>) -> Translated {
    let mut unreadable = 0;
    let mut context = std::collections::HashMap::new();
    let parsed: Vec<Reading> = records
        .into_iter()
        .filter_map(
            |data| match Envelope::<NormalizedTelemetry>::from_slice(data) {
                Ok(event) => {
                    let t = event.data;
                    context.insert(
                        t.device_id.clone(),
                        (t.device.device_type.clone(), t.device.group.clone()),
                    );
                    Some(Reading {
                        device_id: t.device_id,
                        ts_ms: t.ts.timestamp_millis(),
                        seq: t.seq,
                        metrics: t.metrics,
                        simulated: event.simulated,
                    })
                }
                Err(_) => {
                    unreadable += 1;
                    None
                }
            },
        )
        .collect();
    let (kept, coalesced) = coalesce(parsed);
    let outgoing = kept
        .into_iter()
        .map(|r| {
            let (device_type, group) = context.get(&r.device_id).cloned().unwrap_or_default();
            let ts = chrono::DateTime::from_timestamp_millis(r.ts_ms).unwrap_or_default();
            Outgoing {
                channels: device_channels(&r.device_id, device_type.as_deref(), group.as_deref()),
                message: json!({
                    "type": "reading",
                    "device_id": r.device_id,
                    "ts": time(ts),
                    "seq": r.seq,
                    "metrics": r.metrics,
                    "simulated": r.simulated,
                }),
            }
        })
        .collect();
    Translated {
        outgoing,
        coalesced,
        unreadable,
    }
}

/// An envelope as consoles get it: its type, subject, time, simulation flag and data.
fn envelope_message<T: serde::Serialize>(kind: &str, envelope: &Envelope<T>) -> Value {
    json!({
        "type": kind,
        "event_type": envelope.event_type,
        "subject": envelope.subject,
        "time": time(envelope.time),
        "simulated": envelope.simulated,
        "data": envelope.data,
    })
}

/// Detections and rollout events from the events stream's record payloads.
pub fn events<'a>(records: impl IntoIterator<Item = &'a [u8]>) -> Translated {
    let mut translated = Translated::default();
    for data in records {
        let outgoing = if let Ok(e) = Envelope::<AnomalyDetected>::from_slice(data) {
            Outgoing {
                channels: device_channels(&e.data.device_id, e.data.device_type.as_deref(), None),
                message: envelope_message("detection", &e),
            }
        } else if let Ok(e) = Envelope::<AnomalyCleared>::from_slice(data) {
            Outgoing {
                channels: device_channels(&e.data.device_id, None, None),
                message: envelope_message("detection_cleared", &e),
            }
        } else if let Ok(e) = Envelope::<RolloutEvent>::from_slice(data) {
            Outgoing {
                channels: vec![
                    Channel::Rollouts,
                    Channel::Rollout(e.data.rollout_id.clone()),
                ],
                message: envelope_message("rollout", &e),
            }
        } else {
            translated.unreadable += 1;
            continue;
        };
        translated.outgoing.push(outgoing);
    }
    translated
}

/// A DynamoDB stream record, as much of it as the pusher reads.
#[derive(Debug, Deserialize)]
pub struct TableRecord {
    #[serde(rename = "eventName")]
    pub event_name: String,
    pub dynamodb: TableChange,
}

#[derive(Debug, Deserialize)]
pub struct TableChange {
    #[serde(rename = "Keys", default)]
    pub keys: Map<String, Value>,
    #[serde(rename = "NewImage", default)]
    pub new_image: Option<Map<String, Value>>,
}

/// One DynamoDB-JSON attribute (`{"S": "x"}`, `{"N": "1"}`, `{"BOOL": true}`, ...) as
/// plain JSON; binary and set types are not forwarded.
fn plain(attribute: &Value) -> Option<Value> {
    let (kind, value) = attribute.as_object()?.iter().next()?;
    match kind.as_str() {
        "S" => Some(value.clone()),
        "N" => {
            let text = value.as_str()?;
            text.parse::<i64>().map(Value::from).ok().or_else(|| {
                text.parse::<f64>()
                    .ok()
                    .and_then(|f| serde_json::Number::from_f64(f).map(Value::Number))
            })
        }
        "BOOL" => Some(value.clone()),
        "NULL" => Some(Value::Null),
        "L" => Some(Value::Array(
            value.as_array()?.iter().filter_map(plain).collect(),
        )),
        "M" => Some(Value::Object(
            value
                .as_object()?
                .iter()
                .filter_map(|(k, v)| Some((k.clone(), plain(v)?)))
                .collect(),
        )),
        _ => None,
    }
}

/// The listed attributes of an image; those stored as JSON text come back as JSON.
fn listed(image: &Map<String, Value>, names: &[&str], json_text: &[&str]) -> Map<String, Value> {
    names
        .iter()
        .filter_map(|name| {
            let value = plain(image.get(*name)?)?;
            let value = match (&value, json_text.contains(name)) {
                (Value::String(text), true) => serde_json::from_str(text).unwrap_or(value),
                _ => value,
            };
            Some(((*name).to_owned(), value))
        })
        .collect()
}

const ALERT_FIELDS: &[&str] = &[
    "alert_id",
    "device_id",
    "rule_id",
    "metric",
    "severity",
    "state",
    "count",
    "summary",
    "raised_at",
    "window_start",
    "window_end",
    "device_type",
    "acknowledged_at",
    "acknowledged_by",
    "resolved_at",
    "resolved_by",
    "simulated",
];
const DEVICE_FIELDS: &[&str] = &[
    "device_id",
    "device_type",
    "status",
    "serial",
    "group",
    "location",
    "tenant",
    "firmware_version",
    "quarantined",
    "simulated",
    "created_at",
    "updated_at",
    "decommissioned_at",
    "connectivity",
    "last_seen",
];
const COMMAND_FIELDS: &[&str] = &[
    "device_id",
    "command_id",
    "name",
    "params",
    "status",
    "issued_at",
    "expires_at",
    "issued_by",
    "answered_at",
    "result",
    "error",
];
const ROLLOUT_DEVICE_FIELDS: &[&str] = &[
    "rollout_id",
    "device_id",
    "status",
    "attempts",
    "updated_at",
    "previous_version",
    "reason",
    "retry_at",
    "rollback",
];

fn text<'a>(fields: &'a Map<String, Value>, name: &str) -> Option<&'a str> {
    fields.get(name).and_then(Value::as_str)
}

/// One table change as a console event; `None` when the record lacks its keys.
pub fn table_change(table: Table, record: &TableRecord) -> Option<Outgoing> {
    let removed = record.event_name == "REMOVE";
    let image = match (&record.dynamodb.new_image, removed) {
        (Some(image), false) => image,
        _ => &record.dynamodb.keys,
    };
    let (kind, names, json_text): (&str, &[&str], &[&str]) = match table {
        Table::Alerts => ("alert", ALERT_FIELDS, &[]),
        Table::Devices => ("device", DEVICE_FIELDS, &[]),
        Table::Commands => ("command", COMMAND_FIELDS, &["params", "result"]),
        Table::RolloutDevices => ("rollout_device", ROLLOUT_DEVICE_FIELDS, &[]),
    };
    let fields = listed(image, names, json_text);
    let device_id = text(&fields, "device_id")?.to_owned();
    let channels = match table {
        Table::Alerts => {
            let mut channels = vec![Channel::Alerts];
            channels.extend(device_channels(
                &device_id,
                text(&fields, "device_type"),
                None,
            ));
            channels
        }
        Table::Devices => {
            let mut channels = vec![Channel::Fleet];
            channels.extend(device_channels(
                &device_id,
                text(&fields, "device_type"),
                text(&fields, "group"),
            ));
            channels
        }
        Table::Commands => vec![Channel::Device(device_id.clone())],
        Table::RolloutDevices => vec![Channel::Rollout(text(&fields, "rollout_id")?.to_owned())],
    };
    let simulated = fields
        .get("simulated")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    Some(Outgoing {
        channels,
        message: json!({
            "type": kind,
            "change": if removed { "removed" } else if record.event_name == "INSERT" { "created" } else { "updated" },
            "simulated": simulated,
            kind: fields,
        }),
    })
}

/// Table changes from a DynamoDB stream batch's records.
pub fn table_changes(table: Table, records: &[Value]) -> Translated {
    let mut translated = Translated::default();
    for record in records {
        let Ok(record) = serde_json::from_value::<TableRecord>(record.clone()) else {
            translated.unreadable += 1;
            continue;
        };
        match table_change(table, &record) {
            Some(outgoing) => translated.outgoing.push(outgoing),
            // A removal whose keys name no device (an expired alert) reaches no channel.
            None if record.event_name == "REMOVE" => {}
            None => translated.unreadable += 1,
        }
    }
    translated
}
