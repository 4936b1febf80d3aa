//! Rollout events (IoT Jobs' job-execution and job events, as the rules hand them over)
//! against in-memory rollouts: a failure schedules a retry with backoff that goes out
//! as a one-device job, an abort cancels the waiting devices and sends those that took
//! the version back, a late success after the abort is sent back too, and a completed
//! job with every device done completes the rollout.

use chrono::{DateTime, Duration, TimeZone, Utc};
use fleet::{
    dispatch,
    memory::{self, MemoryCommands, MemoryFirmware, MemoryRegistry, MemoryRollouts},
    rollout::{Handled, RetryDue},
    Outcome,
};
use hub_events::RolloutEventKind;
use hub_fleet::{
    firmware::{Artifact, ArtifactStatus},
    rollout::{DeviceRow, DeviceStatus, RollbackStatus, Rollout, RolloutPolicy, RolloutStatus},
};
use serde_json::{json, Value};

const ROLLOUT: &str = "ota-01a20a5077df72b58725f587210fd5f6";

fn fixture(name: &str) -> Value {
    let path = format!("{}/../../tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn t(seconds: i64) -> DateTime<Utc> {
    Utc.timestamp_opt(1_795_469_375 + seconds, 0).unwrap()
}

fn artifact(version: &str) -> Artifact {
    Artifact {
        version: version.into(),
        device_type: "env-sensor".into(),
        sha256: "ab".repeat(32),
        size: 10,
        signature: "c2ln".into(),
        signature_verified: true,
        status: ArtifactStatus::Ready,
        reason: None,
        s3_key: format!("firmware/{version}/x.bin"),
        created_at: t(0),
        created_by: "admin".into(),
        checked_at: Some(t(0)),
    }
}

/// Ten devices on 1.0.0 going to 2.0.0.
fn rollouts() -> MemoryRollouts {
    let store = MemoryRollouts::default();
    store.table.insert(
        Rollout {
            rollout_id: ROLLOUT.into(),
            firmware_version: "2.0.0".into(),
            target: "line-a".into(),
            policy: RolloutPolicy::default(),
            status: RolloutStatus::InProgress,
            job_id: ROLLOUT.into(),
            device_count: 10,
            canary_size: 5,
            job_done: false,
            created_at: t(0),
            created_by: "admin".into(),
            updated_at: t(0),
            finished_at: None,
            reason: None,
        },
        (0..10).map(|i| DeviceRow::queued(&format!("sim-{i:04}"), Some("1.0.0".into()), t(0))),
    );
    for v in ["1.0.0", "2.0.0"] {
        store.firmware.insert(artifact(v));
    }
    store
}

async fn send(store: &MemoryRollouts, event: Value, now: DateTime<Utc>) -> Outcome {
    dispatch(
        &memory::origins(),
        &MemoryRegistry::default(),
        &MemoryCommands::default(),
        &MemoryFirmware::default(),
        store,
        event,
        now,
    )
    .await
    .unwrap()
}

fn execution(device: &str, job: &str, status: &str, at: i64) -> Value {
    let mut event = fixture("iot-job-execution-failed.json");
    event["thingArn"] = json!(format!("arn:aws:iot:us-east-1:123456789012:thing/{device}"));
    event["jobId"] = json!(job);
    event["status"] = json!(status);
    event["operation"] = json!(status.to_ascii_lowercase());
    event["timestamp"] = json!(t(at).timestamp());
    event
}

#[tokio::test]
async fn a_failure_is_retried_after_its_backoff_as_a_one_device_job() {
    let store = rollouts();
    let outcome = send(&store, fixture("iot-job-execution-failed.json"), t(20)).await;
    assert_eq!(
        outcome,
        Outcome::Rollout(Handled::Device("retry_scheduled"))
    );
    let row = store.table.row(ROLLOUT, "sim-0003");
    assert_eq!(
        (row.status, row.attempts),
        (DeviceStatus::RetryScheduled, 2)
    );
    assert!(row.reason.unwrap().starts_with("sha256 mismatch"));
    // The fixture's event is from t(14); the first retry waits 30 s from then.
    let retries = store.retries.lock().unwrap().clone();
    assert_eq!(retries.len(), 1);
    assert_eq!(
        retries[0],
        (
            RetryDue {
                rollout_id: ROLLOUT.into(),
                device_id: "sim-0003".into(),
                attempt: 2
            },
            Duration::seconds(24)
        )
    );
    // The same event again (IoT rules deliver at least once): no second retry.
    let again = send(&store, fixture("iot-job-execution-failed.json"), t(21)).await;
    assert!(matches!(again, Outcome::Rollout(Handled::Ignored(_))));
    assert_eq!(store.retries.lock().unwrap().len(), 1);

    // The delay queue hands it back: the retry job goes to that one device.
    let message = json!({"Records": [{"eventSource": "aws:sqs", "eventSourceARN": memory::RETRY_QUEUE_ARN, "messageId": "m1",
        "body": serde_json::to_string(&retries[0].0).unwrap()}]});
    assert_eq!(
        send(&store, message.clone(), t(45)).await,
        Outcome::Retries {
            handled: vec![Handled::RetrySent],
            failed: vec![]
        }
    );
    let jobs = store.jobs.lock().unwrap().clone();
    let (job_id, (things, version, rollback)) = jobs.iter().next().unwrap();
    assert!(job_id.starts_with(&format!("{ROLLOUT}_r2_")), "{job_id}");
    assert_eq!(things, &vec!["sim-0003".to_owned()]);
    assert_eq!((version.as_str(), *rollback), ("2.0.0", false));
    assert_eq!(
        store.table.row(ROLLOUT, "sim-0003").status,
        DeviceStatus::Queued
    );
    // Redelivered: nothing more goes out.
    assert!(matches!(
        send(&store, message, t(46)).await,
        Outcome::Retries { handled, .. } if matches!(handled[..], [Handled::Ignored(_)])
    ));
    // The retry succeeds: the registry gets the new version.
    let ok = execution("sim-0003", job_id, "SUCCEEDED", 60);
    assert_eq!(
        send(&store, ok, t(61)).await,
        Outcome::Rollout(Handled::Device("succeeded"))
    );
    assert_eq!(store.versions.lock().unwrap()["sim-0003"], "2.0.0");
}

#[tokio::test]
async fn an_abort_cancels_the_waiting_rolls_back_and_raises_the_event_for_the_alert() {
    let store = rollouts();
    for i in 0..8 {
        send(
            &store,
            execution(&format!("sim-{i:04}"), ROLLOUT, "SUCCEEDED", 10 + i),
            t(30),
        )
        .await;
    }
    // The abort: the job event says ABORT_CANCEL.
    let outcome = send(&store, fixture("iot-job-canceled-abort.json"), t(75)).await;
    assert_eq!(outcome, Outcome::Rollout(Handled::Job("aborted")));
    assert_eq!(store.table.status(ROLLOUT), RolloutStatus::Aborted);
    for i in 8..10 {
        assert_eq!(
            store.table.row(ROLLOUT, &format!("sim-{i:04}")).status,
            DeviceStatus::Cancelled
        );
    }
    let jobs = store.jobs.lock().unwrap().clone();
    assert_eq!(jobs.len(), 1);
    let (job_id, (things, version, rollback)) = jobs.iter().next().unwrap();
    assert_eq!(job_id, &format!("{ROLLOUT}_rb1"));
    assert_eq!(things.len(), 8);
    assert_eq!((version.as_str(), *rollback), ("1.0.0", true));
    assert_eq!(
        store.table.row(ROLLOUT, "sim-0000").rollback,
        Some(RollbackStatus::Sent)
    );
    let kinds: Vec<RolloutEventKind> = store
        .events
        .lock()
        .unwrap()
        .iter()
        .map(|e| e.data.kind)
        .collect();
    // Eight of ten finished: a progress event at each tenth, then the abort's.
    assert_eq!(
        kinds,
        [
            vec![RolloutEventKind::Progress; 8],
            vec![RolloutEventKind::RolledBack, RolloutEventKind::Aborted]
        ]
        .concat()
    );
    let aborted = store.events.lock().unwrap()[9].clone();
    assert!(
        aborted
            .data
            .reason
            .as_deref()
            .unwrap()
            .contains("rollback sent to 8 device(s)"),
        "{:?}",
        aborted.data.reason
    );

    // A device that was installing when the job was cancelled reports success: it goes back too.
    let late = execution("sim-0009", ROLLOUT, "SUCCEEDED", 80);
    assert_eq!(
        send(&store, late, t(81)).await,
        Outcome::Rollout(Handled::Device("succeeded"))
    );
    assert_eq!(store.jobs.lock().unwrap().len(), 2);
    assert_eq!(
        store.table.row(ROLLOUT, "sim-0009").rollback,
        Some(RollbackStatus::Sent)
    );
    // The rollback job's outcome puts the registry back on 1.0.0.
    let back = execution("sim-0000", &format!("{ROLLOUT}_rb1"), "SUCCEEDED", 90);
    send(&store, back, t(91)).await;
    assert_eq!(store.versions.lock().unwrap()["sim-0000"], "1.0.0");
    assert_eq!(
        store.table.row(ROLLOUT, "sim-0000").rollback,
        Some(RollbackStatus::RolledBack)
    );
    // A retry that comes due after the abort does not go out (the abort already settled
    // its row; one that ended while the device waited is settled now).
    {
        let mut rows = store.table.rows.lock().unwrap();
        let row = rows
            .get_mut(&(ROLLOUT.to_owned(), "sim-0008".to_owned()))
            .unwrap();
        row.status = DeviceStatus::RetryScheduled;
        row.attempts = 2;
        row.reason = Some("flash write error".into());
    }
    let due = json!({"Records": [{"eventSource": "aws:sqs", "eventSourceARN": memory::RETRY_QUEUE_ARN, "messageId": "m2",
        "body": json!({"rollout_id": ROLLOUT, "device_id": "sim-0008", "attempt": 2}).to_string()}]});
    assert!(matches!(
        send(&store, due, t(95)).await,
        Outcome::Retries { handled, .. } if matches!(handled[..], [Handled::Ignored(_)])
    ));
    let settled = store.table.row(ROLLOUT, "sim-0008");
    assert_eq!(
        (settled.status, settled.attempts),
        (DeviceStatus::Failed, 1)
    );
    assert_eq!(
        settled.reason.as_deref(),
        Some("flash write error; not retried: the rollout is aborted")
    );
    assert_eq!(store.jobs.lock().unwrap().len(), 2);
}

#[tokio::test]
async fn failures_past_the_threshold_abort_even_when_the_job_completed_first() {
    let store = rollouts();
    for i in 0..4 {
        send(
            &store,
            execution(&format!("sim-{i:04}"), ROLLOUT, "SUCCEEDED", 10),
            t(20),
        )
        .await;
    }
    assert_eq!(store.table.status(ROLLOUT), RolloutStatus::InProgress);
    // The fifth finished device (the canary's size) fails: 1 in 5 is past 5%.
    send(&store, execution("sim-0004", ROLLOUT, "FAILED", 21), t(22)).await;
    assert_eq!(store.table.status(ROLLOUT), RolloutStatus::Aborted);
    assert_eq!(
        store.cancelled_jobs.lock().unwrap().clone(),
        vec![ROLLOUT.to_owned()]
    );
    let failed = store.table.row(ROLLOUT, "sim-0004");
    assert_eq!(failed.status, DeviceStatus::Failed);
    assert!(failed.reason.unwrap().contains("not retried"));
    assert_eq!(
        store.table.row(ROLLOUT, "sim-0005").status,
        DeviceStatus::Cancelled
    );
    assert_eq!(
        store.table.row(ROLLOUT, "sim-0000").rollback,
        Some(RollbackStatus::Sent)
    );
    // IoT Jobs' own cancellation event arrives after: nothing more happens.
    let events = store.events.lock().unwrap().len();
    let outcome = send(&store, fixture("iot-job-canceled-abort.json"), t(30)).await;
    assert_eq!(outcome, Outcome::Rollout(Handled::Job("aborted")));
    assert_eq!(store.events.lock().unwrap().len(), events);
    assert_eq!(store.jobs.lock().unwrap().len(), 1);
}

#[tokio::test]
async fn the_rollout_completes_when_its_job_has_and_no_device_is_pending() {
    let store = rollouts();
    for i in 0..9 {
        send(
            &store,
            execution(&format!("sim-{i:04}"), ROLLOUT, "SUCCEEDED", 10),
            t(20),
        )
        .await;
    }
    let mut completed = fixture("iot-job-canceled-abort.json");
    completed["operation"] = json!("completed");
    completed["status"] = json!("COMPLETED");
    completed["reasonCode"] = Value::Null;
    // The job ended but one device is still queued (a retry would be): not yet.
    assert_eq!(
        send(&store, completed, t(30)).await,
        Outcome::Rollout(Handled::Job("in_progress"))
    );
    send(
        &store,
        execution("sim-0009", ROLLOUT, "SUCCEEDED", 40),
        t(41),
    )
    .await;
    assert_eq!(store.table.status(ROLLOUT), RolloutStatus::Completed);
    let last = store.events.lock().unwrap().last().cloned().unwrap();
    assert_eq!(last.data.kind, RolloutEventKind::Completed);
    assert_eq!(last.data.counts.succeeded, 10);
    assert_eq!(store.versions.lock().unwrap().len(), 10);
    // Someone else's job is not the hub's business.
    let foreign = execution("sim-0001", "nightly-config-push", "FAILED", 50);
    assert!(matches!(
        send(&store, foreign, t(51)).await,
        Outcome::Rollout(Handled::Ignored(_))
    ));
}

#[tokio::test]
async fn job_events_a_device_forges_on_its_answer_topic_change_no_rollout() {
    let store = rollouts();
    let mut abort = fixture("iot-job-canceled-abort.json");
    abort.as_object_mut().unwrap().remove("hub_rule");
    let mut failed = fixture("iot-job-execution-failed.json");
    failed.as_object_mut().unwrap().remove("hub_rule");
    failed["thingArn"] = json!("arn:aws:iot:us-east-1:123456789012:thing/sim-0004");
    for forged in [abort, failed] {
        // Through the deployed rule it is at most a malformed answer.
        let outcome = send(&store, memory::ack_rule_output("sim-0003", &forged), t(30)).await;
        assert!(matches!(outcome, Outcome::AnswerRefused(_)), "{outcome:?}");
        // Had a rule passed the payload on whole (SELECT *), nothing names its source.
        let mut whole = forged.clone();
        whole["device_id"] = json!("sim-0003");
        let refused = dispatch(
            &memory::origins(),
            &MemoryRegistry::default(),
            &MemoryCommands::default(),
            &MemoryFirmware::default(),
            &store,
            whole,
            t(30),
        )
        .await;
        assert!(
            matches!(refused, Err(fleet::FleetError::Source(_))),
            "{refused:?}"
        );
    }
    assert_eq!(store.table.status(ROLLOUT), RolloutStatus::InProgress);
    assert_eq!(
        store.table.row(ROLLOUT, "sim-0004").status,
        DeviceStatus::Queued
    );
    assert!(store.jobs.lock().unwrap().is_empty());
    assert!(store.retries.lock().unwrap().is_empty());

    // Positive control: the same events from IoT Jobs' own rules are believed.
    let outcome = send(&store, fixture("iot-job-canceled-abort.json"), t(75)).await;
    assert_eq!(outcome, Outcome::Rollout(Handled::Job("aborted")));
    assert_eq!(store.table.status(ROLLOUT), RolloutStatus::Aborted);
}
