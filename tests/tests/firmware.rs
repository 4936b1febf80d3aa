//! Firmware artifacts end to end: registration through the API with a signature over the
//! image's digest, upload through the presigned URL into the emulator's S3, and the
//! fleet function's check (fed by the bucket's notification) making it ready, or
//! rejected when the bytes are not the ones registered.

use std::time::Duration;

use hub_e2e::{admin::Role, unique, Stack};
use hub_fleet::firmware::{digest_of, sign_manifest, Manifest};
use serde_json::json;

/// The registration's signature: over the manifest of `version` for env-sensor devices.
fn sign(key: &[u8], version: &str, sha256: &str, size: u64) -> String {
    let manifest = Manifest {
        version,
        device_type: "env-sensor",
        sha256,
        size,
    };
    sign_manifest(key, &manifest).unwrap()
}

fn signing_key(stack: &Stack) -> Vec<u8> {
    std::fs::read(stack.dir.join("pki/firmware-signing.pk8")).unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn an_uploaded_image_is_checked_before_it_is_ready() {
    let stack = Stack::from_env().await.unwrap();
    let admin = stack.admin_client(Role::Admin).unwrap();
    let viewer = stack.admin_client(Role::Viewer).unwrap();
    let operator = stack.admin_client(Role::Operator).unwrap();
    let key = signing_key(&stack);
    let image: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();

    let version = unique("2.1.0-e2e");
    let ready = admin
        .add_firmware(
            &version,
            "env-sensor",
            image.clone(),
            &key,
            Duration::from_secs(30),
        )
        .await
        .unwrap();
    assert_eq!(ready["status"], "ready", "{ready}");
    assert_eq!(ready["signature_verified"], true, "{ready}");
    assert_eq!(ready["size"], image.len());
    let listed = viewer.get("/v1/firmware").await.unwrap().ok().unwrap();
    assert!(listed["firmware"]
        .as_array()
        .unwrap()
        .iter()
        .any(|a| a["version"] == version.as_str()));

    // Registered for one image, sent another: S3 itself refuses it (the URL is bound to
    // the registered digest), and the artifact waits for its image.
    let tampered_version = unique("2.2.0-e2e");
    let (sha256, size) = digest_of(&image);
    let registered = admin
        .post(
            "/v1/firmware",
            &json!({"version": tampered_version, "device_type": "env-sensor", "sha256": sha256,
                    "size": size, "signature": sign(&key, &tampered_version, &sha256, size)}),
        )
        .await
        .unwrap()
        .ok()
        .unwrap();
    assert_eq!(registered["status"], "pending_upload");
    let mut tampered = image.clone();
    tampered[1000] ^= 0xff;
    let refused = admin.upload(&registered["upload"], tampered.clone()).await;
    assert!(refused.is_err(), "a body of another digest was taken");
    tokio::time::sleep(Duration::from_secs(2)).await;
    let path = format!("/v1/firmware/{tampered_version}");
    let waiting = viewer.get(&path).await.unwrap().ok().unwrap();
    assert_eq!(waiting["status"], "pending_upload", "{waiting}");
    // Positive control: the registered bytes go through the same URL and are checked.
    admin
        .upload(&registered["upload"], image.clone())
        .await
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let checked = loop {
        let artifact = viewer.get(&path).await.unwrap().ok().unwrap();
        if artifact["status"] != "pending_upload" {
            break artifact;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "not checked in 30 s: {artifact}"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    };
    assert_eq!(checked["status"], "ready", "{checked}");
    // Once ready, the image cannot be replaced through its URL either.
    let replaced = admin.upload(&registered["upload"], tampered).await;
    assert!(replaced.is_err(), "a checked image was replaced");
    let object = stack
        .aws
        .s3()
        .get_object()
        .bucket(stack.output("FirmwareBucketName"))
        .key(checked["s3_key"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    let stored = object.body.collect().await.unwrap().into_bytes();
    assert_eq!(digest_of(&stored).0, sha256, "the stored image changed");

    // A signature that does not verify (the ready image's own, relabelled as another
    // version), a taken version, a non-admin: refused, nothing made.
    let forged = admin
        .post(
            "/v1/firmware",
            &json!({"version": unique("3.0.0"), "device_type": "env-sensor", "sha256": sha256,
                    "size": size, "signature": sign(&key, &version, &sha256, size)}),
        )
        .await
        .unwrap();
    assert_eq!(forged.status, 400, "{}", forged.body);
    assert_eq!(forged.body["error"]["field"], "signature");
    let again = admin
        .post(
            "/v1/firmware",
            &json!({"version": version, "device_type": "env-sensor", "sha256": sha256,
                    "size": size, "signature": sign(&key, &version, &sha256, size)}),
        )
        .await
        .unwrap();
    assert_eq!(again.status, 409, "{}", again.body);
    let not_admin = operator
        .post(
            "/v1/firmware",
            &json!({"version": unique("4.0.0"), "device_type": "env-sensor", "sha256": sha256,
                    "size": size, "signature": sign(&key, "4.0.0", &sha256, size)}),
        )
        .await
        .unwrap();
    assert_eq!(not_admin.status, 403);
    let unknown = viewer.get("/v1/firmware/9.9.9-none").await.unwrap();
    assert_eq!(unknown.status, 404);
}
