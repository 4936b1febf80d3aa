//! Runs scripted devices against an MQTT endpoint: one mutual-TLS connection per device,
//! a Last Will for presence, QoS 1 publishes paced to the fleet's rate, PUBACKs counted.
//! While connected, each device answers its commands and follows its shadow (`agent`).

use std::{
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc,
    },
    time::{Duration, Instant},
};

use anyhow::{bail, Context, Result};
use indicatif::ProgressBar;
use rumqttc::{AsyncClient, Event, LastWill, Outgoing, Packet, QoS};
use serde::Serialize;
use tokio::sync::watch;

use crate::{
    agent::Agent,
    provision::Device,
    script::{DeviceScript, Expected},
};

/// Where devices connect: Mosquitto locally, the account's IoT endpoint on AWS.
#[derive(Clone)]
pub struct Endpoint {
    pub host: String,
    pub port: u16,
    /// CA that signed the broker's certificate.
    pub ca_pem: Vec<u8>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct RunReport {
    pub devices: usize,
    pub sent: u64,
    pub acked: u64,
    pub seconds: f64,
    /// Messages per second achieved, from connecting the fleet to the last PUBACK.
    pub rate: f64,
    pub expected: Expected,
}

pub fn status_topic(device_id: &str) -> String {
    format!("devices/{device_id}/status")
}

pub fn telemetry_topic(device_id: &str) -> String {
    format!("devices/{device_id}/telemetry")
}

/// Sends every script, `interval` apart per device, and waits for every PUBACK.
pub async fn run(
    endpoint: &Endpoint,
    fleet: Vec<(Device, DeviceScript)>,
    interval: Duration,
    progress: ProgressBar,
) -> Result<RunReport> {
    let started = Instant::now();
    let devices = fleet.len();
    let acked = Arc::new(AtomicU64::new(0));
    let mut expected = Expected::default();
    let mut tasks = tokio::task::JoinSet::new();
    for (index, (device, script)) in fleet.into_iter().enumerate() {
        expected.add(&script.expected);
        // Spread the devices over one interval so the fleet's rate is even.
        let offset = interval.mul_f64(index as f64 / devices.max(1) as f64);
        let endpoint = endpoint.clone();
        let acked = acked.clone();
        let progress = progress.clone();
        tasks.spawn(async move {
            run_device(&endpoint, device, script, interval, offset, acked, progress).await
        });
    }
    let mut sent = 0;
    let mut errors = Vec::new();
    while let Some(result) = tasks.join_next().await {
        match result.context("device task panicked")? {
            Ok(n) => sent += n,
            Err(err) => errors.push(format!("{err:#}")),
        }
    }
    progress.finish_and_clear();
    if !errors.is_empty() {
        bail!(
            "{} of {devices} devices failed; first: {}",
            errors.len(),
            errors[0]
        );
    }
    let seconds = started.elapsed().as_secs_f64();
    let acked = acked.load(Ordering::Relaxed);
    Ok(RunReport {
        devices,
        sent,
        acked,
        seconds,
        rate: acked as f64 / seconds.max(1e-9),
        expected,
    })
}

async fn run_device(
    endpoint: &Endpoint,
    device: Device,
    script: DeviceScript,
    interval: Duration,
    offset: Duration,
    fleet_acked: Arc<AtomicU64>,
    progress: ProgressBar,
) -> Result<u64> {
    let tls = hub_mqtt::tls_config(&endpoint.ca_pem, Some(&device.identity))?;
    let mut options = hub_mqtt::mqtt_options(&device.id, &endpoint.host, endpoint.port, tls);
    let offline = serde_json::json!({"status": "offline", "simulated": true}).to_string();
    options.set_last_will(LastWill::new(
        status_topic(&device.id),
        offline,
        QoS::AtLeastOnce,
        false,
    ));
    options.set_inflight(100);
    let (client, mut events) = AsyncClient::new(options, 256);

    // The event loop runs on its own task: it sends what `publish` queued and counts acks.
    let (acked_tx, mut acked_rx) = watch::channel(0u64);
    let (connected_tx, mut connected_rx) = watch::channel(None::<Result<(), String>>);
    let device_id = device.id.clone();
    let mut agent = Agent::new(&device.id);
    let subscriptions = agent.subscriptions();
    // Answers the agent published: their PUBACKs are not telemetry's.
    let answers = Arc::new(AtomicU64::new(0));
    let (answering, answered) = (client.clone(), answers.clone());
    let driver = tokio::spawn(async move {
        let mut acked = 0u64;
        loop {
            match events.poll().await {
                Ok(Event::Incoming(Packet::ConnAck(ack))) => {
                    let result = if ack.code == rumqttc::ConnectReturnCode::Success {
                        Ok(())
                    } else {
                        Err(format!(
                            "{device_id}: broker refused the connection: {:?}",
                            ack.code
                        ))
                    };
                    connected_tx.send_replace(Some(result));
                }
                Ok(Event::Incoming(Packet::PubAck(_))) => {
                    acked += 1;
                    acked_tx.send_replace(acked);
                }
                Ok(Event::Incoming(Packet::Publish(message))) => {
                    for (topic, body) in agent.on_message(&message.topic, &message.payload) {
                        // Never wait on the request queue from inside the event loop.
                        if answering
                            .try_publish(topic, QoS::AtLeastOnce, false, body)
                            .is_ok()
                        {
                            answered.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                }
                Ok(Event::Outgoing(Outgoing::Disconnect)) => return,
                Ok(_) => {}
                Err(err) => {
                    connected_tx.send_replace(Some(Err(format!("{device_id}: {err}"))));
                    return;
                }
            }
        }
    });

    let connected = tokio::time::timeout(
        Duration::from_secs(20),
        connected_rx.wait_for(Option::is_some),
    )
    .await
    .with_context(|| format!("{}: no CONNACK within 20 s", device.id))?
    .map_err(|_| anyhow::anyhow!("{}: connection closed", device.id))?
    .clone();
    if let Some(Err(err)) = connected {
        bail!(err);
    }

    for topic in subscriptions {
        client.subscribe(topic, QoS::AtLeastOnce).await?;
    }
    let online = serde_json::json!({"status": "online", "simulated": true}).to_string();
    client
        .publish(status_topic(&device.id), QoS::AtLeastOnce, false, online)
        .await?;
    let mut published = 1u64;
    tokio::time::sleep(offset).await;
    let mut ticker = tokio::time::interval(interval.max(Duration::from_micros(10)));
    let topic = telemetry_topic(&device.id);
    for message in script.messages {
        ticker.tick().await;
        client
            .publish(&topic, QoS::AtLeastOnce, false, message.payload)
            .await?;
        published += 1;
        progress.inc(1);
    }

    let all_acked = tokio::time::timeout(
        Duration::from_secs(60),
        acked_rx.wait_for(|n| *n >= published + answers.load(Ordering::Relaxed)),
    )
    .await
    .is_ok_and(|r| r.is_ok());
    let acked = acked_rx
        .borrow()
        .saturating_sub(answers.load(Ordering::Relaxed));
    fleet_acked.fetch_add(acked.saturating_sub(1), Ordering::Relaxed);
    if !all_acked {
        bail!(
            "{}: {acked} of {published} publishes acknowledged after 60 s",
            device.id
        );
    }
    // A clean disconnect: the broker drops the Last Will, as it should for a device that
    // says goodbye.
    client.disconnect().await.ok();
    driver.await.ok();
    Ok(published - 1)
}
