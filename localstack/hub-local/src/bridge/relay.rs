//! Relays the IoT services' device topics between Mosquitto, where devices connect
//! locally, and the emulator's own broker, where its Device Shadow and Jobs services
//! answer. On AWS a device reaches those services on the same connection as everything
//! else; locally the device stays on Mosquitto (mutual TLS, ACLs from the IoT policy) and
//! this relay carries
//! - up, Mosquitto → emulator: the request topics a device publishes (shadow
//!   get/update/delete, jobs get/start-next/{job}/get/{job}/update);
//! - down, emulator → Mosquitto: what the services publish to a device (accepted,
//!   rejected, delta, documents, notify, notify-next) and the command topic the admin
//!   API publishes to through the data plane.
//!
//! The two lists are disjoint, so nothing the relay publishes comes back to it as
//! something to relay. It talks to the emulator over MQTT-over-WebSocket on the gateway
//! port, as AWS devices may on 443.

use std::time::Duration;

use anyhow::{Context, Result};
use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS, Transport};
use tracing::{info, warn};

use crate::rules::topic::TopicFilter;

/// Request topics devices publish: relayed up.
pub const UPLINK: &[&str] = &[
    "$aws/things/+/shadow/get",
    "$aws/things/+/shadow/update",
    "$aws/things/+/shadow/delete",
    "$aws/things/+/shadow/name/+/get",
    "$aws/things/+/shadow/name/+/update",
    "$aws/things/+/shadow/name/+/delete",
    "$aws/things/+/jobs/get",
    "$aws/things/+/jobs/start-next",
    "$aws/things/+/jobs/+/get",
    "$aws/things/+/jobs/+/update",
];

/// What the services (and the admin API) publish to devices: relayed down.
pub const DOWNLINK: &[&str] = &[
    "$aws/things/+/shadow/+/accepted",
    "$aws/things/+/shadow/+/rejected",
    "$aws/things/+/shadow/update/delta",
    "$aws/things/+/shadow/update/documents",
    "$aws/things/+/shadow/name/+/+/accepted",
    "$aws/things/+/shadow/name/+/+/rejected",
    "$aws/things/+/shadow/name/+/update/delta",
    "$aws/things/+/shadow/name/+/update/documents",
    "$aws/things/+/jobs/notify",
    "$aws/things/+/jobs/notify-next",
    "$aws/things/+/jobs/+/accepted",
    "$aws/things/+/jobs/+/rejected",
    "$aws/things/+/jobs/+/+/accepted",
    "$aws/things/+/jobs/+/+/rejected",
    "devices/+/commands",
];

fn any_matches(filters: &[&str], topic: &str) -> bool {
    filters.iter().any(|f| {
        TopicFilter::parse(f)
            .expect("relay filters are valid")
            .matches(topic)
    })
}

/// A device's request to a service: goes up to the emulator.
pub fn is_uplink(topic: &str) -> bool {
    any_matches(UPLINK, topic)
}

/// A service's message to a device: it came down from the emulator, whose own rule
/// engine has already seen it, so local rules must not run it a second time.
pub fn is_downlink(topic: &str) -> bool {
    any_matches(DOWNLINK, topic)
}

/// Where the emulator's device gateway listens: `ws://127.0.0.1:4566/mqtt`, and the
/// `Host` it routes to its broker (`data-ats.iot.{region}.…`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Gateway {
    pub url: String,
    pub host: String,
}

impl Gateway {
    /// From the emulator's endpoint (`http://127.0.0.1:4566`) and the region.
    pub fn from_endpoint(endpoint: &str, region: &str) -> Result<Self> {
        let authority = endpoint
            .strip_prefix("http://")
            .context("the emulator endpoint must be http://host:port")?
            .trim_end_matches('/');
        let port = authority
            .rsplit_once(':')
            .map(|(_, p)| p)
            .context("the emulator endpoint must name its port")?;
        Ok(Self {
            url: format!("ws://{authority}/mqtt"),
            host: format!("data-ats.iot.{region}.localhost:{port}"),
        })
    }
}

/// The connection to the emulator's broker; `up` publishes a device's request there.
#[derive(Clone)]
pub struct Relay {
    emulator: AsyncClient,
}

impl Relay {
    /// Connects to the emulator and forwards what arrives there to `mosquitto`.
    pub fn spawn(gateway: Gateway, mosquitto: AsyncClient) -> Self {
        let port = gateway
            .url
            .rsplit_once(':')
            .and_then(|(_, rest)| rest.split('/').next()?.parse().ok())
            .unwrap_or(80);
        let mut options = MqttOptions::new("hub-local-relay", gateway.url.clone(), port);
        let host = gateway.host.clone();
        options
            .set_transport(Transport::Ws)
            .set_keep_alive(Duration::from_secs(30))
            .set_max_packet_size(256 * 1024, 256 * 1024)
            .set_request_modifier(move |mut request| {
                let host = host.clone();
                async move {
                    if let Ok(value) = host.parse() {
                        request.headers_mut().insert("host", value);
                    }
                    request
                }
            });
        let (emulator, mut events) = AsyncClient::new(options, 10_000);
        let subscriber = emulator.clone();
        tokio::spawn(async move {
            loop {
                match events.poll().await {
                    Ok(Event::Incoming(Packet::ConnAck(_))) => {
                        info!(
                            url = gateway.url,
                            "relay connected to the emulator's broker"
                        );
                        for filter in DOWNLINK {
                            if let Err(err) = subscriber.subscribe(*filter, QoS::AtLeastOnce).await
                            {
                                warn!(filter, error = %err, "relay subscribe failed");
                            }
                        }
                    }
                    Ok(Event::Incoming(Packet::Publish(publish))) => {
                        if !is_downlink(&publish.topic) {
                            continue;
                        }
                        if let Err(err) = mosquitto
                            .publish_bytes(
                                publish.topic.clone(),
                                QoS::AtLeastOnce,
                                false,
                                publish.payload,
                            )
                            .await
                        {
                            warn!(topic = publish.topic, error = %err, "relay down failed");
                        }
                    }
                    Ok(_) => {}
                    Err(err) => {
                        warn!(error = %err, "emulator broker connection lost; reconnecting");
                        tokio::time::sleep(Duration::from_secs(1)).await;
                    }
                }
            }
        });
        Self { emulator }
    }

    /// Hands a device's request to the emulator (queued; the client delivers it).
    pub async fn up(&self, topic: &str, payload: bytes::Bytes) {
        if let Err(err) = self
            .emulator
            .publish_bytes(topic, QoS::AtLeastOnce, false, payload)
            .await
        {
            warn!(topic, error = %err, "relay up failed");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_go_up_and_answers_come_down_never_both() {
        let up = [
            "$aws/things/d1/shadow/update",
            "$aws/things/d1/shadow/get",
            "$aws/things/d1/shadow/name/cfg/delete",
            "$aws/things/d1/jobs/get",
            "$aws/things/d1/jobs/start-next",
            "$aws/things/d1/jobs/$next/get",
            "$aws/things/d1/jobs/job-7/update",
        ];
        let down = [
            "$aws/things/d1/shadow/update/accepted",
            "$aws/things/d1/shadow/update/delta",
            "$aws/things/d1/shadow/update/documents",
            "$aws/things/d1/shadow/get/rejected",
            "$aws/things/d1/shadow/name/cfg/update/delta",
            "$aws/things/d1/jobs/notify-next",
            "$aws/things/d1/jobs/start-next/accepted",
            "$aws/things/d1/jobs/job-7/update/rejected",
            "devices/d1/commands",
        ];
        for topic in up {
            assert!(is_uplink(topic), "{topic}");
            assert!(!is_downlink(topic), "{topic}");
        }
        for topic in down {
            assert!(is_downlink(topic), "{topic}");
            assert!(!is_uplink(topic), "{topic}");
        }
        for neither in [
            "devices/d1/telemetry",
            "devices/d1/commands/ack",
            "$aws/events/presence/connected/d1",
        ] {
            assert!(!is_uplink(neither) && !is_downlink(neither), "{neither}");
        }
    }

    #[test]
    fn gateway_from_endpoint() {
        let g = Gateway::from_endpoint("http://127.0.0.1:4566/", "eu-west-1").unwrap();
        assert_eq!(g.url, "ws://127.0.0.1:4566/mqtt");
        assert_eq!(g.host, "data-ats.iot.eu-west-1.localhost:4566");
        assert!(Gateway::from_endpoint("https://iot.example.com", "eu-west-1").is_err());
    }
}
