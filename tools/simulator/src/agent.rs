//! The device side of commands and shadows, as a simulated device runs it: it answers
//! commands on its ack topic and applies its shadow's delta, then reports the new state.
//! Pure: a message in, the messages to publish out, so the run loop and tests share it.

use hub_fleet::command::{ack_topic, command_topic, AckStatus, CommandAnswer, CommandMessage};
use serde_json::{json, Map, Value};

/// What a simulated device understands.
pub const COMMANDS: &[&str] = &["ping", "reboot", "set_interval"];

pub fn shadow_delta_topic(device_id: &str) -> String {
    format!("$aws/things/{device_id}/shadow/update/delta")
}

pub fn shadow_update_topic(device_id: &str) -> String {
    format!("$aws/things/{device_id}/shadow/update")
}

/// A device's own state as commands and its shadow change it.
#[derive(Clone, Debug)]
pub struct Agent {
    pub device_id: String,
    pub interval_seconds: u64,
    pub boots: u64,
    /// What the device last reported to its shadow.
    pub reported: Map<String, Value>,
}

impl Agent {
    pub fn new(device_id: &str) -> Self {
        Self {
            device_id: device_id.to_owned(),
            interval_seconds: 60,
            boots: 1,
            reported: Map::new(),
        }
    }

    /// The topics to subscribe to.
    pub fn subscriptions(&self) -> [String; 2] {
        [
            command_topic(&self.device_id),
            shadow_delta_topic(&self.device_id),
        ]
    }

    /// What to publish in answer to a message on `topic` (nothing for other topics, or a
    /// command without an id to answer to).
    pub fn on_message(&mut self, topic: &str, payload: &[u8]) -> Vec<(String, Vec<u8>)> {
        if topic == command_topic(&self.device_id) {
            self.on_command(payload)
                .map(|answer| {
                    let body = serde_json::to_vec(&answer).expect("answers serialize");
                    vec![(ack_topic(&self.device_id), body)]
                })
                .unwrap_or_default()
        } else if topic == shadow_delta_topic(&self.device_id) {
            self.on_delta(payload)
        } else {
            Vec::new()
        }
    }

    fn on_command(&mut self, payload: &[u8]) -> Option<CommandAnswer> {
        let command: CommandMessage = match serde_json::from_slice(payload) {
            Ok(command) => command,
            Err(err) => {
                // A command id alone is enough to say no.
                let id = serde_json::from_slice::<Value>(payload)
                    .ok()?
                    .get("command_id")?
                    .as_str()?
                    .to_owned();
                return Some(answer(
                    id,
                    AckStatus::Rejected,
                    json!({"reason": err.to_string()}),
                ));
            }
        };
        let id = command.command_id.clone();
        Some(match command.name.as_str() {
            "ping" => answer(id, AckStatus::Succeeded, json!({"pong": true})),
            "reboot" => {
                self.boots += 1;
                answer(id, AckStatus::Succeeded, json!({"boots": self.boots}))
            }
            "set_interval" => match command.params["seconds"].as_u64() {
                Some(seconds @ 1..=3600) => {
                    self.interval_seconds = seconds;
                    answer(
                        id,
                        AckStatus::Succeeded,
                        json!({"interval_seconds": seconds}),
                    )
                }
                _ => answer(
                    id,
                    AckStatus::Failed,
                    json!({"reason": "params.seconds must be 1 to 3600"}),
                ),
            },
            other => answer(
                id,
                AckStatus::Rejected,
                json!({"reason": format!("unknown command {other:?}"), "known": COMMANDS}),
            ),
        })
    }

    /// The delta's keys become the device's state and are reported back.
    fn on_delta(&mut self, payload: &[u8]) -> Vec<(String, Vec<u8>)> {
        let Ok(delta) = serde_json::from_slice::<Value>(payload) else {
            return Vec::new();
        };
        let Some(state) = delta["state"].as_object().filter(|s| !s.is_empty()) else {
            return Vec::new();
        };
        if let Some(seconds) = state.get("interval").and_then(Value::as_u64) {
            self.interval_seconds = seconds;
        }
        for (key, value) in state {
            self.reported.insert(key.clone(), value.clone());
        }
        let report = json!({"state": {"reported": state}});
        vec![(
            shadow_update_topic(&self.device_id),
            report.to_string().into_bytes(),
        )]
    }
}

fn answer(command_id: String, status: AckStatus, result: Value) -> CommandAnswer {
    CommandAnswer {
        command_id,
        status,
        result: Some(result),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn command(name: &str, params: Value) -> Vec<u8> {
        json!({"command_id": "c1", "name": name, "params": params,
               "issued_at": "2026-11-23T10:00:00Z", "expires_at": "2026-11-23T10:05:00Z"})
        .to_string()
        .into_bytes()
    }

    fn answer_of(out: &[(String, Vec<u8>)]) -> Value {
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].0, "devices/d1/commands/ack");
        serde_json::from_slice(&out[0].1).unwrap()
    }

    #[test]
    fn commands_are_answered_by_what_the_device_knows() {
        let mut agent = Agent::new("d1");
        let topic = command_topic("d1");
        let ok =
            answer_of(&agent.on_message(&topic, &command("set_interval", json!({"seconds": 15}))));
        assert_eq!(
            ok,
            json!({"command_id": "c1", "status": "succeeded", "result": {"interval_seconds": 15}})
        );
        assert_eq!(agent.interval_seconds, 15);
        let bad =
            answer_of(&agent.on_message(&topic, &command("set_interval", json!({"seconds": 0}))));
        assert_eq!(bad["status"], "failed");
        assert_eq!(agent.interval_seconds, 15);
        let reboot = answer_of(&agent.on_message(&topic, &command("reboot", json!({}))));
        assert_eq!(reboot["result"]["boots"], 2);
        let unknown = answer_of(&agent.on_message(&topic, &command("selfdestruct", json!({}))));
        assert_eq!(unknown["status"], "rejected");
        // Malformed but with an id: rejected; without one: nothing to answer.
        let malformed = answer_of(&agent.on_message(&topic, br#"{"command_id":"c9","name":7}"#));
        assert_eq!(malformed["command_id"], "c9");
        assert_eq!(malformed["status"], "rejected");
        assert!(agent.on_message(&topic, b"garbage").is_empty());
        // Another device's commands are not this one's.
        assert!(agent
            .on_message("devices/d2/commands", &command("ping", json!({})))
            .is_empty());
        assert!(
            answer_of(&agent.on_message(&topic, &command("ping", json!({}))))
                .get("device_id")
                .is_none()
        );
    }

    #[test]
    fn a_shadow_delta_is_applied_and_reported() {
        let mut agent = Agent::new("d1");
        let delta = json!({"state": {"interval": 30, "led": "on"}, "version": 7});
        let out = agent.on_message(&shadow_delta_topic("d1"), delta.to_string().as_bytes());
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].0, "$aws/things/d1/shadow/update");
        let report: Value = serde_json::from_slice(&out[0].1).unwrap();
        assert_eq!(
            report,
            json!({"state": {"reported": {"interval": 30, "led": "on"}}})
        );
        assert_eq!(agent.interval_seconds, 30);
        assert_eq!(agent.reported["led"], "on");
        assert!(agent
            .on_message(&shadow_delta_topic("d1"), br#"{"state":{}}"#)
            .is_empty());
        assert!(agent.on_message(&shadow_delta_topic("d1"), b"[").is_empty());
    }
}
