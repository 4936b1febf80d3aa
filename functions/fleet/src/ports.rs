//! What the fleet function's handlers need from outside, one trait per source of events:
//! the registry (presence), the firmware table and bucket (upload checks), and what
//! rollouts touch. Command answers go to [`hub_fleet::CommandsTable`] itself.

use std::future::Future;

use chrono::Duration;
use hub_events::{Envelope, RolloutEvent};
use hub_fleet::{firmware::Artifact, rollout::Rollout, FirmwareTable, RolloutsTable};
use hub_runtime::PortError;

use crate::{firmware::ImageDigest, rollout::RetryDue, Applied, PresenceChange};

/// Where presence is recorded.
pub trait ConnectivityStore {
    /// Records the change if the row exists and holds no newer one.
    fn apply(
        &self,
        change: &PresenceChange,
    ) -> impl Future<Output = Result<Applied, PortError>> + Send;
}

/// Where uploaded images are checked: the firmware table and the bucket.
pub trait FirmwareChecks {
    type Table: FirmwareTable + Sync;
    fn table(&self) -> &Self::Table;
    /// Reads the image; `version` is the object version the notification names (the
    /// bucket is versioned), so the check is of the upload that was notified, not of
    /// whatever the key holds by the time it is read.
    fn digest(
        &self,
        bucket: &str,
        key: &str,
        version: Option<&str>,
    ) -> impl Future<Output = Result<ImageDigest, PortError>> + Send;
}

/// What the rollout handlers need from outside: the rollout and firmware tables, IoT
/// Jobs, the registry's firmware version, the retry queue and the event stream.
pub trait RolloutPorts {
    type Rollouts: RolloutsTable + Sync;
    type Firmware: FirmwareTable + Sync;
    fn rollouts_table(&self) -> &Self::Rollouts;
    fn firmware_table(&self) -> &Self::Firmware;
    /// Cancels a job's waiting executions (done already is fine).
    fn cancel_job(
        &self,
        job_id: &str,
        comment: &str,
    ) -> impl Future<Output = Result<(), PortError>> + Send;
    /// The reason code a job was cancelled with.
    fn cancel_reason(
        &self,
        job_id: &str,
    ) -> impl Future<Output = Result<Option<String>, PortError>> + Send;
    /// A job of `artifact` to `things`; false if the job id exists already.
    fn create_job(
        &self,
        job_id: &str,
        things: &[String],
        rollout: &Rollout,
        artifact: &Artifact,
        rollback: bool,
    ) -> impl Future<Output = Result<bool, PortError>> + Send;
    /// The registry row's firmware version.
    fn record_version(
        &self,
        device_id: &str,
        version: &str,
    ) -> impl Future<Output = Result<(), PortError>> + Send;
    fn schedule_retry(
        &self,
        retry: &RetryDue,
        delay: Duration,
    ) -> impl Future<Output = Result<(), PortError>> + Send;
    fn publish(
        &self,
        event: &Envelope<RolloutEvent>,
    ) -> impl Future<Output = Result<(), PortError>> + Send;
}
