//! Rollout progress from IoT Jobs events. Two rules hand them here:
//! `$aws/events/jobExecution/+/+` (a device's execution ended) and `$aws/events/job/+/+`
//! (a job completed or was cancelled). Retries come back through a delay queue.
//!
//! The decisions are [`hub_fleet::rollout`]'s; this module reads the rows, stores what it
//! decides (conditionally, re-reading on a lost race) and carries out the effects: retry
//! jobs, registry versions, rollback jobs, rollout events and the progress metric.

use crate::RolloutPorts;

use chrono::{DateTime, TimeZone, Utc};
use hub_events::{Envelope, RolloutEvent, RolloutEventKind};
use hub_fleet::{
    firmware::{Artifact, ArtifactStatus},
    rollout::{
        self, abort_due, abort_reason, cancel_waiting, is_finished, parse_job_id,
        progress_milestone, retry_job_id, retry_sent, rollback_job_id, rollback_plan, thing_of_arn,
        Counts, DeviceRow, DeviceStatus, Effect, ExecutionEvent, ExecutionStatus, JobKind, Outcome,
        RollbackStatus, Rollout, RolloutStatus,
    },
};
use hub_fleet::{FirmwareTable, RolloutsTable, TableError};
use hub_runtime::PortError;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tracing::{info, warn};

pub const SOURCE: &str = "fleet";
/// Reads and recomputes after a lost conditional write, before giving up.
const ATTEMPTS: usize = 8;
/// Things per rollback job.
const ROLLBACK_BATCH: usize = 100;
/// The IoT Jobs reason code of an abort.
const ABORT_CANCEL: &str = "ABORT_CANCEL";

/// A retry that is due: sent through the delay queue, handled when it comes back.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RetryDue {
    pub rollout_id: String,
    pub device_id: String,
    pub attempt: u32,
}

/// A job-execution event as IoT Core publishes it (`SELECT *`).
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ExecutionEventPayload {
    pub job_id: String,
    pub thing_arn: String,
    pub status: String,
    /// Epoch seconds.
    #[serde(default)]
    pub timestamp: Option<i64>,
    #[serde(default)]
    pub status_details: Option<serde_json::Map<String, Value>>,
}

/// A job event (`SELECT *`).
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct JobEventPayload {
    pub job_id: String,
    pub operation: String,
    #[serde(default)]
    pub reason_code: Option<String>,
    /// What the abort says (failure type, threshold, executions counted).
    #[serde(default)]
    pub comment: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Handled {
    /// Not a job of the hub's, or of no rollout it knows: logged.
    Ignored(String),
    /// The device row moved (its new status).
    Device(&'static str),
    RetrySent,
    /// The rollout's job ended; the rollout's status after it.
    Job(&'static str),
}

#[derive(Debug, thiserror::Error)]
pub enum RolloutError {
    #[error("rollout event unreadable: {0}")]
    Unreadable(String),
    #[error("{0}: the row kept changing under the update")]
    Contended(String),
    #[error(transparent)]
    Port(#[from] PortError),
}

impl From<TableError> for RolloutError {
    fn from(err: TableError) -> Self {
        Self::Port(err.into())
    }
}

/// Before trying again after losing a conditional write: concurrent events of one
/// rollout all update its counters, and on AWS a transaction that meets another is
/// cancelled, so the losers spread out (random, growing) instead of colliding again.
async fn lost_race_pause(attempt: usize) {
    if attempt > 0 {
        let ceiling = 10u64 << attempt.min(6);
        tokio::time::sleep(std::time::Duration::from_millis(fastrand::u64(1..=ceiling))).await;
    }
}

fn time_of(seconds: Option<i64>, now: DateTime<Utc>) -> DateTime<Utc> {
    seconds
        .and_then(|s| Utc.timestamp_opt(s, 0).single())
        .unwrap_or(now)
}

/// One job-execution event.
pub async fn on_execution<P: RolloutPorts>(
    ports: &P,
    event: Value,
    now: DateTime<Utc>,
) -> Result<Handled, RolloutError> {
    let payload: ExecutionEventPayload =
        serde_json::from_value(event).map_err(|e| RolloutError::Unreadable(e.to_string()))?;
    let Some((rollout_id, kind)) = parse_job_id(&payload.job_id) else {
        return Ok(Handled::Ignored(format!(
            "job {} is not a rollout's",
            payload.job_id
        )));
    };
    let device_id = thing_of_arn(&payload.thing_arn)
        .ok_or_else(|| RolloutError::Unreadable(format!("thingArn {}", payload.thing_arn)))?;
    let status = ExecutionStatus::from_jobs(&payload.status)
        .ok_or_else(|| RolloutError::Unreadable(format!("status {}", payload.status)))?;
    let reason = payload
        .status_details
        .as_ref()
        .and_then(|d| d.get("reason"))
        .and_then(Value::as_str)
        .map(|r| r.chars().take(512).collect());
    let event = ExecutionEvent {
        device_id: device_id.to_owned(),
        kind,
        status,
        at: time_of(payload.timestamp, now),
        reason,
    };
    for attempt in 0..ATTEMPTS {
        lost_race_pause(attempt).await;
        let Some((rollout, _)) = ports.rollouts_table().get(rollout_id).await? else {
            return Ok(Handled::Ignored(format!("no rollout {rollout_id}")));
        };
        let Some(row) = ports.rollouts_table().device(rollout_id, device_id).await? else {
            return Ok(Handled::Ignored(format!(
                "device {device_id} is not in rollout {rollout_id}"
            )));
        };
        let (next, effects) = match rollout::apply(&rollout, &row, &event) {
            Outcome::Changed { row, effects } => (row, effects),
            Outcome::Ignored(why) => {
                info!(rollout_id, device_id, status = ?event.status, why, "execution event ignored");
                return Ok(Handled::Ignored(why.into()));
            }
        };
        if !ports
            .rollouts_table()
            .save_device(rollout_id, &row, &next)
            .await?
        {
            continue;
        }
        info!(
            rollout_id,
            device_id,
            status = next.status.as_str(),
            attempt = next.attempts,
            "device"
        );
        for effect in effects {
            match effect {
                Effect::RecordVersion { version } => {
                    ports.record_version(device_id, &version).await?
                }
                Effect::ScheduleRetry { attempt, at } => {
                    let retry = RetryDue {
                        rollout_id: rollout_id.to_owned(),
                        device_id: device_id.to_owned(),
                        attempt,
                    };
                    ports.schedule_retry(&retry, at - now).await?;
                }
                Effect::RollBack => {
                    roll_back(ports, &rollout, vec![next.clone()], now).await?;
                }
            }
        }
        let finished_one = row.status.is_pending() && !next.status.is_pending();
        let status = settle(ports, rollout_id, finished_one, now).await?;
        if status == RolloutStatus::Aborted
            && next.status == DeviceStatus::Succeeded
            && rollout.status != RolloutStatus::Aborted
        {
            // The abort came between reading the rollout and saving this success, and
            // its rollback may have read the rows before this one changed.
            if let Some(row) = ports.rollouts_table().device(rollout_id, device_id).await? {
                if row.rollback.is_none() {
                    let mut aborted = rollout.clone();
                    aborted.status = RolloutStatus::Aborted;
                    roll_back(ports, &aborted, vec![row], now).await?;
                }
            }
        }
        return Ok(Handled::Device(next.status.as_str()));
    }
    Err(RolloutError::Contended(format!("{rollout_id}/{device_id}")))
}

/// One job event: the rollout job completed, or was cancelled (an abort, or an operator).
pub async fn on_job<P: RolloutPorts>(
    ports: &P,
    event: Value,
    now: DateTime<Utc>,
) -> Result<Handled, RolloutError> {
    let payload: JobEventPayload =
        serde_json::from_value(event).map_err(|e| RolloutError::Unreadable(e.to_string()))?;
    let Some((rollout_id, JobKind::Rollout)) = parse_job_id(&payload.job_id) else {
        return Ok(Handled::Ignored(format!(
            "job {} is not a rollout job",
            payload.job_id
        )));
    };
    if !matches!(payload.operation.as_str(), "completed" | "canceled") {
        return Ok(Handled::Ignored(format!("operation {}", payload.operation)));
    }
    let Some((rollout, counts)) = ports.rollouts_table().get(rollout_id).await? else {
        return Ok(Handled::Ignored(format!("no rollout {rollout_id}")));
    };
    ports.rollouts_table().set_job_done(rollout_id, now).await?;
    if payload.operation == "canceled" {
        let reason_code = match payload.reason_code {
            Some(code) => Some(code),
            None => ports.cancel_reason(&payload.job_id).await?,
        };
        match rollout.status {
            RolloutStatus::InProgress if reason_code.as_deref() == Some(ABORT_CANCEL) => {
                // IoT Jobs counted executions the hub may not have heard of yet: its
                // own words are the reason.
                let reason = payload
                    .comment
                    .as_ref()
                    .map(|c| format!("IoT Jobs aborted the job: {c}"));
                abort(ports, &rollout, &counts, reason, now).await?;
            }
            RolloutStatus::InProgress => {
                // Cancelled outside the hub (console, CLI): the hub follows.
                let reason = "the rollout job was cancelled outside the hub";
                if ports
                    .rollouts_table()
                    .set_status(
                        rollout_id,
                        RolloutStatus::InProgress,
                        RolloutStatus::Cancelled,
                        Some(reason),
                        now,
                    )
                    .await?
                {
                    cancel_all_waiting(ports, rollout_id, reason, now).await?;
                    emit(
                        ports,
                        rollout_id,
                        RolloutEventKind::Cancelled,
                        Some(reason),
                        now,
                    )
                    .await?;
                }
            }
            RolloutStatus::Cancelled => {
                let reason = rollout.reason.clone().unwrap_or_else(|| "cancelled".into());
                cancel_all_waiting(ports, rollout_id, &reason, now).await?;
            }
            RolloutStatus::Completed | RolloutStatus::Aborted => {}
        }
    }
    let status = settle(ports, rollout_id, false, now).await?;
    Ok(Handled::Job(status.as_str()))
}

/// A retry that came back from the delay queue: its job goes out if the row still waits.
pub async fn on_retry_due<P: RolloutPorts>(
    ports: &P,
    retry: &RetryDue,
    now: DateTime<Utc>,
) -> Result<Handled, RolloutError> {
    for attempt in 0..ATTEMPTS {
        lost_race_pause(attempt).await;
        let Some((rollout, _)) = ports.rollouts_table().get(&retry.rollout_id).await? else {
            return Ok(Handled::Ignored(format!("no rollout {}", retry.rollout_id)));
        };
        let Some(row) = ports
            .rollouts_table()
            .device(&retry.rollout_id, &retry.device_id)
            .await?
        else {
            return Ok(Handled::Ignored("no such device row".into()));
        };
        let Some(next) = retry_sent(&rollout, &row, retry.attempt, now) else {
            if rollout.status != RolloutStatus::InProgress
                && row.status == DeviceStatus::RetryScheduled
                && row.attempts == retry.attempt
            {
                // The rollout ended while this device waited (cancelled after its job
                // had completed, so no job event came to settle the row): its failure
                // stands.
                let reason = format!("the rollout is {}", rollout.status.as_str());
                update_row(ports, &retry.rollout_id, row, |r| {
                    (r.status == DeviceStatus::RetryScheduled)
                        .then(|| cancel_waiting(r, &reason, now))
                        .flatten()
                })
                .await?;
            }
            return Ok(Handled::Ignored("the retry is no longer wanted".into()));
        };
        let artifact = ready_artifact(ports, &rollout.firmware_version).await?;
        let job_id = retry_job_id(&rollout.rollout_id, &retry.device_id, retry.attempt);
        // A redelivered message finds its job there already: the row still moves.
        ports
            .create_job(
                &job_id,
                std::slice::from_ref(&retry.device_id),
                &rollout,
                &artifact,
                false,
            )
            .await?;
        if ports
            .rollouts_table()
            .save_device(&retry.rollout_id, &row, &next)
            .await?
        {
            info!(
                rollout_id = retry.rollout_id,
                device_id = retry.device_id,
                attempt = retry.attempt,
                job_id,
                "retry sent"
            );
            return Ok(Handled::RetrySent);
        }
    }
    Err(RolloutError::Contended(format!(
        "{}/{}",
        retry.rollout_id, retry.device_id
    )))
}

async fn ready_artifact<P: RolloutPorts>(ports: &P, version: &str) -> Result<Artifact, PortError> {
    match ports.firmware_table().get(version).await? {
        Some(artifact) if artifact.status == ArtifactStatus::Ready => Ok(artifact),
        _ => Err(PortError::new(
            "firmware",
            format!("firmware {version} is not ready"),
        )),
    }
}

/// Aborts the rollout (once: the status change decides who does it), with `reason`, or
/// the hub's own count of failures.
async fn abort<P: RolloutPorts>(
    ports: &P,
    rollout: &Rollout,
    counts: &Counts,
    reason: Option<String>,
    now: DateTime<Utc>,
) -> Result<(), RolloutError> {
    let reason = reason.unwrap_or_else(|| abort_reason(&rollout.policy, counts));
    if !ports
        .rollouts_table()
        .set_status(
            &rollout.rollout_id,
            RolloutStatus::InProgress,
            RolloutStatus::Aborted,
            Some(&reason),
            now,
        )
        .await?
    {
        return Ok(());
    }
    let mut aborted = rollout.clone();
    aborted.status = RolloutStatus::Aborted;
    if !rollout.job_done {
        // The hub saw the threshold first (or IoT Jobs completed the job before its
        // abort check): the job stops here.
        ports.cancel_job(&rollout.job_id, &reason).await?;
    }
    cancel_all_waiting(ports, &rollout.rollout_id, "the rollout was aborted", now).await?;
    let rows = ports.rollouts_table().devices(&rollout.rollout_id).await?;
    let (sent, unavailable) = roll_back(ports, &aborted, rows, now).await?;
    let mut summary = format!("{reason}; rollback sent to {sent} device(s)");
    if unavailable > 0 {
        summary.push_str(&format!(
            ", {unavailable} device(s) have no previous version to go back to"
        ));
    }
    warn!(rollout_id = rollout.rollout_id, summary, "rollout aborted");
    emit(
        ports,
        &rollout.rollout_id,
        RolloutEventKind::Aborted,
        Some(&summary),
        now,
    )
    .await?;
    Ok(())
}

/// Marks every device still waiting as cancelled.
async fn cancel_all_waiting<P: RolloutPorts>(
    ports: &P,
    rollout_id: &str,
    reason: &str,
    now: DateTime<Utc>,
) -> Result<(), RolloutError> {
    for row in ports.rollouts_table().devices(rollout_id).await? {
        update_row(ports, rollout_id, row, |row| {
            cancel_waiting(row, reason, now)
        })
        .await?;
    }
    Ok(())
}

/// Applies `change` to a device row, re-reading after a lost race; false if `change`
/// declined the row.
async fn update_row<P: RolloutPorts>(
    ports: &P,
    rollout_id: &str,
    mut row: DeviceRow,
    change: impl Fn(&DeviceRow) -> Option<DeviceRow>,
) -> Result<bool, RolloutError> {
    for attempt in 0..ATTEMPTS {
        lost_race_pause(attempt).await;
        let Some(next) = change(&row) else {
            return Ok(false);
        };
        if ports
            .rollouts_table()
            .save_device(rollout_id, &row, &next)
            .await?
        {
            return Ok(true);
        }
        match ports
            .rollouts_table()
            .device(rollout_id, &row.device_id)
            .await?
        {
            Some(fresh) => row = fresh,
            None => return Ok(false),
        }
    }
    Err(RolloutError::Contended(format!(
        "{rollout_id}/{}",
        row.device_id
    )))
}

/// Sends the devices that took the new version back to their previous one: a job per
/// previous version (in batches). Returns (devices sent back, devices with nowhere to go).
async fn roll_back<P: RolloutPorts>(
    ports: &P,
    rollout: &Rollout,
    rows: Vec<DeviceRow>,
    now: DateTime<Utc>,
) -> Result<(usize, usize), RolloutError> {
    let (plan, mut unavailable) = rollback_plan(&rows);
    let late = rows.len() == 1;
    let mut sent = 0;
    let mut batch = 0u32;
    for (version, devices) in plan {
        let artifact = match ports.firmware_table().get(&version).await? {
            Some(a) if a.status == ArtifactStatus::Ready => a,
            _ => {
                warn!(
                    rollout_id = rollout.rollout_id,
                    version, "no ready artifact to roll back to"
                );
                unavailable.extend(devices);
                continue;
            }
        };
        for chunk in devices.chunks(ROLLBACK_BATCH) {
            batch += 1;
            // A late success gets its own job, numbered apart from the abort's batches.
            let number = if late {
                late_batch_number(&chunk[0])
            } else {
                batch
            };
            let job_id = rollback_job_id(&rollout.rollout_id, number);
            ports
                .create_job(&job_id, chunk, rollout, &artifact, true)
                .await?;
            for device in chunk {
                mark_rollback(ports, rollout, device, RollbackStatus::Sent, now).await?;
            }
            sent += chunk.len();
        }
    }
    for device in &unavailable {
        mark_rollback(ports, rollout, device, RollbackStatus::Unavailable, now).await?;
    }
    if sent > 0 {
        emit(
            ports,
            &rollout.rollout_id,
            RolloutEventKind::RolledBack,
            Some(&format!("rollback jobs sent to {sent} device(s)")),
            now,
        )
        .await?;
    }
    Ok((sent, unavailable.len()))
}

fn late_batch_number(device_id: &str) -> u32 {
    let digest = ring::digest::digest(&ring::digest::SHA256, device_id.as_bytes());
    let bytes = digest.as_ref();
    100_000 + u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]) % 900_000_000
}

async fn mark_rollback<P: RolloutPorts>(
    ports: &P,
    rollout: &Rollout,
    device_id: &str,
    status: RollbackStatus,
    now: DateTime<Utc>,
) -> Result<(), RolloutError> {
    if let Some(row) = ports
        .rollouts_table()
        .device(&rollout.rollout_id, device_id)
        .await?
    {
        update_row(ports, &rollout.rollout_id, row, |row| {
            (row.rollback.is_none()).then(|| DeviceRow {
                rollback: Some(status),
                updated_at: now.max(row.updated_at),
                ..row.clone()
            })
        })
        .await?;
    }
    Ok(())
}

/// After any change: the progress metric (and a progress event every tenth of the
/// devices, when a device just finished), the abort once the policy's threshold is
/// passed, completion once the job ended and no device is pending.
async fn settle<P: RolloutPorts>(
    ports: &P,
    rollout_id: &str,
    finished_one: bool,
    now: DateTime<Utc>,
) -> Result<RolloutStatus, RolloutError> {
    let Some((rollout, counts)) = ports.rollouts_table().get(rollout_id).await? else {
        return Ok(RolloutStatus::InProgress);
    };
    progress_metric(&rollout, &counts);
    if finished_one && rollout.status == RolloutStatus::InProgress && progress_milestone(&counts) {
        let done = format!("{:.0}% of devices finished", counts.progress_percent());
        emit(
            ports,
            rollout_id,
            RolloutEventKind::Progress,
            Some(&done),
            now,
        )
        .await?;
    }
    if rollout.status == RolloutStatus::InProgress && abort_due(&rollout, &counts) {
        abort(ports, &rollout, &counts, None, now).await?;
        return Ok(RolloutStatus::Aborted);
    }
    if rollout.status == RolloutStatus::InProgress && is_finished(&rollout, &counts) {
        let reason = format!(
            "{} of {} devices succeeded",
            counts.succeeded,
            counts.total()
        );
        if ports
            .rollouts_table()
            .set_status(
                rollout_id,
                RolloutStatus::InProgress,
                RolloutStatus::Completed,
                Some(&reason),
                now,
            )
            .await?
        {
            info!(rollout_id, reason, "rollout completed");
            emit(
                ports,
                rollout_id,
                RolloutEventKind::Completed,
                Some(&reason),
                now,
            )
            .await?;
            return Ok(RolloutStatus::Completed);
        }
    }
    Ok(rollout.status)
}

fn progress_metric(rollout: &Rollout, counts: &Counts) {
    let mut metrics = hub_runtime::emf::Metrics::new(SOURCE);
    metrics
        .dimension("RolloutId", &rollout.rollout_id)
        .percent("firmware_rollout_progress", counts.progress_percent())
        .count("firmware_rollout_succeeded", counts.succeeded)
        .count(
            "firmware_rollout_failed",
            counts.failed + counts.timed_out + counts.rejected,
        );
    metrics.flush();
}

/// Publishes a versioned rollout event with the rollout's counts as they are now.
async fn emit<P: RolloutPorts>(
    ports: &P,
    rollout_id: &str,
    kind: RolloutEventKind,
    reason: Option<&str>,
    now: DateTime<Utc>,
) -> Result<(), RolloutError> {
    let Some((rollout, counts)) = ports.rollouts_table().get(rollout_id).await? else {
        return Ok(());
    };
    let event = Envelope::new(
        SOURCE,
        rollout.rollout_id.clone(),
        now,
        RolloutEvent {
            kind,
            rollout_id: rollout.rollout_id.clone(),
            firmware_version: rollout.firmware_version.clone(),
            target: rollout.target.clone(),
            counts: counts.to_event(),
            reason: reason.map(str::to_owned),
        },
    );
    ports.publish(&event).await?;
    Ok(())
}
