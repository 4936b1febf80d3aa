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
    /// A fresh queue subscribed to the alert topic, with an SNS filter policy on the
    /// message attributes (`device_type`, `severity`, `simulated`, `event_type`) if given.
    pub async fn subscribe(
        stack: &Stack,
        name: &str,
        filter: Option<serde_json::Value>,
    ) -> Result<Self> {
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
        let mut subscribe = aws_sdk_sns::Client::new(&stack.aws.sdk)
            .subscribe()
            .topic_arn(stack.output("AlertTopicArn"))
            .protocol("sqs")
            .endpoint(arn)
            .attributes("RawMessageDelivery", "true");
        if let Some(filter) = filter {
            subscribe = subscribe.attributes("FilterPolicy", filter.to_string());
        }
        subscribe.send().await.context("Subscribe")?;
        Ok(Self { sqs, queue_url })
    }

    /// Receives until no alert has arrived for `quiet`, or `timeout` passes.
    pub async fn receive_until_quiet(
        &self,
        quiet: Duration,
        timeout: Duration,
    ) -> Result<Vec<Envelope<AlertRaised>>> {
        let mut alerts = Vec::new();
        let deadline = Instant::now() + timeout;
        let mut last = Instant::now();
        while Instant::now() < deadline && last.elapsed() < quiet {
            let batch = self
                .receive(1, Duration::from_secs(1), Duration::ZERO)
                .await?;
            if !batch.is_empty() {
                last = Instant::now();
                alerts.extend(batch);
            }
        }
        Ok(alerts)
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

/// How the alerts of a simulated run line up with its labelled anomaly episodes. Alerts
/// are one per device, rule and window: episodes of a device that begin in the same window
/// make one alert, so expectations are per (device, window).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct EpisodeMatch {
    /// Labelled episodes long enough to raise (at least `raise_after` readings).
    pub episodes: usize,
    /// The distinct (device, window) those episodes began in: the alerts to expect.
    pub windows: usize,
    /// Of those windows, the ones with exactly one alert of the rule family.
    pub alerted_once: usize,
    /// Further alerts for a window that already had one (never expected).
    pub duplicates: usize,
    /// Alerts for a device and window without a labelled episode.
    pub outside: usize,
}

/// Matches the alerts whose rule id satisfies `rule` to the windows the labelled episodes
/// began in (`width` wide, as the stack's `WindowSeconds`).
pub fn match_episodes(
    labels: &[hub_sim::script::AnomalyLabel],
    alerts: &[Envelope<AlertRaised>],
    rule: impl Fn(&str) -> bool,
    raise_after: u32,
    width: chrono::Duration,
) -> EpisodeMatch {
    use std::collections::BTreeMap;
    let episodes: Vec<_> = labels
        .iter()
        .filter(|l| l.readings >= raise_after)
        .collect();
    let mut per_window: BTreeMap<(&str, chrono::DateTime<chrono::Utc>), usize> = episodes
        .iter()
        .map(|l| {
            (
                (
                    l.device_id.as_str(),
                    hub_detection::window_of(l.start, width).start,
                ),
                0,
            )
        })
        .collect();
    let mut outside = 0;
    for alert in alerts.iter().filter(|a| rule(&a.data.rule_id)) {
        match per_window.get_mut(&(alert.data.device_id.as_str(), alert.data.window.start)) {
            Some(n) => *n += 1,
            None => outside += 1,
        }
    }
    EpisodeMatch {
        episodes: episodes.len(),
        windows: per_window.len(),
        alerted_once: per_window.values().filter(|n| **n == 1).count(),
        duplicates: per_window.values().map(|n| n.saturating_sub(1)).sum(),
        outside,
    }
}
