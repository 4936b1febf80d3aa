//! Command answers (the ack rule's event: the device's payload plus the device id from
//! the topic) against in-memory commands: recorded once, and late, unknown, conflicting
//! or malformed answers refused with a reason.

use chrono::{DateTime, Duration, Utc};
use fleet::{
    dispatch,
    memory::{MemoryCommands, MemoryFirmware, MemoryRegistry, MemoryRollouts},
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
    for bad in [
        json!({"command_id": "c", "device_id": "d", "status": "done"}),
        json!({"command_id": "c", "device_id": "d"}),
        json!({"command_id": 7, "device_id": "d", "status": "failed"}),
        json!({"command_id": "", "device_id": "d", "status": "failed"}),
        json!({"command_id": "c", "device_id": "d", "status": "failed", "result": "x".repeat(5000)}),
    ] {
        match answer(&commands, bad.clone(), Utc::now()).await.unwrap() {
            Outcome::AnswerRefused(reason) => assert!(!reason.is_empty(), "{bad}"),
            other => panic!("{bad}: {other:?}"),
        }
    }
    assert!(answer(&commands, json!({"hello": 1}), Utc::now())
        .await
        .is_err());
}
