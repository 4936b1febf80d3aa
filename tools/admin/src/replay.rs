//! `hub-admin replay`: hands the events waiting on the asynchronous-failure queue back to
//! the functions they failed in. Each message is Lambda's on-failure record; its
//! `requestPayload` is the event exactly as first delivered (an IoT rule's output, a
//! bucket notification), so the function tells its source the same way again. A message
//! is deleted only after its event was handed back; a replay that fails again arrives on
//! the queue as a new record.

use anyhow::{Context, Result};
use aws_sdk_lambda::{primitives::Blob, types::InvocationType};
use serde::Deserialize;
use serde_json::Value;

/// What Lambda writes to an on-failure destination (the fields replay needs).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FailureRecord {
    pub request_context: RequestContext,
    pub request_payload: Value,
    #[serde(default)]
    pub response_payload: Option<Value>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RequestContext {
    pub function_arn: String,
    #[serde(default)]
    pub condition: Option<String>,
}

impl FailureRecord {
    pub fn parse(body: &str) -> Result<Self> {
        serde_json::from_str(body).context("not a Lambda on-failure record")
    }

    /// The function to invoke: the record's ARN without a `$LATEST` qualifier, which
    /// `Invoke` takes as the unqualified function anyway.
    pub fn function(&self) -> &str {
        let arn = self.request_context.function_arn.as_str();
        arn.strip_suffix(":$LATEST").unwrap_or(arn)
    }
}

#[derive(Debug, Default, PartialEq, Eq)]
pub struct Replayed {
    /// Events handed back to their function.
    pub replayed: usize,
    /// Messages left on the queue because they are not on-failure records (with why).
    pub unreadable: Vec<(String, String)>,
}

/// Replays every message on `queue_url` (or, with `dry_run`, lists them and leaves them).
pub async fn replay(
    sqs: &aws_sdk_sqs::Client,
    lambda: &aws_sdk_lambda::Client,
    queue_url: &str,
    dry_run: bool,
) -> Result<Replayed> {
    let mut outcome = Replayed::default();
    let mut seen = std::collections::HashSet::new();
    loop {
        let received = sqs
            .receive_message()
            .queue_url(queue_url)
            .max_number_of_messages(10)
            .visibility_timeout(60)
            .wait_time_seconds(1)
            .send()
            .await
            .map_err(sdk_error)
            .context("reading the failure queue")?;
        let messages = received.messages.unwrap_or_default();
        // Messages left on the queue come back after their visibility timeout; each is
        // looked at once per run.
        let fresh: Vec<_> = messages
            .into_iter()
            .filter(|m| seen.insert(m.message_id.clone().unwrap_or_default()))
            .collect();
        if fresh.is_empty() {
            return Ok(outcome);
        }
        for message in fresh {
            let id = message.message_id.clone().unwrap_or_default();
            let record = match FailureRecord::parse(message.body.as_deref().unwrap_or("")) {
                Ok(record) => record,
                Err(err) => {
                    outcome.unreadable.push((id, format!("{err:#}")));
                    continue;
                }
            };
            eprintln!(
                "{} {id}: {} ({})",
                if dry_run { "would replay" } else { "replaying" },
                record.function(),
                record
                    .response_payload
                    .as_ref()
                    .map(Value::to_string)
                    .unwrap_or_else(|| "no error recorded".into())
            );
            if dry_run {
                continue;
            }
            lambda
                .invoke()
                .function_name(record.function())
                .invocation_type(InvocationType::Event)
                .payload(Blob::new(serde_json::to_vec(&record.request_payload)?))
                .send()
                .await
                .map_err(sdk_error)
                .with_context(|| format!("invoking {}", record.function()))?;
            if let Some(handle) = &message.receipt_handle {
                sqs.delete_message()
                    .queue_url(queue_url)
                    .receipt_handle(handle)
                    .send()
                    .await
                    .map_err(sdk_error)
                    .context("deleting a replayed message")?;
            }
            outcome.replayed += 1;
        }
    }
}

/// An SDK error with its whole chain of causes in its message.
fn sdk_error<E: std::error::Error>(error: E) -> anyhow::Error {
    anyhow::anyhow!("{}", aws_sdk_sqs::error::DisplayErrorContext(error))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_lambda_s_on_failure_record() {
        let body = r#"{"version":"1.0","timestamp":"2026-12-01T10:00:00.000Z",
            "requestContext":{"requestId":"e4b46cbf","functionArn":"arn:aws:lambda:us-east-1:123456789012:function:fleet:$LATEST",
              "condition":"RetriesExhausted","approximateInvokeCount":3},
            "requestPayload":{"hub_rule":"presence","eventType":"connected"},
            "responseContext":{"statusCode":200,"executedVersion":"$LATEST","functionError":"Unhandled"},
            "responsePayload":{"errorType":"Contended","errorMessage":"row changed"}}"#;
        let record = FailureRecord::parse(body).unwrap();
        assert_eq!(
            record.function(),
            "arn:aws:lambda:us-east-1:123456789012:function:fleet"
        );
        assert_eq!(record.request_payload["hub_rule"], "presence");
        assert_eq!(
            record.request_context.condition.as_deref(),
            Some("RetriesExhausted")
        );
    }

    #[test]
    fn other_messages_are_not_records() {
        assert!(FailureRecord::parse(r#"{"hello":1}"#).is_err());
        assert!(FailureRecord::parse("not json").is_err());
    }
}
