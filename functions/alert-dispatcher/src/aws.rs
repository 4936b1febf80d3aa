//! The dispatcher's ports over DynamoDB and SNS.

use aws_sdk_dynamodb::{
    error::{DisplayErrorContext, SdkError},
    types::ReturnValue,
};
use aws_sdk_sns::types::MessageAttributeValue;
use chrono::{DateTime, Duration, Utc};
use hub_events::{AlertRaised, AlertState, Envelope};
use hub_runtime::dynamodb::{n, number, s, string};

use crate::ports::{AlertRow, Alerts, Claims, Notifier, PortError, Trigger};

/// `device#rule#window` -> the alert and the event that claimed it, expiring some time
/// after the window (the alert itself stays as history).
pub struct DynamoClaims {
    pub client: aws_sdk_dynamodb::Client,
    pub table: String,
    pub keep: Duration,
}

fn conditional_failed<E: aws_sdk_dynamodb::error::ProvideErrorMetadata, R>(
    err: &SdkError<E, R>,
) -> bool {
    matches!(err, SdkError::ServiceError(e) if e.err().code() == Some("ConditionalCheckFailedException"))
}

impl Claims for DynamoClaims {
    async fn claim(&self, trigger: &Trigger) -> Result<bool, PortError> {
        let expires_at = (trigger.window.end + self.keep).timestamp();
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .item("dedup_key", s(&trigger.dedup_key))
            .item("alert_id", s(&trigger.alert_id))
            .item("claimed_by", s(&trigger.event_id))
            .item("claimed_at", s(Utc::now().to_rfc3339()))
            .item("expires_at", n(expires_at))
            .condition_expression(
                "attribute_not_exists(dedup_key) OR (claimed_by = :me AND attribute_not_exists(notified_at))",
            )
            .expression_attribute_values(":me", s(&trigger.event_id))
            .send()
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(err) if conditional_failed(&err) => Ok(false),
            Err(err) => Err(PortError::new("alert claim", DisplayErrorContext(err))),
        }
    }

    async fn notified(&self, trigger: &Trigger) -> Result<(), PortError> {
        self.client
            .update_item()
            .table_name(&self.table)
            .key("dedup_key", s(&trigger.dedup_key))
            .update_expression("SET notified_at = :now")
            .expression_attribute_values(":now", s(Utc::now().to_rfc3339()))
            .send()
            .await
            .map_err(|e| PortError::new("alert claim", DisplayErrorContext(e)))?;
        Ok(())
    }
}

pub struct DynamoAlerts {
    pub client: aws_sdk_dynamodb::Client,
    pub table: String,
}

impl Alerts for DynamoAlerts {
    async fn count(&self, trigger: &Trigger) -> Result<AlertRow, PortError> {
        // Every trigger writes the same identity fields and adds one: increments commute,
        // so concurrent triggers cannot lose a count whoever creates the item.
        let mut update = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("alert_id", s(&trigger.alert_id))
            .expression_attribute_names("#state", "state")
            .expression_attribute_names("#count", "count")
            .expression_attribute_values(":device", s(&trigger.device_id))
            .expression_attribute_values(":rule", s(&trigger.rule_id))
            .expression_attribute_values(":metric", s(&trigger.metric))
            .expression_attribute_values(":severity", s(trigger.severity.as_str()))
            .expression_attribute_values(":summary", s(&trigger.summary))
            .expression_attribute_values(":window_start", s(trigger.window.start.to_rfc3339()))
            .expression_attribute_values(":window_end", s(trigger.window.end.to_rfc3339()))
            .expression_attribute_values(":open", s("open"))
            .expression_attribute_values(":ts", s(trigger.ts.to_rfc3339()))
            .expression_attribute_values(":value", n(trigger.value))
            .expression_attribute_values(
                ":simulated",
                aws_sdk_dynamodb::types::AttributeValue::Bool(trigger.simulated),
            )
            .expression_attribute_values(":one", n(1))
            .return_values(ReturnValue::AllNew);
        let mut set = String::from(
            "SET device_id = :device, rule_id = :rule, metric = :metric, \
             severity = if_not_exists(severity, :severity), summary = if_not_exists(summary, :summary), \
             window_start = :window_start, window_end = :window_end, \
             #state = if_not_exists(#state, :open), raised_at = if_not_exists(raised_at, :ts), \
             last_triggered_at = :ts, last_value = :value, simulated = :simulated",
        );
        if let Some(device_type) = &trigger.device_type {
            set.push_str(", device_type = :device_type");
            update = update.expression_attribute_values(":device_type", s(device_type));
        }
        let output = update
            .update_expression(format!("{set} ADD #count :one"))
            .send()
            .await
            .map_err(|e| PortError::new("alert count", DisplayErrorContext(e)))?;
        let item = output.attributes.unwrap_or_default();
        let raised_at = string(&item, "raised_at")
            .and_then(|t| DateTime::parse_from_rfc3339(&t).ok())
            .map_or(trigger.ts, |t| t.with_timezone(&Utc));
        Ok(AlertRow {
            alert_id: trigger.alert_id.clone(),
            state: string(&item, "state")
                .and_then(|name| AlertState::from_name(&name))
                .unwrap_or(AlertState::Open),
            count: number(&item, "count").unwrap_or(1),
            raised_at,
        })
    }

    async fn auto_resolve(&self, alert_id: &str, at: DateTime<Utc>) -> Result<bool, PortError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("alert_id", s(alert_id))
            .update_expression("SET #state = :resolved, resolved_at = :at, resolved_by = :auto")
            .condition_expression("attribute_exists(alert_id) AND #state <> :resolved")
            .expression_attribute_names("#state", "state")
            .expression_attribute_values(":resolved", s("resolved"))
            .expression_attribute_values(":at", s(at.to_rfc3339()))
            .expression_attribute_values(":auto", s("auto"))
            .send()
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(err) if conditional_failed(&err) => Ok(false),
            Err(err) => Err(PortError::new("alert resolve", DisplayErrorContext(err))),
        }
    }
}

pub struct SnsNotifier {
    pub client: aws_sdk_sns::Client,
    pub topic_arn: String,
}

fn text_attribute(value: &str) -> MessageAttributeValue {
    MessageAttributeValue::builder()
        .data_type("String")
        .string_value(value)
        .build()
        .expect("data type is set")
}

impl Notifier for SnsNotifier {
    async fn publish(&self, alert: &Envelope<AlertRaised>) -> Result<(), PortError> {
        // Attributes let subscribers filter (e.g. only critical alerts of AC meters).
        let mut request = self
            .client
            .publish()
            .topic_arn(&self.topic_arn)
            .message(String::from_utf8_lossy(&alert.to_vec()))
            .message_attributes("event_type", text_attribute(&alert.event_type))
            .message_attributes("severity", text_attribute(alert.data.severity.as_str()))
            .message_attributes(
                "simulated",
                text_attribute(if alert.simulated { "true" } else { "false" }),
            );
        if let Some(device_type) = &alert.data.device_type {
            request = request.message_attributes("device_type", text_attribute(device_type));
        }
        request
            .send()
            .await
            .map_err(|e| PortError::new("alert publish", DisplayErrorContext(e)))?;
        Ok(())
    }
}
