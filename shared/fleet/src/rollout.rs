//! Firmware rollouts. A rollout sends one firmware version to a thing group as an IoT Job
//! whose rollout config releases a canary first (exponential rate: the canary's size per
//! minute until that many devices succeeded, then faster) and whose abort config cancels
//! the job once failures pass the threshold among at least the canary's executions.
//!
//! The hub keeps a row per device and applies job-execution events to it. Events come
//! late, twice and out of order, so a row only moves forward: an event for an older
//! attempt is stale, and within an attempt a status never goes back (an `IN_PROGRESS`
//! after `SUCCEEDED` changes nothing). A failed or timed-out attempt is retried by the
//! hub with exponential backoff (IoT Jobs' own retry config re-queues at once, without
//! backoff), as a one-device job, until the policy's attempts are spent. When the job is
//! aborted, devices that already took the new version are sent back to the version they
//! ran before, and operators are alerted.
//!
//! Everything here is pure: the function and the API hand it rows and events and store
//! what it returns.

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

/// Longest wait before a retry (SQS's largest message delay).
pub const MAX_BACKOFF_SECONDS: u32 = 900;
/// AWS IoT's largest exponential rollout increment factor.
pub const INCREMENT_FACTOR: f64 = 5.0;

// ---------------------------------------------------------------- policy

/// The policy as a request states it; every field is optional.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyRequest {
    #[serde(default, deserialize_with = "crate::body::given")]
    pub canary_percent: Option<f64>,
    #[serde(default, deserialize_with = "crate::body::given_integer")]
    pub max_per_minute: Option<u32>,
    #[serde(default, deserialize_with = "crate::body::given")]
    pub abort_failure_percent: Option<f64>,
    #[serde(default, deserialize_with = "crate::body::given_integer")]
    pub max_attempts: Option<u32>,
    #[serde(default, deserialize_with = "crate::body::given_integer")]
    pub retry_backoff_seconds: Option<u32>,
    #[serde(default, deserialize_with = "crate::body::given_integer")]
    pub timeout_minutes: Option<u32>,
}

/// How a rollout goes out, with defaults filled in and bounds checked.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RolloutPolicy {
    /// Share of the group that goes first (0: no canary stage).
    pub canary_percent: f64,
    /// Most devices started per minute once the canary has succeeded (Jobs allows 1000).
    pub max_per_minute: u32,
    /// The job aborts once this share of finished executions failed (any failure type).
    pub abort_failure_percent: f64,
    /// Attempts per device, the first included.
    pub max_attempts: u32,
    /// Wait before the second attempt; it doubles for each later one.
    pub retry_backoff_seconds: u32,
    /// An execution in progress this long is timed out.
    pub timeout_minutes: u32,
}

impl Default for RolloutPolicy {
    fn default() -> Self {
        Self {
            canary_percent: 10.0,
            max_per_minute: 1000,
            abort_failure_percent: 5.0,
            max_attempts: 3,
            retry_backoff_seconds: 30,
            timeout_minutes: 60,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("policy.{field}: {problem}")]
pub struct PolicyError {
    pub field: &'static str,
    pub problem: String,
}

fn bad(field: &'static str, problem: impl Into<String>) -> PolicyError {
    PolicyError {
        field,
        problem: problem.into(),
    }
}

impl RolloutPolicy {
    pub fn from_request(request: &PolicyRequest) -> Result<Self, PolicyError> {
        let d = Self::default();
        let policy = Self {
            canary_percent: request.canary_percent.unwrap_or(d.canary_percent),
            max_per_minute: request.max_per_minute.unwrap_or(d.max_per_minute),
            abort_failure_percent: request
                .abort_failure_percent
                .unwrap_or(d.abort_failure_percent),
            max_attempts: request.max_attempts.unwrap_or(d.max_attempts),
            retry_backoff_seconds: request
                .retry_backoff_seconds
                .unwrap_or(d.retry_backoff_seconds),
            timeout_minutes: request.timeout_minutes.unwrap_or(d.timeout_minutes),
        };
        if !(0.0..=100.0).contains(&policy.canary_percent) {
            return Err(bad("canary_percent", "must be between 0 and 100"));
        }
        if !(1..=1000).contains(&policy.max_per_minute) {
            return Err(bad("max_per_minute", "must be between 1 and 1000"));
        }
        // Jobs takes a percentage above 0 with at most two decimals.
        let abort = policy.abort_failure_percent;
        // Compared with the nearest whole hundredth: 0.29 * 100 is 28.999999999999996,
        // whose fraction is nearly 1, not nearly 0.
        let hundredths = abort * 100.0;
        if !(abort > 0.0 && abort <= 100.0) || (hundredths - hundredths.round()).abs() > 1e-6 {
            return Err(bad(
                "abort_failure_percent",
                "must be above 0 and at most 100, with at most two decimals",
            ));
        }
        if !(1..=10).contains(&policy.max_attempts) {
            return Err(bad("max_attempts", "must be between 1 and 10"));
        }
        if !(1..=MAX_BACKOFF_SECONDS).contains(&policy.retry_backoff_seconds) {
            return Err(bad(
                "retry_backoff_seconds",
                format!("must be between 1 and {MAX_BACKOFF_SECONDS}"),
            ));
        }
        if !(1..=10080).contains(&policy.timeout_minutes) {
            return Err(bad(
                "timeout_minutes",
                "must be between 1 and 10080 (a week)",
            ));
        }
        Ok(policy)
    }

    /// Devices in the canary stage of a group of `devices`: at least one when there is a
    /// canary at all, never more than the group.
    pub fn canary_size(&self, devices: u32) -> u32 {
        if self.canary_percent <= 0.0 || devices == 0 {
            return 0;
        }
        let size = (f64::from(devices) * self.canary_percent / 100.0).ceil() as u32;
        size.clamp(1, devices)
    }

    /// The wait before attempt `next_attempt` (2 for the first retry).
    pub fn backoff(&self, next_attempt: u32) -> Duration {
        let doublings = next_attempt.saturating_sub(2).min(16);
        let seconds = u64::from(self.retry_backoff_seconds) << doublings;
        Duration::seconds(seconds.min(u64::from(MAX_BACKOFF_SECONDS)) as i64)
    }

    /// The IoT Jobs configuration of the rollout job for a group of `devices`.
    pub fn job_config(&self, devices: u32) -> JobConfig {
        let canary = self.canary_size(devices);
        let staged = canary > 0 && canary < devices;
        JobConfig {
            maximum_per_minute: self.max_per_minute,
            exponential_rate: staged.then(|| ExponentialRate {
                base_rate_per_minute: canary.min(self.max_per_minute),
                increment_factor: INCREMENT_FACTOR,
                number_of_succeeded_things: canary,
            }),
            abort_threshold_percentage: self.abort_failure_percent,
            // The abort decision waits for the canary (or the first device) to finish.
            abort_min_executed_things: canary.max(1),
            in_progress_timeout_minutes: self.timeout_minutes,
        }
    }
}

/// IoT Jobs settings, as plain data; the AWS adapter turns them into CreateJob members.
#[derive(Clone, Debug, PartialEq)]
pub struct JobConfig {
    pub maximum_per_minute: u32,
    /// The canary stage: `base_rate_per_minute` devices a minute until
    /// `number_of_succeeded_things` succeeded, then `increment_factor` times faster.
    pub exponential_rate: Option<ExponentialRate>,
    /// Abort (failure type ALL, action CANCEL) once this share of finished executions failed.
    pub abort_threshold_percentage: f64,
    pub abort_min_executed_things: u32,
    pub in_progress_timeout_minutes: u32,
}

#[derive(Clone, Debug, PartialEq)]
pub struct ExponentialRate {
    pub base_rate_per_minute: u32,
    pub increment_factor: f64,
    pub number_of_succeeded_things: u32,
}

// ---------------------------------------------------------------- job ids

/// What a job of a rollout is for. Job ids carry it, so an execution event (which names
/// only the job and the thing) finds its rollout, device row and attempt.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum JobKind {
    /// The rollout's job to the whole group: attempt 1.
    Rollout,
    /// A one-device retry.
    Retry { attempt: u32 },
    /// A rollback job (`batch` numbers them).
    Rollback { batch: u32 },
}

/// Rollout ids: `ota-` and 32 hex digits (a UUID v7, so they sort by creation).
pub fn new_rollout_id() -> String {
    format!("ota-{}", uuid::Uuid::now_v7().simple())
}

pub fn is_rollout_id(id: &str) -> bool {
    id.strip_prefix("ota-")
        .is_some_and(|rest| rest.len() == 32 && rest.bytes().all(|b| b.is_ascii_hexdigit()))
}

pub fn rollout_job_id(rollout_id: &str) -> String {
    rollout_id.to_owned()
}

/// One job per device and attempt; the device's hash keeps ids within Jobs' 64 characters.
pub fn retry_job_id(rollout_id: &str, device_id: &str, attempt: u32) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, device_id.as_bytes());
    let short = crate::firmware::hex(&digest.as_ref()[..4]);
    format!("{rollout_id}_r{attempt}_{short}")
}

pub fn rollback_job_id(rollout_id: &str, batch: u32) -> String {
    format!("{rollout_id}_rb{batch}")
}

/// The rollout and kind of a job id the hub made; None for anyone else's job.
pub fn parse_job_id(job_id: &str) -> Option<(&str, JobKind)> {
    let mut parts = job_id.split('_');
    let rollout = parts.next().filter(|id| is_rollout_id(id))?;
    let kind = match (parts.next(), parts.next(), parts.next()) {
        (None, _, _) => JobKind::Rollout,
        (Some(r), Some(hash), None) if r.starts_with('r') && !r.starts_with("rb") => {
            let attempt = r[1..].parse().ok().filter(|a| *a >= 2)?;
            (hash.len() == 8).then_some(JobKind::Retry { attempt })?
        }
        (Some(rb), None, _) if rb.starts_with("rb") => JobKind::Rollback {
            batch: rb[2..].parse().ok()?,
        },
        _ => return None,
    };
    Some((rollout, kind))
}

/// The thing name in a thing ARN (`arn:aws:iot:region:account:thing/NAME`).
pub fn thing_of_arn(arn: &str) -> Option<&str> {
    arn.split_once(":thing/")
        .map(|(_, name)| name)
        .filter(|n| !n.is_empty())
}

// ---------------------------------------------------------------- rollout

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RolloutStatus {
    InProgress,
    /// Every device finished (succeeded, or failed below the abort threshold).
    Completed,
    /// The abort threshold was passed: the job was cancelled and rollbacks sent.
    Aborted,
    /// An operator cancelled it.
    Cancelled,
}

impl RolloutStatus {
    pub const ALL: [Self; 4] = [
        Self::InProgress,
        Self::Completed,
        Self::Aborted,
        Self::Cancelled,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::InProgress => "in_progress",
            Self::Completed => "completed",
            Self::Aborted => "aborted",
            Self::Cancelled => "cancelled",
        }
    }

    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == name)
    }
}

/// A rollout as stored (counts are kept beside it, see [`Counts`]).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Rollout {
    pub rollout_id: String,
    pub firmware_version: String,
    /// The thing group.
    pub target: String,
    pub policy: RolloutPolicy,
    pub status: RolloutStatus,
    pub job_id: String,
    pub device_count: u32,
    pub canary_size: u32,
    /// The rollout job itself has ended (completed or cancelled); retries may still run.
    pub job_done: bool,
    pub created_at: DateTime<Utc>,
    pub created_by: String,
    pub updated_at: DateTime<Utc>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<DateTime<Utc>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

// ---------------------------------------------------------------- devices

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeviceStatus {
    /// Waiting for its execution to start (or not yet released by the rollout rate).
    Queued,
    InProgress,
    /// Failed or timed out; the next attempt goes out at `retry_at`.
    RetryScheduled,
    Succeeded,
    Failed,
    TimedOut,
    /// The device refused the job (e.g. an operation it does not know); not retried.
    Rejected,
    /// Never ran: the job was aborted or cancelled, or the thing left the group.
    Cancelled,
}

impl DeviceStatus {
    pub const ALL: [Self; 8] = [
        Self::Queued,
        Self::InProgress,
        Self::RetryScheduled,
        Self::Succeeded,
        Self::Failed,
        Self::TimedOut,
        Self::Rejected,
        Self::Cancelled,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Queued => "queued",
            Self::InProgress => "in_progress",
            Self::RetryScheduled => "retry_scheduled",
            Self::Succeeded => "succeeded",
            Self::Failed => "failed",
            Self::TimedOut => "timed_out",
            Self::Rejected => "rejected",
            Self::Cancelled => "cancelled",
        }
    }

    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == name)
    }

    /// Still to finish: counts against completion.
    pub fn is_pending(self) -> bool {
        matches!(self, Self::Queued | Self::InProgress | Self::RetryScheduled)
    }

    /// How far along an attempt a status is; events only move a row forward. A
    /// cancellation is weaker than an outcome: a device that was already installing when
    /// the job was cancelled still reports how it went.
    fn rank(self) -> u8 {
        match self {
            Self::Queued | Self::RetryScheduled => 0,
            Self::InProgress => 1,
            Self::Cancelled => 2,
            Self::Succeeded | Self::Failed | Self::TimedOut | Self::Rejected => 3,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RollbackStatus {
    /// A rollback job went out.
    Sent,
    RolledBack,
    Failed,
    /// The previous version is unknown or has no ready artifact.
    Unavailable,
}

impl RollbackStatus {
    pub const ALL: [Self; 4] = [
        Self::Sent,
        Self::RolledBack,
        Self::Failed,
        Self::Unavailable,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Sent => "sent",
            Self::RolledBack => "rolled_back",
            Self::Failed => "failed",
            Self::Unavailable => "unavailable",
        }
    }

    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == name)
    }
}

/// One device of a rollout.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct DeviceRow {
    pub device_id: String,
    pub status: DeviceStatus,
    /// The attempt the status belongs to (1 for the rollout job).
    pub attempts: u32,
    pub updated_at: DateTime<Utc>,
    /// The version the registry showed when the rollout began: what a rollback restores.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub previous_version: Option<String>,
    /// What the device said about a failure, or why it was cancelled.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retry_at: Option<DateTime<Utc>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rollback: Option<RollbackStatus>,
    /// Bumped on every write: the condition that makes concurrent updates safe.
    #[serde(skip)]
    pub revision: u64,
}

impl DeviceRow {
    pub fn queued(device_id: &str, previous_version: Option<String>, at: DateTime<Utc>) -> Self {
        Self {
            device_id: device_id.to_owned(),
            status: DeviceStatus::Queued,
            attempts: 1,
            updated_at: at,
            previous_version,
            reason: None,
            retry_at: None,
            rollback: None,
            revision: 0,
        }
    }
}

/// Device counts per status, stored as counters beside the rollout.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Counts {
    pub queued: u64,
    pub in_progress: u64,
    pub retry_scheduled: u64,
    pub succeeded: u64,
    pub failed: u64,
    pub timed_out: u64,
    pub rejected: u64,
    pub cancelled: u64,
    pub rolled_back: u64,
}

impl Counts {
    pub fn get(&self, status: DeviceStatus) -> u64 {
        match status {
            DeviceStatus::Queued => self.queued,
            DeviceStatus::InProgress => self.in_progress,
            DeviceStatus::RetryScheduled => self.retry_scheduled,
            DeviceStatus::Succeeded => self.succeeded,
            DeviceStatus::Failed => self.failed,
            DeviceStatus::TimedOut => self.timed_out,
            DeviceStatus::Rejected => self.rejected,
            DeviceStatus::Cancelled => self.cancelled,
        }
    }

    pub fn get_mut(&mut self, status: DeviceStatus) -> &mut u64 {
        match status {
            DeviceStatus::Queued => &mut self.queued,
            DeviceStatus::InProgress => &mut self.in_progress,
            DeviceStatus::RetryScheduled => &mut self.retry_scheduled,
            DeviceStatus::Succeeded => &mut self.succeeded,
            DeviceStatus::Failed => &mut self.failed,
            DeviceStatus::TimedOut => &mut self.timed_out,
            DeviceStatus::Rejected => &mut self.rejected,
            DeviceStatus::Cancelled => &mut self.cancelled,
        }
    }

    pub fn of_rows<'a>(rows: impl IntoIterator<Item = &'a DeviceRow>) -> Self {
        let mut counts = Self::default();
        for row in rows {
            *counts.get_mut(row.status) += 1;
            if row.rollback == Some(RollbackStatus::RolledBack) {
                counts.rolled_back += 1;
            }
        }
        counts
    }

    pub fn total(&self) -> u64 {
        DeviceStatus::ALL.iter().map(|s| self.get(*s)).sum()
    }

    pub fn pending(&self) -> u64 {
        self.queued + self.in_progress + self.retry_scheduled
    }

    /// Share of devices finished, in percent: the `firmware_rollout_progress` metric.
    pub fn progress_percent(&self) -> f64 {
        let total = self.total();
        if total == 0 {
            return 100.0;
        }
        (total - self.pending()) as f64 * 100.0 / total as f64
    }

    /// The counts of the versioned rollout events.
    pub fn to_event(&self) -> hub_events::RolloutCounts {
        hub_events::RolloutCounts {
            queued: self.queued + self.retry_scheduled,
            in_progress: self.in_progress,
            succeeded: self.succeeded,
            failed: self.failed + self.rejected,
            timed_out: self.timed_out,
            cancelled: self.cancelled,
        }
    }
}

// ---------------------------------------------------------------- events

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExecutionStatus {
    Queued,
    InProgress,
    Succeeded,
    Failed,
    TimedOut,
    Rejected,
    Canceled,
    Removed,
    Deleted,
}

impl ExecutionStatus {
    /// The IoT Jobs name (`SUCCEEDED`, `TIMED_OUT`, ...), any case.
    pub fn from_jobs(name: &str) -> Option<Self> {
        Some(match name.to_ascii_uppercase().as_str() {
            "QUEUED" => Self::Queued,
            "IN_PROGRESS" => Self::InProgress,
            "SUCCEEDED" => Self::Succeeded,
            "FAILED" => Self::Failed,
            "TIMED_OUT" => Self::TimedOut,
            "REJECTED" => Self::Rejected,
            "CANCELED" | "CANCELLED" => Self::Canceled,
            "REMOVED" => Self::Removed,
            "DELETED" => Self::Deleted,
            _ => return None,
        })
    }

    fn device_status(self) -> DeviceStatus {
        match self {
            Self::Queued => DeviceStatus::Queued,
            Self::InProgress => DeviceStatus::InProgress,
            Self::Succeeded => DeviceStatus::Succeeded,
            Self::Failed => DeviceStatus::Failed,
            Self::TimedOut => DeviceStatus::TimedOut,
            Self::Rejected => DeviceStatus::Rejected,
            Self::Canceled | Self::Removed | Self::Deleted => DeviceStatus::Cancelled,
        }
    }
}

/// One job-execution event, for a job the hub made.
#[derive(Clone, Debug, PartialEq)]
pub struct ExecutionEvent {
    pub device_id: String,
    pub kind: JobKind,
    pub status: ExecutionStatus,
    pub at: DateTime<Utc>,
    /// The device's `statusDetails.reason`, if it gave one.
    pub reason: Option<String>,
}

/// What applying an event asks the caller to do besides storing the row.
#[derive(Clone, Debug, PartialEq)]
pub enum Effect {
    /// Send attempt `attempt` to the device at `at` (a one-device job).
    ScheduleRetry { attempt: u32, at: DateTime<Utc> },
    /// The device now runs this version: the registry row says so.
    RecordVersion { version: String },
    /// The device took the new version after the rollout was aborted: send it back.
    RollBack,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Outcome {
    /// The row changed; store it (conditional on the old revision), then do the effects.
    Changed {
        row: DeviceRow,
        effects: Vec<Effect>,
    },
    /// Nothing changes; the reason is for the log.
    Ignored(&'static str),
}

/// Applies one execution event of `rollout` to a device's row.
pub fn apply(rollout: &Rollout, row: &DeviceRow, event: &ExecutionEvent) -> Outcome {
    match &event.kind {
        JobKind::Rollback { .. } => apply_rollback(row, event),
        JobKind::Rollout => apply_attempt(rollout, row, event, 1),
        JobKind::Retry { attempt } => apply_attempt(rollout, row, event, *attempt),
    }
}

fn apply_attempt(
    rollout: &Rollout,
    row: &DeviceRow,
    event: &ExecutionEvent,
    attempt: u32,
) -> Outcome {
    if attempt < row.attempts {
        return Outcome::Ignored("an older attempt");
    }
    let status = event.status.device_status();
    // A retry already scheduled for this attempt is its own status: the attempt it
    // belongs to is the next one, so an event of this attempt is older.
    if attempt == row.attempts && status.rank() <= row.status.rank() {
        return Outcome::Ignored("not newer than what the row holds");
    }
    let mut next = row.clone();
    next.attempts = attempt;
    next.status = status;
    next.updated_at = event.at.max(row.updated_at);
    next.retry_at = None;
    next.reason = event.reason.clone().or_else(|| match event.status {
        ExecutionStatus::Removed => Some("the device left the target group".into()),
        ExecutionStatus::Deleted => Some("the job execution was deleted".into()),
        _ => None,
    });
    let mut effects = Vec::new();
    match status {
        DeviceStatus::Succeeded => {
            effects.push(Effect::RecordVersion {
                version: rollout.firmware_version.clone(),
            });
            if rollout.status == RolloutStatus::Aborted {
                effects.push(Effect::RollBack);
            }
        }
        DeviceStatus::Failed | DeviceStatus::TimedOut
            if rollout.status == RolloutStatus::InProgress
                && attempt < rollout.policy.max_attempts =>
        {
            let at = event.at + rollout.policy.backoff(attempt + 1);
            next.status = DeviceStatus::RetryScheduled;
            next.attempts = attempt + 1;
            next.retry_at = Some(at);
            effects.push(Effect::ScheduleRetry {
                attempt: attempt + 1,
                at,
            });
        }
        _ => {}
    }
    Outcome::Changed { row: next, effects }
}

fn apply_rollback(row: &DeviceRow, event: &ExecutionEvent) -> Outcome {
    let outcome = match event.status {
        ExecutionStatus::Succeeded => RollbackStatus::RolledBack,
        ExecutionStatus::Failed
        | ExecutionStatus::TimedOut
        | ExecutionStatus::Rejected
        | ExecutionStatus::Canceled
        | ExecutionStatus::Removed
        | ExecutionStatus::Deleted => RollbackStatus::Failed,
        ExecutionStatus::Queued | ExecutionStatus::InProgress => {
            return Outcome::Ignored("rollback still running")
        }
    };
    if row.rollback != Some(RollbackStatus::Sent) {
        return Outcome::Ignored("no rollback outstanding for this device");
    }
    let mut next = row.clone();
    next.rollback = Some(outcome);
    next.updated_at = event.at.max(row.updated_at);
    if let Some(reason) = &event.reason {
        next.reason = Some(reason.clone());
    }
    let effects = match (outcome, &row.previous_version) {
        (RollbackStatus::RolledBack, Some(version)) => vec![Effect::RecordVersion {
            version: version.clone(),
        }],
        _ => Vec::new(),
    };
    Outcome::Changed { row: next, effects }
}

/// A retry is due: the row as it becomes once its job was created, or None if the row
/// moved on (the retry is stale, or the rollout ended).
pub fn retry_sent(
    rollout: &Rollout,
    row: &DeviceRow,
    attempt: u32,
    at: DateTime<Utc>,
) -> Option<DeviceRow> {
    if rollout.status != RolloutStatus::InProgress
        || row.status != DeviceStatus::RetryScheduled
        || row.attempts != attempt
    {
        return None;
    }
    let mut next = row.clone();
    next.status = DeviceStatus::Queued;
    next.retry_at = None;
    next.updated_at = at;
    Some(next)
}

/// When the rollout job ends (aborted or cancelled), devices still waiting never run:
/// their rows as cancelled; a device waiting for a retry keeps the failure of its last
/// attempt. Devices already installing may still report, and their outcome then
/// replaces the cancellation.
pub fn cancel_waiting(row: &DeviceRow, reason: &str, at: DateTime<Utc>) -> Option<DeviceRow> {
    let mut next = row.clone();
    match row.status {
        DeviceStatus::Queued => {
            next.status = DeviceStatus::Cancelled;
            next.reason = Some(reason.to_owned());
        }
        DeviceStatus::RetryScheduled => {
            next.status = DeviceStatus::Failed;
            next.attempts = row.attempts.saturating_sub(1).max(1);
            next.reason = Some(format!(
                "{}; not retried: {reason}",
                row.reason.as_deref().unwrap_or("failed")
            ));
        }
        _ => return None,
    }
    next.retry_at = None;
    next.updated_at = at.max(row.updated_at);
    Some(next)
}

/// The devices to send back after an abort, by the version each returns to; those with
/// no previous version are returned apart (nothing to roll back to).
pub fn rollback_plan(rows: &[DeviceRow]) -> (Vec<(String, Vec<String>)>, Vec<String>) {
    let mut by_version: std::collections::BTreeMap<String, Vec<String>> = Default::default();
    let mut unavailable = Vec::new();
    for row in rows {
        if row.status != DeviceStatus::Succeeded || row.rollback.is_some() {
            continue;
        }
        match &row.previous_version {
            Some(version) => by_version
                .entry(version.clone())
                .or_default()
                .push(row.device_id.clone()),
            None => unavailable.push(row.device_id.clone()),
        }
    }
    (by_version.into_iter().collect(), unavailable)
}

/// Whether a device that just finished brought the rollout to a tenth of its devices
/// (20%, 30%, ... short of all): when a progress event goes out.
pub fn progress_milestone(counts: &Counts) -> bool {
    let total = counts.total();
    let finished = total - counts.pending();
    let step = total.div_ceil(10).max(1);
    finished > 0 && finished < total && finished % step == 0
}

/// Whether the rollout has finished: its job ended and no device is still pending.
pub fn is_finished(rollout: &Rollout, counts: &Counts) -> bool {
    rollout.job_done && counts.pending() == 0
}

/// Whether the policy's abort threshold is passed: at least the canary's worth of
/// devices finished (a device waiting for its retry has failed an attempt) and the
/// failed share reached the threshold. IoT Jobs applies the same rule to the job; the hub
/// applies it too, because a job whose last execution fails completes before its abort
/// is checked.
pub fn abort_due(rollout: &Rollout, counts: &Counts) -> bool {
    let failed = counts.failed + counts.timed_out + counts.rejected + counts.retry_scheduled;
    let finished = counts.succeeded + failed;
    finished >= u64::from(rollout.canary_size.max(1))
        && failed as f64 * 100.0 >= rollout.policy.abort_failure_percent * finished as f64
}

/// The reason an abort gives, from the counts at the time (a device waiting for its
/// retry has failed an attempt).
pub fn abort_reason(policy: &RolloutPolicy, counts: &Counts) -> String {
    let failed = counts.failed + counts.timed_out + counts.rejected + counts.retry_scheduled;
    let finished = counts.succeeded + failed;
    let share = if finished == 0 {
        0.0
    } else {
        failed as f64 * 100.0 / finished as f64
    };
    format!(
        "{failed} of {finished} finished devices failed ({share:.1}%), over the abort threshold of {}%",
        policy.abort_failure_percent
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn abort_percentages_with_two_decimals_are_taken_whatever_their_binary_form() {
        for ok in [0.29, 0.01, 5.0, 12.57, 100.0] {
            let request = PolicyRequest {
                abort_failure_percent: Some(ok),
                ..PolicyRequest::default()
            };
            assert!(RolloutPolicy::from_request(&request).is_ok(), "{ok}");
        }
        for bad in [0.0, 0.291, 100.01, -1.0] {
            let request = PolicyRequest {
                abort_failure_percent: Some(bad),
                ..PolicyRequest::default()
            };
            assert!(RolloutPolicy::from_request(&request).is_err(), "{bad}");
        }
    }
    use chrono::TimeZone;

    fn t(seconds: i64) -> DateTime<Utc> {
        Utc.timestamp_opt(1_795_000_000 + seconds, 0).unwrap()
    }

    fn rollout(status: RolloutStatus) -> Rollout {
        Rollout {
            rollout_id: "ota-0193f0a0000070008000000000000001".into(),
            firmware_version: "2.0.0".into(),
            target: "line-a".into(),
            policy: RolloutPolicy::default(),
            status,
            job_id: "ota-0193f0a0000070008000000000000001".into(),
            device_count: 200,
            canary_size: 20,
            job_done: false,
            created_at: t(0),
            created_by: "admin".into(),
            updated_at: t(0),
            finished_at: None,
            reason: None,
        }
    }

    fn event(kind: JobKind, status: &str, at: i64) -> ExecutionEvent {
        ExecutionEvent {
            device_id: "d1".into(),
            kind,
            status: ExecutionStatus::from_jobs(status).unwrap(),
            at: t(at),
            reason: None,
        }
    }

    fn changed(outcome: Outcome) -> (DeviceRow, Vec<Effect>) {
        match outcome {
            Outcome::Changed { row, effects } => (row, effects),
            Outcome::Ignored(why) => panic!("ignored: {why}"),
        }
    }

    #[test]
    fn policy_defaults_and_bounds_name_the_field() {
        let policy = RolloutPolicy::from_request(&PolicyRequest::default()).unwrap();
        assert_eq!(policy, RolloutPolicy::default());
        assert_eq!(policy.abort_failure_percent, 5.0);
        for (request, field) in [
            (
                PolicyRequest {
                    canary_percent: Some(101.0),
                    ..Default::default()
                },
                "canary_percent",
            ),
            (
                PolicyRequest {
                    max_per_minute: Some(0),
                    ..Default::default()
                },
                "max_per_minute",
            ),
            (
                PolicyRequest {
                    abort_failure_percent: Some(0.0),
                    ..Default::default()
                },
                "abort_failure_percent",
            ),
            (
                PolicyRequest {
                    abort_failure_percent: Some(5.125),
                    ..Default::default()
                },
                "abort_failure_percent",
            ),
            (
                PolicyRequest {
                    max_attempts: Some(11),
                    ..Default::default()
                },
                "max_attempts",
            ),
            (
                PolicyRequest {
                    retry_backoff_seconds: Some(901),
                    ..Default::default()
                },
                "retry_backoff_seconds",
            ),
            (
                PolicyRequest {
                    timeout_minutes: Some(0),
                    ..Default::default()
                },
                "timeout_minutes",
            ),
        ] {
            let err = RolloutPolicy::from_request(&request).unwrap_err();
            assert_eq!(err.field, field);
            assert!(err.to_string().starts_with(&format!("policy.{field}: ")));
        }
        assert!(serde_json::from_str::<PolicyRequest>(r#"{"canary":5}"#).is_err());
    }

    #[test]
    fn the_canary_is_the_first_stage_and_gates_the_abort() {
        let policy = RolloutPolicy::default();
        assert_eq!(policy.canary_size(200), 20);
        assert_eq!(policy.canary_size(3), 1);
        assert_eq!(policy.canary_size(0), 0);
        let config = policy.job_config(200);
        assert_eq!(
            config.exponential_rate,
            Some(ExponentialRate {
                base_rate_per_minute: 20,
                increment_factor: 5.0,
                number_of_succeeded_things: 20,
            })
        );
        assert_eq!(config.abort_min_executed_things, 20);
        assert_eq!(config.abort_threshold_percentage, 5.0);
        assert_eq!(config.maximum_per_minute, 1000);
        assert_eq!(config.in_progress_timeout_minutes, 60);
        // No canary, or a canary that is the whole group: one stage.
        let all_at_once = RolloutPolicy {
            canary_percent: 0.0,
            ..policy.clone()
        };
        assert_eq!(all_at_once.job_config(200).exponential_rate, None);
        assert_eq!(all_at_once.job_config(200).abort_min_executed_things, 1);
        assert_eq!(policy.job_config(1).exponential_rate, None);
        // The canary's rate never passes the ceiling.
        let slow = RolloutPolicy {
            max_per_minute: 5,
            ..policy
        };
        assert_eq!(
            slow.job_config(200)
                .exponential_rate
                .unwrap()
                .base_rate_per_minute,
            5
        );
    }

    #[test]
    fn job_ids_lead_back_to_their_rollout_and_attempt() {
        let id = new_rollout_id();
        assert!(is_rollout_id(&id), "{id}");
        assert!(new_rollout_id() != id);
        assert_eq!(parse_job_id(&id), Some((id.as_str(), JobKind::Rollout)));
        let retry = retry_job_id(&id, "sensor-0042", 3);
        assert!(retry.len() <= 64);
        assert_eq!(
            parse_job_id(&retry),
            Some((id.as_str(), JobKind::Retry { attempt: 3 }))
        );
        assert_ne!(retry, retry_job_id(&id, "sensor-0043", 3));
        assert_eq!(
            parse_job_id(&rollback_job_id(&id, 2)),
            Some((id.as_str(), JobKind::Rollback { batch: 2 }))
        );
        for other in [
            "someone-elses-job",
            "ota-123",
            &format!("{id}_r1_abcdef01"),
            &format!("{id}_rx"),
            &format!("{id}_r2_abc"),
            &format!("{id}_rb"),
        ] {
            assert_eq!(parse_job_id(other), None, "{other}");
        }
        assert_eq!(
            thing_of_arn("arn:aws:iot:us-east-1:000000000000:thing/sim-0001"),
            Some("sim-0001")
        );
        assert_eq!(thing_of_arn("arn:aws:iot:us-east-1:0:thinggroup/g"), None);
    }

    #[test]
    fn a_success_records_the_new_version() {
        let r = rollout(RolloutStatus::InProgress);
        let row = DeviceRow::queued("d1", Some("1.0.0".into()), t(0));
        let (row, effects) = changed(apply(&r, &row, &event(JobKind::Rollout, "SUCCEEDED", 5)));
        assert_eq!(row.status, DeviceStatus::Succeeded);
        assert_eq!(row.attempts, 1);
        assert_eq!(row.updated_at, t(5));
        assert_eq!(
            effects,
            vec![Effect::RecordVersion {
                version: "2.0.0".into()
            }]
        );
    }

    #[test]
    fn failures_are_retried_with_doubling_backoff_until_attempts_run_out() {
        let r = rollout(RolloutStatus::InProgress);
        assert_eq!(r.policy.max_attempts, 3);
        let row = DeviceRow::queued("d1", Some("1.0.0".into()), t(0));
        // Attempt 1 fails: attempt 2 in 30 s.
        let (row, effects) = changed(apply(&r, &row, &event(JobKind::Rollout, "FAILED", 10)));
        assert_eq!(row.status, DeviceStatus::RetryScheduled);
        assert_eq!(row.attempts, 2);
        assert_eq!(row.retry_at, Some(t(40)));
        assert_eq!(
            effects,
            vec![Effect::ScheduleRetry {
                attempt: 2,
                at: t(40)
            }]
        );
        // The retry goes out; attempt 2 times out: attempt 3 in 60 s.
        let row = retry_sent(&r, &row, 2, t(40)).unwrap();
        assert_eq!(row.status, DeviceStatus::Queued);
        let (row, effects) = changed(apply(
            &r,
            &row,
            &event(JobKind::Retry { attempt: 2 }, "TIMED_OUT", 100),
        ));
        assert_eq!(
            effects,
            vec![Effect::ScheduleRetry {
                attempt: 3,
                at: t(160)
            }]
        );
        // Attempt 3 is the last: its failure stands.
        let row = retry_sent(&r, &row, 3, t(160)).unwrap();
        let mut last = event(JobKind::Retry { attempt: 3 }, "FAILED", 170);
        last.reason = Some("sha256 mismatch".into());
        let (row, effects) = changed(apply(&r, &row, &last));
        assert_eq!(row.status, DeviceStatus::Failed);
        assert_eq!(row.attempts, 3);
        assert_eq!(row.reason.as_deref(), Some("sha256 mismatch"));
        assert!(effects.is_empty());
        // The backoff doubles and is capped at SQS's longest delay.
        let policy = RolloutPolicy {
            retry_backoff_seconds: 300,
            max_attempts: 10,
            ..Default::default()
        };
        assert_eq!(policy.backoff(2), Duration::seconds(300));
        assert_eq!(policy.backoff(3), Duration::seconds(600));
        assert_eq!(policy.backoff(4), Duration::seconds(900));
        assert_eq!(policy.backoff(10), Duration::seconds(900));
    }

    #[test]
    fn a_rejection_or_a_failure_after_the_abort_is_not_retried() {
        let row = DeviceRow::queued("d1", None, t(0));
        let (rejected, effects) = changed(apply(
            &rollout(RolloutStatus::InProgress),
            &row,
            &event(JobKind::Rollout, "REJECTED", 3),
        ));
        assert_eq!(rejected.status, DeviceStatus::Rejected);
        assert!(effects.is_empty());
        let (failed, effects) = changed(apply(
            &rollout(RolloutStatus::Aborted),
            &row,
            &event(JobKind::Rollout, "FAILED", 3),
        ));
        assert_eq!(failed.status, DeviceStatus::Failed);
        assert!(effects.is_empty());
    }

    #[test]
    fn out_of_order_and_repeated_events_never_move_a_row_back() {
        let r = rollout(RolloutStatus::InProgress);
        let row = DeviceRow::queued("d1", None, t(0));
        let (done, _) = changed(apply(&r, &row, &event(JobKind::Rollout, "SUCCEEDED", 9)));
        // A late IN_PROGRESS, a duplicate SUCCEEDED, a stray FAILED of the same attempt.
        for late in ["IN_PROGRESS", "SUCCEEDED", "FAILED", "CANCELED"] {
            assert!(matches!(
                apply(&r, &done, &event(JobKind::Rollout, late, 8)),
                Outcome::Ignored(_)
            ));
        }
        // Attempt 2's success arrives before attempt 1's failure: the failure is stale.
        let retried = DeviceRow {
            status: DeviceStatus::Queued,
            attempts: 2,
            ..row.clone()
        };
        let (ok, _) = changed(apply(
            &r,
            &retried,
            &event(JobKind::Retry { attempt: 2 }, "SUCCEEDED", 50),
        ));
        assert!(matches!(
            apply(&r, &ok, &event(JobKind::Rollout, "FAILED", 10)),
            Outcome::Ignored("an older attempt")
        ));
        // An event for a later attempt than the row knows still counts (its retry was
        // recorded by a write this function has not seen yet).
        let (ahead, _) = changed(apply(
            &r,
            &row,
            &event(JobKind::Retry { attempt: 2 }, "SUCCEEDED", 60),
        ));
        assert_eq!((ahead.status, ahead.attempts), (DeviceStatus::Succeeded, 2));
        // An older timestamp never moves updated_at back.
        let (in_progress, _) =
            changed(apply(&r, &row, &event(JobKind::Rollout, "IN_PROGRESS", 20)));
        let (finished, _) = changed(apply(
            &r,
            &in_progress,
            &event(JobKind::Rollout, "SUCCEEDED", 15),
        ));
        assert_eq!(finished.updated_at, t(20));
        // A duplicate failure does not schedule a second retry.
        let (scheduled, _) = changed(apply(&r, &row, &event(JobKind::Rollout, "FAILED", 5)));
        assert!(matches!(
            apply(&r, &scheduled, &event(JobKind::Rollout, "FAILED", 5)),
            Outcome::Ignored(_)
        ));
        assert_eq!(retry_sent(&r, &scheduled, 3, t(9)), None);
    }

    #[test]
    fn an_abort_cancels_the_waiting_and_rolls_back_those_that_took_the_version() {
        let aborted = rollout(RolloutStatus::Aborted);
        let queued = DeviceRow::queued("d1", Some("1.0.0".into()), t(0));
        let cancelled = cancel_waiting(&queued, "rollout aborted", t(30)).unwrap();
        assert_eq!(cancelled.status, DeviceStatus::Cancelled);
        let done = DeviceRow {
            status: DeviceStatus::Succeeded,
            ..queued.clone()
        };
        assert_eq!(cancel_waiting(&done, "rollout aborted", t(30)), None);
        // A device that was installing when the job was cancelled still reports; its
        // success after the abort asks for a rollback.
        let (late, effects) = changed(apply(
            &aborted,
            &cancelled,
            &event(JobKind::Rollout, "SUCCEEDED", 31),
        ));
        assert_eq!(late.status, DeviceStatus::Succeeded);
        assert!(effects.contains(&Effect::RollBack));
        // No retries once aborted.
        let retrying = DeviceRow {
            status: DeviceStatus::RetryScheduled,
            attempts: 2,
            reason: Some("flash write error".into()),
            ..queued.clone()
        };
        assert_eq!(retry_sent(&aborted, &retrying, 2, t(40)), None);
        // Its failure stands once the rollout is aborted.
        let stands = cancel_waiting(&retrying, "the rollout was aborted", t(41)).unwrap();
        assert_eq!((stands.status, stands.attempts), (DeviceStatus::Failed, 1));
        assert_eq!(
            stands.reason.as_deref(),
            Some("flash write error; not retried: the rollout was aborted")
        );

        let rows = vec![
            done.clone(),
            DeviceRow {
                device_id: "d2".into(),
                previous_version: Some("1.1.0".into()),
                ..done.clone()
            },
            DeviceRow {
                device_id: "d3".into(),
                ..done.clone()
            },
            DeviceRow {
                device_id: "d4".into(),
                previous_version: None,
                ..done.clone()
            },
            DeviceRow {
                device_id: "d5".into(),
                status: DeviceStatus::Failed,
                ..done.clone()
            },
            DeviceRow {
                device_id: "d6".into(),
                rollback: Some(RollbackStatus::Sent),
                ..done.clone()
            },
        ];
        let (plan, unavailable) = rollback_plan(&rows);
        assert_eq!(
            plan,
            vec![
                ("1.0.0".to_owned(), vec!["d1".to_owned(), "d3".to_owned()]),
                ("1.1.0".to_owned(), vec!["d2".to_owned()]),
            ]
        );
        assert_eq!(unavailable, vec!["d4".to_owned()]);

        // The rollback job's outcome: the registry goes back to the previous version.
        let sent = DeviceRow {
            rollback: Some(RollbackStatus::Sent),
            ..done
        };
        let (back, effects) = changed(apply(
            &aborted,
            &sent,
            &event(JobKind::Rollback { batch: 1 }, "SUCCEEDED", 60),
        ));
        assert_eq!(back.rollback, Some(RollbackStatus::RolledBack));
        assert_eq!(back.status, DeviceStatus::Succeeded);
        assert_eq!(
            effects,
            vec![Effect::RecordVersion {
                version: "1.0.0".into()
            }]
        );
        assert!(matches!(
            apply(
                &aborted,
                &back,
                &event(JobKind::Rollback { batch: 1 }, "FAILED", 61)
            ),
            Outcome::Ignored(_)
        ));
    }

    #[test]
    fn the_abort_waits_for_the_canary_then_follows_the_threshold() {
        let r = rollout(RolloutStatus::InProgress);
        assert_eq!((r.canary_size, r.policy.abort_failure_percent), (20, 5.0));
        let counts = |succeeded, failed, retrying| Counts {
            succeeded,
            failed,
            retry_scheduled: retrying,
            queued: 200 - succeeded - failed - retrying,
            ..Counts::default()
        };
        // Three failures among the first 10 finished: not yet, the canary is 20.
        assert!(!abort_due(&r, &counts(7, 3, 0)));
        // 1 in 20 is 5%: the threshold is inclusive, as in IoT Jobs.
        assert!(abort_due(&r, &counts(19, 1, 0)));
        assert!(!abort_due(&r, &counts(39, 1, 0)));
        // A device waiting for its retry counts as failed.
        assert!(abort_due(&r, &counts(19, 0, 1)));
    }

    #[test]
    fn progress_events_go_out_every_tenth_of_the_devices() {
        let at = |finished: u64, total: u64| Counts {
            succeeded: finished,
            queued: total - finished,
            ..Counts::default()
        };
        let milestones: Vec<u64> = (0..=200)
            .filter(|f| progress_milestone(&at(*f, 200)))
            .collect();
        assert_eq!(milestones, vec![20, 40, 60, 80, 100, 120, 140, 160, 180]);
        let small: Vec<u64> = (0..=3).filter(|f| progress_milestone(&at(*f, 3))).collect();
        assert_eq!(small, vec![1, 2]);
    }

    #[test]
    fn counts_progress_and_completion() {
        let mut r = rollout(RolloutStatus::InProgress);
        let mut rows: Vec<DeviceRow> = (0..10)
            .map(|i| DeviceRow::queued(&format!("d{i}"), None, t(0)))
            .collect();
        for row in rows.iter_mut().take(7) {
            row.status = DeviceStatus::Succeeded;
        }
        rows[7].status = DeviceStatus::Failed;
        rows[8].status = DeviceStatus::RetryScheduled;
        let counts = Counts::of_rows(&rows);
        assert_eq!(counts.total(), 10);
        assert_eq!(counts.pending(), 2);
        assert_eq!(counts.progress_percent(), 80.0);
        let event_counts = counts.to_event();
        assert_eq!(event_counts.queued, 2);
        assert_eq!(event_counts.succeeded, 7);
        r.job_done = true;
        assert!(progress_milestone(&counts));
        assert!(!is_finished(&r, &counts));
        rows[8].status = DeviceStatus::Succeeded;
        rows[9].status = DeviceStatus::Succeeded;
        assert!(is_finished(&r, &Counts::of_rows(&rows)));
        assert_eq!(
            abort_reason(&r.policy, &Counts::of_rows(&rows)),
            "1 of 10 finished devices failed (10.0%), over the abort threshold of 5%"
        );
        rows[9].status = DeviceStatus::RetryScheduled;
        rows[8].status = DeviceStatus::Queued;
        assert_eq!(
            abort_reason(&r.policy, &Counts::of_rows(&rows)),
            "2 of 9 finished devices failed (22.2%), over the abort threshold of 5%"
        );
    }
}
