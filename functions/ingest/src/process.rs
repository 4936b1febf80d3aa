//! Checking a request and putting its messages on the raw stream, over the ports.

use base64::{engine::general_purpose::STANDARD, Engine as _};
use chrono::{DateTime, Utc};
use hub_credentials::{KeyError, PresentedKey};
use hub_events::{Envelope, IngestChannel, RawTelemetry};
use serde_json::{json, value::RawValue, Value};

use crate::ports::{KeyStore, RawSink};

/// Largest request body; API Gateway allows 10 MB, but a device batch never needs more.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;
/// Most messages in one request (one Kinesis PutRecords call).
pub const MAX_MESSAGES: usize = 500;
/// The route, recorded as the raw event's topic.
pub const ROUTE_PATH: &str = "/v1/telemetry";
/// The raw event's source, as the IoT rule's is `iot-core/telemetry-rule`.
pub const SOURCE: &str = "http-ingest";

/// One HTTP request, reduced to what ingest looks at.
#[derive(Debug, Clone)]
pub struct IngestRequest<'a> {
    /// The `x-api-key` header.
    pub api_key: Option<&'a str>,
    pub body: &'a [u8],
    pub received_at: DateTime<Utc>,
}

/// The HTTP answer: a status and a JSON body.
#[derive(Debug, Clone, PartialEq)]
pub struct Reply {
    pub status: u16,
    pub body: Value,
    /// Stable outcome name for metrics and logs.
    pub outcome: &'static str,
    /// Messages accepted onto the raw stream.
    pub accepted: usize,
}

impl Reply {
    fn error(status: u16, outcome: &'static str, error: &str, message: impl Into<String>) -> Self {
        Self {
            status,
            body: json!({"error": error, "message": message.into()}),
            outcome,
            accepted: 0,
        }
    }

    fn unauthorized(message: &str) -> Self {
        Self::error(401, "unauthorized", "unauthorized", message)
    }
}

pub struct Ingest<K, S> {
    pub keys: K,
    pub sink: S,
}

impl<K: KeyStore, S: RawSink> Ingest<K, S> {
    pub async fn handle(&self, request: IngestRequest<'_>) -> Reply {
        if request.body.len() > MAX_BODY_BYTES {
            return Reply::error(
                413,
                "too_large",
                "payload_too_large",
                format!(
                    "request body of {} bytes exceeds {MAX_BODY_BYTES}",
                    request.body.len()
                ),
            );
        }
        let key = match self.authenticate(&request).await {
            Ok(key) => key,
            Err(reply) => return reply,
        };
        let messages = match split_messages(request.body) {
            Ok(messages) => messages,
            Err(reply) => return reply,
        };
        for (index, message) in messages.iter().enumerate() {
            if let Err(reason) = hub_telemetry::payload::parse(message) {
                return Reply {
                    status: 400,
                    body: json!({
                        "error": "invalid_message",
                        "index": index,
                        "reason": reason.code(),
                        "message": reason.to_string(),
                    }),
                    outcome: "invalid",
                    accepted: 0,
                };
            }
        }
        let records: Vec<Vec<u8>> = messages
            .iter()
            .map(|message| raw_event(&key, message, request.received_at))
            .collect();
        let count = records.len();
        match self.sink.put(&key.device_id, records).await {
            Ok(()) => Reply {
                status: 202,
                body: json!({"accepted": count}),
                outcome: "accepted",
                accepted: count,
            },
            Err(error) => {
                tracing::warn!(%error, "raw stream put failed");
                Reply::error(
                    503,
                    "unavailable",
                    "unavailable",
                    "telemetry could not be queued; retry the request (messages with a seq are not stored twice)",
                )
            }
        }
    }

    async fn authenticate(&self, request: &IngestRequest<'_>) -> Result<PresentedKey, Reply> {
        let Some(header) = request.api_key else {
            return Err(Reply::unauthorized("the x-api-key header is required"));
        };
        let refuse = |error: KeyError| {
            // Which part was wrong is for the operator's logs, not for the caller.
            tracing::info!(%error, "API key refused");
            Reply::unauthorized("the API key is not valid")
        };
        let presented = PresentedKey::parse(header).map_err(refuse)?;
        let stored = self
            .keys
            .get(&presented.device_id, &presented.key_id)
            .await
            .map_err(|error| {
                tracing::warn!(%error, "API key lookup failed");
                Reply::error(
                    503,
                    "unavailable",
                    "unavailable",
                    "credentials could not be checked; retry the request",
                )
            })?
            .ok_or(KeyError::Unknown)
            .map_err(refuse)?;
        presented
            .verify(&stored, request.received_at)
            .map_err(refuse)?;
        Ok(presented)
    }
}

/// The body is one message (a JSON object) or a JSON array of them. Each message keeps
/// its exact bytes, which is what the raw stream carries.
fn split_messages(body: &[u8]) -> Result<Vec<Vec<u8>>, Reply> {
    let invalid_body = |message: String| Reply::error(400, "invalid", "invalid_body", message);
    let first = body.iter().find(|b| !b.is_ascii_whitespace());
    match first {
        None => Err(invalid_body(
            "the request body is empty; send a telemetry message or an array of them".into(),
        )),
        Some(b'[') => {
            let items: Vec<&RawValue> = serde_json::from_slice(body).map_err(|e| {
                invalid_body(format!(
                    "the request body is not a JSON array of messages: {e}"
                ))
            })?;
            if items.is_empty() {
                return Err(invalid_body("the array of messages is empty".into()));
            }
            if items.len() > MAX_MESSAGES {
                return Err(Reply::error(
                    413,
                    "too_large",
                    "too_many_messages",
                    format!(
                        "{} messages exceed the limit of {MAX_MESSAGES} a request",
                        items.len()
                    ),
                ));
            }
            Ok(items.iter().map(|m| m.get().as_bytes().to_vec()).collect())
        }
        Some(_) => Ok(vec![body.to_vec()]),
    }
}

fn raw_event(key: &PresentedKey, message: &[u8], received_at: DateTime<Utc>) -> Vec<u8> {
    Envelope::new(
        SOURCE,
        key.device_id.clone(),
        received_at,
        RawTelemetry {
            payload: STANDARD.encode(message),
            topic: ROUTE_PATH.to_owned(),
            client_id: Some(key.key_id.clone()),
            received_at_ms: received_at.timestamp_millis(),
            channel: IngestChannel::Http,
        },
    )
    .to_vec()
}
