//! The firmware upload check against in-memory artifacts and bucket, fed the S3 event
//! shape: a matching image becomes ready once, a wrong one is rejected with the reason,
//! and objects that are not a registered image are left alone.

use chrono::Utc;
use fleet::{
    dispatch,
    firmware::Checked,
    memory::{self, MemoryCommands, MemoryFirmware, MemoryRegistry, MemoryRollouts},
    Outcome,
};
use hub_fleet::firmware::{hex, object_key, Artifact, ArtifactStatus};
use serde_json::Value;

const BUCKET: &str = "iothub-firmware-000000000000-us-east-1";

fn event_for(key: &str) -> Value {
    let path = format!(
        "{}/../../tests/fixtures/s3-object-created.json",
        env!("CARGO_MANIFEST_DIR")
    );
    let mut event: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    event["Records"][0]["s3"]["object"]["key"] = Value::from(key);
    event
}

fn registered(version: &str, image: &[u8]) -> Artifact {
    let sha256 = hex(ring::digest::digest(&ring::digest::SHA256, image).as_ref());
    Artifact {
        s3_key: object_key(version, &sha256),
        version: version.into(),
        device_type: "env-sensor".into(),
        sha256,
        size: image.len() as u64,
        signature: String::new(),
        signature_verified: false,
        status: ArtifactStatus::PendingUpload,
        reason: None,
        created_at: Utc::now(),
        created_by: "admin".into(),
        checked_at: None,
    }
}

async fn run(images: &MemoryFirmware, key: &str) -> Vec<Checked> {
    let outcome = dispatch(
        &memory::origins(),
        &MemoryRegistry::default(),
        &MemoryCommands::default(),
        images,
        &MemoryRollouts::default(),
        event_for(key),
        Utc::now(),
    )
    .await
    .unwrap();
    match outcome {
        Outcome::Firmware(checked) => checked,
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn a_matching_upload_is_ready_and_a_tampered_one_rejected() {
    let images = MemoryFirmware::default();
    let good = registered("2.1.0", b"firmware 2.1.0");
    let bad = registered("2.2.0", b"firmware 2.2.0");
    for (artifact, upload) in [
        (&good, &b"firmware 2.1.0"[..]),
        (&bad, &b"firmware 2.2.X"[..]),
    ] {
        images.table.insert(artifact.clone());
        images
            .objects
            .lock()
            .unwrap()
            .insert((BUCKET.into(), artifact.s3_key.clone()), upload.to_vec());
    }
    assert_eq!(
        run(&images, &good.s3_key).await,
        vec![Checked::Ready("2.1.0".into())]
    );
    match &run(&images, &bad.s3_key).await[..] {
        [Checked::Rejected(version, reason)] => {
            assert_eq!(version, "2.2.0");
            assert!(reason.contains("SHA-256"), "{reason}");
        }
        other => panic!("{other:?}"),
    }
    let held = images.table.artifacts.lock().unwrap().clone();
    assert_eq!(held["2.1.0"].status, ArtifactStatus::Ready);
    assert_eq!(held["2.2.0"].status, ArtifactStatus::Rejected);
    // A second notification for the same key changes nothing.
    assert!(matches!(
        &run(&images, &good.s3_key).await[..],
        [Checked::Ignored(_)]
    ));
    // Objects that are not a registered image at its own key are left alone.
    for key in [
        "firmware/9.9.9/abc.bin",
        "firmware/2.1.0/other.bin",
        "notes.txt",
    ] {
        assert!(
            matches!(&run(&images, key).await[..], [Checked::Ignored(_)]),
            "{key}"
        );
    }
    assert_eq!(
        images.table.artifacts.lock().unwrap()["2.1.0"].status,
        ArtifactStatus::Ready
    );
}

#[tokio::test]
async fn the_check_reads_the_object_version_the_notification_names() {
    let images = MemoryFirmware::default();
    let artifact = registered("3.0.0", b"firmware 3.0.0");
    images.table.insert(artifact.clone());
    let key = (BUCKET.to_owned(), artifact.s3_key.clone());
    // The notified upload was the wrong image; by the time the check reads, the key's
    // current version holds the right one.
    images.versions.lock().unwrap().insert(
        (key.0.clone(), key.1.clone(), "v1".into()),
        b"firmware 3.0.X".to_vec(),
    );
    images
        .objects
        .lock()
        .unwrap()
        .insert(key.clone(), b"firmware 3.0.0".to_vec());
    let mut event = event_for(&artifact.s3_key);
    event["Records"][0]["s3"]["object"]["versionId"] = Value::from("v1");
    let outcome = dispatch(
        &memory::origins(),
        &MemoryRegistry::default(),
        &MemoryCommands::default(),
        &images,
        &MemoryRollouts::default(),
        event,
        Utc::now(),
    )
    .await
    .unwrap();
    assert!(
        matches!(&outcome, Outcome::Firmware(c) if matches!(&c[..], [Checked::Rejected(..)])),
        "{outcome:?}"
    );
}
