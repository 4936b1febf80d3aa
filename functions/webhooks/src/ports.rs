//! What the webhook function needs from outside: the subscriptions, the queues, and a
//! way to POST.

use std::future::Future;

use hub_detection::webhook::Webhook;
use hub_runtime::PortError;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// One alert for one hook, as it waits on the delivery queue.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Delivery {
    pub webhook_id: String,
    pub event_id: String,
    /// Tries made so far.
    pub attempt: u32,
    /// The `iot.alert.raised.v1` event, exactly as it is sent.
    pub event: Value,
}

/// Why a delivery was given up, as the dead-letter queue keeps it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Undelivered {
    pub delivery: Delivery,
    pub url: String,
    pub reason: String,
}

pub trait Hooks {
    fn hooks(&self) -> impl Future<Output = Result<Vec<Webhook>, PortError>> + Send;
}

pub trait Queue {
    fn enqueue(
        &self,
        delivery: &Delivery,
        delay_seconds: u32,
    ) -> impl Future<Output = Result<(), PortError>> + Send;
    fn dead_letter(
        &self,
        undelivered: &Undelivered,
    ) -> impl Future<Output = Result<(), PortError>> + Send;
}

/// Why a delivery got no answer.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PostError {
    /// The URL's host is, or resolves to, an address the hub does not call (loopback,
    /// private, link-local, metadata...): retrying cannot help.
    #[error("refused: {0}")]
    Refused(String),
    /// The network or the receiver failed; worth another try.
    #[error("{0}")]
    Failed(String),
}

/// The HTTP status the receiver answered, or why there was none.
pub trait Poster {
    fn post(
        &self,
        url: &str,
        headers: &[(&str, String)],
        body: Vec<u8>,
    ) -> impl Future<Output = Result<u16, PostError>> + Send;
}
