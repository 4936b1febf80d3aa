//! The registry's connectivity columns in memory, for tests.

use std::{collections::HashMap, sync::Mutex};

use hub_runtime::PortError;

use chrono::{DateTime, Utc};
use hub_fleet::command::{apply_ack, AckOutcome, Command, CommandAck, CommandStatus};

use hub_fleet::firmware::{Artifact, ArtifactStatus};

use crate::{
    firmware::{FirmwareChecks, ImageDigest},
    Applied, CommandAnswers, ConnectivityStore, PresenceChange,
};

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
    /// (bucket, key) -> image bytes.
    pub objects: Mutex<HashMap<(String, String), Vec<u8>>>,
}

impl FirmwareChecks for MemoryFirmware {
    async fn artifact(&self, version: &str) -> Result<Option<Artifact>, PortError> {
        Ok(self.artifacts.lock().unwrap().get(version).cloned())
    }

    async fn digest(&self, bucket: &str, key: &str) -> Result<ImageDigest, PortError> {
        let objects = self.objects.lock().unwrap();
        let image = objects
            .get(&(bucket.to_owned(), key.to_owned()))
            .ok_or_else(|| PortError::new("firmware image read", "NoSuchKey"))?;
        Ok(ImageDigest {
            size: image.len() as u64,
            sha256: hub_fleet::firmware::hex(
                ring::digest::digest(&ring::digest::SHA256, image).as_ref(),
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
