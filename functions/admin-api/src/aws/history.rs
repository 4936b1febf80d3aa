use std::collections::{BTreeMap, HashMap};

use hub_detection::DeviceState;
use hub_runtime::dynamodb::{batch_get, key, n, number, s, string, Item};
use hub_telemetry::hot_store::{sort_key_ceiling, sort_key_floor};

use super::{describe, AwsBackend};
use crate::ports::*;

/// A latest-table row (written by the telemetry store): `ts` epoch ms, `metrics` a map.
fn latest_reading(item: &Item) -> Option<(String, LatestReading)> {
    let ts = chrono::DateTime::from_timestamp_millis(number(item, "ts")?)?;
    let metrics = item
        .get("metrics")?
        .as_m()
        .ok()?
        .iter()
        .filter_map(|(name, value)| Some((name.clone(), value.as_n().ok()?.parse().ok()?)))
        .collect::<BTreeMap<_, _>>();
    Some((
        string(item, "device_id")?,
        LatestReading {
            ts: ts.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            seq: number(item, "seq"),
            metrics,
            status: string(item, "status")?,
            received_at: string(item, "received_at")?,
        },
    ))
}

impl History for AwsBackend {
    async fn latest(
        &self,
        device_ids: &[String],
    ) -> Result<HashMap<String, LatestReading>, PortError> {
        if device_ids.is_empty() {
            return Ok(HashMap::new());
        }
        let keys = device_ids.iter().map(|id| key("device_id", id)).collect();
        let items = batch_get(&self.dynamodb, &self.tables.latest, keys)
            .await
            .map_err(|e| PortError::new("latest read", e))?;
        Ok(items.iter().filter_map(latest_reading).collect())
    }

    async fn readings(
        &self,
        series: &str,
        start_ms: i64,
        end_ms: i64,
        limit: usize,
    ) -> Result<(Vec<Point>, bool), PortError> {
        let mut points = Vec::new();
        let mut items = self
            .dynamodb
            .query()
            .table_name(&self.tables.telemetry)
            .key_condition_expression("series = :s AND ts_seq BETWEEN :a AND :b")
            .expression_attribute_values(":s", s(series))
            .expression_attribute_values(":a", s(sort_key_floor(start_ms)))
            .expression_attribute_values(":b", s(sort_key_ceiling(end_ms)))
            .projection_expression("ts, #value")
            .expression_attribute_names("#value", "value")
            .into_paginator()
            .items()
            .send();
        while let Some(item) = items.next().await {
            let item = item.map_err(|e| PortError::new("history read", describe(e)))?;
            if points.len() == limit {
                return Ok((points, true));
            }
            if let (Some(ts_ms), Some(value)) = (number(&item, "ts"), number(&item, "value")) {
                points.push(Point { ts_ms, value });
            }
        }
        Ok((points, false))
    }

    async fn windows(
        &self,
        series: &str,
        start_ms: i64,
        end_ms: i64,
    ) -> Result<Vec<WindowRow>, PortError> {
        let mut rows = Vec::new();
        let mut items = self
            .dynamodb
            .query()
            .table_name(&self.tables.aggregates)
            .key_condition_expression("series = :s AND window_start BETWEEN :a AND :b")
            .expression_attribute_values(":s", s(series))
            .expression_attribute_values(":a", n(start_ms))
            .expression_attribute_values(":b", n(end_ms))
            .into_paginator()
            .items()
            .send();
        while let Some(item) = items.next().await {
            let item = item.map_err(|e| PortError::new("aggregates read", describe(e)))?;
            let row = (|| {
                Some(WindowRow {
                    start_ms: number(&item, "window_start")?,
                    count: number(&item, "count")?,
                    mean: number(&item, "mean")?,
                    m2: number(&item, "m2")?,
                    min: number(&item, "min")?,
                    max: number(&item, "max")?,
                })
            })();
            rows.extend(row);
        }
        // The window the series is in is stored only once the series moves past it; until
        // then it rides in its device's detector state.
        let Some((device_id, metric)) = series.rsplit_once('#') else {
            return Ok(rows);
        };
        let state = self
            .dynamodb
            .get_item()
            .table_name(&self.tables.detector_state)
            .key("device_id", s(device_id))
            .projection_expression("#state")
            .expression_attribute_names("#state", "state")
            .send()
            .await
            .map_err(|e| PortError::new("detector state read", describe(e)))?;
        let open = state
            .item()
            .and_then(|item| item.get("state"))
            .and_then(|state| state.as_b().ok())
            .and_then(|bytes| DeviceState::decode(bytes.as_ref()).ok())
            .and_then(|state| state.metrics.get(metric)?.open_window);
        if let Some(open) = open {
            let open_ms = open.start.timestamp_millis();
            if (start_ms..=end_ms).contains(&open_ms) && !rows.iter().any(|r| r.start_ms == open_ms)
            {
                rows.push(WindowRow {
                    start_ms: open_ms,
                    count: open.aggregate.stats.count,
                    mean: open.aggregate.stats.mean,
                    m2: open.aggregate.stats.m2,
                    min: open.aggregate.min,
                    max: open.aggregate.max,
                });
                rows.sort_by_key(|r| r.start_ms);
            }
        }
        Ok(rows)
    }
}
