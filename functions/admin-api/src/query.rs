//! `GET /v1/query`: one device's metric over a time range, at most `max_points` points.
//! Ranges where a point would cover at least one aggregate window are answered from the
//! window aggregates; shorter ones from the hot store's readings, downsampled.

use chrono::{DateTime, TimeZone, Utc};
use serde_json::{json, Value};

use crate::{
    devices::device_id,
    downsample::{merge_windows, min_max, MIN_POINTS},
    error::ApiError,
    ports::{History, Registry},
    request::{ApiRequest, ApiResponse},
};

pub const MAX_POINTS: usize = 10_000;
pub const DEFAULT_POINTS: usize = 1_000;
/// Readings read from the hot store for one query at most; beyond, aggregates answer.
pub const MAX_RAW_READINGS: usize = 2_000_000;
/// The longest range one query may cover.
pub const MAX_RANGE_DAYS: i64 = 800;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Source {
    Auto,
    Raw,
    Aggregates,
}

/// RFC 3339 or epoch milliseconds.
fn instant(field: &str, text: Option<&str>) -> Result<DateTime<Utc>, ApiError> {
    let text = text.ok_or_else(|| ApiError::invalid(field, format!("{field} is required")))?;
    if let Ok(ms) = text.parse::<i64>() {
        return Utc
            .timestamp_millis_opt(ms)
            .single()
            .ok_or_else(|| ApiError::invalid(field, format!("{field} is out of range")));
    }
    DateTime::parse_from_rfc3339(text)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|_| {
            ApiError::invalid(
                field,
                format!("{field} must be an RFC 3339 time or epoch milliseconds, not {text:?}"),
            )
        })
}

fn time(ms: i64) -> String {
    Utc.timestamp_millis_opt(ms)
        .single()
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
        .unwrap_or_default()
}

pub async fn query<H: History + Registry>(
    history: &H,
    request: &ApiRequest,
    window_seconds: i64,
) -> Result<ApiResponse, ApiError> {
    let device = device_id(
        "device_id",
        request
            .query("device_id")
            .ok_or_else(|| ApiError::invalid("device_id", "device_id is required"))?,
    )?;
    let metric = request
        .query("metric")
        .ok_or_else(|| ApiError::invalid("metric", "metric is required"))?;
    let metric = hub_telemetry::units::canonical_name(metric)
        .map_err(|e| ApiError::invalid("metric", e.to_string()))?;
    let start = instant("start", request.query("start"))?;
    let end = instant("end", request.query("end"))?;
    if end <= start {
        return Err(ApiError::invalid("end", "end must be after start"));
    }
    if end - start > chrono::Duration::days(MAX_RANGE_DAYS) {
        return Err(ApiError::invalid(
            "end",
            format!("a query covers at most {MAX_RANGE_DAYS} days"),
        ));
    }
    let max_points = request.query_number("max_points", DEFAULT_POINTS, MIN_POINTS..=MAX_POINTS)?;
    let source = match request.query("source") {
        None | Some("auto") => Source::Auto,
        Some("raw") => Source::Raw,
        Some("aggregates") => Source::Aggregates,
        Some(_) => {
            return Err(ApiError::invalid(
                "source",
                "source must be one of auto, raw, aggregates",
            ))
        }
    };
    // A device that is not (or no longer) registered may still have history; only a
    // registered simulated one marks the answer.
    let simulated = history.get(&device).await?.is_some_and(|d| d.simulated);
    let (start_ms, end_ms) = (start.timestamp_millis(), end.timestamp_millis());
    let series = format!("{device}#{metric}");
    let per_point_ms = (end_ms - start_ms) / max_points as i64;
    let coarse = per_point_ms >= window_seconds * 1000;

    let mut body = json!({
        "device_id": device,
        "metric": metric,
        "unit": hub_telemetry::units::unit_of(&metric),
        "start": time(start_ms),
        "end": time(end_ms),
        "max_points": max_points,
    });
    if source == Source::Raw || (source == Source::Auto && !coarse) {
        let (readings, more) = history
            .readings(&series, start_ms, end_ms, MAX_RAW_READINGS)
            .await?;
        if !more {
            let points = min_max(&readings, max_points);
            body["source"] = json!("raw");
            body["points_in_range"] = json!(readings.len());
            body["points"] = points
                .iter()
                .map(|p| json!({ "ts": time(p.ts_ms), "value": p.value }))
                .collect::<Value>();
            return Ok(ApiResponse::ok(body).simulated(simulated));
        }
        if source == Source::Raw {
            return Err(ApiError::invalid(
                "end",
                format!("more than {MAX_RAW_READINGS} readings in range; narrow it or use source=aggregates"),
            ));
        }
    }
    // Windows that start before `start` but overlap it count too.
    let windows = history
        .windows(&series, start_ms - window_seconds * 1000 + 1, end_ms)
        .await?;
    let merged = merge_windows(&windows, max_points);
    body["source"] = json!("aggregates");
    body["points_in_range"] = json!(windows.iter().map(|w| w.count).sum::<u64>());
    body["window_seconds"] = json!(window_seconds);
    body["points"] = merged
        .iter()
        .map(|w| {
            let stddev = if w.count > 1 {
                (w.m2 / (w.count - 1) as f64).sqrt()
            } else {
                0.0
            };
            json!({
                "ts": time(w.start_ms),
                "count": w.count,
                "avg": w.mean,
                "min": w.min,
                "max": w.max,
                "stddev": stddev,
            })
        })
        .collect::<Value>();
    Ok(ApiResponse::ok(body).simulated(simulated))
}
