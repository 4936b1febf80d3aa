//! Device commands. The admin API records a command and publishes it on the device's
//! command topic, `devices/{id}/commands`; the device answers on
//! `devices/{id}/commands/ack`, and an IoT rule hands the answer to the fleet function,
//! which records it. A command nobody answered by `expires_at` is expired: a late answer,
//! an answer to an unknown command, or a second answer that says something else is
//! refused and logged, never recorded over the first.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

pub const MAX_NAME: usize = 64;
pub const MAX_PARAMS_BYTES: usize = 8 * 1024;
pub const MAX_RESULT_BYTES: usize = 4 * 1024;
pub const MAX_ID: usize = 128;

/// Where a device receives its commands.
pub fn command_topic(device_id: &str) -> String {
    format!("devices/{device_id}/commands")
}

/// Where a device answers them.
pub fn ack_topic(device_id: &str) -> String {
    format!("devices/{device_id}/commands/ack")
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CommandStatus {
    /// Published to the device; no answer yet.
    Sent,
    /// The publish failed; the device never got it.
    Undelivered,
    Succeeded,
    Failed,
    /// The device refused it (unknown command, bad parameters, wrong state).
    Rejected,
    /// Sent, and not answered before it expired.
    Expired,
}

impl CommandStatus {
    pub const ALL: [Self; 6] = [
        Self::Sent,
        Self::Undelivered,
        Self::Succeeded,
        Self::Failed,
        Self::Rejected,
        Self::Expired,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Sent => "sent",
            Self::Undelivered => "undelivered",
            Self::Succeeded => "succeeded",
            Self::Failed => "failed",
            Self::Rejected => "rejected",
            Self::Expired => "expired",
        }
    }

    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == name)
    }
}

/// A command as stored.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Command {
    pub device_id: String,
    /// Time-ordered (UUID v7), so a device's commands list newest first by key.
    pub command_id: String,
    pub name: String,
    pub params: Value,
    pub status: CommandStatus,
    pub issued_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub issued_by: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub answered_at: Option<DateTime<Utc>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub result: Option<Value>,
    /// Why it was not delivered.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl Command {
    /// A command about to be published: sent, not answered, expiring `ttl` after `issued_at`.
    pub fn sent(
        device_id: &str,
        command_id: &str,
        name: &str,
        params: Value,
        issued_at: DateTime<Utc>,
        ttl: chrono::Duration,
        issued_by: &str,
    ) -> Self {
        Self {
            device_id: device_id.to_owned(),
            command_id: command_id.to_owned(),
            name: name.to_owned(),
            params,
            status: CommandStatus::Sent,
            issued_at,
            expires_at: issued_at + ttl,
            issued_by: issued_by.to_owned(),
            answered_at: None,
            result: None,
            error: None,
        }
    }

    /// What the device receives.
    pub fn message(&self) -> CommandMessage {
        CommandMessage {
            command_id: self.command_id.clone(),
            name: self.name.clone(),
            params: self.params.clone(),
            issued_at: self.issued_at,
            expires_at: self.expires_at,
        }
    }

    /// The status a reader sees at `now`: a sent command past its expiry is expired.
    pub fn status_at(&self, now: DateTime<Utc>) -> CommandStatus {
        if self.status == CommandStatus::Sent && now > self.expires_at {
            CommandStatus::Expired
        } else {
            self.status
        }
    }
}

/// The payload on `devices/{id}/commands`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CommandMessage {
    pub command_id: String,
    pub name: String,
    pub params: Value,
    pub issued_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AckStatus {
    Succeeded,
    Failed,
    Rejected,
}

impl From<AckStatus> for CommandStatus {
    fn from(status: AckStatus) -> Self {
        match status {
            AckStatus::Succeeded => CommandStatus::Succeeded,
            AckStatus::Failed => CommandStatus::Failed,
            AckStatus::Rejected => CommandStatus::Rejected,
        }
    }
}

/// What a device publishes on its ack topic. It does not name itself: the rule takes
/// the device id from the topic.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CommandAnswer {
    pub command_id: String,
    pub status: AckStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<Value>,
}

/// A device's answer, as the ack rule passes it on: the device's payload
/// `{command_id, status, result?}` plus `device_id` taken from the topic, so a device
/// can only answer for itself.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CommandAck {
    pub device_id: String,
    pub command_id: String,
    pub status: AckStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<Value>,
}

#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum AckError {
    #[error("{0} must be 1 to {MAX_ID} characters")]
    BadId(&'static str),
    #[error("result is {0} bytes; at most {MAX_RESULT_BYTES}")]
    ResultTooLarge(usize),
}

impl CommandAck {
    pub fn validate(&self) -> Result<(), AckError> {
        for (field, value) in [
            ("device_id", &self.device_id),
            ("command_id", &self.command_id),
        ] {
            if value.is_empty() || value.len() > MAX_ID {
                return Err(AckError::BadId(field));
            }
        }
        if let Some(result) = &self.result {
            let size = result.to_string().len();
            if size > MAX_RESULT_BYTES {
                return Err(AckError::ResultTooLarge(size));
            }
        }
        Ok(())
    }
}

/// What an answer does to its command.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AckOutcome {
    Recorded,
    /// The same answer again (at-least-once delivery): nothing changes.
    Duplicate,
    /// Answered after the command expired.
    Late,
    /// The command already holds a different answer (or was never delivered).
    Conflict(CommandStatus),
    UnknownCommand,
}

/// The rule an answer follows, given the command as stored; the table's conditional
/// write is this rule, and it classifies a refused write with it.
pub fn apply_ack(stored: Option<&Command>, ack: &CommandAck, now: DateTime<Utc>) -> AckOutcome {
    let Some(command) = stored else {
        return AckOutcome::UnknownCommand;
    };
    let answer = CommandStatus::from(ack.status);
    match command.status {
        CommandStatus::Sent if now > command.expires_at => AckOutcome::Late,
        CommandStatus::Sent => AckOutcome::Recorded,
        held if held == answer => AckOutcome::Duplicate,
        held => AckOutcome::Conflict(held),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Duration;
    use serde_json::json;

    fn command(status: CommandStatus) -> Command {
        let sent = Command::sent(
            "d1",
            "c1",
            "reboot",
            json!({}),
            Utc::now(),
            Duration::seconds(60),
            "ops",
        );
        Command { status, ..sent }
    }

    fn ack(status: AckStatus) -> CommandAck {
        CommandAck {
            device_id: "d1".into(),
            command_id: "c1".into(),
            status,
            result: None,
        }
    }

    #[test]
    fn answers_follow_the_lifecycle() {
        let sent = command(CommandStatus::Sent);
        let now = sent.issued_at + Duration::seconds(1);
        let late = sent.expires_at + Duration::seconds(1);
        assert_eq!(
            apply_ack(Some(&sent), &ack(AckStatus::Succeeded), now),
            AckOutcome::Recorded
        );
        assert_eq!(
            apply_ack(Some(&sent), &ack(AckStatus::Succeeded), late),
            AckOutcome::Late
        );
        assert_eq!(
            apply_ack(None, &ack(AckStatus::Failed), now),
            AckOutcome::UnknownCommand
        );
        let done = command(CommandStatus::Succeeded);
        assert_eq!(
            apply_ack(Some(&done), &ack(AckStatus::Succeeded), now),
            AckOutcome::Duplicate
        );
        assert_eq!(
            apply_ack(Some(&done), &ack(AckStatus::Failed), now),
            AckOutcome::Conflict(CommandStatus::Succeeded)
        );
        let lost = command(CommandStatus::Undelivered);
        assert_eq!(
            apply_ack(Some(&lost), &ack(AckStatus::Succeeded), now),
            AckOutcome::Conflict(CommandStatus::Undelivered)
        );
    }

    #[test]
    fn a_sent_command_expires_for_readers() {
        let sent = command(CommandStatus::Sent);
        assert_eq!(sent.status_at(sent.issued_at), CommandStatus::Sent);
        assert_eq!(
            sent.status_at(sent.expires_at + Duration::milliseconds(1)),
            CommandStatus::Expired
        );
        let done = command(CommandStatus::Failed);
        assert_eq!(
            done.status_at(done.expires_at + Duration::days(1)),
            CommandStatus::Failed
        );
    }

    #[test]
    fn acks_parse_from_the_rule_event_and_are_bounded() {
        let event = json!({"device_id": "d1", "command_id": "c1", "status": "rejected",
                           "result": {"reason": "unknown command"}, "extra": 1});
        let parsed: CommandAck = serde_json::from_value(event).unwrap();
        assert_eq!(parsed.status, AckStatus::Rejected);
        assert!(parsed.validate().is_ok());
        assert!(
            serde_json::from_value::<CommandAck>(json!({"device_id": "d1",
            "command_id": "c1", "status": "done"}))
            .is_err()
        );
        let big = CommandAck {
            result: Some(json!("x".repeat(MAX_RESULT_BYTES))),
            ..ack(AckStatus::Failed)
        };
        assert!(matches!(big.validate(), Err(AckError::ResultTooLarge(_))));
        let nameless = CommandAck {
            command_id: String::new(),
            ..ack(AckStatus::Failed)
        };
        assert_eq!(nameless.validate(), Err(AckError::BadId("command_id")));
    }

    #[test]
    fn topics() {
        assert_eq!(command_topic("d1"), "devices/d1/commands");
        assert_eq!(ack_topic("d1"), "devices/d1/commands/ack");
    }
}
