use hub_detection::DeviceState;
use hub_runtime::dynamodb::{n, number, s};
use hub_telemetry::hot_store::{sort_key_ceiling, sort_key_floor};

use super::{describe, AwsBackend};
use crate::ports::*;

impl History for AwsBackend {
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
