//! Where a fleet event came from, decided by what no device can write.
//!
//! Several IoT rules, the firmware bucket and two queues all invoke this function.
//! A rule's output is the publisher's payload, so the kind of an event is never read from
//! the payload: every rule invoking this function adds a constant [`RULE_FIELD`] naming
//! itself (`SELECT *, 'job' AS hub_rule FROM '$aws/events/job/+/+'`), and the one rule a
//! device can reach (command answers) selects its answer fields by name, so its output
//! carries exactly those fields and `hub_rule = 'command_answer'`, whatever the device
//! wrote. Events without the field are taken only as notifications of the firmware bucket
//! or messages of the presence or retry queue, each checked against the ARN of the
//! resource this function was configured with. Presence comes through its queue, not
//! straight from its rule: a fleet reconnecting at once is then a few batches, not one
//! invocation per device.

use serde_json::Value;

/// The field each feeding rule sets to a constant of its own.
pub const RULE_FIELD: &str = "hub_rule";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    /// `$aws/events/presence/...`, published by IoT Core only, queued by the presence rule.
    Presence,
    /// `$aws/events/jobExecution/...`, published by IoT Jobs only.
    JobExecution,
    /// `$aws/events/job/...`, published by IoT Jobs only.
    Job,
    /// `devices/{id}/commands/ack`: written by a device, trusted for its own answers only.
    CommandAnswer,
    /// ObjectCreated notifications of the firmware bucket.
    FirmwareUpload,
    /// Due retries from the rollout retry queue.
    RolloutRetry,
}

impl Source {
    /// The constant the rule of this source sets in [`RULE_FIELD`]; `None` for the
    /// sources that are not rules.
    pub fn rule_name(self) -> Option<&'static str> {
        match self {
            Source::JobExecution => Some("job_execution"),
            Source::Job => Some("job"),
            Source::CommandAnswer => Some("command_answer"),
            Source::Presence | Source::FirmwareUpload | Source::RolloutRetry => None,
        }
    }

    fn of_rule(name: &str) -> Option<Source> {
        [Source::JobExecution, Source::Job, Source::CommandAnswer]
            .into_iter()
            .find(|s| s.rule_name() == Some(name))
    }
}

/// The AWS resources whose notifications and messages this function takes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Origins {
    pub firmware_bucket: String,
    pub retry_queue_arn: String,
    pub presence_queue_arn: String,
}

impl Origins {
    /// The firmware bucket and the queues the function's environment names.
    pub fn from_env() -> Result<Self, hub_runtime::config::ConfigError> {
        Ok(Self {
            firmware_bucket: hub_runtime::config::required("FIRMWARE_BUCKET")?,
            retry_queue_arn: hub_runtime::config::required("ROLLOUT_RETRY_QUEUE_ARN")?,
            presence_queue_arn: hub_runtime::config::required("PRESENCE_QUEUE_ARN")?,
        })
    }
}

#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum SourceError {
    #[error("{RULE_FIELD} {0:?} names no rule that feeds this function")]
    UnknownRule(String),
    #[error("{RULE_FIELD} is not a string")]
    MalformedRule,
    #[error("records from {0} are not taken (only the firmware bucket and the presence and retry queues)")]
    UnknownRecords(String),
    #[error("an event with neither {RULE_FIELD} nor Records")]
    Unknown,
}

impl Origins {
    /// Names the source of one event.
    pub fn source_of(&self, event: &Value) -> Result<Source, SourceError> {
        if let Some(rule) = event.get(RULE_FIELD) {
            let name = rule.as_str().ok_or(SourceError::MalformedRule)?;
            return Source::of_rule(name).ok_or_else(|| SourceError::UnknownRule(name.into()));
        }
        let Some(records) = event.get("Records").and_then(Value::as_array) else {
            return Err(SourceError::Unknown);
        };
        let origin_of = |record: &Value| match record["eventSource"].as_str() {
            Some("aws:s3") => format!(
                "bucket {}",
                record["s3"]["bucket"]["name"].as_str().unwrap_or("?")
            ),
            Some("aws:sqs") => {
                format!("queue {}", record["eventSourceARN"].as_str().unwrap_or("?"))
            }
            other => format!("event source {other:?}"),
        };
        let firmware = format!("bucket {}", self.firmware_bucket);
        let retries = format!("queue {}", self.retry_queue_arn);
        let presence = format!("queue {}", self.presence_queue_arn);
        let mut origins = records.iter().map(origin_of);
        // Every record of one event comes from the same resource; an empty list is
        // nobody's.
        let first = origins
            .next()
            .ok_or_else(|| SourceError::UnknownRecords("an empty Records list".into()))?;
        if let Some(other) = origins.find(|o| *o != first) {
            return Err(SourceError::UnknownRecords(format!("{first} and {other}")));
        }
        if first == firmware {
            Ok(Source::FirmwareUpload)
        } else if first == retries {
            Ok(Source::RolloutRetry)
        } else if first == presence {
            Ok(Source::Presence)
        } else {
            Err(SourceError::UnknownRecords(first))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn origins() -> Origins {
        Origins {
            firmware_bucket: "fw".into(),
            retry_queue_arn: "arn:aws:sqs:us-east-1:1:retries".into(),
            presence_queue_arn: "arn:aws:sqs:us-east-1:1:presence".into(),
        }
    }

    #[test]
    fn rules_name_their_source() {
        for source in [Source::JobExecution, Source::Job, Source::CommandAnswer] {
            let event = json!({"hub_rule": source.rule_name().unwrap(), "eventType": "JOB"});
            assert_eq!(origins().source_of(&event), Ok(source));
        }
    }

    #[test]
    fn content_without_a_rule_name_is_nobody_s() {
        for event in [
            json!({"eventType": "JOB", "jobId": "j", "status": "CANCELED"}),
            json!({"eventType": "connected", "clientId": "d", "timestamp": 1}),
            json!({"command_id": "c", "status": "succeeded"}),
        ] {
            assert_eq!(origins().source_of(&event), Err(SourceError::Unknown));
        }
        // Presence is taken from its queue only: an event naming the presence rule comes
        // from no rule that invokes the function.
        for rule in ["s3", "presence"] {
            assert!(matches!(
                origins().source_of(&json!({"hub_rule": rule})),
                Err(SourceError::UnknownRule(_))
            ));
        }
        assert_eq!(
            origins().source_of(&json!({"hub_rule": 1})),
            Err(SourceError::MalformedRule)
        );
    }

    #[test]
    fn records_count_only_from_the_configured_bucket_and_queue() {
        let s3 =
            |bucket: &str| json!({"eventSource": "aws:s3", "s3": {"bucket": {"name": bucket}}});
        let sqs = |arn: &str| json!({"eventSource": "aws:sqs", "eventSourceARN": arn});
        let o = origins();
        assert_eq!(
            o.source_of(&json!({"Records": [s3("fw"), s3("fw")]})),
            Ok(Source::FirmwareUpload)
        );
        assert_eq!(
            o.source_of(&json!({"Records": [sqs(&o.retry_queue_arn)]})),
            Ok(Source::RolloutRetry)
        );
        assert_eq!(
            o.source_of(
                &json!({"Records": [sqs(&o.presence_queue_arn), sqs(&o.presence_queue_arn)]})
            ),
            Ok(Source::Presence)
        );
        for forged in [
            json!({"Records": [s3("other")]}),
            json!({"Records": [sqs("arn:aws:sqs:us-east-1:1:elsewhere")]}),
            json!({"Records": [s3("fw"), sqs(&o.retry_queue_arn)]}),
            json!({"Records": [sqs(&o.presence_queue_arn), sqs(&o.retry_queue_arn)]}),
            json!({"Records": [{"eventSource": "aws:kinesis"}]}),
            json!({"Records": []}),
        ] {
            assert!(
                matches!(o.source_of(&forged), Err(SourceError::UnknownRecords(_))),
                "{forged}"
            );
        }
    }
}
