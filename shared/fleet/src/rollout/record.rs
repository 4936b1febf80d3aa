//! A rollout as stored, and its status.

use super::*;

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
