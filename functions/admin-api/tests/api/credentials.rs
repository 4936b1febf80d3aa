//! Certificates, revocation and decommission, quarantine and API keys.

use admin_api::{
    ports::{CertificateState, DeviceStatus},
    sweeper,
};
use chrono::{Duration, Utc};
use serde_json::{json, Value};

use crate::support::*;

#[tokio::test]
async fn certificates_are_issued_from_the_device_csr_rotated_and_retired() {
    let api = api();
    register(&api, "cam-1").await;
    let wrong = api
        .admin()
        .post(
            "/v1/devices/cam-1/certificates",
            json!({"csr": csr("cam-2")}),
        )
        .await;
    assert_error(&wrong, 400, Some("csr"));
    let first = api
        .admin()
        .post(
            "/v1/devices/cam-1/certificates",
            json!({"csr": csr("cam-1")}),
        )
        .await
        .expect_status(201);
    let first_id = first.body["certificate_id"].as_str().unwrap().to_owned();
    assert!(first.body["certificate_pem"]
        .as_str()
        .unwrap()
        .contains("BEGIN CERTIFICATE"));
    let device = api.viewer().get("/v1/devices/cam-1").await;
    assert_eq!(device.body["status"], "active");
    assert_error(
        &api.admin()
            .post(
                "/v1/devices/cam-1/certificates",
                json!({"csr": csr("cam-1")}),
            )
            .await,
        409,
        None,
    );

    let rotated = api
        .admin()
        .post(
            "/v1/devices/cam-1/certificates/rotate",
            json!({"csr": csr("cam-1"), "grace_seconds": 60}),
        )
        .await
        .expect_status(201);
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
    let listed = api.viewer().get("/v1/devices/cam-1/certificates").await;
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
        let response = api
            .admin()
            .post("/v1/devices/cam-1/certificates/rotate", body)
            .await
            .expect_status(400);
        if field != "." {
            assert_eq!(response.body["error"]["field"], json!(field));
        }
    }
}

#[tokio::test]
async fn revocation_and_decommission_refuse_every_credential_and_keep_history() {
    let api = api();
    register(&api, "m-1").await;
    let issued = api
        .admin()
        .post("/v1/devices/m-1/certificates", json!({"csr": csr("m-1")}))
        .await;
    let cert_id = issued.body["certificate_id"].as_str().unwrap().to_owned();
    let key = api
        .admin()
        .post("/v1/devices/m-1/api-keys", Value::Null)
        .await
        .expect_status(201);
    assert!(key.body["api_key"].as_str().unwrap().starts_with("m-1."));
    assert_error(
        &api.admin()
            .delete("/v1/devices/m-1/certificates/ffff")
            .await,
        404,
        None,
    );

    // A certificate attached by hand, outside the API, is refused too.
    api.backend.iot.lock().unwrap().attached.push((
        "m-1".into(),
        "arn:aws:iot:us-east-1:000000000000:cert/byhand".into(),
    ));
    let gone = api
        .admin()
        .delete("/v1/devices/m-1")
        .await
        .expect_status(200);
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
    api.admin()
        .delete("/v1/devices/m-1")
        .await
        .expect_status(200);
    for (method, path, body) in [
        (
            "POST",
            "/v1/devices/m-1/certificates",
            json!({"csr": csr("m-1")}),
        ),
        ("POST", "/v1/devices/m-1/api-keys", Value::Null),
        ("PATCH", "/v1/devices/m-1", json!({"location": "scrap"})),
    ] {
        assert_error(&api.admin().send(method, path, body).await, 409, None);
    }
    assert_error(&register(&api, "m-1").await, 409, None);
}

#[tokio::test]
async fn quarantine_toggles_and_api_key_rotation_keeps_a_grace() {
    let api = api();
    register(&api, "q-1").await;
    let on = api
        .operator()
        .put("/v1/devices/q-1/quarantine", Value::Null)
        .await;
    assert_eq!(on.body["quarantined"], true);
    let off = api.operator().delete("/v1/devices/q-1/quarantine").await;
    assert_eq!(off.body["quarantined"], false);
    assert_error(
        &api.operator()
            .put("/v1/devices/q-2/quarantine", Value::Null)
            .await,
        404,
        None,
    );

    let first = api
        .admin()
        .post("/v1/devices/q-1/api-keys", Value::Null)
        .await;
    let second = api
        .admin()
        .post("/v1/devices/q-1/api-keys", json!({"grace_seconds": 300}))
        .await
        .expect_status(201);
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
