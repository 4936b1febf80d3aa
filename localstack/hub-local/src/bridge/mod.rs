//! The local bridge: runs the IoT rules the emulator stores but does not execute.
//!
//! It subscribes on Mosquitto to every rule's topic filter (QoS 1, persistent session,
//! manual acks), evaluates the rule, delivers to the actions, sends failures to the
//! error action, and only then acknowledges the message, so a crash redelivers rather
//! than loses. It also relays the shadow, jobs and command topics between devices on
//! Mosquitto and the emulator's broker, where those services run (`relay`).

mod kinesis;
mod presence;
mod relay;
mod revocation;
mod rule_source;

use std::{
    collections::BTreeSet,
    path::PathBuf,
    sync::{Arc, RwLock},
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use anyhow::{bail, Context, Result};
use hub_mqtt::ClientIdentity;
use hub_runtime::AwsEnv;
use rumqttc::{AsyncClient, Event, Packet, Publish, QoS};
use tokio::sync::Semaphore;
use tracing::{error, info, warn};

use crate::{
    acl::BRIDGE_USERNAME,
    pki,
    rules::{sql::MessageContext, Action, ActionFailure, Delivery, Rule},
};
use kinesis::KinesisSink;
pub use revocation::RevocationWatch;

pub struct BridgeSettings {
    pub mqtt_host: String,
    pub mqtt_port: u16,
    pub pki_dir: PathBuf,
    pub mosquitto_pid_file: Option<PathBuf>,
    pub rule_refresh: Duration,
    pub certificate_refresh: Duration,
    /// The deployed device policy, whose subscribe filters the broker is made to enforce.
    pub device_policy: Option<String>,
}

/// Messages being delivered at once; bounds memory when the emulator is slow.
const IN_FLIGHT: usize = 20_000;

type Rules = Arc<RwLock<Arc<Vec<Rule>>>>;

#[derive(Clone)]
struct Sinks {
    kinesis: KinesisSink,
    sqs: aws_sdk_sqs::Client,
    lambda: aws_sdk_lambda::Client,
}

pub async fn run(aws: AwsEnv, settings: BridgeSettings) -> Result<()> {
    let iot = aws_sdk_iot::Client::new(&aws.sdk);
    let (initial, skipped) = rule_source::load(&iot).await?;
    if !skipped.is_empty() {
        for s in &skipped {
            error!(rule = s.rule, reason = s.reason, "rule cannot run locally");
        }
        bail!(
            "{} deployed rule(s) cannot run on the local rule engine",
            skipped.len()
        );
    }
    info!(rules = initial.len(), "rules loaded");
    let rules: Rules = Arc::new(RwLock::new(Arc::new(initial)));

    let read = |file: &str| {
        let path = settings.pki_dir.join(file);
        std::fs::read(&path).with_context(|| format!("reading {}", path.display()))
    };
    let identity = ClientIdentity {
        cert_pem: read(pki::BRIDGE_CERT)?,
        key_pem: read(pki::BRIDGE_KEY)?,
    };
    let tls = hub_mqtt::tls_config(&read(pki::CA_CERT)?, Some(&identity))?;
    let mut options = hub_mqtt::mqtt_options(
        BRIDGE_USERNAME,
        &settings.mqtt_host,
        settings.mqtt_port,
        tls,
    );
    // A persistent session keeps messages queued in Mosquitto while the bridge restarts.
    options
        .set_clean_session(false)
        .set_manual_acks(true)
        .set_inflight(1000);
    let (client, mut events) = AsyncClient::new(options, 10_000);
    let subscribe_filters = match &settings.device_policy {
        Some(name) => {
            let policy = iot
                .get_policy()
                .policy_name(name)
                .send()
                .await
                .with_context(|| format!("get_policy {name}"))?;
            crate::acl::subscribe_filters(policy.policy_document().unwrap_or_default())?
        }
        None => Vec::new(),
    };
    tokio::spawn(
        RevocationWatch {
            iot: iot.clone(),
            pki_dir: settings.pki_dir.clone(),
            mosquitto_pid_file: settings.mosquitto_pid_file.clone(),
            interval: settings.certificate_refresh,
            broker: Some(client.clone()),
            subscribe_filters,
        }
        .run(),
    );

    let sinks = Sinks {
        kinesis: KinesisSink::spawn(aws_sdk_kinesis::Client::new(&aws.sdk)),
        sqs: aws_sdk_sqs::Client::new(&aws.sdk),
        lambda: aws_sdk_lambda::Client::new(&aws.sdk),
    };
    let relay = match &aws.endpoint_override {
        Some(endpoint) => {
            let region = aws.sdk.region().map(|r| r.to_string()).unwrap_or_default();
            Some(relay::Relay::spawn(
                relay::Gateway::from_endpoint(endpoint, &region)?,
                client.clone(),
            ))
        }
        None => {
            warn!("no emulator endpoint: shadow, jobs and command topics are not relayed");
            None
        }
    };
    let mut presence = presence::Presence::default();
    tokio::spawn(refresh_rules(
        iot,
        rules.clone(),
        client.clone(),
        settings.rule_refresh,
    ));

    let in_flight = Arc::new(Semaphore::new(IN_FLIGHT));
    loop {
        match events.poll().await {
            Ok(Event::Incoming(Packet::ConnAck(ack))) => {
                info!(
                    session_present = ack.session_present,
                    "connected to Mosquitto"
                );
                let filters = filters(&rules.read().expect("rules lock").clone());
                subscribe(&client, &filters).await;
                if relay.is_some() {
                    subscribe(
                        &client,
                        &relay::UPLINK.iter().map(|f| f.to_string()).collect(),
                    )
                    .await;
                }
                if let Err(err) = client.subscribe(presence::LOG_TOPIC, QoS::AtMostOnce).await {
                    warn!(error = %err, "subscribing to Mosquitto's log failed");
                }
            }
            Ok(Event::Incoming(Packet::Publish(publish)))
                if publish.topic == presence::LOG_TOPIC =>
            {
                // Mosquitto's connection notices become IoT lifecycle events, which go
                // through the rules as IoT Core's own would.
                let line = String::from_utf8_lossy(&publish.payload);
                if let Some(event) = presence.event(&line, now_ms()) {
                    let rules = rules.read().expect("rules lock").clone();
                    let sinks = sinks.clone();
                    tokio::spawn(async move {
                        let publish = Publish::new(event.topic, QoS::AtMostOnce, event.payload);
                        handle(&rules, &sinks, &publish).await;
                    });
                }
            }
            Ok(Event::Incoming(Packet::SubAck(ack))) => {
                let refused = ack
                    .return_codes
                    .iter()
                    .filter(|c| matches!(c, rumqttc::SubscribeReasonCode::Failure))
                    .count();
                if refused > 0 {
                    error!(refused, "Mosquitto refused bridge subscriptions");
                } else {
                    info!(filters = ack.return_codes.len(), "subscribed");
                }
            }
            Ok(Event::Incoming(Packet::Publish(publish))) if relay::is_uplink(&publish.topic) => {
                if let Some(relay) = &relay {
                    relay.up(&publish.topic, publish.payload.clone()).await;
                }
                if let Err(err) = client.ack(&publish).await {
                    warn!(error = %err, "ack failed; Mosquitto will redeliver");
                }
            }
            Ok(Event::Incoming(Packet::Publish(publish))) => {
                let permit = in_flight
                    .clone()
                    .acquire_owned()
                    .await
                    .expect("semaphore open");
                let rules = rules.read().expect("rules lock").clone();
                let sinks = sinks.clone();
                let client = client.clone();
                tokio::spawn(async move {
                    handle(&rules, &sinks, &publish).await;
                    if let Err(err) = client.ack(&publish).await {
                        warn!(error = %err, "ack failed; Mosquitto will redeliver");
                    }
                    drop(permit);
                });
            }
            Ok(_) => {}
            Err(err) => {
                warn!(error = %err, "Mosquitto connection lost; reconnecting");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    }
}

fn filters(rules: &[Rule]) -> BTreeSet<String> {
    rules
        .iter()
        .map(|r| r.statement.from.as_str().to_owned())
        .collect()
}

async fn subscribe(client: &AsyncClient, filters: &BTreeSet<String>) {
    for filter in filters {
        if let Err(err) = client.subscribe(filter.as_str(), QoS::AtLeastOnce).await {
            warn!(filter, error = %err, "subscribe failed");
        }
    }
}

async fn refresh_rules(
    iot: aws_sdk_iot::Client,
    rules: Rules,
    client: AsyncClient,
    every: Duration,
) {
    let mut reported = BTreeSet::new();
    loop {
        tokio::time::sleep(every).await;
        let (fresh, skipped) = match rule_source::load(&iot).await {
            Ok(loaded) => loaded,
            Err(err) => {
                warn!(error = %format!("{err:#}"), "reading rules failed");
                continue;
            }
        };
        for s in skipped {
            if reported.insert((s.rule.clone(), s.reason.clone())) {
                error!(
                    rule = s.rule,
                    reason = s.reason,
                    "rule cannot run locally; skipped"
                );
            }
        }
        let current = rules.read().expect("rules lock").clone();
        if *current == fresh {
            continue;
        }
        let before = filters(&current);
        let after = filters(&fresh);
        info!(rules = fresh.len(), "rules changed");
        *rules.write().expect("rules lock") = Arc::new(fresh);
        subscribe(&client, &after.difference(&before).cloned().collect()).await;
        for gone in before.difference(&after) {
            let _ = client.unsubscribe(gone.as_str()).await;
        }
    }
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or_default()
}

/// A device may publish only under its own name (the ACL), so the topic names the client.
fn publisher_of(topic: &str) -> &str {
    let mut levels = topic.split('/');
    match (levels.next(), levels.next(), levels.next()) {
        (Some("devices"), Some(id), _) => id,
        (Some("$aws"), Some("things"), Some(id)) => id,
        _ => "",
    }
}

async fn handle(rules: &[Rule], sinks: &Sinks, publish: &Publish) {
    let topic = publish.topic.as_str();
    if relay::is_downlink(topic) {
        // Relayed down from the emulator, whose own rule engine has run it.
        return;
    }
    let message = MessageContext {
        topic,
        payload: &publish.payload,
        client_id: publisher_of(topic),
        received_at_ms: now_ms(),
    };
    for rule in rules.iter().filter(|r| r.matches(topic)) {
        let deliveries = match rule.deliveries(&message) {
            Ok(deliveries) => deliveries,
            Err(err) => {
                // As on AWS, a message the SQL cannot evaluate triggers no action.
                warn!(rule = rule.name, topic, error = %err, "rule evaluation failed");
                continue;
            }
        };
        // Rules here have one or two actions: delivering them in turn costs little.
        let mut results = Vec::with_capacity(deliveries.len());
        for delivery in deliveries {
            results.push(deliver(sinks, delivery).await);
        }
        let failures: Vec<ActionFailure> = rule
            .actions
            .iter()
            .zip(results)
            .filter_map(|(action, result)| {
                result.err().map(|error| ActionFailure {
                    action: action.aws_name(),
                    resource: action.resource().to_owned(),
                    error,
                })
            })
            .collect();
        if failures.is_empty() {
            continue;
        }
        warn!(
            rule = rule.name,
            topic,
            failures = failures.len(),
            "action failed"
        );
        report_failure(rule, rule.error_action.as_ref(), sinks, &message, &failures).await;
    }
}

async fn report_failure(
    rule: &Rule,
    error_action: Option<&Action>,
    sinks: &Sinks,
    message: &MessageContext<'_>,
    failures: &[ActionFailure],
) {
    let body = rule.error_message(message, failures);
    let outcome = match error_action {
        None => Err("the rule has no error action".to_owned()),
        Some(action) => match action.error_delivery(body.clone(), message) {
            Ok(delivery) => deliver(sinks, delivery).await,
            Err(err) => Err(err.to_string()),
        },
    };
    if let Err(err) = outcome {
        // Last resort: the message is in the log, never dropped without a trace.
        error!(
            rule = rule.name,
            topic = message.topic,
            error = err,
            error_message = %String::from_utf8_lossy(&body),
            "error action could not deliver"
        );
    }
}

async fn deliver(sinks: &Sinks, delivery: Delivery) -> Result<(), String> {
    match delivery {
        Delivery::Kinesis {
            stream_name,
            partition_key,
            data,
        } => sinks.kinesis.put(stream_name, partition_key, data).await,
        Delivery::Sqs { queue_url, body } => sinks
            .sqs
            .send_message()
            .queue_url(queue_url)
            .message_body(body)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| aws_sdk_sqs::error::DisplayErrorContext(e).to_string()),
        // IoT Core invokes rule Lambdas asynchronously.
        Delivery::Lambda {
            function_arn,
            payload,
        } => sinks
            .lambda
            .invoke()
            .function_name(function_arn)
            .invocation_type(aws_sdk_lambda::types::InvocationType::Event)
            .payload(aws_sdk_lambda::primitives::Blob::new(payload))
            .send()
            .await
            .map(|_| ())
            .map_err(|e| aws_sdk_lambda::error::DisplayErrorContext(e).to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn publisher_comes_from_the_topic() {
        assert_eq!(publisher_of("devices/d1/telemetry"), "d1");
        assert_eq!(publisher_of("$aws/things/d2/shadow/update"), "d2");
        assert_eq!(publisher_of("other/x"), "");
    }
}
