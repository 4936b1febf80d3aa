//! The ports on AWS: the webhooks table (cached briefly, as every delivery reads it),
//! the delivery and dead-letter queues, and HTTPS.

use std::{
    net::{IpAddr, SocketAddr},
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use hub_detection::{webhook::Webhook, webhooks_table::DynamoWebhooks};
use hub_runtime::PortError;

use crate::{Delivery, Hooks, PostError, Poster, Queue, Undelivered};

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
            .all(hub_detection::webhooks_table::Secrets::Open)
            .await?;
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
    client: reqwest::Client,
    allow_private: bool,
}

/// A host that is, or resolves to, an address webhooks may not reach.
#[derive(Debug, thiserror::Error)]
#[error("{host} is {ip} ({why}); the hub does not call internal addresses")]
pub struct InternalAddress {
    host: String,
    ip: IpAddr,
    why: &'static str,
}

/// Resolves webhook hosts and refuses the name if any of its addresses is internal,
/// so the check holds for the very addresses the connection will use (no second lookup
/// a DNS answer could change in between).
struct PublicOnly;

impl reqwest::dns::Resolve for PublicOnly {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let addrs: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            if let Some((ip, why)) = addrs
                .iter()
                .find_map(|a| hub_runtime::net::refusal(a.ip()).map(|why| (a.ip(), why)))
            {
                return Err(Box::new(InternalAddress { host, ip, why }) as _);
            }
            Ok(Box::new(addrs.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

impl HttpPoster {
    /// `allow_private`: let deliveries reach internal addresses (a local stack's own
    /// receivers); never on AWS.
    pub fn new(timeout: Duration, allow_private: bool) -> Result<Self, reqwest::Error> {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let mut builder = reqwest::Client::builder()
            .timeout(timeout)
            // A receiver answers; it does not send us elsewhere.
            .redirect(reqwest::redirect::Policy::none());
        if !allow_private {
            builder = builder.dns_resolver(Arc::new(PublicOnly));
        }
        Ok(Self {
            client: builder.build()?,
            allow_private,
        })
    }
}

impl Poster for HttpPoster {
    async fn post(
        &self,
        url: &str,
        headers: &[(&str, String)],
        body: Vec<u8>,
    ) -> Result<u16, PostError> {
        let parsed = reqwest::Url::parse(url).map_err(|e| PostError::Refused(e.to_string()))?;
        // A literal address is never resolved, so the resolver does not see it.
        let literal = parsed
            .host_str()
            .map(|h| h.trim_start_matches('[').trim_end_matches(']'))
            .and_then(|h| h.parse::<IpAddr>().ok());
        if let (false, Some(ip)) = (self.allow_private, literal) {
            if let Some(why) = hub_runtime::net::refusal(ip) {
                return Err(PostError::Refused(
                    InternalAddress {
                        host: ip.to_string(),
                        ip,
                        why,
                    }
                    .to_string(),
                ));
            }
        }
        let mut request = self.client.post(parsed).body(body);
        for (name, value) in headers {
            request = request.header(*name, value);
        }
        request
            .send()
            .await
            .map(|response| response.status().as_u16())
            .map_err(|e| {
                let mut source: Option<&(dyn std::error::Error + 'static)> = Some(&e);
                while let Some(err) = source {
                    if let Some(internal) = err.downcast_ref::<InternalAddress>() {
                        return PostError::Refused(internal.to_string());
                    }
                    source = err.source();
                }
                PostError::Failed(format!("request failed: {e}"))
            })
    }
}
