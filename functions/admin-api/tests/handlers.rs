//! The admin API's handlers against the in-memory backend: answers, effects on the
//! registry and IoT, the audit trail, and refusals that change nothing.

use admin_api::{
    auth::{Principal, Role},
    http::api_request,
    memory::MemoryBackend,
    ports::{AlertRecord, CertificateState, DeviceStatus, Point, WindowRow},
    routes, sweeper, Api, ApiConfig, ApiRequest, ApiResponse,
};
use chrono::{Duration, Utc};
use hub_events::{AlertState, RolloutEventKind};
use serde_json::{json, Value};

fn api() -> Api<MemoryBackend> {
    Api::new(MemoryBackend::default(), ApiConfig::default())
}

async fn call(
    api: &Api<MemoryBackend>,
    role: Role,
    method: &str,
    target: &str,
    body: Value,
) -> ApiResponse {
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let (route, params) = routes::resolve(method, path).expect("a route");
    let request = ApiRequest {
        route,
        params: params.into_iter().collect(),
        query: query
            .split('&')
            .filter(|p| !p.is_empty())
            .map(|p| {
                let (k, v) = p.split_once('=').unwrap_or((p, ""));
                (k.to_owned(), v.to_owned())
            })
            .collect(),
        body: if body.is_null() {
            Vec::new()
        } else {
            body.to_string().into_bytes()
        },
        principal: Principal {
            subject: format!("{role:?}-client").to_lowercase(),
            role,
        },
        request_id: uuid::Uuid::new_v4().to_string(),
    };
    api.handle(&request).await
}

fn csr(cn: &str) -> String {
    let key = rcgen::KeyPair::generate().unwrap();
    let mut params = rcgen::CertificateParams::default();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, cn);
    params.serialize_request(&key).unwrap().pem().unwrap()
}

fn assert_error(response: &ApiResponse, status: u16, field: Option<&str>) {
    assert_eq!(response.status, status, "{}", response.body);
    assert!(
        response.body["error"]["message"].as_str().is_some(),
        "{}",
        response.body
    );
    if let Some(field) = field {
        assert_eq!(
            response.body["error"]["field"],
            json!(field),
            "{}",
            response.body
        );
    }
}

async fn register(api: &Api<MemoryBackend>, id: &str) -> ApiResponse {
    call(
        api,
        Role::Operator,
        "POST",
        "/v1/devices",
        json!({"device_id": id, "device_type": "env-sensor", "group": "plant-a", "location": "hall 3"}),
    )
    .await
}

#[tokio::test]
async fn registration_creates_the_thing_and_the_row_once() {
    let api = api();
    let created = register(&api, "sensor-1").await;
    assert_eq!(created.status, 201, "{}", created.body);
    assert_eq!(created.body["status"], "registered");
    assert_eq!(created.body["group"], "plant-a");
    let iot = api.backend.iot.lock().unwrap().things.clone();
    assert_eq!(
        iot.get("sensor-1"),
        Some(&("env-sensor".to_owned(), Some("plant-a".to_owned())))
    );
    drop(iot);
    assert_error(&register(&api, "sensor-1").await, 409, None);
    let got = call(
        &api,
        Role::Viewer,
        "GET",
        "/v1/devices/sensor-1",
        Value::Null,
    )
    .await;
    assert_eq!(got.status, 200);
    assert_eq!(got.body["device_type"], "env-sensor");
    assert_error(
        &call(&api, Role::Viewer, "GET", "/v1/devices/nope", Value::Null).await,
        404,
        None,
    );
}

#[tokio::test]
async fn bad_registrations_name_the_field_and_change_nothing() {
    let api = api();
    let cases = [
        (json!({"device_type": "env-sensor"}), "device_id"),
        (
            json!({"device_id": "a.b", "device_type": "env-sensor"}),
            "device_id",
        ),
        (
            json!({"device_id": "a", "device_type": "Env Sensor"}),
            "device_type",
        ),
        (
            json!({"device_id": 7, "device_type": "env-sensor"}),
            "device_id",
        ),
        (
            json!({"device_id": "a", "device_type": "t", "colour": "red"}),
            "colour",
        ),
        (
            json!({"device_id": "a", "device_type": "t", "location": "x".repeat(300)}),
            "location",
        ),
        (
            json!({"device_id": "a", "device_type": "t", "group": "has space"}),
            "group",
        ),
        (
            json!({"device_id": "a", "device_type": "t", "serial": "  "}),
            "serial",
        ),
        // An optional field is absent or has a value; the document allows no null.
        (
            json!({"device_id": "a", "device_type": "t", "serial": null}),
            "serial",
        ),
        // The local stack's bridge connects as hub-local-bridge, with every topic.
        (
            json!({"device_id": "hub-local-bridge", "device_type": "t"}),
            "device_id",
        ),
    ];
    for (body, field) in cases {
        let response = call(&api, Role::Operator, "POST", "/v1/devices", body.clone()).await;
        assert_eq!(response.status, 400, "{body} -> {}", response.body);
        if field != "." {
            assert_eq!(response.body["error"]["field"], json!(field), "{body}");
        }
    }
    // Not JSON at all, and trailing garbage.
    for raw in [
        "{",
        "not json",
        "{\"device_id\":\"a\",\"device_type\":\"t\"} x",
    ] {
        let (route, _) = routes::resolve("POST", "/v1/devices").unwrap();
        let request = ApiRequest {
            route,
            params: Default::default(),
            query: Default::default(),
            body: raw.as_bytes().to_vec(),
            principal: Principal {
                subject: "op".into(),
                role: Role::Operator,
            },
            request_id: "r".into(),
        };
        assert_error(&api.handle(&request).await, 400, None);
    }
    assert!(api.backend.devices.lock().unwrap().is_empty());
    assert!(api.backend.iot.lock().unwrap().things.is_empty());
}

#[tokio::test]
async fn roles_are_enforced_before_anything_happens_and_changes_are_audited() {
    let api = api();
    let refused = call(
        &api,
        Role::Viewer,
        "POST",
        "/v1/devices",
        json!({"device_id": "d1", "device_type": "t"}),
    )
    .await;
    assert_error(&refused, 403, None);
    assert!(api.backend.devices.lock().unwrap().is_empty());
    assert_eq!(register(&api, "d1").await.status, 201);
    // Credentials are for admins only.
    assert_error(
        &call(
            &api,
            Role::Operator,
            "POST",
            "/v1/devices/d1/certificates",
            json!({"csr": csr("d1")}),
        )
        .await,
        403,
        None,
    );
    assert_error(
        &call(
            &api,
            Role::Operator,
            "DELETE",
            "/v1/devices/d1",
            Value::Null,
        )
        .await,
        403,
        None,
    );
    // Reads are not audited; every permitted change is, with its outcome.
    call(&api, Role::Viewer, "GET", "/v1/devices", Value::Null).await;
    assert_error(&register(&api, "d1").await, 409, None);
    let audit = api.backend.audit.lock().unwrap().clone();
    let rows: Vec<(String, Option<String>, String, Option<u16>)> = audit
        .into_iter()
        .map(|(e, status)| (e.action, e.target, e.actor, status))
        .collect();
    assert_eq!(
        rows,
        vec![
            (
                "POST /v1/devices".into(),
                Some("d1".into()),
                "operator-client".into(),
                Some(201)
            ),
            (
                "POST /v1/devices".into(),
                Some("d1".into()),
                "operator-client".into(),
                Some(409)
            ),
        ]
    );
}

#[tokio::test]
async fn listing_filters_and_pages() {
    let api = api();
    for i in 0..7 {
        register(&api, &format!("dev-{i}")).await;
    }
    call(
        &api,
        Role::Operator,
        "PATCH",
        "/v1/devices/dev-3",
        json!({"device_type": "power-meter", "group": "plant-b"}),
    )
    .await;
    let mut seen = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let target = match &token {
            Some(t) => format!("/v1/devices?type=env-sensor&limit=4&next_token={t}"),
            None => "/v1/devices?type=env-sensor&limit=4".to_owned(),
        };
        let page = call(&api, Role::Viewer, "GET", &target, Value::Null).await;
        assert_eq!(page.status, 200, "{}", page.body);
        for d in page.body["devices"].as_array().unwrap() {
            seen.push(d["device_id"].as_str().unwrap().to_owned());
        }
        match page.body["next_token"].as_str() {
            Some(t) => token = Some(t.to_owned()),
            None => break,
        }
    }
    assert_eq!(seen, ["dev-0", "dev-1", "dev-2", "dev-4", "dev-5", "dev-6"]);
    let by_group = call(
        &api,
        Role::Viewer,
        "GET",
        "/v1/devices?group=plant-b",
        Value::Null,
    )
    .await;
    assert_eq!(by_group.body["devices"][0]["device_id"], "dev-3");
    let things = api.backend.iot.lock().unwrap().things.clone();
    assert_eq!(things["dev-3"].1.as_deref(), Some("plant-b"));
    for bad in [
        "/v1/devices?limit=0",
        "/v1/devices?limit=abc",
        "/v1/devices?status=gone",
        "/v1/devices?next_token=%%%",
        // An empty value is a value, not an absent parameter.
        "/v1/devices?limit=",
        "/v1/devices?group=",
    ] {
        let response = call(&api, Role::Viewer, "GET", bad, Value::Null).await;
        assert_eq!(response.status, 400, "{bad}: {}", response.body);
        assert!(response.body["error"]["field"].is_string(), "{bad}");
    }
}

#[tokio::test]
async fn certificates_are_issued_from_the_device_csr_rotated_and_retired() {
    let api = api();
    register(&api, "cam-1").await;
    let wrong = call(
        &api,
        Role::Admin,
        "POST",
        "/v1/devices/cam-1/certificates",
        json!({"csr": csr("cam-2")}),
    )
    .await;
    assert_error(&wrong, 400, Some("csr"));
    let first = call(
        &api,
        Role::Admin,
        "POST",
        "/v1/devices/cam-1/certificates",
        json!({"csr": csr("cam-1")}),
    )
    .await;
    assert_eq!(first.status, 201, "{}", first.body);
    let first_id = first.body["certificate_id"].as_str().unwrap().to_owned();
    assert!(first.body["certificate_pem"]
        .as_str()
        .unwrap()
        .contains("BEGIN CERTIFICATE"));
    let device = call(&api, Role::Viewer, "GET", "/v1/devices/cam-1", Value::Null).await;
    assert_eq!(device.body["status"], "active");
    assert_error(
        &call(
            &api,
            Role::Admin,
            "POST",
            "/v1/devices/cam-1/certificates",
            json!({"csr": csr("cam-1")}),
        )
        .await,
        409,
        None,
    );

    let rotated = call(
        &api,
        Role::Admin,
        "POST",
        "/v1/devices/cam-1/certificates/rotate",
        json!({"csr": csr("cam-1"), "grace_seconds": 60}),
    )
    .await;
    assert_eq!(rotated.status, 201, "{}", rotated.body);
    assert_eq!(
        rotated.body["retiring"][0]["certificate_id"],
        json!(first_id)
    );
    assert_eq!(rotated.body["retiring"][0]["state"], "retiring");
    assert_eq!(
        api.backend.iot.lock().unwrap().certificate_status[&first_id],
        "ACTIVE"
    );

    // Within the grace period nothing happens; after it, deactivated, then revoked.
    let report = sweeper::sweep(&api.backend, Utc::now()).await.unwrap();
    assert_eq!(report, sweeper::SweepReport::default());
    let later = Utc::now() + Duration::seconds(61);
    let report = sweeper::sweep(&api.backend, later).await.unwrap();
    assert_eq!((report.deactivated, report.revoked), (1, 0));
    assert_eq!(
        api.backend.iot.lock().unwrap().certificate_status[&first_id],
        "INACTIVE"
    );
    let report = sweeper::sweep(&api.backend, later).await.unwrap();
    assert_eq!((report.deactivated, report.revoked), (0, 1));
    {
        let iot = api.backend.iot.lock().unwrap();
        assert_eq!(iot.certificate_status[&first_id], "REVOKED");
        assert_eq!(
            iot.attached.len(),
            1,
            "only the new certificate stays attached"
        );
    }
    let listed = call(
        &api,
        Role::Viewer,
        "GET",
        "/v1/devices/cam-1/certificates",
        Value::Null,
    )
    .await;
    let states: Vec<&str> = listed.body["certificates"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["state"].as_str().unwrap())
        .collect();
    assert_eq!(states.iter().filter(|s| **s == "active").count(), 1);
    assert_eq!(states.iter().filter(|s| **s == "revoked").count(), 1);

    for (body, field) in [
        (
            json!({"csr": csr("cam-1"), "grace_seconds": -1}),
            "grace_seconds",
        ),
        (
            json!({"csr": csr("cam-1"), "grace_seconds": 99_999_999}),
            "grace_seconds",
        ),
        (json!({"grace_seconds": 5}), "csr"),
    ] {
        let response = call(
            &api,
            Role::Admin,
            "POST",
            "/v1/devices/cam-1/certificates/rotate",
            body,
        )
        .await;
        assert_eq!(response.status, 400, "{}", response.body);
        if field != "." {
            assert_eq!(response.body["error"]["field"], json!(field));
        }
    }
}

#[tokio::test]
async fn revocation_and_decommission_refuse_every_credential_and_keep_history() {
    let api = api();
    register(&api, "m-1").await;
    let issued = call(
        &api,
        Role::Admin,
        "POST",
        "/v1/devices/m-1/certificates",
        json!({"csr": csr("m-1")}),
    )
    .await;
    let cert_id = issued.body["certificate_id"].as_str().unwrap().to_owned();
    let key = call(
        &api,
        Role::Admin,
        "POST",
        "/v1/devices/m-1/api-keys",
        Value::Null,
    )
    .await;
    assert_eq!(key.status, 201, "{}", key.body);
    assert!(key.body["api_key"].as_str().unwrap().starts_with("m-1."));
    assert_error(
        &call(
            &api,
            Role::Admin,
            "DELETE",
            "/v1/devices/m-1/certificates/ffff",
            Value::Null,
        )
        .await,
        404,
        None,
    );

    // A certificate attached by hand, outside the API, is refused too.
    api.backend.iot.lock().unwrap().attached.push((
        "m-1".into(),
        "arn:aws:iot:us-east-1:000000000000:cert/byhand".into(),
    ));
    let gone = call(&api, Role::Admin, "DELETE", "/v1/devices/m-1", Value::Null).await;
    assert_eq!(gone.status, 200, "{}", gone.body);
    assert_eq!(gone.body["status"], "decommissioned");
    {
        let iot = api.backend.iot.lock().unwrap();
        assert!(!iot.things.contains_key("m-1"));
        assert_eq!(iot.certificate_status[&cert_id], "REVOKED");
        assert_eq!(iot.certificate_status["byhand"], "REVOKED");
        assert!(iot.attached.is_empty());
    }
    assert!(api
        .backend
        .api_keys
        .lock()
        .unwrap()
        .iter()
        .all(|k| k.revoked));
    let certs = api.backend.certificates.lock().unwrap().clone();
    assert_eq!(certs.len(), 2);
    assert!(certs.iter().all(|c| c.state == CertificateState::Revoked));
    // The row stays; a second decommission is a no-op; nothing new can be issued.
    assert_eq!(
        api.backend.devices.lock().unwrap()["m-1"].status,
        DeviceStatus::Decommissioned
    );
    assert_eq!(
        call(&api, Role::Admin, "DELETE", "/v1/devices/m-1", Value::Null)
            .await
            .status,
        200
    );
    for (method, path, body) in [
        (
            "POST",
            "/v1/devices/m-1/certificates",
            json!({"csr": csr("m-1")}),
        ),
        ("POST", "/v1/devices/m-1/api-keys", Value::Null),
        ("PATCH", "/v1/devices/m-1", json!({"location": "scrap"})),
    ] {
        assert_error(
            &call(&api, Role::Admin, method, path, body).await,
            409,
            None,
        );
    }
    assert_error(&register(&api, "m-1").await, 409, None);
}

#[tokio::test]
async fn quarantine_toggles_and_api_key_rotation_keeps_a_grace() {
    let api = api();
    register(&api, "q-1").await;
    let on = call(
        &api,
        Role::Operator,
        "PUT",
        "/v1/devices/q-1/quarantine",
        Value::Null,
    )
    .await;
    assert_eq!(on.body["quarantined"], true);
    let off = call(
        &api,
        Role::Operator,
        "DELETE",
        "/v1/devices/q-1/quarantine",
        Value::Null,
    )
    .await;
    assert_eq!(off.body["quarantined"], false);
    assert_error(
        &call(
            &api,
            Role::Operator,
            "PUT",
            "/v1/devices/q-2/quarantine",
            Value::Null,
        )
        .await,
        404,
        None,
    );

    let first = call(
        &api,
        Role::Admin,
        "POST",
        "/v1/devices/q-1/api-keys",
        Value::Null,
    )
    .await;
    let second = call(
        &api,
        Role::Admin,
        "POST",
        "/v1/devices/q-1/api-keys",
        json!({"grace_seconds": 300}),
    )
    .await;
    assert_eq!(second.status, 201);
    assert_eq!(second.body["replaced"][0]["key_id"], first.body["key_id"]);
    let keys = api.backend.api_keys.lock().unwrap().clone();
    let old = keys
        .iter()
        .find(|k| json!(k.key_id) == first.body["key_id"])
        .unwrap();
    assert!(old.expires_at.unwrap() > Utc::now() + Duration::seconds(290));
    let new = keys
        .iter()
        .find(|k| json!(k.key_id) == second.body["key_id"])
        .unwrap();
    assert_eq!(new.expires_at, None);
    // Only the hash is kept.
    let shown = second.body["api_key"].as_str().unwrap();
    assert!(!shown.contains(&new.secret_hash));
}

#[tokio::test]
async fn an_iot_outage_is_a_503_and_a_retry_completes_the_registration() {
    let api = api();
    *api.backend.iot_down.lock().unwrap() = true;
    assert_error(&register(&api, "r-1").await, 503, None);
    assert!(api.backend.devices.lock().unwrap().is_empty());
    *api.backend.iot_down.lock().unwrap() = false;
    assert_eq!(register(&api, "r-1").await.status, 201);
}

fn seed_series(api: &Api<MemoryBackend>, series: &str, n: usize, start_ms: i64, step_ms: i64) {
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
    let raw = call(
        &api,
        Role::Viewer,
        "GET",
        &format!(
            "/v1/query?device_id=s-1&metric=Temperature&start={t0}&end={}&max_points=500",
            t0 + 20_000_000
        ),
        Value::Null,
    )
    .await;
    assert_eq!(raw.status, 200, "{}", raw.body);
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
    let year = call(
        &api,
        Role::Viewer,
        "GET",
        "/v1/query?device_id=s-1&metric=temperature&start=2026-11-01T00:00:00Z&end=2027-11-01T00:00:00Z",
        Value::Null,
    )
    .await;
    assert_eq!(year.status, 200, "{}", year.body);
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
        let response = call(
            &api,
            Role::Viewer,
            "GET",
            &format!("/v1/query?{query}"),
            Value::Null,
        )
        .await;
        assert_eq!(response.status, 400, "{query}: {}", response.body);
        assert_eq!(response.body["error"]["field"], json!(field), "{query}");
    }
}

fn alert(id: &str, state: AlertState) -> AlertRecord {
    AlertRecord {
        alert_id: id.into(),
        device_id: "d-9".into(),
        rule_id: "r".into(),
        metric: "temperature".into(),
        severity: "critical".into(),
        state,
        count: 3,
        summary: "temperature > 80".into(),
        raised_at: Some("2026-11-23T10:00:00Z".into()),
        window_start: None,
        window_end: None,
        device_type: None,
        acknowledged_at: None,
        acknowledged_by: None,
        resolved_at: None,
        resolved_by: None,
    }
}

#[tokio::test]
async fn alert_rules_and_the_alert_lifecycle() {
    let api = api();
    register(&api, "d-9").await;
    let rule = call(
        &api,
        Role::Operator,
        "POST",
        "/v1/alerts",
        json!({"device_id": "d-9", "rule": "temp_f > 176", "severity": "critical"}),
    )
    .await;
    assert_eq!(rule.status, 201, "{}", rule.body);
    assert_eq!(rule.body["rule"], "temperature > 80");
    assert_eq!(rule.body["device_id"], "d-9");
    for (body, field) in [
        (
            json!({"device_id": "d-9", "rule": "temperature = 80"}),
            "rule",
        ),
        (json!({"rule": "temperature > 80"}), "device_id"),
        (
            json!({"device_id": "d-9", "device_type": "x", "rule": "temperature > 80"}),
            "device_id",
        ),
        (
            json!({"device_type": "Env", "rule": "temperature > 80"}),
            "device_type",
        ),
        (
            json!({"device_type": "env", "rule": "temperature > 80", "severity": "loud"}),
            "severity",
        ),
    ] {
        let response = call(&api, Role::Operator, "POST", "/v1/alerts", body.clone()).await;
        assert_eq!(response.status, 400, "{body}: {}", response.body);
        assert_eq!(response.body["error"]["field"], json!(field), "{body}");
    }
    // A rule for a device that does not exist names a missing resource.
    let ghost = json!({"device_id": "ghost", "rule": "temperature > 80"});
    let response = call(&api, Role::Operator, "POST", "/v1/alerts", ghost).await;
    assert_eq!(response.status, 404, "{}", response.body);
    let listed = call(&api, Role::Viewer, "GET", "/v1/rules", Value::Null).await;
    assert_eq!(listed.body["rules"].as_array().unwrap().len(), 1);
    let rule_id = rule.body["rule_id"].as_str().unwrap();
    assert_eq!(
        call(
            &api,
            Role::Operator,
            "DELETE",
            &format!("/v1/rules/{rule_id}"),
            Value::Null
        )
        .await
        .status,
        200
    );
    assert_error(
        &call(
            &api,
            Role::Operator,
            "DELETE",
            &format!("/v1/rules/{rule_id}"),
            Value::Null,
        )
        .await,
        404,
        None,
    );

    api.backend.alerts.lock().unwrap().extend([
        ("a1".to_owned(), alert("a1", AlertState::Open)),
        ("a2".to_owned(), alert("a2", AlertState::Resolved)),
    ]);
    let open = call(
        &api,
        Role::Viewer,
        "GET",
        "/v1/alerts?state=open&device_id=d-9",
        Value::Null,
    )
    .await;
    assert_eq!(open.body["alerts"].as_array().unwrap().len(), 1);
    let acked = call(
        &api,
        Role::Operator,
        "POST",
        "/v1/alerts/a1/ack",
        Value::Null,
    )
    .await;
    assert_eq!(acked.status, 200, "{}", acked.body);
    assert_eq!(acked.body["state"], "acknowledged");
    assert_eq!(acked.body["acknowledged_by"], "operator-client");
    // Repeating holds; going back is refused.
    assert_eq!(
        call(
            &api,
            Role::Operator,
            "POST",
            "/v1/alerts/a1/ack",
            Value::Null
        )
        .await
        .status,
        200
    );
    let resolved = call(
        &api,
        Role::Operator,
        "POST",
        "/v1/alerts/a1/resolve",
        Value::Null,
    )
    .await;
    assert_eq!(resolved.body["state"], "resolved");
    assert_error(
        &call(
            &api,
            Role::Operator,
            "POST",
            "/v1/alerts/a2/ack",
            Value::Null,
        )
        .await,
        409,
        None,
    );
    assert_error(
        &call(
            &api,
            Role::Operator,
            "POST",
            "/v1/alerts/zz/ack",
            Value::Null,
        )
        .await,
        404,
        None,
    );
    assert_error(
        &call(
            &api,
            Role::Viewer,
            "POST",
            "/v1/alerts/a1/resolve",
            Value::Null,
        )
        .await,
        403,
        None,
    );
}

#[tokio::test]
async fn api_gateway_events_route_by_route_key_and_take_the_caller_from_the_authorizer() {
    let api = api();
    register(&api, "sensor-0042").await;
    let fixture = include_str!("../../../tests/fixtures/apigw-v2-admin-request.json");
    let request = lambda_http::request::from_str(fixture).unwrap();
    let routed = api_request(&request).unwrap();
    assert_eq!(routed.route.key(), "PUT /v1/devices/{id}/quarantine");
    assert_eq!(routed.params["id"], "sensor-0042");
    assert_eq!(routed.principal.role, Role::Operator);
    assert_eq!(routed.principal.subject, "7fltq2c9o1k3j5m6n8p0r2s4t6");
    let response = api.handle_http(request).await;
    assert_eq!(response.status(), 200);
    assert!(api.backend.devices.lock().unwrap()["sensor-0042"].quarantined);

    // Without the authorizer's claims: 401, whatever the route.
    let mut event: Value = serde_json::from_str(fixture).unwrap();
    event["requestContext"]
        .as_object_mut()
        .unwrap()
        .remove("authorizer");
    let request = lambda_http::request::from_str(&event.to_string()).unwrap();
    let response = api.handle_http(request).await;
    assert_eq!(response.status(), 401);

    // Scopes of another resource server grant nothing.
    let mut event: Value = serde_json::from_str(fixture).unwrap();
    event["requestContext"]["authorizer"]["jwt"]["scopes"] = json!(["shop/admin"]);
    event["requestContext"]["authorizer"]["jwt"]["claims"]["scope"] = json!("shop/admin");
    let request = lambda_http::request::from_str(&event.to_string()).unwrap();
    assert_eq!(api.handle_http(request).await.status(), 401);

    // A body over the limit is refused before it is read.
    let mut event: Value = serde_json::from_str(fixture).unwrap();
    event["body"] = json!("x".repeat(admin_api::request::MAX_BODY_BYTES + 1));
    let request = lambda_http::request::from_str(&event.to_string()).unwrap();
    assert_eq!(api.handle_http(request).await.status(), 413);
}

#[tokio::test]
async fn webhook_subscriptions_show_their_secret_once() {
    let api = api();
    let created = call(
        &api,
        Role::Operator,
        "POST",
        "/v1/webhooks",
        json!({"url": "https://hooks.example.com/a", "severities": ["critical", "critical"]}),
    )
    .await;
    assert_eq!(created.status, 201, "{}", created.body);
    let secret = created.body["secret"].as_str().unwrap();
    assert!(secret.len() >= 40, "{secret}");
    // URLs can carry tokens: viewers do not see them.
    let viewer = call(&api, Role::Viewer, "GET", "/v1/webhooks", Value::Null).await;
    assert_error(&viewer, 403, None);
    let listed = call(&api, Role::Operator, "GET", "/v1/webhooks", Value::Null).await;
    let hooks = listed.body["webhooks"].as_array().unwrap();
    assert_eq!(hooks.len(), 1);
    assert!(hooks[0].get("secret").is_none());
    assert_eq!(hooks[0]["severities"], json!(["critical"]));
    for (body, field) in [
        (json!({"url": "http://plain.example.com/"}), "url"),
        (
            json!({"url": "https://x/", "severities": ["loud"]}),
            "severities[0]",
        ),
        (
            json!({"url": "https://x/", "device_types": ["a b"]}),
            "device_types[0]",
        ),
        (json!({"severities": []}), "url"),
    ] {
        let response = call(&api, Role::Operator, "POST", "/v1/webhooks", body.clone()).await;
        assert_eq!(response.status, 400, "{body}");
        assert_eq!(response.body["error"]["field"], json!(field), "{body}");
    }
    assert_error(
        &call(
            &api,
            Role::Viewer,
            "POST",
            "/v1/webhooks",
            json!({"url": "https://x/"}),
        )
        .await,
        403,
        None,
    );
    let id = created.body["webhook_id"].as_str().unwrap();
    let path = format!("/v1/webhooks/{id}");
    assert_eq!(
        call(&api, Role::Operator, "DELETE", &path, Value::Null)
            .await
            .status,
        200
    );
    assert_error(
        &call(&api, Role::Operator, "DELETE", &path, Value::Null).await,
        404,
        None,
    );
}

#[tokio::test]
async fn a_row_without_an_iot_thing_cannot_change_group_but_can_be_decommissioned() {
    let api = api();
    register(&api, "legacy").await;
    // As if the row had been written by another tool: no thing behind it.
    api.backend.iot.lock().unwrap().things.clear();
    let moved = call(
        &api,
        Role::Operator,
        "PATCH",
        "/v1/devices/legacy",
        json!({"group": "elsewhere"}),
    )
    .await;
    assert_error(&moved, 409, None);
    assert_eq!(
        api.backend.devices.lock().unwrap()["legacy"]
            .group
            .as_deref(),
        Some("plant-a")
    );
    let located = call(
        &api,
        Role::Operator,
        "PATCH",
        "/v1/devices/legacy",
        json!({"location": "hall 9"}),
    )
    .await;
    assert_eq!(located.status, 200, "{}", located.body);
    let gone = call(
        &api,
        Role::Admin,
        "DELETE",
        "/v1/devices/legacy",
        Value::Null,
    )
    .await;
    assert_eq!(gone.status, 200, "{}", gone.body);
}

#[tokio::test]
async fn shadows_show_desired_reported_and_delta_and_refuse_bad_state() {
    let api = api();
    register(&api, "sh-1").await;
    let empty = call(
        &api,
        Role::Viewer,
        "GET",
        "/v1/devices/sh-1/shadow",
        Value::Null,
    )
    .await;
    assert_eq!(empty.status, 200);
    assert_eq!(empty.body["version"], 0);
    api.backend
        .report("sh-1", json!({"interval": 60, "led": "off"}));
    let set = call(
        &api,
        Role::Operator,
        "PATCH",
        "/v1/devices/sh-1/shadow",
        json!({"desired": {"interval": 30}}),
    )
    .await;
    assert_eq!(set.status, 200, "{}", set.body);
    assert_eq!(set.body["desired"], json!({"interval": 30}));
    assert_eq!(set.body["reported"], json!({"interval": 60, "led": "off"}));
    assert_eq!(set.body["delta"], json!({"interval": 30}));
    assert_eq!(set.body["version"], 2);

    let stale = call(
        &api,
        Role::Operator,
        "PATCH",
        "/v1/devices/sh-1/shadow",
        json!({"desired": {"interval": 10}, "expected_version": 1}),
    )
    .await;
    assert_error(&stale, 409, None);
    for (bad, field) in [
        (json!({"desired": [1]}), "desired"),
        (json!({"desired": {"$meta": 1}}), "desired.$meta"),
        (json!({"desired": {}, "extra": 1}), "extra"),
        (json!({}), "desired"),
        (
            json!({"desired": {"a": 1}, "expected_version": -1}),
            "expected_version",
        ),
    ] {
        let reply = call(
            &api,
            Role::Operator,
            "PATCH",
            "/v1/devices/sh-1/shadow",
            bad.clone(),
        )
        .await;
        assert_error(&reply, 400, Some(field));
    }
    let viewer = call(
        &api,
        Role::Viewer,
        "PATCH",
        "/v1/devices/sh-1/shadow",
        json!({"desired": {"interval": 1}}),
    )
    .await;
    assert_error(&viewer, 403, None);
    // Cleared desired state leaves no delta; nothing above changed the version.
    let cleared = call(
        &api,
        Role::Operator,
        "PATCH",
        "/v1/devices/sh-1/shadow",
        json!({"desired": null}),
    )
    .await;
    assert_eq!(cleared.body["version"], 3, "{}", cleared.body);
    assert!(cleared.body["delta"].is_null(), "{}", cleared.body);
    let unknown = call(
        &api,
        Role::Viewer,
        "GET",
        "/v1/devices/nobody/shadow",
        Value::Null,
    )
    .await;
    assert_error(&unknown, 404, None);
}

#[tokio::test]
async fn commands_are_recorded_then_published_and_a_failed_publish_reads_undelivered() {
    let api = api();
    register(&api, "cmd-1").await;
    let sent = call(
        &api,
        Role::Operator,
        "POST",
        "/v1/devices/cmd-1/commands",
        json!({"name": "set_interval", "params": {"seconds": 30}}),
    )
    .await;
    assert_eq!(sent.status, 201, "{}", sent.body);
    assert_eq!(sent.body["status"], "sent");
    assert_eq!(sent.body["issued_by"], "operator-client");
    let command_id = sent.body["command_id"].as_str().unwrap().to_owned();
    {
        let published = api.backend.published.lock().unwrap();
        assert_eq!(published.len(), 1);
        assert_eq!(published[0].0, "devices/cmd-1/commands");
        let message: Value = serde_json::from_slice(&published[0].1).unwrap();
        assert_eq!(message["command_id"], command_id.as_str());
        assert_eq!(message["params"], json!({"seconds": 30}));
    }

    *api.backend.publish_down.lock().unwrap() = true;
    let lost = call(
        &api,
        Role::Operator,
        "POST",
        "/v1/devices/cmd-1/commands",
        json!({"name": "reboot"}),
    )
    .await;
    assert_error(&lost, 503, None);
    *api.backend.publish_down.lock().unwrap() = false;

    let listed = call(
        &api,
        Role::Viewer,
        "GET",
        "/v1/devices/cmd-1/commands?limit=1",
        Value::Null,
    )
    .await;
    assert_eq!(listed.status, 200);
    let newest = &listed.body["commands"][0];
    assert_eq!(newest["name"], "reboot");
    assert_eq!(newest["status"], "undelivered");
    assert!(newest["error"].is_string());
    let token = listed.body["next_token"].as_str().unwrap().to_owned();
    let older = call(
        &api,
        Role::Viewer,
        "GET",
        &format!("/v1/devices/cmd-1/commands?limit=1&next_token={token}"),
        Value::Null,
    )
    .await;
    assert_eq!(older.body["commands"][0]["command_id"], command_id.as_str());
    assert!(older.body["next_token"].is_null());

    let one = call(
        &api,
        Role::Viewer,
        "GET",
        &format!("/v1/devices/cmd-1/commands/{command_id}"),
        Value::Null,
    )
    .await;
    assert_eq!(one.body["status"], "sent");
    let refused = call(
        &api,
        Role::Viewer,
        "POST",
        "/v1/devices/cmd-1/commands",
        json!({"name": "reboot"}),
    )
    .await;
    assert_error(&refused, 403, None);
    for (bad, field) in [
        (json!({"name": ""}), "name"),
        (json!({"name": "x", "params": "p"}), "params"),
        (json!({"name": "x", "ttl_seconds": 100000}), "ttl_seconds"),
        (json!({"name": "x", "when": 1}), "when"),
    ] {
        let reply = call(
            &api,
            Role::Operator,
            "POST",
            "/v1/devices/cmd-1/commands",
            bad.clone(),
        )
        .await;
        assert_error(&reply, 400, Some(field));
    }
    assert_eq!(api.backend.published.lock().unwrap().len(), 1);

    // A whole number is an integer whatever its form; null is not an object.
    register(&api, "cmd-2").await;
    let whole = json!({"name": "reboot", "ttl_seconds": 30.0});
    let sent_whole = call(
        &api,
        Role::Operator,
        "POST",
        "/v1/devices/cmd-2/commands",
        whole,
    )
    .await;
    assert_eq!(sent_whole.status, 201, "{}", sent_whole.body);
    let null_params = json!({"name": "reboot", "params": null});
    let refused = call(
        &api,
        Role::Operator,
        "POST",
        "/v1/devices/cmd-2/commands",
        null_params,
    )
    .await;
    assert_error(&refused, 400, Some("params"));
}

#[tokio::test]
async fn firmware_is_registered_once_with_a_verified_signature_and_an_upload_url() {
    use base64::{engine::general_purpose::STANDARD, Engine as _};
    use hub_fleet::firmware::{digest_of, sign_manifest, Manifest};
    use ring::signature::{Ed25519KeyPair, KeyPair};

    let pkcs8 = Ed25519KeyPair::generate_pkcs8(&ring::rand::SystemRandom::new()).unwrap();
    let public = Ed25519KeyPair::from_pkcs8(pkcs8.as_ref())
        .unwrap()
        .public_key()
        .as_ref()
        .to_vec();
    let api = Api::new(
        MemoryBackend::default(),
        ApiConfig {
            firmware_signing_key: Some(STANDARD.encode(public)),
            ..ApiConfig::default()
        },
    );
    let (sha256, size) = digest_of(b"image bytes");
    let manifest = |version| Manifest {
        version,
        device_type: "env-sensor",
        sha256: &sha256,
        size,
    };
    let signature = sign_manifest(pkcs8.as_ref(), &manifest("2.1.0")).unwrap();
    let body = json!({"version": "2.1.0", "device_type": "env-sensor", "sha256": sha256.to_uppercase(),
                      "size": size, "signature": signature});
    let created = call(&api, Role::Admin, "POST", "/v1/firmware", body.clone()).await;
    assert_eq!(created.status, 201, "{}", created.body);
    assert_eq!(created.body["status"], "pending_upload");
    assert_eq!(created.body["signature_verified"], true);
    assert_eq!(created.body["sha256"], sha256.as_str());
    assert_eq!(
        created.body["s3_key"],
        format!("firmware/2.1.0/{sha256}.bin")
    );
    assert!(created.body["upload"]["url"]
        .as_str()
        .unwrap()
        .contains(&sha256));

    let again = call(&api, Role::Admin, "POST", "/v1/firmware", body.clone()).await;
    assert_error(&again, 409, None);
    let operator = call(&api, Role::Operator, "POST", "/v1/firmware", body.clone()).await;
    assert_error(&operator, 403, None);
    // The same image's signature, for another version: relabelling is refused.
    let other = sign_manifest(pkcs8.as_ref(), &manifest("2.0.9")).unwrap();
    for (patch, field) in [
        (json!({"version": "2.2.0", "signature": other}), "signature"),
        (
            json!({"version": "2.2.0", "signature": "c2hvcnQ="}),
            "signature",
        ),
        (json!({"version": "2.2.0", "sha256": "xyz"}), "sha256"),
        (json!({"version": "2.2.0", "size": 0}), "size"),
        (json!({"version": "a/b"}), "version"),
        (
            json!({"version": "2.2.0", "device_type": "Env Sensor"}),
            "device_type",
        ),
    ] {
        let mut bad = body.clone();
        for (k, v) in patch.as_object().unwrap() {
            bad[k] = v.clone();
        }
        let reply = call(&api, Role::Admin, "POST", "/v1/firmware", bad).await;
        assert_error(&reply, 400, Some(field));
    }
    assert_eq!(api.backend.firmware.lock().unwrap().len(), 1);
    let shown = call(&api, Role::Viewer, "GET", "/v1/firmware/2.1.0", Value::Null).await;
    assert_eq!(shown.body["version"], "2.1.0");
    assert!(shown.body.get("upload").is_none());
    let listed = call(&api, Role::Viewer, "GET", "/v1/firmware", Value::Null).await;
    assert_eq!(listed.body["firmware"].as_array().unwrap().len(), 1);
    let missing = call(&api, Role::Viewer, "GET", "/v1/firmware/9.9.9", Value::Null).await;
    assert_error(&missing, 404, None);
}

#[tokio::test]
async fn rollouts_start_only_with_ready_firmware_for_every_device_of_the_group() {
    use hub_fleet::firmware::{Artifact, ArtifactStatus};
    let api = api();
    let artifact = |version: &str, device_type: &str, status| Artifact {
        version: version.into(),
        device_type: device_type.into(),
        sha256: "ab".repeat(32),
        size: 10,
        signature: "c2ln".into(),
        signature_verified: true,
        status,
        reason: None,
        s3_key: format!("firmware/{version}/x.bin"),
        created_at: Utc::now(),
        created_by: "admin".into(),
        checked_at: None,
    };
    {
        let mut firmware = api.backend.firmware.lock().unwrap();
        for a in [
            artifact("2.0.0", "env-sensor", ArtifactStatus::Ready),
            artifact("2.1.0", "env-sensor", ArtifactStatus::PendingUpload),
            artifact("9.0.0", "dc-meter", ArtifactStatus::Ready),
        ] {
            firmware.insert(a.version.clone(), a);
        }
    }
    for i in 0..4 {
        let reply = call(
            &api,
            Role::Operator,
            "POST",
            "/v1/devices",
            json!({"device_id": format!("s-{i}"), "device_type": "env-sensor",
                   "group": "line-a", "firmware_version": "1.0.0"}),
        )
        .await;
        assert_eq!(reply.status, 201, "{}", reply.body);
    }
    let start = |version: &str, target: &str, policy: Value| json!({"firmware_version": version, "target": target, "policy": policy});
    let post = |body: Value| call(&api, Role::Admin, "POST", "/v1/ota/rollout", body);

    assert_error(&post(start("3.0.0", "line-a", json!({}))).await, 404, None);
    assert_error(&post(start("2.1.0", "line-a", json!({}))).await, 409, None);
    assert_error(&post(start("9.0.0", "line-a", json!({}))).await, 409, None);
    assert_error(&post(start("2.0.0", "empty", json!({}))).await, 409, None);
    assert_error(
        &post(start("2.0.0", "line-a", json!({"canary_percent": 120}))).await,
        400,
        Some("policy.canary_percent"),
    );
    assert_error(
        &post(start("2.0.0", "line-a", json!({"canry": 5}))).await,
        400,
        None,
    );
    let operator = call(
        &api,
        Role::Operator,
        "POST",
        "/v1/ota/rollout",
        start("2.0.0", "line-a", json!({})),
    )
    .await;
    assert_error(&operator, 403, None);
    assert!(api.backend.jobs.lock().unwrap().is_empty());

    // A thing put into the IoT group outside the hub: the job would reach it unchecked.
    api.backend.iot.lock().unwrap().things.insert(
        "stranger".into(),
        ("dc-meter".into(), Some("line-a".into())),
    );
    let refused = post(start("2.0.0", "line-a", json!({}))).await;
    assert_error(&refused, 409, None);
    assert!(
        refused.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("stranger"),
        "{}",
        refused.body
    );
    // A registry device missing from the IoT group would never get the job.
    api.backend.iot.lock().unwrap().things.remove("stranger");
    let moved = api
        .backend
        .iot
        .lock()
        .unwrap()
        .things
        .remove("s-3")
        .unwrap();
    assert_error(&post(start("2.0.0", "line-a", json!({}))).await, 409, None);
    api.backend
        .iot
        .lock()
        .unwrap()
        .things
        .insert("s-3".into(), moved);
    assert!(api.backend.jobs.lock().unwrap().is_empty());

    let created = post(start("2.0.0", "line-a", json!({"canary_percent": 25}))).await;
    assert_eq!(created.status, 201, "{}", created.body);
    let id = created.body["rollout_id"].as_str().unwrap().to_owned();
    assert_eq!(created.body["device_count"], 4);
    assert_eq!(created.body["canary_size"], 1);
    assert_eq!(created.body["counts"]["queued"], 4);
    assert_eq!(created.body["policy"]["abort_failure_percent"], 5.0);
    assert_eq!(
        api.backend.jobs.lock().unwrap()[&id],
        ("line-a".to_owned(), "2.0.0".to_owned())
    );
    // One rollout at a time per group.
    assert_error(&post(start("2.0.0", "line-a", json!({}))).await, 409, None);

    // Devices installing now read in_progress (Jobs has no event for a start).
    api.backend.installing.lock().unwrap().push("s-2".into());
    let shown = call(
        &api,
        Role::Viewer,
        "GET",
        &format!("/v1/ota/rollouts/{id}"),
        Value::Null,
    )
    .await;
    assert_eq!(shown.status, 200);
    assert_eq!(shown.body["counts"]["in_progress"], 1);
    assert_eq!(shown.body["counts"]["queued"], 3);
    let devices = shown.body["devices"].as_array().unwrap();
    assert_eq!(devices.len(), 4);
    assert_eq!(devices[2]["status"], "in_progress");
    assert_eq!(devices[0]["previous_version"], "1.0.0");
    assert_error(
        &call(
            &api,
            Role::Viewer,
            "GET",
            "/v1/ota/rollouts/nope",
            Value::Null,
        )
        .await,
        400,
        Some("id"),
    );
    assert_error(
        &call(
            &api,
            Role::Viewer,
            "GET",
            "/v1/ota/rollouts/ota-00000000000000000000000000000000",
            Value::Null,
        )
        .await,
        404,
        None,
    );

    let cancel = format!("/v1/ota/rollouts/{id}/cancel");
    let cancelled = call(&api, Role::Admin, "POST", &cancel, Value::Null).await;
    assert_eq!(cancelled.status, 200, "{}", cancelled.body);
    assert_eq!(cancelled.body["status"], "cancelled");
    assert_eq!(cancelled.body["reason"], "cancelled by admin-client");
    assert_eq!(
        api.backend.cancelled_jobs.lock().unwrap().clone(),
        vec![id.clone()]
    );
    assert_error(
        &call(&api, Role::Admin, "POST", &cancel, Value::Null).await,
        409,
        None,
    );
    // The steps the API took are announced, once each: refused requests announce nothing.
    let announced: Vec<(RolloutEventKind, String, u64)> = api
        .backend
        .rollout_events
        .lock()
        .unwrap()
        .iter()
        .map(|e| (e.data.kind, e.data.rollout_id.clone(), e.data.counts.queued))
        .collect();
    assert_eq!(
        announced,
        [
            (RolloutEventKind::Started, id.clone(), 4),
            (RolloutEventKind::Cancelled, id.clone(), 4)
        ]
    );
    let listed = call(&api, Role::Viewer, "GET", "/v1/ota/rollouts", Value::Null).await;
    assert_eq!(listed.body["rollouts"][0]["rollout_id"], json!(id));
    // Every change is in the audit log.
    let audit = api.backend.audit.lock().unwrap();
    assert!(audit
        .iter()
        .any(|(e, status)| e.action == "POST /v1/ota/rollout" && *status == Some(201)));
}
