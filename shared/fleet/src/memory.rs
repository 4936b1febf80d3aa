//! The fleet tables in memory, for tests of the functions that share them. Each keeps
//! the DynamoDB adapter's rules (conditional creates, compare-and-set on a row's
//! revision, only-pending checks, a next-page id whenever a page is full), so a handler
//! test sees what the deployed table does. One difference: a rollout create whose id is
//! taken changes nothing here, where the adapter has already written the device rows
//! (ids are generated, so it does not meet one).

use std::{collections::BTreeMap, sync::Mutex};

use chrono::{DateTime, Utc};

use crate::{
    command::{apply_ack, AckOutcome, Command, CommandAck, CommandStatus},
    firmware::{Artifact, ArtifactStatus},
    rollout::{Counts, DeviceRow, Rollout, RolloutStatus},
    tables::{CommandsTable, FirmwareTable, RolloutsTable, TableError},
};

/// Commands keyed by (device, command id).
#[derive(Default, Debug)]
pub struct MemoryCommands {
    pub commands: Mutex<BTreeMap<(String, String), Command>>,
}

impl MemoryCommands {
    pub fn insert(&self, command: Command) {
        let key = (command.device_id.clone(), command.command_id.clone());
        self.commands.lock().unwrap().insert(key, command);
    }

    pub fn command(&self, device_id: &str, command_id: &str) -> Option<Command> {
        let key = (device_id.to_owned(), command_id.to_owned());
        self.commands.lock().unwrap().get(&key).cloned()
    }
}

impl CommandsTable for MemoryCommands {
    async fn put(&self, command: &Command) -> Result<bool, TableError> {
        let mut commands = self.commands.lock().unwrap();
        let key = (command.device_id.clone(), command.command_id.clone());
        if commands.contains_key(&key) {
            return Ok(false);
        }
        commands.insert(key, command.clone());
        Ok(true)
    }

    async fn get(&self, device_id: &str, command_id: &str) -> Result<Option<Command>, TableError> {
        Ok(self.command(device_id, command_id))
    }

    async fn list(
        &self,
        device_id: &str,
        limit: usize,
        after: Option<&str>,
    ) -> Result<(Vec<Command>, Option<String>), TableError> {
        let commands = self.commands.lock().unwrap();
        let newest_first = commands
            .values()
            .rev()
            .filter(|c| c.device_id == device_id)
            .filter(|c| after.is_none_or(|a| c.command_id.as_str() < a));
        let page: Vec<Command> = newest_first.take(limit).cloned().collect();
        // As a DynamoDB query with a limit: a full page names where to go on, even when
        // nothing follows.
        let next = (page.len() == limit)
            .then(|| page.last().map(|c| c.command_id.clone()))
            .flatten();
        Ok((page, next))
    }

    async fn set_undelivered(
        &self,
        device_id: &str,
        command_id: &str,
        error: &str,
    ) -> Result<(), TableError> {
        let mut commands = self.commands.lock().unwrap();
        let key = (device_id.to_owned(), command_id.to_owned());
        if let Some(command) = commands
            .get_mut(&key)
            .filter(|c| c.status == CommandStatus::Sent)
        {
            command.status = CommandStatus::Undelivered;
            command.error = Some(error.to_owned());
        }
        Ok(())
    }

    async fn record_ack(
        &self,
        ack: &CommandAck,
        now: DateTime<Utc>,
    ) -> Result<AckOutcome, TableError> {
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

/// Firmware artifacts keyed by version.
#[derive(Default, Debug)]
pub struct MemoryFirmware {
    pub artifacts: Mutex<BTreeMap<String, Artifact>>,
}

impl MemoryFirmware {
    pub fn insert(&self, artifact: Artifact) {
        let version = artifact.version.clone();
        self.artifacts.lock().unwrap().insert(version, artifact);
    }

    pub fn artifact(&self, version: &str) -> Option<Artifact> {
        self.artifacts.lock().unwrap().get(version).cloned()
    }
}

impl FirmwareTable for MemoryFirmware {
    async fn put(&self, artifact: &Artifact) -> Result<bool, TableError> {
        let mut artifacts = self.artifacts.lock().unwrap();
        if artifacts.contains_key(&artifact.version) {
            return Ok(false);
        }
        artifacts.insert(artifact.version.clone(), artifact.clone());
        Ok(true)
    }

    async fn get(&self, version: &str) -> Result<Option<Artifact>, TableError> {
        Ok(self.artifact(version))
    }

    async fn all(&self) -> Result<Vec<Artifact>, TableError> {
        Ok(self.artifacts.lock().unwrap().values().cloned().collect())
    }

    async fn set_checked(
        &self,
        version: &str,
        outcome: Result<(), String>,
        at: DateTime<Utc>,
    ) -> Result<bool, TableError> {
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

/// Rollouts and their device rows; the counts are computed from the rows, which is what
/// the DynamoDB adapter's counters are kept equal to.
#[derive(Default, Debug)]
pub struct MemoryRollouts {
    pub rollouts: Mutex<BTreeMap<String, Rollout>>,
    /// (rollout, device) -> row.
    pub rows: Mutex<BTreeMap<(String, String), DeviceRow>>,
}

impl MemoryRollouts {
    /// Stores a rollout and its rows as they are, whatever was there.
    pub fn insert(&self, rollout: Rollout, rows: impl IntoIterator<Item = DeviceRow>) {
        // Locks taken in one order everywhere: rollouts, then rows.
        let id = rollout.rollout_id.clone();
        let mut rollouts = self.rollouts.lock().unwrap();
        let mut table = self.rows.lock().unwrap();
        for row in rows {
            table.insert((id.clone(), row.device_id.clone()), row);
        }
        rollouts.insert(id, rollout);
    }

    /// The row of a device that has one (panics otherwise: for tests).
    pub fn row(&self, rollout_id: &str, device_id: &str) -> DeviceRow {
        self.rows.lock().unwrap()[&(rollout_id.to_owned(), device_id.to_owned())].clone()
    }

    /// The rollout as stored (panics if there is none: for tests).
    pub fn rollout(&self, rollout_id: &str) -> Rollout {
        self.rollouts.lock().unwrap()[rollout_id].clone()
    }

    pub fn status(&self, rollout_id: &str) -> RolloutStatus {
        self.rollout(rollout_id).status
    }

    fn rows_of(&self, rollout_id: &str) -> Vec<DeviceRow> {
        self.rows
            .lock()
            .unwrap()
            .iter()
            .filter(|((r, _), _)| r == rollout_id)
            .map(|(_, row)| row.clone())
            .collect()
    }

    fn with_counts(&self, rollout: Rollout) -> (Rollout, Counts) {
        let counts = Counts::of_rows(&self.rows_of(&rollout.rollout_id));
        (rollout, counts)
    }
}

impl RolloutsTable for MemoryRollouts {
    async fn create(&self, rollout: &Rollout, rows: &[DeviceRow]) -> Result<bool, TableError> {
        let mut rollouts = self.rollouts.lock().unwrap();
        if rollouts.contains_key(&rollout.rollout_id) {
            return Ok(false);
        }
        let mut table = self.rows.lock().unwrap();
        for row in rows {
            table.insert(
                (rollout.rollout_id.clone(), row.device_id.clone()),
                row.clone(),
            );
        }
        rollouts.insert(rollout.rollout_id.clone(), rollout.clone());
        Ok(true)
    }

    async fn get(&self, rollout_id: &str) -> Result<Option<(Rollout, Counts)>, TableError> {
        let rollout = self.rollouts.lock().unwrap().get(rollout_id).cloned();
        Ok(rollout.map(|r| self.with_counts(r)))
    }

    async fn all(&self) -> Result<Vec<(Rollout, Counts)>, TableError> {
        let rollouts: Vec<Rollout> = self.rollouts.lock().unwrap().values().cloned().collect();
        Ok(rollouts.into_iter().map(|r| self.with_counts(r)).collect())
    }

    async fn device(
        &self,
        rollout_id: &str,
        device_id: &str,
    ) -> Result<Option<DeviceRow>, TableError> {
        let key = (rollout_id.to_owned(), device_id.to_owned());
        Ok(self.rows.lock().unwrap().get(&key).cloned())
    }

    async fn devices(&self, rollout_id: &str) -> Result<Vec<DeviceRow>, TableError> {
        Ok(self.rows_of(rollout_id))
    }

    async fn save_device(
        &self,
        rollout_id: &str,
        old: &DeviceRow,
        new: &DeviceRow,
    ) -> Result<bool, TableError> {
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
        from: RolloutStatus,
        to: RolloutStatus,
        reason: Option<&str>,
        at: DateTime<Utc>,
    ) -> Result<bool, TableError> {
        let mut rollouts = self.rollouts.lock().unwrap();
        let Some(rollout) = rollouts.get_mut(rollout_id).filter(|r| r.status == from) else {
            return Ok(false);
        };
        rollout.status = to;
        rollout.updated_at = at;
        if let Some(reason) = reason {
            rollout.reason = Some(reason.to_owned());
        }
        if to != RolloutStatus::InProgress {
            rollout.finished_at = Some(at);
        }
        Ok(true)
    }

    async fn set_job_done(&self, rollout_id: &str, at: DateTime<Utc>) -> Result<(), TableError> {
        let mut rollouts = self.rollouts.lock().unwrap();
        let rollout = rollouts
            .get_mut(rollout_id)
            .ok_or_else(|| TableError::new("rollout write", format!("no rollout {rollout_id}")))?;
        rollout.job_done = true;
        rollout.updated_at = at;
        Ok(())
    }
}
