//! Commands in their table: key (device_id, command_id), so a device's commands list
//! newest first by key; JSON members are stored as JSON text. Rows expire
//! `RETENTION_DAYS` after the command does.

use aws_sdk_dynamodb::{types::AttributeValue, Client};
use chrono::{DateTime, Duration, Utc};
use hub_runtime::dynamodb::{is_condition_failure, n, s, string, time, Item};
use serde_json::Value;

use crate::{
    command::{apply_ack, AckOutcome, Command, CommandAck, CommandStatus},
    tables::{sdk_error, CommandsTable, TableError},
};

pub const RETENTION_DAYS: i64 = 30;

#[derive(Clone, Debug)]
pub struct DynamoCommands {
    pub client: Client,
    pub table: String,
}

fn json(item: &Item, name: &str) -> Option<Value> {
    serde_json::from_str(&string(item, name)?).ok()
}

pub fn from_item(item: &Item) -> Option<Command> {
    Some(Command {
        device_id: string(item, "device_id")?,
        command_id: string(item, "command_id")?,
        name: string(item, "name")?,
        params: json(item, "params").unwrap_or(Value::Null),
        status: CommandStatus::from_name(&string(item, "status")?)?,
        issued_at: time(item, "issued_at")?,
        expires_at: time(item, "expires_at")?,
        issued_by: string(item, "issued_by").unwrap_or_default(),
        answered_at: time(item, "answered_at"),
        result: json(item, "result"),
        error: string(item, "error"),
    })
}

pub fn to_item(command: &Command) -> Item {
    let mut item = Item::from([
        ("device_id".to_owned(), s(&command.device_id)),
        ("command_id".to_owned(), s(&command.command_id)),
        ("name".to_owned(), s(&command.name)),
        ("params".to_owned(), s(command.params.to_string())),
        ("status".to_owned(), s(command.status.as_str())),
        ("issued_at".to_owned(), s(command.issued_at.to_rfc3339())),
        ("expires_at".to_owned(), s(command.expires_at.to_rfc3339())),
        (
            "expires_epoch".to_owned(),
            n(command.expires_at.timestamp()),
        ),
        ("issued_by".to_owned(), s(&command.issued_by)),
        (
            "ttl".to_owned(),
            n((command.expires_at + Duration::days(RETENTION_DAYS)).timestamp()),
        ),
    ]);
    if let Some(at) = command.answered_at {
        item.insert("answered_at".into(), s(at.to_rfc3339()));
    }
    if let Some(result) = &command.result {
        item.insert("result".into(), s(result.to_string()));
    }
    if let Some(error) = &command.error {
        item.insert("error".into(), s(error));
    }
    item
}

fn key(device_id: &str, command_id: &str) -> Item {
    Item::from([
        ("device_id".to_owned(), s(device_id)),
        ("command_id".to_owned(), s(command_id)),
    ])
}

impl CommandsTable for DynamoCommands {
    async fn put(&self, command: &Command) -> Result<bool, TableError> {
        match self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(to_item(command)))
            .condition_expression("attribute_not_exists(command_id)")
            .send()
            .await
        {
            Ok(_) => Ok(true),
            Err(err) if is_condition_failure(&err) => Ok(false),
            Err(err) => Err(sdk_error("command write")(err)),
        }
    }

    async fn get(&self, device_id: &str, command_id: &str) -> Result<Option<Command>, TableError> {
        let output = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key(device_id, command_id)))
            .consistent_read(true)
            .send()
            .await
            .map_err(sdk_error("command read"))?;
        Ok(output.item.as_ref().and_then(from_item))
    }

    async fn list(
        &self,
        device_id: &str,
        limit: usize,
        after: Option<&str>,
    ) -> Result<(Vec<Command>, Option<String>), TableError> {
        let output = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("device_id = :d")
            .expression_attribute_values(":d", s(device_id))
            .scan_index_forward(false)
            .limit(limit as i32)
            .set_exclusive_start_key(after.map(|id| key(device_id, id)))
            .send()
            .await
            .map_err(sdk_error("commands read"))?;
        let commands: Vec<Command> = output.items().iter().filter_map(from_item).collect();
        let next = output
            .last_evaluated_key()
            .and_then(|k| k.get("command_id"))
            .and_then(|v| v.as_s().ok())
            .cloned();
        Ok((commands, next))
    }

    async fn set_undelivered(
        &self,
        device_id: &str,
        command_id: &str,
        error: &str,
    ) -> Result<(), TableError> {
        self.client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(device_id, command_id)))
            .update_expression("SET #status = :undelivered, #error = :error")
            .condition_expression("#status = :sent")
            .expression_attribute_names("#status", "status")
            .expression_attribute_names("#error", "error")
            .expression_attribute_values(":undelivered", s(CommandStatus::Undelivered.as_str()))
            .expression_attribute_values(":sent", s(CommandStatus::Sent.as_str()))
            .expression_attribute_values(":error", s(error))
            .send()
            .await
            .map(|_| ())
            // Already answered: the device got it after all; leave the answer.
            .or_else(|err| {
                if is_condition_failure(&err) {
                    Ok(())
                } else {
                    Err(sdk_error("command write")(err))
                }
            })
    }

    /// The command must be sent and not expired; a refused write reads the command back
    /// to say why.
    async fn record_ack(
        &self,
        ack: &CommandAck,
        now: DateTime<Utc>,
    ) -> Result<AckOutcome, TableError> {
        let mut update = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(&ack.device_id, &ack.command_id)))
            .update_expression(if ack.result.is_some() {
                "SET #status = :answer, answered_at = :now, #result = :result"
            } else {
                "SET #status = :answer, answered_at = :now"
            })
            .condition_expression(
                "attribute_exists(command_id) AND #status = :sent AND expires_epoch >= :epoch",
            )
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":answer", s(CommandStatus::from(ack.status).as_str()))
            .expression_attribute_values(":sent", s(CommandStatus::Sent.as_str()))
            .expression_attribute_values(":now", s(now.to_rfc3339()))
            .expression_attribute_values(":epoch", n(now.timestamp()));
        if let Some(result) = &ack.result {
            update = update
                .expression_attribute_names("#result", "result")
                .expression_attribute_values(":result", AttributeValue::S(result.to_string()));
        }
        match update.send().await {
            Ok(_) => Ok(AckOutcome::Recorded),
            Err(err) if is_condition_failure(&err) => {
                let stored = self.get(&ack.device_id, &ack.command_id).await?;
                Ok(match apply_ack(stored.as_ref(), ack, now) {
                    // The write refused it, so it was not recorded; only a change between
                    // the write and the read makes the rule admit it now.
                    AckOutcome::Recorded => AckOutcome::Conflict(CommandStatus::Sent),
                    other => other,
                })
            }
            Err(err) => Err(sdk_error("command answer write")(err)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn items_round_trip() {
        let issued_at = DateTime::parse_from_rfc3339("2026-11-23T10:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let mut command = Command::sent(
            "d1",
            "0190-c",
            "set_interval",
            json!({"seconds": 30}),
            issued_at,
            Duration::seconds(300),
            "client-1",
        );
        assert_eq!(from_item(&to_item(&command)).unwrap(), command);
        command.status = CommandStatus::Failed;
        command.answered_at = Some(issued_at + Duration::seconds(2));
        command.result = Some(json!({"reason": "out of range"}));
        let item = to_item(&command);
        assert_eq!(from_item(&item).unwrap(), command);
        assert_eq!(
            item["ttl"].as_n().unwrap(),
            &(command.expires_at + Duration::days(RETENTION_DAYS))
                .timestamp()
                .to_string()
        );
    }
}
