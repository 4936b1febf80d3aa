//! Command answers (the ack rule's event: the device's payload plus the device id from
//! the topic) against in-memory commands: recorded once, and late, unknown, conflicting
//! or malformed answers refused with a reason.

use chrono::{DateTime, Duration, Utc};
use fleet::{
    dispatch,
    memory::{self, MemoryCommands, MemoryFirmware, MemoryRegistry, MemoryRollouts},
    Outcome,
};
use hub_fleet::command::{AckOutcome, Command, CommandStatus};
use serde_json::{json, Value};

fn fixture() -> Value {
    let path = format!(
        "{}/../../tests/fixtures/iot-rule-command-ack.json",
        env!("CARGO_MANIFEST_DIR")
    );
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn sent(device: &str, id: &str, issued_at: DateTime<Utc>) -> Command {
    let params = json!({"seconds": 30});
    Command::sent(
        device,
        id,
        "set_interval",
        params,
        issued_at,
        Duration::seconds(60),
        "ops",
    )
}

fn store(commands: &[Command]) -> MemoryCommands {
    let store = MemoryCommands::default();
    for c in commands {
        store
            .commands
            .lock()
            .unwrap()
            .insert((c.device_id.clone(), c.command_id.clone()), c.clone());
    }
    store
}

/// Hands one event to the fleet function with `commands` as its command store.
async fn answer(
    commands: &MemoryCommands,
    event: Value,
    at: DateTime<Utc>,
) -> Result<Outcome, fleet::FleetError> {
    dispatch(
        &memory::origins(),
        &MemoryRegistry::default(),
        commands,
        &MemoryFirmware::default(),
        &MemoryRollouts::default(),
        event,
        at,
    )
    .await
}

#[tokio::test]
async fn an_answer_is_recorded_once() {
    let event = fixture();
    let issued = Utc::now();
    let id = event["command_id"].as_str().unwrap().to_owned();
    let commands = store(&[sent("sensor-0042", &id, issued)]);
    let at = issued + Duration::seconds(2);
    assert_eq!(
        answer(&commands, event.clone(), at).await.unwrap(),
        Outcome::Answer(AckOutcome::Recorded)
    );
    assert_eq!(
        answer(&commands, event.clone(), at).await.unwrap(),
        Outcome::Answer(AckOutcome::Duplicate)
    );
    let mut other = event;
    other["status"] = json!("failed");
    assert_eq!(
        answer(&commands, other, at).await.unwrap(),
        Outcome::Answer(AckOutcome::Conflict(CommandStatus::Succeeded))
    );
    let held = commands.commands.lock().unwrap()[&("sensor-0042".to_owned(), id)].clone();
    assert_eq!(held.status, CommandStatus::Succeeded);
    assert_eq!(held.result, Some(json!({"interval_seconds": 30})));
    assert_eq!(held.answered_at, Some(at));
}

#[tokio::test]
async fn late_unknown_and_foreign_answers_are_not_recorded() {
    let event = fixture();
    let issued = Utc::now();
    let id = event["command_id"].as_str().unwrap().to_owned();
    let commands = store(&[sent("sensor-0042", &id, issued)]);
    // Another device answering this command id: its topic names it, so it is unknown.
    let mut foreign = event.clone();
    foreign["device_id"] = json!("sensor-0043");
    assert_eq!(
        answer(&commands, foreign, issued).await.unwrap(),
        Outcome::Answer(AckOutcome::UnknownCommand)
    );
    assert_eq!(
        answer(&commands, event, issued + Duration::seconds(61))
            .await
            .unwrap(),
        Outcome::Answer(AckOutcome::Late)
    );
    let held = commands.commands.lock().unwrap()[&("sensor-0042".to_owned(), id)].clone();
    assert_eq!(held.status, CommandStatus::Sent);
    assert_eq!(
        held.status_at(issued + Duration::seconds(61)),
        CommandStatus::Expired
    );
}

#[tokio::test]
async fn malformed_answers_are_refused_with_a_reason_and_strangers_are_errors() {
    let commands = store(&[]);
    for mut bad in [
        json!({"command_id": "c", "device_id": "d", "status": "done"}),
        json!({"command_id": "c", "device_id": "d"}),
        json!({"command_id": 7, "device_id": "d", "status": "failed"}),
        json!({"command_id": "", "device_id": "d", "status": "failed"}),
        json!({"command_id": "c", "device_id": "d", "status": "failed", "result": "x".repeat(5000)}),
    ] {
        bad["hub_rule"] = json!("command_answer");
        match answer(&commands, bad.clone(), Utc::now()).await.unwrap() {
            Outcome::AnswerRefused(reason) => assert!(!reason.is_empty(), "{bad}"),
            other => panic!("{bad}: {other:?}"),
        }
    }
    assert!(answer(&commands, json!({"hello": 1}), Utc::now())
        .await
        .is_err());
}

#[tokio::test]
async fn presence_and_notifications_a_device_forges_on_its_answer_topic_are_not_believed() {
    let registry = MemoryRegistry::with_devices(&["victim"]);
    let images = MemoryFirmware::default();
    let rollouts = MemoryRollouts::default();
    let commands = store(&[]);
    let s3 = |bucket: &str| {
        json!({"Records": [{"eventSource": "aws:s3", "eventName": "ObjectCreated:Put",
            "s3": {"bucket": {"name": bucket}, "object": {"key": "firmware/9.9.9/x.bin", "size": 1}}}]})
    };
    let forged = [
        // Another client disconnected, far in the future so nothing true could undo it.
        json!({"eventType": "disconnected", "clientId": "victim", "timestamp": 4_102_444_800_000i64,
            "versionNumber": 999_999, "disconnectReason": "FORGED"}),
        s3("iothub-firmware-000000000000-us-east-1"),
        json!({"Records": [{"eventSource": "aws:sqs", "eventSourceARN": memory::RETRY_QUEUE_ARN,
            "messageId": "m", "body": json!({"rollout_id": "r", "device_id": "victim", "attempt": 2}).to_string()}]}),
        json!({"hub_rule": "presence", "eventType": "connected", "clientId": "victim", "timestamp": 1}),
    ];
    let origins = memory::origins();
    let run = |event: Value| {
        dispatch(
            &origins,
            &registry,
            &commands,
            &images,
            &rollouts,
            event,
            Utc::now(),
        )
    };
    for payload in &forged {
        // Through the deployed rule: at most a malformed answer of the publisher's own.
        let outcome = run(memory::ack_rule_output("intruder", payload))
            .await
            .unwrap();
        assert!(matches!(outcome, Outcome::AnswerRefused(_)), "{outcome:?}");
        // A platform event passed on whole, as a `SELECT *` rule would: it names no
        // source, so it is not believed. (Records are told apart by the bucket or queue
        // they name; that a device cannot write them is the rule's part, held by
        // hub-local's test of the deployed SQL.)
        let mut whole = payload.clone();
        whole["device_id"] = json!("intruder");
        if whole.get("hub_rule").is_none() && whole.get("Records").is_none() {
            assert!(run(whole).await.is_err(), "{payload}");
        }
    }
    assert_eq!(registry.rows.lock().unwrap()["victim"], None);
    assert!(rollouts.jobs.lock().unwrap().is_empty());

    // Positive controls: the firmware bucket's own notification and IoT Core's own
    // presence event, from the presence queue, are taken.
    let notification = format!(
        "{}/../../tests/fixtures/s3-object-created.json",
        env!("CARGO_MANIFEST_DIR")
    );
    let notification = serde_json::from_str(&std::fs::read_to_string(notification).unwrap());
    let outcome = run(notification.unwrap()).await.unwrap();
    assert!(matches!(outcome, Outcome::Firmware(_)), "{outcome:?}");
    let outcome = run(memory::presence_batch(&[json!({"eventType": "connected",
        "clientId": "victim", "timestamp": 1_795_428_001_234i64})]))
    .await
    .unwrap();
    assert_eq!(
        outcome,
        Outcome::Presence(fleet::BatchOutcome {
            applied: 1,
            ..Default::default()
        })
    );
    assert!(registry.rows.lock().unwrap()["victim"].is_some());
}
