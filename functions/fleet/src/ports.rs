//! What the fleet function's handlers need from outside, one trait per source of events:
//! the registry (presence), the commands table (answers), the firmware table and bucket
//! (upload checks), and what rollouts touch.

use std::future::Future;

use chrono::{DateTime, Duration, Utc};
use hub_events::{Envelope, RolloutEvent};
use hub_fleet::{
    command::{AckOutcome, CommandAck},
    firmware::Artifact,
    rollout::{Counts, DeviceRow, Rollout, RolloutStatus},
};
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

/// Where command answers are recorded.
pub trait CommandAnswers {
    fn record_ack(
        &self,
        ack: &CommandAck,
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<AckOutcome, PortError>> + Send;
}

/// Where uploaded images are checked.
pub trait FirmwareChecks {
    fn artifact(
        &self,
        version: &str,
    ) -> impl Future<Output = Result<Option<Artifact>, PortError>> + Send;
    /// Reads the image; `version` is the object version the notification names (the
    /// bucket is versioned), so the check is of the upload that was notified, not of
    /// whatever the key holds by the time it is read.
    fn digest(
        &self,
        bucket: &str,
        key: &str,
        version: Option<&str>,
    ) -> impl Future<Output = Result<ImageDigest, PortError>> + Send;
    /// Records the check if the artifact is still pending; false if it was not.
    fn set_checked(
        &self,
        version: &str,
        outcome: Result<(), String>,
        at: DateTime<Utc>,
    ) -> impl Future<Output = Result<bool, PortError>> + Send;
}

/// What the rollout handlers need from outside.
pub trait RolloutPorts {
    fn rollout(
        &self,
        id: &str,
    ) -> impl Future<Output = Result<Option<(Rollout, Counts)>, PortError>> + Send;
    fn device(
        &self,
        rollout_id: &str,
        device_id: &str,
    ) -> impl Future<Output = Result<Option<DeviceRow>, PortError>> + Send;
    fn devices(
        &self,
        rollout_id: &str,
    ) -> impl Future<Output = Result<Vec<DeviceRow>, PortError>> + Send;
    /// Replaces `old` by `new` if the row is still at `old`'s revision.
    fn save_device(
        &self,
        rollout_id: &str,
        old: &DeviceRow,
        new: &DeviceRow,
    ) -> impl Future<Output = Result<bool, PortError>> + Send;
    fn set_status(
        &self,
        rollout_id: &str,
        from: RolloutStatus,
        to: RolloutStatus,
        reason: Option<&str>,
        at: DateTime<Utc>,
    ) -> impl Future<Output = Result<bool, PortError>> + Send;
    fn set_job_done(
        &self,
        rollout_id: &str,
        at: DateTime<Utc>,
    ) -> impl Future<Output = Result<(), PortError>> + Send;
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
    fn artifact(
        &self,
        version: &str,
    ) -> impl Future<Output = Result<Option<Artifact>, PortError>> + Send;
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
