//! What a batch of normalized events must write, computed without I/O (`plan`), and
//! the writes in their order (`store`).

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Utc};
use hub_events::{Envelope, NormalizedTelemetry};
use hub_runtime::{dead_letter::DeadLetter, stream::StreamRecord};

use crate::ports::{StoreError, Stores};

/// One hot-store row: a metric's value at a measurement time.
#[derive(Debug, Clone, PartialEq)]
pub struct HotRow {
    /// `device#metric`
    pub series: String,
    /// Range key: `sort_key(ts_ms, seq, event id)`.
    pub sort_key: String,
    pub ts_ms: i64,
    pub value: f64,
    pub unit: Option<String>,
    pub device_id: String,
    pub seq: Option<u64>,
    pub clock_skew_corrected: bool,
    pub simulated: bool,
    /// Epoch seconds after which DynamoDB's TTL removes the row.
    pub expires_at: i64,
}

/// The newest reading of a device in this batch.
#[derive(Debug, Clone, PartialEq)]
pub struct LatestReading {
    pub device_id: String,
    pub ts_ms: i64,
    pub seq: Option<u64>,
    pub metrics: BTreeMap<String, f64>,
    pub status: String,
    pub received_at: DateTime<Utc>,
}

/// One archive object: a device's events of one day from this batch, as JSON lines.
#[derive(Debug, Clone, PartialEq)]
pub struct ArchiveObject {
    pub key: String,
    pub body: Vec<u8>,
    pub records: usize,
}

#[derive(Debug, Default)]
pub struct Plan {
    pub rows: Vec<HotRow>,
    pub latest: Vec<LatestReading>,
    pub archive: Vec<ArchiveObject>,
    pub dead_letters: Vec<DeadLetter>,
    /// Readings accepted (each gives one row per metric).
    pub readings: u64,
}

pub use hub_telemetry::hot_store::{series, sort_key, sort_key_ceiling, sort_key_floor};

pub fn plan(records: &[StreamRecord], retention_days: i64) -> Plan {
    let mut plan = Plan::default();
    // Keyed so that a series/time pair appears once: BatchWriteItem refuses duplicate keys.
    let mut rows: BTreeMap<(String, String), HotRow> = BTreeMap::new();
    let mut latest: HashMap<String, LatestReading> = HashMap::new();
    let mut archive: BTreeMap<(String, String), (String, Vec<u8>, usize)> = BTreeMap::new();
    for record in records {
        let event = match Envelope::<NormalizedTelemetry>::from_slice(&record.data) {
            Ok(event) => event,
            Err(err) => {
                plan.dead_letters.push(DeadLetter {
                    reason: "invalid_event",
                    detail: err.to_string(),
                    device_id: None,
                    position: record.position.clone(),
                    received_at: None,
                    original: base64::Engine::encode(
                        &base64::engine::general_purpose::STANDARD,
                        &record.data,
                    ),
                });
                continue;
            }
        };
        plan.readings += 1;
        let reading = &event.data;
        let ts_ms = reading.ts.timestamp_millis();
        let expires_at = reading.ts.timestamp() + retention_days * 86_400;
        for (metric, value) in &reading.metrics {
            let series = series(&reading.device_id, metric);
            let sort_key = sort_key(ts_ms, reading.seq, &event.id);
            rows.insert(
                (series.clone(), sort_key.clone()),
                HotRow {
                    series,
                    sort_key,
                    ts_ms,
                    value: *value,
                    unit: reading.units.get(metric).cloned(),
                    device_id: reading.device_id.clone(),
                    seq: reading.seq,
                    clock_skew_corrected: reading.clock_skew_corrected,
                    simulated: event.simulated,
                    expires_at,
                },
            );
        }
        let newest = latest
            .entry(reading.device_id.clone())
            .or_insert_with(|| LatestReading {
                device_id: reading.device_id.clone(),
                ts_ms: i64::MIN,
                seq: None,
                metrics: BTreeMap::new(),
                status: String::new(),
                received_at: reading.received_at,
            });
        if ts_ms > newest.ts_ms {
            newest.ts_ms = ts_ms;
            newest.seq = reading.seq;
            newest.metrics = reading.metrics.clone();
            newest.status = reading.status.clone();
            newest.received_at = reading.received_at;
        }
        let day = reading.ts.format("%Y/%m/%d").to_string();
        let object = archive
            .entry((reading.device_id.clone(), day.clone()))
            .or_insert_with(|| {
                // The first record's position names the object, so a redelivered batch
                // overwrites it instead of adding a copy.
                let name = record.position.replace(':', "-");
                (
                    format!("{}/{day}/{name}.jsonl", reading.device_id),
                    Vec::new(),
                    0,
                )
            });
        object.1.extend_from_slice(&record.data);
        object.1.push(b'\n');
        object.2 += 1;
    }
    plan.rows = rows.into_values().collect();
    plan.latest = latest.into_values().collect();
    plan.latest.sort_by(|a, b| a.device_id.cmp(&b.device_id));
    plan.archive = archive
        .into_values()
        .map(|(key, body, records)| ArchiveObject { key, body, records })
        .collect();
    plan
}

#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Summary {
    pub readings: u64,
    pub rows: u64,
    pub latest_advanced: u64,
    pub archive_objects: u64,
    pub dead_lettered: u64,
}

/// Writes a batch. Order: archive and dead letters first (nothing is acknowledged before
/// it is kept), then rows, then latest values. All writes are idempotent.
pub async fn store<S: Stores>(
    stores: &S,
    records: &[StreamRecord],
    retention_days: i64,
) -> Result<Summary, StoreError> {
    let plan = plan(records, retention_days);
    if !plan.dead_letters.is_empty() {
        stores.dead_letter(&plan.dead_letters).await?;
    }
    if !plan.archive.is_empty() {
        stores.archive(&plan.archive).await?;
    }
    if !plan.rows.is_empty() {
        stores.put_rows(&plan.rows).await?;
    }
    let latest_advanced = if plan.latest.is_empty() {
        0
    } else {
        stores.advance_latest(&plan.latest).await?
    };
    Ok(Summary {
        readings: plan.readings,
        rows: plan.rows.len() as u64,
        latest_advanced,
        archive_objects: plan.archive.len() as u64,
        dead_lettered: plan.dead_letters.len() as u64,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sort_keys_order_by_time_then_seq_and_ranges_cover_them() {
        let keys = [
            sort_key(999, Some(5), "e0"),
            sort_key(1000, Some(2), "e1"),
            sort_key(1000, Some(10), "e2"),
            sort_key(1000, None, "e3"),
            sort_key(1001, Some(1), "e4"),
        ];
        let mut sorted = keys.clone();
        sorted.sort();
        assert_eq!(sorted, keys);
        let (floor, ceiling) = (sort_key_floor(1000), sort_key_ceiling(1000));
        let inside: Vec<&String> = keys
            .iter()
            .filter(|k| **k >= floor && **k <= ceiling)
            .collect();
        assert_eq!(inside, [&keys[1], &keys[2], &keys[3]]);
    }
}
