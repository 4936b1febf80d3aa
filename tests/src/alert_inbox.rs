//! An SQS queue subscribed to the alert topic, as an operator's integration would be: what
//! subscribers receive, filtered by the message attributes the dispatcher sets.

use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use hub_events::{AlertRaised, Envelope};

use crate::Stack;

pub struct AlertInbox {
    sqs: aws_sdk_sqs::Client,
    pub queue_url: String,
}

impl AlertInbox {
    /// A fresh queue that receives the alerts of devices of `device_type` only.
    pub async fn subscribe(stack: &Stack, name: &str, device_type: &str) -> Result<Self> {
        let sqs = stack.sqs();
        let queue_url = sqs
            .create_queue()
            .queue_name(name)
            .send()
            .await
            .context("CreateQueue")?
            .queue_url
            .context("queue URL")?;
        let arn = sqs
            .get_queue_attributes()
            .queue_url(&queue_url)
            .attribute_names(aws_sdk_sqs::types::QueueAttributeName::QueueArn)
            .send()
            .await?
            .attributes
            .and_then(|a| {
                a.get(&aws_sdk_sqs::types::QueueAttributeName::QueueArn)
                    .cloned()
            })
            .context("queue ARN")?;
        let filter = serde_json::json!({ "device_type": [device_type] }).to_string();
        aws_sdk_sns::Client::new(&stack.aws.sdk)
            .subscribe()
            .topic_arn(stack.output("AlertTopicArn"))
            .protocol("sqs")
            .endpoint(arn)
            .attributes("RawMessageDelivery", "true")
            .attributes("FilterPolicy", filter)
            .send()
            .await
            .context("Subscribe")?;
        Ok(Self { sqs, queue_url })
    }

    /// Receives until `expected` alerts have arrived or `timeout` passes, then listens
    /// `settle` longer so that an extra (duplicate) alert would be seen too.
    pub async fn receive(
        &self,
        expected: usize,
        timeout: Duration,
        settle: Duration,
    ) -> Result<Vec<Envelope<AlertRaised>>> {
        let mut alerts = Vec::new();
        let deadline = Instant::now() + timeout;
        let mut settle_until: Option<Instant> = None;
        loop {
            let now = Instant::now();
            if settle_until.is_some_and(|t| now >= t) || (settle_until.is_none() && now >= deadline)
            {
                return Ok(alerts);
            }
            let output = self
                .sqs
                .receive_message()
                .queue_url(&self.queue_url)
                .max_number_of_messages(10)
                .wait_time_seconds(1)
                .send()
                .await?;
            for message in output.messages() {
                let body = message.body().unwrap_or_default();
                alerts.push(
                    Envelope::<AlertRaised>::from_slice(body.as_bytes())
                        .with_context(|| format!("alert message: {body}"))?,
                );
                if let Some(handle) = message.receipt_handle() {
                    self.sqs
                        .delete_message()
                        .queue_url(&self.queue_url)
                        .receipt_handle(handle)
                        .send()
                        .await?;
                }
            }
            if alerts.len() >= expected && settle_until.is_none() {
                settle_until = Some(Instant::now() + settle);
            }
        }
    }
}
