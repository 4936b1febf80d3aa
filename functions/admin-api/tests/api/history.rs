//! History queries: downsampled readings, aggregates for long ranges.

use admin_api::ports::{Point, WindowRow};
use serde_json::json;

use crate::support::*;

fn seed_series(api: &TestApi, series: &str, n: usize, start_ms: i64, step_ms: i64) {
    let points: Vec<Point> = (0..n)
        .map(|i| Point {
            ts_ms: start_ms + i as i64 * step_ms,
            value: (i % 1000) as f64 / 10.0,
        })
        .collect();
    api.backend
        .readings
        .lock()
        .unwrap()
        .insert(series.to_owned(), points);
}

#[tokio::test]
async fn history_queries_downsample_readings_and_use_aggregates_for_long_ranges() {
    let api = api();
    let t0 = 1_795_428_000_000i64; // 2026-11-23T10:00:00Z
    seed_series(&api, "s-1#temperature", 20_000, t0, 1000);
    let raw = api
        .viewer()
        .get(&format!(
            "/v1/query?device_id=s-1&metric=Temperature&start={t0}&end={}&max_points=500",
            t0 + 20_000_000
        ))
        .await
        .expect_status(200);
    assert_eq!(raw.body["source"], "raw");
    assert_eq!(raw.body["metric"], "temperature");
    assert_eq!(raw.body["points_in_range"], 20_000);
    let points = raw.body["points"].as_array().unwrap();
    assert!(
        points.len() <= 500 && points.len() > 400,
        "{}",
        points.len()
    );
    assert_eq!(points[0]["ts"], "2026-11-23T10:00:00.000Z");
    assert!(points.iter().any(|p| p["value"] == 99.9));
    assert!(points.iter().any(|p| p["value"] == 0.0));

    // A year at 1,000 points: one point per ~8.8 h, far coarser than a 5-minute window.
    api.backend.windows.lock().unwrap().insert(
        "s-1#temperature".into(),
        (0..2000)
            .map(|i| WindowRow {
                start_ms: t0 + i * 300_000,
                count: 10,
                mean: 20.0,
                m2: 9.0,
                min: 18.0,
                max: 22.0 + i as f64 / 1000.0,
            })
            .collect(),
    );
    let year = api.viewer().get("/v1/query?device_id=s-1&metric=temperature&start=2026-11-01T00:00:00Z&end=2027-11-01T00:00:00Z")
    .await
    .expect_status(200);
    assert_eq!(year.body["source"], "aggregates");
    assert_eq!(year.body["points_in_range"], 20_000);
    let points = year.body["points"].as_array().unwrap();
    assert_eq!(points.len(), 1000);
    assert_eq!(
        points
            .iter()
            .map(|p| p["count"].as_u64().unwrap())
            .sum::<u64>(),
        20_000
    );
    assert_eq!(points.last().unwrap()["max"], json!(22.0 + 1999.0 / 1000.0));

    for (query, field) in [
        (
            "device_id=s-1&metric=temperature&start=2026-11-02T00:00:00Z&end=2026-11-01T00:00:00Z",
            "end",
        ),
        ("metric=temperature&start=1&end=2", "device_id"),
        ("device_id=s-1&start=1&end=2", "metric"),
        ("device_id=s-1&metric=t%20x&start=1&end=2", "metric"),
        (
            "device_id=s-1&metric=temperature&start=yesterday&end=2",
            "start",
        ),
        (
            "device_id=s-1&metric=temperature&start=1&end=2&max_points=10001",
            "max_points",
        ),
        (
            "device_id=s-1&metric=temperature&start=1&end=2&max_points=3",
            "max_points",
        ),
        (
            "device_id=s-1&metric=temperature&start=1&end=99999999999999",
            "end",
        ),
        (
            "device_id=s-1&metric=temperature&start=1&end=2&source=cache",
            "source",
        ),
    ] {
        let response = api.viewer().get(&format!("/v1/query?{query}")).await;
        assert_eq!(response.status, 400, "{query}: {}", response.body);
        assert_eq!(response.body["error"]["field"], json!(field), "{query}");
    }
}
