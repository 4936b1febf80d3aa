//! The ports on AWS: the webhooks table (cached briefly, as every delivery reads it),
//! the delivery and dead-letter queues, and HTTPS.

use std::{
    sync::Mutex,
    time::{Duration, Instant},
};

use hub_detection::{webhook::Webhook, webhooks_table::DynamoWebhooks};
use hub_runtime::PortError;

use crate::{Delivery, Hooks, Poster, Queue, Undelivered};

pub struct CachedHooks {
    pub table: DynamoWebhooks,
    pub keep: Duration,
    cache: Mutex<Option<(Instant, Vec<Webhook>)>>,
}

impl CachedHooks {
    pub fn new(table: DynamoWebhooks, keep: Duration) -> Self {
        Self {
            table,
            keep,
            cache: Mutex::new(None),
        }
    }
}

impl Hooks for CachedHooks {
    async fn hooks(&self) -> Result<Vec<Webhook>, PortError> {
        if let Some((at, hooks)) = self.cache.lock().expect("cache lock").as_ref() {
            if at.elapsed() < self.keep {
                return Ok(hooks.clone());
            }
        }
        let hooks = self
            .table
            .all()
            .await
            .map_err(|e| PortError::new("webhooks read", e))?;
        *self.cache.lock().expect("cache lock") = Some((Instant::now(), hooks.clone()));
        Ok(hooks)
    }
}

pub struct SqsQueues {
    pub client: aws_sdk_sqs::Client,
    pub delivery_queue_url: String,
    pub dead_letter_queue_url: String,
}

impl Queue for SqsQueues {
    async fn enqueue(&self, delivery: &Delivery, delay_seconds: u32) -> Result<(), PortError> {
        self.client
            .send_message()
            .queue_url(&self.delivery_queue_url)
            .message_body(serde_json::to_string(delivery).expect("deliveries serialize"))
            .delay_seconds(delay_seconds.min(900) as i32)
            .send()
            .await
            .map_err(|e| {
                PortError::new(
                    "delivery enqueue",
                    aws_sdk_sqs::error::DisplayErrorContext(e),
                )
            })?;
        Ok(())
    }

    async fn dead_letter(&self, undelivered: &Undelivered) -> Result<(), PortError> {
        self.client
            .send_message()
            .queue_url(&self.dead_letter_queue_url)
            .message_body(serde_json::to_string(undelivered).expect("dead letters serialize"))
            .send()
            .await
            .map_err(|e| {
                PortError::new(
                    "webhook dead letter",
                    aws_sdk_sqs::error::DisplayErrorContext(e),
                )
            })?;
        Ok(())
    }
}

pub struct HttpPoster {
    pub client: reqwest::Client,
}

impl HttpPoster {
    pub fn new(timeout: Duration) -> Result<Self, reqwest::Error> {
        let _ = rustls::crypto::ring::default_provider().install_default();
        Ok(Self {
            client: reqwest::Client::builder()
                .timeout(timeout)
                // A receiver answers; it does not send us elsewhere.
                .redirect(reqwest::redirect::Policy::none())
                .build()?,
        })
    }
}

impl Poster for HttpPoster {
    async fn post(
        &self,
        url: &str,
        headers: &[(&str, String)],
        body: Vec<u8>,
    ) -> Result<u16, String> {
        let mut request = self.client.post(url).body(body);
        for (name, value) in headers {
            request = request.header(*name, value);
        }
        request
            .send()
            .await
            .map(|response| response.status().as_u16())
            .map_err(|e| format!("request failed: {e}"))
    }
}
