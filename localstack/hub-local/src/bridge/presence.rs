//! IoT Core publishes a lifecycle event whenever a client connects or disconnects
//! (`$aws/events/presence/{connected|disconnected}/{clientId}`); Mosquitto does not, but
//! it logs every connection, and with `log_dest topic` those notices arrive on
//! `$SYS/broker/log/N`. This turns them into events of the same shape.

use std::collections::HashMap;

use serde_json::json;

pub const LOG_TOPIC: &str = "$SYS/broker/log/N";

/// A synthesized lifecycle event, ready to go through the rules.
#[derive(Debug, Clone, PartialEq)]
pub struct LifecycleEvent {
    pub topic: String,
    pub payload: Vec<u8>,
}

/// Per-client version numbers, increasing with every connection as on AWS, so that
/// consumers can order a reconnect within one millisecond.
#[derive(Default)]
pub struct Presence {
    versions: HashMap<String, i64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Connected,
    Disconnected(&'static str),
}

/// What a notice line says, if it is about a client coming or going.
fn parse(line: &str) -> Option<(Kind, &str)> {
    // Lines carry a `{epoch seconds}: ` prefix.
    let text = line.split_once(": ").map_or(line, |(head, rest)| {
        if head.bytes().all(|b| b.is_ascii_digit()) {
            rest
        } else {
            line
        }
    });
    let text = text.trim_end();
    if let Some(rest) = text.strip_prefix("New client connected from ") {
        let (_, after) = rest.split_once(" as ")?;
        let id = after.split(' ').next()?;
        return Some((Kind::Connected, id));
    }
    if let Some(rest) = text.strip_prefix("Socket error on client ") {
        let id = rest.strip_suffix(", disconnecting.")?;
        return Some((Kind::Disconnected("CONNECTION_LOST"), id));
    }
    let rest = text.strip_prefix("Client ")?;
    for (suffix, reason) in [
        (" disconnected.", "CLIENT_INITIATED_DISCONNECT"),
        (" closed its connection.", "CONNECTION_LOST"),
        (
            " has exceeded timeout, disconnecting.",
            "MQTT_KEEP_ALIVE_TIMEOUT",
        ),
        (
            " already connected, closing old connection.",
            "DUPLICATE_CLIENTID",
        ),
        // The broker's dynamic-security plugin ended it: its certificate was refused.
        (
            " been disconnected by administrative action.",
            "SERVER_INITIATED_DISCONNECT",
        ),
    ] {
        if let Some(id) = rest.strip_suffix(suffix) {
            return Some((Kind::Disconnected(reason), id));
        }
    }
    None
}

impl Presence {
    pub fn event(&mut self, line: &str, now_ms: i64) -> Option<LifecycleEvent> {
        let (kind, client_id) = parse(line)?;
        if client_id.is_empty() || client_id == "<unknown>" || client_id.contains(['/', '+', '#']) {
            return None;
        }
        let version = self.versions.entry(client_id.to_owned()).or_insert(0);
        if kind == Kind::Connected {
            *version += 1;
        }
        let (state, mut body) = match kind {
            Kind::Connected => ("connected", json!({})),
            Kind::Disconnected(reason) => (
                "disconnected",
                json!({
                    "clientInitiatedDisconnect": reason == "CLIENT_INITIATED_DISCONNECT",
                    "disconnectReason": reason,
                }),
            ),
        };
        body["clientId"] = json!(client_id);
        body["timestamp"] = json!(now_ms);
        body["eventType"] = json!(state);
        body["sessionIdentifier"] = json!(format!("{client_id}-{version}"));
        body["principalIdentifier"] = json!(client_id);
        body["versionNumber"] = json!(*version);
        Some(LifecycleEvent {
            topic: format!("$aws/events/presence/{state}/{client_id}"),
            payload: body.to_string().into_bytes(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    fn event(p: &mut Presence, line: &str) -> Option<(String, Value)> {
        p.event(line, 1_795_428_000_000)
            .map(|e| (e.topic, serde_json::from_slice(&e.payload).unwrap()))
    }

    #[test]
    fn connects_and_every_kind_of_disconnect() {
        let mut p = Presence::default();
        let (topic, body) = event(
            &mut p,
            "1795428000: New client connected from 127.0.0.1:42046 as dev-1 (p2, c1, k30, u'dev-1').",
        )
        .unwrap();
        assert_eq!(topic, "$aws/events/presence/connected/dev-1");
        assert_eq!(body["clientId"], "dev-1");
        assert_eq!(body["eventType"], "connected");
        assert_eq!(body["timestamp"], 1_795_428_000_000i64);
        assert_eq!(body["versionNumber"], 1);
        for (line, reason) in [
            (
                "1795428001: Client dev-1 disconnected.",
                "CLIENT_INITIATED_DISCONNECT",
            ),
            ("Client dev-1 closed its connection.", "CONNECTION_LOST"),
            (
                "Client dev-1 has exceeded timeout, disconnecting.",
                "MQTT_KEEP_ALIVE_TIMEOUT",
            ),
            (
                "Client dev-1 already connected, closing old connection.",
                "DUPLICATE_CLIENTID",
            ),
            (
                "Socket error on client dev-1, disconnecting.",
                "CONNECTION_LOST",
            ),
            (
                "Client dev-1 been disconnected by administrative action.",
                "SERVER_INITIATED_DISCONNECT",
            ),
        ] {
            let (topic, body) = event(&mut p, line).unwrap();
            assert_eq!(topic, "$aws/events/presence/disconnected/dev-1", "{line}");
            assert_eq!(body["disconnectReason"], reason, "{line}");
            assert_eq!(body["versionNumber"], 1, "{line}");
        }
        let (_, again) = event(
            &mut p,
            "New client connected from 127.0.0.1:1 as dev-1 (p2).",
        )
        .unwrap();
        assert_eq!(again["versionNumber"], 2);
    }

    #[test]
    fn other_notices_are_not_presence() {
        let mut p = Presence::default();
        for line in [
            "1795428000: New connection from 127.0.0.1:59946 on port 8883.",
            "Client <unknown> disconnected: Protocol error.",
            "Reloading config.",
            "Client dev-1 sent CONNECT",
            "",
        ] {
            assert_eq!(event(&mut p, line), None, "{line}");
        }
    }
}
