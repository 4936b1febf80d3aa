//! The fleet function's ports in memory, for tests: the registry's connectivity columns,
//! the firmware bucket, and what rollouts touch beyond their tables. The tables are
//! [`hub_fleet::memory`]'s, shared with the admin API's tests.

use std::{
    collections::HashMap,
    sync::{
        atomic::{AtomicBool, Ordering},
        Mutex,
    },
};

use hub_runtime::PortError;

use hub_fleet::firmware::Artifact;
pub use hub_fleet::memory::MemoryCommands;

use crate::{
    firmware::ImageDigest, Applied, ConnectivityStore, FirmwareChecks, Origins, PresenceChange,
};

/// What the command-answer rule (template.yaml, CommandAckRule) makes of a device's
/// payload: the answer fields it selects by name, the device id from the topic and the
/// rule's own name; whatever else the device wrote is not selected.
pub fn ack_rule_output(device: &str, payload: &serde_json::Value) -> serde_json::Value {
    let mut out = serde_json::json!({"hub_rule": "command_answer", "device_id": device});
    for field in ["command_id", "status", "result"] {
        if let Some(v) = payload.get(field) {
            out[field] = v.clone();
        }
    }
    out
}

/// The retry queue the tests' queue messages come from.
pub const RETRY_QUEUE_ARN: &str = "arn:aws:sqs:us-east-1:000000000000:rollout-retries";

/// The presence queue of the fixtures' queue messages (`sqs-presence-batch.json`).
pub const PRESENCE_QUEUE_ARN: &str = "arn:aws:sqs:us-east-1:000000000000:presence";

/// The origins of the tests' events: the fixtures' firmware bucket, [`RETRY_QUEUE_ARN`]
/// and [`PRESENCE_QUEUE_ARN`].
pub fn origins() -> Origins {
    Origins {
        firmware_bucket: "iothub-firmware-000000000000-us-east-1".into(),
        retry_queue_arn: RETRY_QUEUE_ARN.into(),
        presence_queue_arn: PRESENCE_QUEUE_ARN.into(),
    }
}

/// `events` as one batch from the presence queue, message ids `m0`, `m1`, ...
pub fn presence_batch(events: &[serde_json::Value]) -> serde_json::Value {
    let records: Vec<_> = events
        .iter()
        .enumerate()
        .map(|(i, event)| {
            serde_json::json!({"messageId": format!("m{i}"), "body": event.to_string(),
                "eventSource": "aws:sqs", "eventSourceARN": PRESENCE_QUEUE_ARN})
        })
        .collect();
    serde_json::json!({ "Records": records })
}

#[derive(Default)]
pub struct MemoryRegistry {
    /// Device id -> the last applied change (None: registered, never seen).
    pub rows: Mutex<HashMap<String, Option<PresenceChange>>>,
    /// Every write fails while set, as a throttled table would.
    failing: AtomicBool,
}

impl MemoryRegistry {
    pub fn with_devices(ids: &[&str]) -> Self {
        Self {
            rows: Mutex::new(ids.iter().map(|id| (id.to_string(), None)).collect()),
            failing: AtomicBool::new(false),
        }
    }

    /// From now on every write fails.
    pub fn fail_writes(&self) {
        self.failing.store(true, Ordering::Relaxed);
    }
}

impl ConnectivityStore for MemoryRegistry {
    async fn apply(&self, change: &PresenceChange) -> Result<Applied, PortError> {
        if self.failing.load(Ordering::Relaxed) {
            return Err(PortError::new(
                "registry update",
                "ProvisionedThroughputExceeded",
            ));
        }
        let mut rows = self.rows.lock().unwrap();
        let Some(row) = rows.get_mut(&change.device_id) else {
            return Ok(Applied::NotADevice);
        };
        if row.as_ref().is_some_and(|held| held.order > change.order) {
            return Ok(Applied::Stale);
        }
        *row = Some(change.clone());
        Ok(Applied::Applied)
    }
}

/// Firmware artifacts and the images in the bucket, in memory.
#[derive(Default)]
pub struct MemoryFirmware {
    pub table: hub_fleet::memory::MemoryFirmware,
    /// (bucket, key) -> image bytes (the current version).
    pub objects: Mutex<HashMap<(String, String), Vec<u8>>>,
    /// (bucket, key, version id) -> image bytes, for notifications that name a version.
    pub versions: Mutex<HashMap<(String, String, String), Vec<u8>>>,
}

impl FirmwareChecks for MemoryFirmware {
    type Table = hub_fleet::memory::MemoryFirmware;

    fn table(&self) -> &Self::Table {
        &self.table
    }

    async fn digest(
        &self,
        bucket: &str,
        key: &str,
        version: Option<&str>,
    ) -> Result<ImageDigest, PortError> {
        let objects = self.objects.lock().unwrap();
        let versioned = version.and_then(|v| {
            self.versions
                .lock()
                .unwrap()
                .get(&(bucket.to_owned(), key.to_owned(), v.to_owned()))
                .cloned()
        });
        let image = match versioned {
            Some(image) => image,
            None if version.is_some() => {
                return Err(PortError::new("firmware image read", "NoSuchVersion"))
            }
            None => objects
                .get(&(bucket.to_owned(), key.to_owned()))
                .cloned()
                .ok_or_else(|| PortError::new("firmware image read", "NoSuchKey"))?,
        };
        Ok(ImageDigest {
            size: image.len() as u64,
            sha256: hub_fleet::firmware::hex(
                ring::digest::digest(&ring::digest::SHA256, &image).as_ref(),
            ),
        })
    }
}

/// A job created in memory: (things, firmware version, rollback).
pub type MemoryJob = (Vec<String>, String, bool);

/// Rollouts with their tables, jobs, registry versions, scheduled retries and published
/// events in memory.
#[derive(Default)]
pub struct MemoryRollouts {
    pub table: hub_fleet::memory::MemoryRollouts,
    pub firmware: hub_fleet::memory::MemoryFirmware,
    pub jobs: Mutex<std::collections::BTreeMap<String, MemoryJob>>,
    pub cancel_reasons: Mutex<HashMap<String, String>>,
    pub cancelled_jobs: Mutex<Vec<String>>,
    pub versions: Mutex<HashMap<String, String>>,
    pub retries: Mutex<Vec<(crate::rollout::RetryDue, chrono::Duration)>>,
    pub events: Mutex<Vec<hub_events::Envelope<hub_events::RolloutEvent>>>,
}

impl crate::RolloutPorts for MemoryRollouts {
    type Rollouts = hub_fleet::memory::MemoryRollouts;
    type Firmware = hub_fleet::memory::MemoryFirmware;

    fn rollouts_table(&self) -> &Self::Rollouts {
        &self.table
    }

    fn firmware_table(&self) -> &Self::Firmware {
        &self.firmware
    }

    async fn cancel_job(&self, job_id: &str, _comment: &str) -> Result<(), PortError> {
        self.cancelled_jobs.lock().unwrap().push(job_id.to_owned());
        Ok(())
    }

    async fn cancel_reason(&self, job_id: &str) -> Result<Option<String>, PortError> {
        Ok(self.cancel_reasons.lock().unwrap().get(job_id).cloned())
    }

    async fn create_job(
        &self,
        job_id: &str,
        things: &[String],
        _rollout: &hub_fleet::rollout::Rollout,
        artifact: &Artifact,
        rollback: bool,
    ) -> Result<bool, PortError> {
        let mut jobs = self.jobs.lock().unwrap();
        if jobs.contains_key(job_id) {
            return Ok(false);
        }
        jobs.insert(
            job_id.to_owned(),
            (things.to_vec(), artifact.version.clone(), rollback),
        );
        Ok(true)
    }

    async fn record_version(&self, device_id: &str, version: &str) -> Result<(), PortError> {
        self.versions
            .lock()
            .unwrap()
            .insert(device_id.to_owned(), version.to_owned());
        Ok(())
    }

    async fn schedule_retry(
        &self,
        retry: &crate::rollout::RetryDue,
        delay: chrono::Duration,
    ) -> Result<(), PortError> {
        self.retries.lock().unwrap().push((retry.clone(), delay));
        Ok(())
    }

    async fn publish(
        &self,
        event: &hub_events::Envelope<hub_events::RolloutEvent>,
    ) -> Result<(), PortError> {
        self.events.lock().unwrap().push(event.clone());
        Ok(())
    }
}
