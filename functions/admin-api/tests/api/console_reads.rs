//! The reads a console needs: the latest reading, the fleet summary, the audit log, and
//! the mark on answers that hold simulated devices' data.

use std::collections::BTreeMap;

use admin_api::{http::to_response, ports::LatestReading};
use chrono::{Duration, Utc};
use serde_json::json;

use crate::support::*;

fn reading(ts: &str, temperature: f64) -> LatestReading {
    LatestReading {
        ts: ts.to_owned(),
        seq: Some(7),
        metrics: BTreeMap::from([("temperature".to_owned(), temperature)]),
        status: "ok".to_owned(),
        received_at: ts.to_owned(),
    }
}

async fn register_simulated(api: &TestApi, id: &str) {
    api.operator()
        .post(
            "/v1/devices",
            json!({"device_id": id, "device_type": "sim-sensor", "simulated": true}),
        )
        .await
        .expect_status(201);
}

#[tokio::test]
async fn the_latest_reading_is_served_and_a_device_without_one_is_a_404() {
    let api = api();
    register(&api, "sensor-1").await.expect_status(201);
    register(&api, "sensor-2").await.expect_status(201);
    api.backend
        .latest
        .lock()
        .unwrap()
        .insert("sensor-1".into(), reading("2026-12-02T10:00:00.000Z", 21.5));

    let got = api
        .viewer()
        .get("/v1/devices/sensor-1/latest")
        .await
        .expect_status(200);
    assert_eq!(got.body["device_id"], "sensor-1");
    assert_eq!(got.body["metrics"]["temperature"], 21.5);
    assert_eq!(got.body["ts"], "2026-12-02T10:00:00.000Z");
    assert!(!got.simulated);
    // Registered but silent, and unknown: both 404, each saying which.
    let silent = api.viewer().get("/v1/devices/sensor-2/latest").await;
    assert_error(&silent, 404, None);
    assert!(silent.body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("reading"));
    assert_error(
        &api.viewer().get("/v1/devices/nope/latest").await,
        404,
        None,
    );

    // The list carries each device's latest on request, null for the silent one.
    let listed = api
        .viewer()
        .get("/v1/devices?include=latest")
        .await
        .expect_status(200);
    let devices = listed.body["devices"].as_array().unwrap();
    assert_eq!(devices.len(), 2);
    assert_eq!(devices[0]["latest"]["metrics"]["temperature"], 21.5);
    assert!(devices[1]["latest"].is_null());
    // Without it, no such field; an unknown include is refused by name.
    let plain = api.viewer().get("/v1/devices").await.expect_status(200);
    assert!(plain.body["devices"][0].get("latest").is_none());
    assert_error(
        &api.viewer().get("/v1/devices?include=shadow").await,
        400,
        Some("include"),
    );
}

#[tokio::test]
async fn the_summary_counts_the_registry() {
    let api = api();
    for id in ["a-1", "a-2", "a-3"] {
        register(&api, id).await.expect_status(201);
    }
    register_simulated(&api, "sim-1").await;
    {
        let mut devices = api.backend.devices.lock().unwrap();
        devices.get_mut("a-1").unwrap().connectivity = Some("connected".into());
        devices.get_mut("a-2").unwrap().connectivity = Some("disconnected".into());
        devices.get_mut("a-2").unwrap().firmware_version = Some("1.2.0".into());
    }
    api.operator()
        .put("/v1/devices/a-3/quarantine", json!({}))
        .await
        .expect_status(200);
    api.admin()
        .delete("/v1/devices/a-1")
        .await
        .expect_status(200);

    let summary = api
        .viewer()
        .get("/v1/fleet/summary")
        .await
        .expect_status(200);
    let body = &summary.body;
    assert_eq!(body["devices"], 4);
    assert_eq!(body["in_service"], 3);
    assert_eq!(body["quarantined"], 1);
    assert_eq!(body["simulated"], 1);
    assert_eq!(
        body["by_status"],
        json!({"decommissioned": 1, "registered": 3})
    );
    // The decommissioned a-1 no longer counts as connected.
    assert_eq!(
        body["by_connectivity"],
        json!({"disconnected": 1, "unknown": 2})
    );
    assert_eq!(
        body["by_firmware_version"],
        json!({"1.2.0": 1, "unknown": 2})
    );
    assert_eq!(body["by_type"], json!({"env-sensor": 2, "sim-sensor": 1}));
    // One simulated device among them marks the answer.
    assert!(summary.simulated);
}

#[tokio::test]
async fn answers_with_simulated_devices_data_say_so_in_a_header() {
    let api = api();
    register(&api, "real-1").await.expect_status(201);
    register_simulated(&api, "sim-1").await;
    api.backend
        .latest
        .lock()
        .unwrap()
        .insert("sim-1".into(), reading("2026-12-02T10:00:00.000Z", 20.0));
    let header = |response: admin_api::ApiResponse| {
        to_response(response)
            .headers()
            .get("x-data-source")
            .map(|v| v.to_str().unwrap().to_owned())
    };
    let viewer = api.viewer();
    assert_eq!(
        header(viewer.get("/v1/devices/sim-1").await.expect_status(200)),
        Some("simulation".into())
    );
    assert_eq!(
        header(
            viewer
                .get("/v1/devices/sim-1/latest")
                .await
                .expect_status(200)
        ),
        Some("simulation".into())
    );
    let query = "metric=temperature&start=2026-12-02T00:00:00Z&end=2026-12-02T01:00:00Z";
    assert_eq!(
        header(
            viewer
                .get(&format!("/v1/query?device_id=sim-1&{query}"))
                .await
                .expect_status(200)
        ),
        Some("simulation".into())
    );
    assert_eq!(
        header(viewer.get("/v1/devices").await.expect_status(200)),
        Some("simulation".into())
    );
    // The controls: a real device's answers carry no mark.
    assert_eq!(
        header(viewer.get("/v1/devices/real-1").await.expect_status(200)),
        None
    );
    assert_eq!(
        header(
            viewer
                .get(&format!("/v1/query?device_id=real-1&{query}"))
                .await
                .expect_status(200)
        ),
        None
    );
    assert_eq!(
        header(
            viewer
                .get("/v1/devices?type=env-sensor")
                .await
                .expect_status(200)
        ),
        None
    );
}

#[tokio::test]
async fn the_audit_log_reads_back_newest_first_across_days_for_admins_only() {
    let api = api();
    // Five changes today, then three rows moved to two days ago.
    for id in ["d-1", "d-2", "d-3", "d-4", "d-5"] {
        register(&api, id).await.expect_status(201);
    }
    {
        let mut audit = api.backend.audit.lock().unwrap();
        for (entry, _) in audit.iter_mut().take(3) {
            entry.at -= Duration::days(2);
        }
    }
    // A refused change is logged with its outcome too.
    register(&api, "d-5").await.expect_status(409);

    assert_error(&api.operator().get("/v1/audit").await, 403, None);
    let mut seen = Vec::new();
    let mut next: Option<String> = None;
    let mut pages = 0;
    loop {
        let target = match &next {
            Some(token) => format!("/v1/audit?limit=2&next_token={token}"),
            None => "/v1/audit?limit=2".to_owned(),
        };
        let page = api.admin().get(&target).await.expect_status(200);
        pages += 1;
        for entry in page.body["entries"].as_array().unwrap() {
            seen.push((
                entry["target"].as_str().unwrap().to_owned(),
                entry["outcome"].as_str().unwrap().to_owned(),
                entry["at"].as_str().unwrap().to_owned(),
            ));
        }
        match page.body["next_token"].as_str() {
            Some(token) => next = Some(token.to_owned()),
            None => break,
        }
        assert!(pages < 10, "paging does not end");
    }
    let targets: Vec<(&str, &str)> = seen
        .iter()
        .map(|(t, o, _)| (t.as_str(), o.as_str()))
        .collect();
    assert_eq!(
        targets,
        [
            ("d-5", "refused"),
            ("d-5", "done"),
            ("d-4", "done"),
            ("d-3", "done"),
            ("d-2", "done"),
            ("d-1", "done"),
        ]
    );
    let times: Vec<&str> = seen.iter().map(|(_, _, at)| at.as_str()).collect();
    assert!(times.windows(2).all(|w| w[0] >= w[1]), "{times:?}");

    // A window that leaves out two days ago leaves out its rows.
    let today = Utc::now().date_naive();
    let recent = api
        .admin()
        .get(&format!("/v1/audit?since={today}"))
        .await
        .expect_status(200);
    assert_eq!(recent.body["entries"].as_array().unwrap().len(), 3);
    for (query, field) in [
        ("since=yesterday", "since"),
        ("until=2026-13-01", "until"),
        ("until=0001-01-01", "until"),
        ("since=-262144-01-01", "since"),
        ("since=2026-01-10&until=2026-01-01", "since"),
        ("since=2026-01-01&until=2026-03-01", "since"),
        ("next_token=!!", "next_token"),
        ("limit=0", "limit"),
    ] {
        assert_error(
            &api.admin().get(&format!("/v1/audit?{query}")).await,
            400,
            Some(field),
        );
    }
    // Reading is not a change: the reads added no rows.
    assert_eq!(api.backend.audit.lock().unwrap().len(), 6);
}
