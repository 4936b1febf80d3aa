//! Webhook subscriptions to alerts: which alerts a subscription wants, how a delivery is
//! signed, and when a failed delivery is tried again.
//!
//! A receiver verifies a delivery by computing HMAC-SHA256 with its secret over
//! `"{timestamp}.{body}"` and comparing it with the `v1=` part of the signature header
//! (and refuses timestamps too far from its clock, so old deliveries cannot be replayed).

use chrono::{DateTime, Utc};
use ring::hmac;
use serde::{Deserialize, Serialize};

/// The header carrying `t={timestamp},v1={hex signature}`.
pub const SIGNATURE_HEADER: &str = "x-hub-signature";
/// The header carrying the alert event's id, the same on every retry.
pub const EVENT_ID_HEADER: &str = "x-hub-event-id";

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Webhook {
    pub webhook_id: String,
    pub url: String,
    /// Shared with the receiver to sign deliveries; shown once when created.
    #[serde(skip_serializing)]
    pub secret: String,
    /// Only alerts of these severities (all when empty).
    #[serde(default)]
    pub severities: Vec<String>,
    /// Only alerts of devices of these types (all when empty).
    #[serde(default)]
    pub device_types: Vec<String>,
    pub created_at: DateTime<Utc>,
}

impl Webhook {
    /// Whether an alert of `severity` from a device of `device_type` goes to this hook.
    pub fn wants(&self, severity: &str, device_type: Option<&str>) -> bool {
        (self.severities.is_empty() || self.severities.iter().any(|s| s == severity))
            && (self.device_types.is_empty()
                || device_type.is_some_and(|t| self.device_types.iter().any(|d| d == t)))
    }
}

/// The signature header value of `body` sent at `timestamp` (epoch seconds).
pub fn signature(secret: &str, timestamp: i64, body: &[u8]) -> String {
    let key = hmac::Key::new(hmac::HMAC_SHA256, secret.as_bytes());
    let mut context = hmac::Context::with_key(&key);
    context.update(timestamp.to_string().as_bytes());
    context.update(b".");
    context.update(body);
    let tag = context.sign();
    let hex: String = tag.as_ref().iter().map(|b| format!("{b:02x}")).collect();
    format!("t={timestamp},v1={hex}")
}

/// What a receiver does: true if `header` signs `body` with `secret` (constant time).
pub fn verify(secret: &str, header: &str, body: &[u8]) -> bool {
    let mut timestamp = None;
    let mut given = None;
    for part in header.split(',') {
        match part.split_once('=') {
            Some(("t", t)) => timestamp = t.parse::<i64>().ok(),
            Some(("v1", v)) => given = Some(v),
            _ => {}
        }
    }
    let (Some(timestamp), Some(given)) = (timestamp, given) else {
        return false;
    };
    let Some(given) = decode_hex(given) else {
        return false;
    };
    let key = hmac::Key::new(hmac::HMAC_SHA256, secret.as_bytes());
    let mut message = timestamp.to_string().into_bytes();
    message.push(b'.');
    message.extend_from_slice(body);
    hmac::verify(&key, &message, &given).is_ok()
}

fn decode_hex(text: &str) -> Option<Vec<u8>> {
    if text.len() % 2 != 0 {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}

/// Retries of one delivery: exponential backoff from 2 s, capped at 15 minutes (the
/// longest delay a queue message can have), at most `MAX_ATTEMPTS` tries in all.
pub const MAX_ATTEMPTS: u32 = 8;

/// Seconds to wait before try number `attempt + 1`, after `attempt` failed (1-based);
/// None when the delivery has had all its tries.
pub fn retry_delay(attempt: u32) -> Option<u32> {
    (attempt < MAX_ATTEMPTS).then(|| 2u32.saturating_pow(attempt).min(900))
}

/// Whether an HTTP status means the receiver took the delivery.
pub fn delivered(status: u16) -> bool {
    (200..300).contains(&status)
}

/// Whether a failed delivery is worth retrying: network errors, 408, 429 and 5xx; other
/// 4xx answers will not change.
pub fn retryable(status: Option<u16>) -> bool {
    match status {
        None => true,
        Some(s) => s == 408 || s == 429 || s >= 500,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn hook(severities: &[&str], types: &[&str]) -> Webhook {
        Webhook {
            webhook_id: "w".into(),
            url: "https://example.com/hook".into(),
            secret: "s".into(),
            severities: severities.iter().map(|s| s.to_string()).collect(),
            device_types: types.iter().map(|s| s.to_string()).collect(),
            created_at: Utc::now(),
        }
    }

    #[test]
    fn filters_by_severity_and_device_type() {
        assert!(hook(&[], &[]).wants("info", None));
        assert!(hook(&["critical"], &[]).wants("critical", Some("x")));
        assert!(!hook(&["critical"], &[]).wants("warning", Some("x")));
        assert!(hook(&[], &["boiler"]).wants("info", Some("boiler")));
        assert!(!hook(&[], &["boiler"]).wants("info", Some("pump")));
        assert!(!hook(&[], &["boiler"]).wants("info", None));
    }

    #[test]
    fn a_known_signature() {
        // HMAC-SHA256("secret", "1795428000.{}")
        let header = signature("secret", 1_795_428_000, b"{}");
        assert!(header.starts_with("t=1795428000,v1="));
        assert_eq!(header.len(), "t=1795428000,v1=".len() + 64);
        assert!(verify("secret", &header, b"{}"));
    }

    #[test]
    fn backoff_doubles_and_stops() {
        let delays: Vec<Option<u32>> = (1..=MAX_ATTEMPTS).map(retry_delay).collect();
        assert_eq!(
            delays,
            vec![
                Some(2),
                Some(4),
                Some(8),
                Some(16),
                Some(32),
                Some(64),
                Some(128),
                None
            ]
        );
        assert_eq!(retry_delay(100), None);
        assert!(retryable(None) && retryable(Some(503)) && retryable(Some(429)));
        assert!(!retryable(Some(404)) && !retryable(Some(400)));
        assert!(delivered(204) && !delivered(302));
    }

    proptest! {
        #[test]
        fn only_the_signed_body_with_the_right_secret_verifies(
            body in prop::collection::vec(any::<u8>(), 0..200),
            other in prop::collection::vec(any::<u8>(), 0..200),
            t in 0i64..4_000_000_000,
        ) {
            let header = signature("k1", t, &body);
            prop_assert!(verify("k1", &header, &body));
            prop_assert!(!verify("k2", &header, &body));
            if other != body {
                prop_assert!(!verify("k1", &header, &other));
            }
            let shifted = header.replacen(&format!("t={t}"), &format!("t={}", t + 1), 1);
            prop_assert!(!verify("k1", &shifted, &body));
            prop_assert!(!verify("k1", "garbage", &body));
        }
    }
}
