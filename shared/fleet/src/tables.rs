//! The fleet tables the admin API and the fleet function share — commands, firmware
//! artifacts, rollouts with their device rows — as traits, each with one DynamoDB
//! implementation (`*_table` modules) and one in memory ([`crate::memory`]), so both
//! functions' tests run against the same fake and both functions against the same
//! adapter.

use std::future::Future;

use chrono::{DateTime, Utc};

use crate::{
    command::{AckOutcome, Command, CommandAck},
    firmware::Artifact,
    rollout::{Counts, DeviceRow, Rollout, RolloutStatus},
};

pub use hub_runtime::TableError;

/// Commands, keyed by (device, command id); a device's commands list newest first.
pub trait CommandsTable {
    /// Writes a new command; false if its id is taken.
    fn put(&self, command: &Command) -> impl Future<Output = Result<bool, TableError>> + Send;
    fn get(
        &self,
        device_id: &str,
        command_id: &str,
    ) -> impl Future<Output = Result<Option<Command>, TableError>> + Send;
    /// Up to `limit` of a device's commands, newest first, after the id `after`; and the
    /// id to go on after, if there may be more.
    fn list(
        &self,
        device_id: &str,
        limit: usize,
        after: Option<&str>,
    ) -> impl Future<Output = Result<(Vec<Command>, Option<String>), TableError>> + Send;
    /// Marks a command whose publish failed, unless the device answered it meanwhile.
    fn set_undelivered(
        &self,
        device_id: &str,
        command_id: &str,
        error: &str,
    ) -> impl Future<Output = Result<(), TableError>> + Send;
    /// Records a device's answer if [`crate::command::apply_ack`] admits it; otherwise
    /// says why not.
    fn record_ack(
        &self,
        ack: &CommandAck,
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<AckOutcome, TableError>> + Send;
}

/// Firmware artifacts, keyed by version.
pub trait FirmwareTable {
    /// Registers a version; false if it is taken.
    fn put(&self, artifact: &Artifact) -> impl Future<Output = Result<bool, TableError>> + Send;
    fn get(
        &self,
        version: &str,
    ) -> impl Future<Output = Result<Option<Artifact>, TableError>> + Send;
    fn all(&self) -> impl Future<Output = Result<Vec<Artifact>, TableError>> + Send;
    /// Records the upload check once: only a pending artifact moves; false if it was not
    /// pending.
    fn set_checked(
        &self,
        version: &str,
        outcome: Result<(), String>,
        at: DateTime<Utc>,
    ) -> impl Future<Output = Result<bool, TableError>> + Send;
}

/// Rollouts with a counter per device status, and their device rows. A row changes only
/// from the revision the change was computed from, and the counters with it.
pub trait RolloutsTable {
    /// Stores a new rollout with its device rows; false if the id is taken.
    fn create(
        &self,
        rollout: &Rollout,
        rows: &[DeviceRow],
    ) -> impl Future<Output = Result<bool, TableError>> + Send;
    fn get(
        &self,
        rollout_id: &str,
    ) -> impl Future<Output = Result<Option<(Rollout, Counts)>, TableError>> + Send;
    fn all(&self) -> impl Future<Output = Result<Vec<(Rollout, Counts)>, TableError>> + Send;
    fn device(
        &self,
        rollout_id: &str,
        device_id: &str,
    ) -> impl Future<Output = Result<Option<DeviceRow>, TableError>> + Send;
    fn devices(
        &self,
        rollout_id: &str,
    ) -> impl Future<Output = Result<Vec<DeviceRow>, TableError>> + Send;
    /// Replaces `old` by `new` if the row is still at `old`'s revision; false if someone
    /// changed it first (read again and recompute).
    fn save_device(
        &self,
        rollout_id: &str,
        old: &DeviceRow,
        new: &DeviceRow,
    ) -> impl Future<Output = Result<bool, TableError>> + Send;
    /// Moves a rollout from `from` to `to` (with the reason; a status other than in
    /// progress also sets `finished_at`); false if it was not in `from`.
    fn set_status(
        &self,
        rollout_id: &str,
        from: RolloutStatus,
        to: RolloutStatus,
        reason: Option<&str>,
        at: DateTime<Utc>,
    ) -> impl Future<Output = Result<bool, TableError>> + Send;
    /// Records that the rollout's own job has ended.
    fn set_job_done(
        &self,
        rollout_id: &str,
        at: DateTime<Utc>,
    ) -> impl Future<Output = Result<(), TableError>> + Send;
}

#[cfg(feature = "dynamodb")]
pub(crate) use hub_runtime::dynamodb::sdk_error;
