//! The registry's connectivity columns in memory, for tests.

use std::{collections::HashMap, sync::Mutex};

use hub_runtime::PortError;

use chrono::{DateTime, Utc};
use hub_fleet::command::{apply_ack, AckOutcome, Command, CommandAck, CommandStatus};

use hub_fleet::firmware::{Artifact, ArtifactStatus};

use crate::{
    firmware::ImageDigest, Applied, CommandAnswers, ConnectivityStore, FirmwareChecks, Origins,
    PresenceChange,
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

/// The origins of the tests' events: the fixtures' firmware bucket and [`RETRY_QUEUE_ARN`].
pub fn origins() -> Origins {
    Origins {
        firmware_bucket: "iothub-firmware-000000000000-us-east-1".into(),
        retry_queue_arn: RETRY_QUEUE_ARN.into(),
    }
}

#[derive(Default)]
pub struct MemoryRegistry {
    /// Device id -> the last applied change (None: registered, never seen).
    pub rows: Mutex<HashMap<String, Option<PresenceChange>>>,
}

impl MemoryRegistry {
    pub fn with_devices(ids: &[&str]) -> Self {
        Self {
            rows: Mutex::new(ids.iter().map(|id| (id.to_string(), None)).collect()),
        }
    }
}

impl ConnectivityStore for MemoryRegistry {
    async fn apply(&self, change: &PresenceChange) -> Result<Applied, PortError> {
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

/// Commands in memory, keyed by (device, command id).
#[derive(Default)]
pub struct MemoryCommands {
    pub commands: Mutex<HashMap<(String, String), Command>>,
}

impl CommandAnswers for MemoryCommands {
    async fn record_ack(
        &self,
        ack: &CommandAck,
        now: DateTime<Utc>,
    ) -> Result<AckOutcome, PortError> {
        let mut commands = self.commands.lock().unwrap();
        let key = (ack.device_id.clone(), ack.command_id.clone());
        let outcome = apply_ack(commands.get(&key), ack, now);
        if outcome == AckOutcome::Recorded {
            let command = commands.get_mut(&key).expect("recorded means stored");
            command.status = CommandStatus::from(ack.status);
            command.answered_at = Some(now);
            command.result = ack.result.clone();
        }
        Ok(outcome)
    }
}

/// Firmware artifacts and the images in the bucket, in memory.
#[derive(Default)]
pub struct MemoryFirmware {
    pub artifacts: Mutex<HashMap<String, Artifact>>,
    /// (bucket, key) -> image bytes (the current version).
    pub objects: Mutex<HashMap<(String, String), Vec<u8>>>,
    /// (bucket, key, version id) -> image bytes, for notifications that name a version.
    pub versions: Mutex<HashMap<(String, String, String), Vec<u8>>>,
}

impl FirmwareChecks for MemoryFirmware {
    async fn artifact(&self, version: &str) -> Result<Option<Artifact>, PortError> {
        Ok(self.artifacts.lock().unwrap().get(version).cloned())
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

    async fn set_checked(
        &self,
        version: &str,
        outcome: Result<(), String>,
        at: DateTime<Utc>,
    ) -> Result<bool, PortError> {
        let mut artifacts = self.artifacts.lock().unwrap();
        let Some(artifact) = artifacts
            .get_mut(version)
            .filter(|a| a.status == ArtifactStatus::PendingUpload)
        else {
            return Ok(false);
        };
        match outcome {
            Ok(()) => artifact.status = ArtifactStatus::Ready,
            Err(reason) => {
                artifact.status = ArtifactStatus::Rejected;
                artifact.reason = Some(reason);
            }
        }
        artifact.checked_at = Some(at);
        Ok(true)
    }
}

/// A job created in memory: (things, firmware version, rollback).
pub type MemoryJob = (Vec<String>, String, bool);

/// Rollouts, jobs, registry versions, scheduled retries and published events in memory.
#[derive(Default)]
pub struct MemoryRollouts {
    pub rollouts: Mutex<HashMap<String, hub_fleet::rollout::Rollout>>,
    /// (rollout, device) -> row.
    pub rows: Mutex<std::collections::BTreeMap<(String, String), hub_fleet::rollout::DeviceRow>>,
    pub artifacts: Mutex<HashMap<String, Artifact>>,
    pub jobs: Mutex<std::collections::BTreeMap<String, MemoryJob>>,
    pub cancel_reasons: Mutex<HashMap<String, String>>,
    pub cancelled_jobs: Mutex<Vec<String>>,
    pub versions: Mutex<HashMap<String, String>>,
    pub retries: Mutex<Vec<(crate::rollout::RetryDue, chrono::Duration)>>,
    pub events: Mutex<Vec<hub_events::Envelope<hub_events::RolloutEvent>>>,
}

impl MemoryRollouts {
    pub fn row(&self, rollout_id: &str, device_id: &str) -> hub_fleet::rollout::DeviceRow {
        self.rows.lock().unwrap()[&(rollout_id.to_owned(), device_id.to_owned())].clone()
    }

    pub fn status(&self, rollout_id: &str) -> hub_fleet::rollout::RolloutStatus {
        self.rollouts.lock().unwrap()[rollout_id].status
    }
}

impl crate::RolloutPorts for MemoryRollouts {
    async fn rollout(
        &self,
        id: &str,
    ) -> Result<Option<(hub_fleet::rollout::Rollout, hub_fleet::rollout::Counts)>, PortError> {
        let Some(rollout) = self.rollouts.lock().unwrap().get(id).cloned() else {
            return Ok(None);
        };
        let rows = self.rows.lock().unwrap();
        let counts = hub_fleet::rollout::Counts::of_rows(
            rows.iter()
                .filter(|((r, _), _)| r == id)
                .map(|(_, row)| row),
        );
        Ok(Some((rollout, counts)))
    }

    async fn device(
        &self,
        rollout_id: &str,
        device_id: &str,
    ) -> Result<Option<hub_fleet::rollout::DeviceRow>, PortError> {
        Ok(self
            .rows
            .lock()
            .unwrap()
            .get(&(rollout_id.to_owned(), device_id.to_owned()))
            .cloned())
    }

    async fn devices(
        &self,
        rollout_id: &str,
    ) -> Result<Vec<hub_fleet::rollout::DeviceRow>, PortError> {
        Ok(self
            .rows
            .lock()
            .unwrap()
            .iter()
            .filter(|((r, _), _)| r == rollout_id)
            .map(|(_, row)| row.clone())
            .collect())
    }

    async fn save_device(
        &self,
        rollout_id: &str,
        old: &hub_fleet::rollout::DeviceRow,
        new: &hub_fleet::rollout::DeviceRow,
    ) -> Result<bool, PortError> {
        let mut rows = self.rows.lock().unwrap();
        let key = (rollout_id.to_owned(), old.device_id.clone());
        match rows.get(&key) {
            Some(held) if held.revision == old.revision => {
                let mut next = new.clone();
                next.revision = old.revision + 1;
                rows.insert(key, next);
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    async fn set_status(
        &self,
        rollout_id: &str,
        from: hub_fleet::rollout::RolloutStatus,
        to: hub_fleet::rollout::RolloutStatus,
        reason: Option<&str>,
        at: DateTime<Utc>,
    ) -> Result<bool, PortError> {
        let mut rollouts = self.rollouts.lock().unwrap();
        match rollouts.get_mut(rollout_id) {
            Some(r) if r.status == from => {
                r.status = to;
                r.reason = reason.map(str::to_owned);
                r.updated_at = at;
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    async fn set_job_done(&self, rollout_id: &str, _at: DateTime<Utc>) -> Result<(), PortError> {
        if let Some(r) = self.rollouts.lock().unwrap().get_mut(rollout_id) {
            r.job_done = true;
        }
        Ok(())
    }

    async fn cancel_job(&self, job_id: &str, _comment: &str) -> Result<(), PortError> {
        self.cancelled_jobs.lock().unwrap().push(job_id.to_owned());
        Ok(())
    }

    async fn cancel_reason(&self, job_id: &str) -> Result<Option<String>, PortError> {
        Ok(self.cancel_reasons.lock().unwrap().get(job_id).cloned())
    }

    async fn artifact(&self, version: &str) -> Result<Option<Artifact>, PortError> {
        Ok(self.artifacts.lock().unwrap().get(version).cloned())
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
