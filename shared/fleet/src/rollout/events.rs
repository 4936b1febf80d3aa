//! Job and job-execution events, and what applying them decides.

use super::*;

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
