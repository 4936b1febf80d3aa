//! Firmware artifacts: registration, signature, upload.

use admin_api::ApiConfig;
use serde_json::json;

use crate::support::*;

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
    let api = api_with(ApiConfig {
        firmware_signing_key: Some(STANDARD.encode(public)),
        ..ApiConfig::default()
    });
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
    let created = api
        .admin()
        .post("/v1/firmware", body.clone())
        .await
        .expect_status(201);
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

    let again = api.admin().post("/v1/firmware", body.clone()).await;
    assert_error(&again, 409, None);
    let operator = api.operator().post("/v1/firmware", body.clone()).await;
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
        let reply = api.admin().post("/v1/firmware", bad).await;
        assert_error(&reply, 400, Some(field));
    }
    assert_eq!(api.backend.firmware.artifacts.lock().unwrap().len(), 1);
    let shown = api.viewer().get("/v1/firmware/2.1.0").await;
    assert_eq!(shown.body["version"], "2.1.0");
    assert!(shown.body.get("upload").is_none());
    let listed = api.viewer().get("/v1/firmware").await;
    assert_eq!(listed.body["firmware"].as_array().unwrap().len(), 1);
    let missing = api.viewer().get("/v1/firmware/9.9.9").await;
    assert_error(&missing, 404, None);
}
