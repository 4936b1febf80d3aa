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

mod devices;
mod events;
mod job_ids;
mod policy;
mod record;

pub use devices::*;
pub use events::*;
pub use job_ids::*;
pub use policy::*;
pub use record::*;
