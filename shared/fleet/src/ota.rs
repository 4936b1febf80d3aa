//! What a firmware job says to a device, and the IoT Jobs MQTT topics a device uses to
//! take it: the contract between the hub (which writes the job document) and device
//! code (the simulator's, or a real device's).

use serde::{Deserialize, Serialize};

/// `operation` of every job the hub sends for firmware.
pub const FIRMWARE_OPERATION: &str = "firmware_update";

/// The job document of a rollout (or a rollback) job.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobDocument {
    /// Always [`FIRMWARE_OPERATION`]; a device rejects operations it does not know.
    pub operation: String,
    pub rollout_id: String,
    pub firmware_version: String,
    /// The device type the image is built for.
    #[serde(default)]
    pub device_type: String,
    /// Where to download the image. On AWS the job holds the
    /// `${aws:iot:s3-presigned-url:...}` placeholder and IoT Jobs hands each device a
    /// short-lived presigned GET URL in its place.
    pub url: String,
    /// Lowercase hex SHA-256 of the image.
    pub sha256: String,
    pub size: u64,
    /// Base64 Ed25519 signature over the manifest (version, device type, digest, size;
    /// [`crate::firmware::Manifest`]), by the fleet's signing key.
    pub signature: String,
    /// True for the job that takes a device back to the version it ran before an
    /// aborted rollout.
    #[serde(default)]
    pub rollback: bool,
}

/// The IoT Jobs presigned-URL placeholder for an object in `bucket`.
pub fn presigned_url_placeholder(bucket: &str, key: &str) -> String {
    format!("${{aws:iot:s3-presigned-url:https://s3.amazonaws.com/{bucket}/{key}}}")
}

/// Topics of the IoT Jobs device protocol for one thing.
pub mod topics {
    pub fn notify_next(thing: &str) -> String {
        format!("$aws/things/{thing}/jobs/notify-next")
    }

    pub fn start_next(thing: &str) -> String {
        format!("$aws/things/{thing}/jobs/start-next")
    }

    pub fn start_next_accepted(thing: &str) -> String {
        format!("$aws/things/{thing}/jobs/start-next/accepted")
    }

    pub fn start_next_rejected(thing: &str) -> String {
        format!("$aws/things/{thing}/jobs/start-next/rejected")
    }

    pub fn update(thing: &str, job_id: &str) -> String {
        format!("$aws/things/{thing}/jobs/{job_id}/update")
    }

    /// Answers to every update the thing sends (`+` is the job id).
    pub fn update_answers(thing: &str) -> [String; 2] {
        [
            format!("$aws/things/{thing}/jobs/+/update/accepted"),
            format!("$aws/things/{thing}/jobs/+/update/rejected"),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_placeholder_names_the_object() {
        assert_eq!(
            presigned_url_placeholder("fw-bucket", "firmware/2.0.0/ab.bin"),
            "${aws:iot:s3-presigned-url:https://s3.amazonaws.com/fw-bucket/firmware/2.0.0/ab.bin}"
        );
    }

    #[test]
    fn documents_without_rollback_read_as_updates() {
        let doc: JobDocument = serde_json::from_str(
            r#"{"operation":"firmware_update","rollout_id":"r1","firmware_version":"2.0.0",
                "url":"http://localhost:4566/b/k","sha256":"ab","size":3,"signature":"c2ln"}"#,
        )
        .unwrap();
        assert!(!doc.rollback);
        assert_eq!(topics::update("d1", "j1"), "$aws/things/d1/jobs/j1/update");
    }
}
