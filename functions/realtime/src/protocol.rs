//! What a console sends over its socket and what it is answered. Every frame is JSON
//! with an `action` (API Gateway's route selection reads it); every answer has a `type`.
//!
//! - `{"action":"subscribe","channels":["device:sensor-1","alerts"]}` →
//!   `{"type":"subscribed","channels":[...]}`
//! - `{"action":"unsubscribe","channels":[...]}` → `{"type":"unsubscribed","channels":[...]}`
//! - anything else → `{"type":"error","error":{"code","message"}}`, the socket stays open.

use serde::Deserialize;
use serde_json::{json, Value};

use crate::channel::Channel;

/// Channels one connection may hold at most; one frame may name at most as many.
pub const MAX_CHANNELS: usize = 50;
/// Frames beyond this are refused unread.
pub const MAX_FRAME_BYTES: usize = 8 * 1024;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Request {
    Subscribe(Vec<Channel>),
    Unsubscribe(Vec<Channel>),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Frame {
    action: String,
    #[serde(default)]
    channels: Vec<String>,
}

/// The error answer: `code` for programs, `message` for people.
pub fn error(code: &str, message: impl Into<String>) -> Value {
    json!({"type": "error", "error": {"code": code, "message": message.into()}})
}

pub fn parse(body: &str) -> Result<Request, Value> {
    if body.len() > MAX_FRAME_BYTES {
        return Err(error(
            "too_large",
            format!("frames are at most {MAX_FRAME_BYTES} bytes"),
        ));
    }
    let frame: Frame = serde_json::from_str(body).map_err(|e| {
        error(
            "bad_frame",
            format!("a frame is {{\"action\": ..., \"channels\": [...]}}: {e}"),
        )
    })?;
    if frame.channels.is_empty() {
        return Err(error(
            "bad_frame",
            "channels must name at least one channel",
        ));
    }
    if frame.channels.len() > MAX_CHANNELS {
        return Err(error(
            "too_many_channels",
            format!("a frame names at most {MAX_CHANNELS} channels"),
        ));
    }
    let mut channels = frame
        .channels
        .iter()
        .map(|c| Channel::parse(c))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| error("bad_channel", e.to_string()))?;
    channels.sort();
    channels.dedup();
    match frame.action.as_str() {
        "subscribe" => Ok(Request::Subscribe(channels)),
        "unsubscribe" => Ok(Request::Unsubscribe(channels)),
        other => Err(error(
            "unknown_action",
            format!(
                "unknown action {:?}: subscribe or unsubscribe",
                other.chars().take(64).collect::<String>()
            ),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subscriptions_parse_deduplicated_and_bad_frames_say_why() {
        assert_eq!(
            parse(r#"{"action":"subscribe","channels":["alerts","device:d-1","alerts"]}"#),
            Ok(Request::Subscribe(vec![
                Channel::Device("d-1".into()),
                Channel::Alerts
            ]))
        );
        assert_eq!(
            parse(r#"{"action":"unsubscribe","channels":["rollouts"]}"#),
            Ok(Request::Unsubscribe(vec![Channel::Rollouts]))
        );
        for (body, code) in [
            ("not json", "bad_frame"),
            (r#"{"action":"subscribe"}"#, "bad_frame"),
            (r#"{"action":"subscribe","channels":["x"]}"#, "bad_channel"),
            (
                r#"{"action":"dance","channels":["alerts"]}"#,
                "unknown_action",
            ),
            (
                r#"{"action":"subscribe","channels":["alerts"],"extra":1}"#,
                "bad_frame",
            ),
        ] {
            let err = parse(body).unwrap_err();
            assert_eq!(err["error"]["code"], code, "{body}: {err}");
            assert!(err["error"]["message"]
                .as_str()
                .is_some_and(|m| !m.is_empty()));
        }
        let many: Vec<String> = (0..=MAX_CHANNELS)
            .map(|i| format!("\"device:d-{i}\""))
            .collect();
        let body = format!(
            r#"{{"action":"subscribe","channels":[{}]}}"#,
            many.join(",")
        );
        assert_eq!(
            parse(&body).unwrap_err()["error"]["code"],
            "too_many_channels"
        );
        let huge = format!(
            r#"{{"action":"subscribe","channels":["{}"]}}"#,
            "a".repeat(MAX_FRAME_BYTES)
        );
        assert_eq!(parse(&huge).unwrap_err()["error"]["code"], "too_large");
    }
}
