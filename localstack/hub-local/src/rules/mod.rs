//! IoT topic rules as the local bridge runs them: the rule's SQL, its actions and its
//! error action, read from the emulator's IoT API (where CloudFormation put them from
//! `template.yaml`). Evaluation here is pure; `crate::bridge` performs the deliveries.

pub mod sql;
pub mod topic;

use base64::Engine as _;
use serde_json::json;

use sql::{EvalError, Expr, MessageContext, SqlError, Statement};

/// An action the local engine can perform.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    Kinesis {
        stream_name: String,
        partition_key: Template,
    },
    Sqs {
        queue_url: String,
        use_base64: bool,
    },
    /// Invoked asynchronously with the rule's output as the event.
    Lambda {
        function_arn: String,
    },
}

impl Action {
    /// The name AWS uses for the action in error action messages.
    pub fn aws_name(&self) -> &'static str {
        match self {
            Action::Kinesis { .. } => "KinesisAction",
            Action::Sqs { .. } => "SqsAction",
            Action::Lambda { .. } => "LambdaAction",
        }
    }

    pub fn resource(&self) -> &str {
        match self {
            Action::Kinesis { stream_name, .. } => stream_name,
            Action::Sqs { queue_url, .. } => queue_url,
            Action::Lambda { function_arn } => function_arn,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Rule {
    pub name: String,
    pub statement: Statement,
    pub actions: Vec<Action>,
    pub error_action: Option<Action>,
}

/// One thing to send for one message: the rule output bound for one action.
#[derive(Debug, Clone, PartialEq)]
pub enum Delivery {
    Kinesis {
        stream_name: String,
        partition_key: String,
        data: Vec<u8>,
    },
    Sqs {
        queue_url: String,
        body: String,
    },
    Lambda {
        function_arn: String,
        payload: Vec<u8>,
    },
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum RuleError {
    #[error(transparent)]
    Sql(#[from] SqlError),
    #[error("substitution template {template:?}: {error}")]
    Template { template: String, error: String },
}

impl Rule {
    pub fn matches(&self, topic: &str) -> bool {
        self.statement.from.matches(topic)
    }

    /// Evaluates the rule for one message: one delivery per action, in action order.
    pub fn deliveries(&self, message: &MessageContext<'_>) -> Result<Vec<Delivery>, EvalError> {
        let output = self.statement.evaluate(message)?;
        let payload: Option<serde_json::Value> = serde_json::from_slice(message.payload).ok();
        let bytes = output.into_bytes();
        self.actions
            .iter()
            .map(|action| action.delivery(bytes.clone(), message, payload.as_ref()))
            .collect()
    }

    /// The message AWS sends to the error action when an action fails.
    pub fn error_message(
        &self,
        message: &MessageContext<'_>,
        failures: &[ActionFailure],
    ) -> Vec<u8> {
        json!({
            "ruleName": self.name,
            "topic": message.topic,
            "cloudwatchTraceId": uuid::Uuid::new_v4().to_string(),
            "clientId": message.client_id,
            "base64OriginalPayload": base64::engine::general_purpose::STANDARD.encode(message.payload),
            "failures": failures.iter().map(|f| json!({
                "failedAction": f.action,
                "failedResource": f.resource,
                "errorMessage": f.error,
            })).collect::<Vec<_>>(),
        })
        .to_string()
        .into_bytes()
    }
}

impl Action {
    fn delivery(
        &self,
        data: Vec<u8>,
        message: &MessageContext<'_>,
        payload: Option<&serde_json::Value>,
    ) -> Result<Delivery, EvalError> {
        Ok(match self {
            Action::Kinesis {
                stream_name,
                partition_key,
            } => Delivery::Kinesis {
                stream_name: stream_name.clone(),
                partition_key: partition_key.render(message, payload)?,
                data,
            },
            Action::Sqs {
                queue_url,
                use_base64,
            } => Delivery::Sqs {
                queue_url: queue_url.clone(),
                body: if *use_base64 {
                    base64::engine::general_purpose::STANDARD.encode(&data)
                } else {
                    String::from_utf8_lossy(&data).into_owned()
                },
            },
            Action::Lambda { function_arn } => Delivery::Lambda {
                function_arn: function_arn.clone(),
                payload: data,
            },
        })
    }

    /// The delivery of an error message to this action (used as a rule's error action).
    pub fn error_delivery(
        &self,
        body: Vec<u8>,
        message: &MessageContext<'_>,
    ) -> Result<Delivery, EvalError> {
        self.delivery(body, message, None)
    }
}

/// An action that could not deliver, as reported to the error action.
#[derive(Debug, Clone, PartialEq)]
pub struct ActionFailure {
    pub action: &'static str,
    pub resource: String,
    pub error: String,
}

/// A string with `${expression}` substitutions, e.g. a partition key `${topic(2)}`.
#[derive(Debug, Clone, PartialEq)]
pub struct Template {
    source: String,
    parts: Vec<TemplatePart>,
}

#[derive(Debug, Clone, PartialEq)]
enum TemplatePart {
    Text(String),
    Expr(Expr),
}

impl Template {
    pub fn parse(source: &str) -> Result<Self, RuleError> {
        let error = |error: String| RuleError::Template {
            template: source.to_owned(),
            error,
        };
        let mut parts = Vec::new();
        let mut rest = source;
        while let Some(start) = rest.find("${") {
            if start > 0 {
                parts.push(TemplatePart::Text(rest[..start].to_owned()));
            }
            let end = rest[start..]
                .find('}')
                .ok_or_else(|| error("unclosed ${".into()))?;
            let expr =
                Expr::parse(&rest[start + 2..start + end]).map_err(|e| error(e.to_string()))?;
            parts.push(TemplatePart::Expr(expr));
            rest = &rest[start + end + 1..];
        }
        if !rest.is_empty() {
            parts.push(TemplatePart::Text(rest.to_owned()));
        }
        Ok(Self {
            source: source.to_owned(),
            parts,
        })
    }

    pub fn render(
        &self,
        message: &MessageContext<'_>,
        payload: Option<&serde_json::Value>,
    ) -> Result<String, EvalError> {
        let mut out = String::new();
        for part in &self.parts {
            match part {
                TemplatePart::Text(text) => out.push_str(text),
                TemplatePart::Expr(expr) => match expr.evaluate(message, payload)? {
                    Some(serde_json::Value::String(s)) => out.push_str(&s),
                    Some(other) => out.push_str(&other.to_string()),
                    // AWS substitutes an undefined value with the empty string.
                    None => {}
                },
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule() -> Rule {
        Rule {
            name: "hub_telemetry".into(),
            statement: Statement::parse("SELECT *, topic(2) AS device FROM 'devices/+/telemetry'")
                .unwrap(),
            actions: vec![Action::Kinesis {
                stream_name: "raw".into(),
                partition_key: Template::parse("${topic(2)}").unwrap(),
            }],
            error_action: Some(Action::Sqs {
                queue_url: "http://q".into(),
                use_base64: false,
            }),
        }
    }

    fn message(payload: &[u8]) -> MessageContext<'_> {
        MessageContext {
            topic: "devices/d7/telemetry",
            payload,
            client_id: "d7",
            received_at_ms: 0,
        }
    }

    #[test]
    fn kinesis_delivery_is_partitioned_by_device() {
        let deliveries = rule().deliveries(&message(br#"{"t":1}"#)).unwrap();
        let [Delivery::Kinesis {
            stream_name,
            partition_key,
            data,
        }] = deliveries.as_slice()
        else {
            panic!("{deliveries:?}")
        };
        assert_eq!(stream_name, "raw");
        assert_eq!(partition_key, "d7");
        let data: serde_json::Value = serde_json::from_slice(data).unwrap();
        assert_eq!(data, json!({"t": 1, "device": "d7"}));
    }

    #[test]
    fn error_message_has_the_aws_shape() {
        let rule = rule();
        let failure = ActionFailure {
            action: "KinesisAction",
            resource: "raw".into(),
            error: "stream not found".into(),
        };
        let body = rule.error_message(&message(b"abc"), &[failure]);
        let body: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(body["ruleName"], "hub_telemetry");
        assert_eq!(body["topic"], "devices/d7/telemetry");
        assert_eq!(body["clientId"], "d7");
        assert_eq!(body["base64OriginalPayload"], "YWJj");
        assert_eq!(body["failures"][0]["failedAction"], "KinesisAction");
        assert_eq!(body["failures"][0]["errorMessage"], "stream not found");
    }

    #[test]
    fn templates() {
        let msg = message(br#"{"a":{"b":5}}"#);
        let payload: serde_json::Value = serde_json::from_slice(msg.payload).unwrap();
        let t = Template::parse("pk-${topic(2)}-${a.b}-${missing}").unwrap();
        assert_eq!(t.render(&msg, Some(&payload)).unwrap(), "pk-d7-5-");
        assert_eq!(
            Template::parse("plain")
                .unwrap()
                .render(&msg, None)
                .unwrap(),
            "plain"
        );
        assert!(Template::parse("${topic(2)").is_err());
        assert!(Template::parse("${a > 1}").is_err());
    }
}

#[cfg(test)]
mod template_rules {
    use super::*;

    /// The SQL of one of `template.yaml`'s topic rules.
    fn deployed_sql(resource: &str) -> String {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../template.yaml");
        let template: serde_norway::Value =
            serde_norway::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        template["Resources"][resource]["Properties"]["TopicRulePayload"]["Sql"]
            .as_str()
            .unwrap()
            .to_owned()
    }

    #[test]
    fn the_answer_rule_passes_on_only_answer_fields_of_the_publishing_device() {
        let statement = Statement::parse(&deployed_sql("CommandAckRule")).unwrap();
        let topic = "devices/intruder/commands/ack";
        let forged = [
            json!({"eventType": "JOB", "jobId": "ota-1", "status": "CANCELED",
                "comment": "ABORT_CANCEL", "hub_rule": "job"}),
            json!({"eventType": "JOB_EXECUTION", "thingArn": "arn:aws:iot:r:1:thing/victim",
                "status": "SUCCEEDED", "device_id": "victim"}),
            json!({"eventType": "disconnected", "clientId": "victim", "timestamp": 4_102_444_800_000i64}),
            json!({"Records": [{"eventSource": "aws:s3"}]}),
            json!({"command_id": "c1", "status": "succeeded", "result": {"ok": true},
                "device_id": "victim", "hub_rule": "presence", "extra": 1}),
        ];
        for payload in forged {
            let bytes = payload.to_string().into_bytes();
            let message = MessageContext {
                topic,
                payload: &bytes,
                client_id: "intruder",
                received_at_ms: 0,
            };
            let output: serde_json::Value =
                serde_json::from_slice(&statement.evaluate(&message).unwrap().into_bytes())
                    .unwrap();
            let keys: Vec<&str> = output
                .as_object()
                .unwrap()
                .keys()
                .map(|k| k.as_str())
                .collect();
            assert!(
                keys.iter().all(
                    |k| ["hub_rule", "device_id", "command_id", "status", "result"].contains(k)
                ),
                "{payload} -> {output}"
            );
            assert_eq!(output["hub_rule"], "command_answer", "{payload}");
            assert_eq!(output["device_id"], "intruder", "{payload}");
        }
    }

    #[test]
    fn the_presence_rule_passes_on_the_event_as_published() {
        // The fleet function tells presence by the queue the rule writes to, so the
        // message is IoT Core's event untouched.
        let statement = Statement::parse(&deployed_sql("PresenceRule")).unwrap();
        let payload = br#"{"eventType":"connected","clientId":"d1","timestamp":5}"#;
        let message = MessageContext {
            topic: "$aws/events/presence/connected/d1",
            payload,
            client_id: "",
            received_at_ms: 0,
        };
        let output: serde_json::Value =
            serde_json::from_slice(&statement.evaluate(&message).unwrap().into_bytes()).unwrap();
        assert_eq!(
            output,
            serde_json::from_slice::<serde_json::Value>(payload).unwrap()
        );
    }

    #[test]
    fn platform_rules_name_themselves() {
        for (resource, name) in [
            ("JobExecutionEventsRule", "job_execution"),
            ("JobEventsRule", "job"),
        ] {
            let statement = Statement::parse(&deployed_sql(resource)).unwrap();
            let message = MessageContext {
                topic: "$aws/events/presence/connected/d1",
                payload: br#"{"eventType":"connected","clientId":"d1"}"#,
                client_id: "",
                received_at_ms: 0,
            };
            let output: serde_json::Value =
                serde_json::from_slice(&statement.evaluate(&message).unwrap().into_bytes())
                    .unwrap();
            assert_eq!(output["hub_rule"], name, "{resource}");
            assert_eq!(output["clientId"], "d1", "{resource}");
        }
    }
}
