//! A device of a rollout: its row, its status and how events move it forward.

use super::*;

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
    pub(super) fn rank(self) -> u8 {
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
