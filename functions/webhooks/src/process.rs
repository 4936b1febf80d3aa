//! Fan-out and delivery over the ports: which hooks want an alert, the signed POST, and
//! what a failure becomes (a delayed retry or a dead letter).

use chrono::{DateTime, Utc};
use hub_detection::webhook::{
    delivered, retry_delay, retryable, signature, EVENT_ID_HEADER, SIGNATURE_HEADER,
};
use hub_events::{AlertRaised, Envelope};
use hub_runtime::{emf::Metrics, PortError};
use serde_json::Value;

use crate::ports::{Delivery, Hooks, PostError, Poster, Queue, Undelivered};

/// The alert event a fan-out message carries: the SNS message itself (raw delivery) or
/// inside an SNS notification.
pub fn alert_event(body: &str) -> Result<Value, String> {
    let value: Value = serde_json::from_str(body).map_err(|e| format!("not JSON: {e}"))?;
    let value = match (value.get("Type"), value.get("Message")) {
        (Some(Value::String(kind)), Some(Value::String(message))) if kind == "Notification" => {
            serde_json::from_str(message).map_err(|e| format!("SNS message not JSON: {e}"))?
        }
        _ => value,
    };
    Envelope::<AlertRaised>::from_slice(
        &serde_json::to_vec(&value).expect("JSON values serialize"),
    )
    .map_err(|e| format!("not an {} event: {e}", AlertRaised::TYPE))?;
    Ok(value)
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Tally {
    pub fanned_out: u64,
    pub delivered: u64,
    pub retried: u64,
    pub dead_lettered: u64,
    pub skipped: u64,
}

impl Tally {
    pub fn add(&mut self, other: &Tally) {
        self.fanned_out += other.fanned_out;
        self.delivered += other.delivered;
        self.retried += other.retried;
        self.dead_lettered += other.dead_lettered;
        self.skipped += other.skipped;
    }

    pub fn emit(&self) {
        Metrics::new("webhooks")
            .count("webhook_deliveries_queued_total", self.fanned_out)
            .count("alert_delivery_success_total", self.delivered)
            .count("webhook_retries_total", self.retried)
            .count("alert_delivery_failure_total", self.dead_lettered)
            .count("webhook_deliveries_skipped_total", self.skipped)
            .flush();
    }
}

pub struct Webhooks<H, Q, P> {
    pub hooks: H,
    pub queue: Q,
    pub poster: P,
    /// Plain `http://` receivers are refused unless allowed (the local stack).
    pub allow_http: bool,
}

impl<H: Hooks, Q: Queue, P: Poster> Webhooks<H, Q, P> {
    /// One alert: a delivery per hook that wants it.
    pub async fn fan_out(&self, event: Value, tally: &mut Tally) -> Result<(), PortError> {
        let alert = Envelope::<AlertRaised>::from_slice(
            &serde_json::to_vec(&event).expect("JSON values serialize"),
        )
        .map_err(|e| PortError::new("alert event", e))?;
        for hook in self.hooks.hooks().await? {
            if !hook.wants(
                alert.data.severity.as_str(),
                alert.data.device_type.as_deref(),
            ) {
                continue;
            }
            let delivery = Delivery {
                webhook_id: hook.webhook_id.clone(),
                event_id: alert.id.clone(),
                attempt: 0,
                event: event.clone(),
            };
            self.queue.enqueue(&delivery, 0).await?;
            tally.fanned_out += 1;
        }
        Ok(())
    }

    /// One try of one delivery. Errors only when the queue cannot take the retry or the
    /// dead letter, so that the message itself is retried rather than lost.
    pub async fn deliver(
        &self,
        delivery: Delivery,
        now: DateTime<Utc>,
        tally: &mut Tally,
    ) -> Result<(), PortError> {
        let hooks = self.hooks.hooks().await?;
        let Some(hook) = hooks.iter().find(|h| h.webhook_id == delivery.webhook_id) else {
            // Unsubscribed since: nothing to deliver to.
            tally.skipped += 1;
            return Ok(());
        };
        let give_up = |reason: String| Undelivered {
            delivery: delivery.clone(),
            url: hook.url.clone(),
            reason,
        };
        if !(hook.url.starts_with("https://")
            || (self.allow_http && hook.url.starts_with("http://")))
        {
            tally.dead_lettered += 1;
            return self
                .queue
                .dead_letter(&give_up("the URL is not https".into()))
                .await;
        }
        let body = serde_json::to_vec(&delivery.event).expect("JSON values serialize");
        let headers = [
            ("content-type", "application/json".to_owned()),
            (
                SIGNATURE_HEADER,
                signature(&hook.secret, now.timestamp(), &body),
            ),
            (EVENT_ID_HEADER, delivery.event_id.clone()),
            ("x-hub-delivery-attempt", (delivery.attempt + 1).to_string()),
        ];
        let outcome = self.poster.post(&hook.url, &headers, body).await;
        let status = outcome.as_ref().ok().copied();
        if status.is_some_and(delivered) {
            tally.delivered += 1;
            return Ok(());
        }
        let reason = match &outcome {
            Ok(status) => format!("HTTP {status}"),
            Err(err) => err.to_string(),
        };
        let tried = delivery.attempt + 1;
        let refused = matches!(outcome, Err(PostError::Refused(_)));
        match retry_delay(tried).filter(|_| !refused && retryable(status)) {
            Some(delay) => {
                tracing::info!(webhook_id = %hook.webhook_id, tried, delay, %reason, "delivery failed; retrying");
                tally.retried += 1;
                let next = Delivery {
                    attempt: tried,
                    ..delivery.clone()
                };
                self.queue.enqueue(&next, delay).await
            }
            None => {
                tracing::warn!(webhook_id = %hook.webhook_id, tried, %reason, "delivery given up");
                tally.dead_lettered += 1;
                let mut undelivered = give_up(format!("{reason} after {tried} tries"));
                undelivered.delivery.attempt = tried;
                self.queue.dead_letter(&undelivered).await
            }
        }
    }
}
