//! Runs scripted devices against an MQTT endpoint: one mutual-TLS connection per device,
//! a Last Will for presence, QoS 1 publishes paced to the fleet's rate, PUBACKs counted.
//! While connected, each device answers its commands, follows its shadow (`agent`) and
//! takes firmware jobs (`ota`); it may stay connected after its script (`linger`, or until
//! told to stop) to keep doing so.

use std::{
    collections::{BTreeMap, VecDeque},
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc, Mutex,
    },
    time::{Duration, Instant},
};

use anyhow::{bail, Context, Result};
use indicatif::ProgressBar;
use rumqttc::{
    AsyncClient, Event, EventLoop, LastWill, Outgoing, Packet, QoS, SubscribeReasonCode,
};
use serde::Serialize;
use tokio::{
    sync::{mpsc, watch},
    task::AbortHandle,
};

use crate::{
    agent::Agent,
    ota::{Action, JobTally, OtaAgent, OtaConfig},
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

/// What every device of a run shares, besides its script.
#[derive(Clone, Debug)]
pub struct DeviceOptions {
    /// The version devices run when they connect.
    pub firmware_version: String,
    pub ota: OtaConfig,
    /// How long a device stays connected after its script, answering commands and jobs.
    pub linger: Duration,
    /// With the device's index, seeds its injected firmware faults.
    pub seed: u64,
}

impl Default for DeviceOptions {
    fn default() -> Self {
        Self {
            firmware_version: "1.0.0".into(),
            ota: OtaConfig::default(),
            linger: Duration::ZERO,
            seed: 1,
        }
    }
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct RunReport {
    pub devices: usize,
    pub sent: u64,
    pub acked: u64,
    pub seconds: f64,
    /// Messages per second achieved, from connecting the fleet to the last telemetry
    /// PUBACK (lingering not included).
    pub rate: f64,
    pub expected: Expected,
    /// Firmware jobs the devices finished, by the status they reported.
    pub jobs: JobTally,
    /// Devices per firmware version at the end.
    pub firmware: BTreeMap<String, usize>,
}

/// One device as a running fleet sees it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct DeviceStatus {
    pub firmware_version: String,
    /// Connected and subscribed: commands, shadow deltas and jobs reach it.
    pub ready: bool,
    pub jobs: JobTally,
}

/// The devices of a running fleet, updated as they go; share it with [`run_fleet`] to
/// watch them (firmware versions, job outcomes, who is connected).
#[derive(Debug, Default)]
pub struct FleetStatus {
    devices: Mutex<BTreeMap<String, DeviceStatus>>,
}

impl FleetStatus {
    pub fn devices(&self) -> BTreeMap<String, DeviceStatus> {
        self.lock().clone()
    }

    /// Device id -> the firmware version it runs now.
    pub fn firmware_versions(&self) -> BTreeMap<String, String> {
        self.lock()
            .iter()
            .map(|(id, device)| (id.clone(), device.firmware_version.clone()))
            .collect()
    }

    /// Firmware version -> how many devices run it.
    pub fn firmware_counts(&self) -> BTreeMap<String, usize> {
        let mut counts = BTreeMap::new();
        for device in self.lock().values() {
            *counts.entry(device.firmware_version.clone()).or_default() += 1;
        }
        counts
    }

    /// Jobs finished across the fleet.
    pub fn jobs(&self) -> JobTally {
        let mut total = JobTally::default();
        for device in self.lock().values() {
            total.add(device.jobs);
        }
        total
    }

    /// Devices connected and subscribed.
    pub fn ready(&self) -> usize {
        self.lock().values().filter(|d| d.ready).count()
    }

    fn update(&self, device_id: &str, change: impl FnOnce(&mut DeviceStatus)) {
        change(self.lock().entry(device_id.to_owned()).or_default());
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, DeviceStatus>> {
        // A panic elsewhere cannot leave a half-written status: every update is one field.
        self.devices.lock().unwrap_or_else(|e| e.into_inner())
    }
}

pub fn status_topic(device_id: &str) -> String {
    format!("devices/{device_id}/status")
}

pub fn telemetry_topic(device_id: &str) -> String {
    format!("devices/{device_id}/telemetry")
}

/// Sends every script, `interval` apart per device, and waits for every PUBACK, with the
/// default [`DeviceOptions`] (no lingering; firmware jobs fail for want of a signing key).
pub async fn run(
    endpoint: &Endpoint,
    fleet: Vec<(Device, DeviceScript)>,
    interval: Duration,
    progress: ProgressBar,
) -> Result<RunReport> {
    let (_running, stop) = watch::channel(false);
    run_fleet(
        endpoint,
        fleet,
        interval,
        &DeviceOptions::default(),
        stop,
        Arc::default(),
        progress,
    )
    .await
}

/// Sends every script, `interval` apart per device; each device then stays connected for
/// `options.linger` or until `stop` turns true (or its sender is dropped), whichever comes
/// first, and waits for every PUBACK. `status` follows the devices as they run.
pub async fn run_fleet(
    endpoint: &Endpoint,
    fleet: Vec<(Device, DeviceScript)>,
    interval: Duration,
    options: &DeviceOptions,
    stop: watch::Receiver<bool>,
    status: Arc<FleetStatus>,
    progress: ProgressBar,
) -> Result<RunReport> {
    let started = Instant::now();
    let devices = fleet.len();
    let acked = Arc::new(AtomicU64::new(0));
    let telemetry_nanos = Arc::new(AtomicU64::new(0));
    // One crypto provider for the process, as the rest of the hub: ring.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let http = reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(10))
        .timeout(Duration::from_secs(120))
        .build()
        .context("building the firmware download client")?;
    let mut expected = Expected::default();
    let mut tasks = tokio::task::JoinSet::new();
    let connecting = Arc::new(tokio::sync::Semaphore::new(CONNECTS_IN_FLIGHT));
    for (index, (device, script)) in fleet.into_iter().enumerate() {
        expected.add(&script.expected);
        status.update(&device.id, |d| {
            d.firmware_version = options.firmware_version.clone();
        });
        let run = DeviceRun {
            endpoint: endpoint.clone(),
            interval,
            // Spread the devices over one interval so the fleet's rate is even.
            offset: interval.mul_f64(index as f64 / devices.max(1) as f64),
            options: options.clone(),
            ota_seed: options
                .seed
                .wrapping_mul(0x9E37_79B9_7F4A_7C15)
                .wrapping_add(index as u64),
            http: http.clone(),
            stop: stop.clone(),
            status: status.clone(),
            fleet_acked: acked.clone(),
            started,
            telemetry_nanos: telemetry_nanos.clone(),
            progress: progress.clone(),
            connecting: connecting.clone(),
        };
        tasks.spawn(run_device(run, device, script));
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
    let seconds = match telemetry_nanos.load(Ordering::Relaxed) {
        0 => started.elapsed().as_secs_f64(),
        nanos => nanos as f64 / 1e9,
    };
    let acked = acked.load(Ordering::Relaxed);
    Ok(RunReport {
        devices,
        sent,
        acked,
        seconds,
        rate: acked as f64 / seconds.max(1e-9),
        expected,
        jobs: status.jobs(),
        firmware: status.firmware_counts(),
    })
}

/// What one device's task needs besides its identity and script.
struct DeviceRun {
    endpoint: Endpoint,
    interval: Duration,
    offset: Duration,
    options: DeviceOptions,
    ota_seed: u64,
    http: reqwest::Client,
    stop: watch::Receiver<bool>,
    status: Arc<FleetStatus>,
    fleet_acked: Arc<AtomicU64>,
    /// When the fleet started, and how long after that the last device's telemetry was
    /// all acknowledged.
    started: Instant,
    telemetry_nanos: Arc<AtomicU64>,
    progress: ProgressBar,
    /// Handshakes in flight across the fleet: a thousand TLS handshakes at once on a
    /// small machine outlast the connect timeout, as a real fleet's reconnect storm would.
    connecting: Arc<tokio::sync::Semaphore>,
}

/// TLS handshakes the fleet has in flight at once.
const CONNECTS_IN_FLIGHT: usize = 64;

/// Resolves once `stop` is true or nobody can set it any more.
async fn stop_requested(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|stop| *stop).await;
}

async fn run_device(run: DeviceRun, device: Device, script: DeviceScript) -> Result<u64> {
    let DeviceRun {
        endpoint,
        interval,
        offset,
        options,
        ota_seed,
        http,
        mut stop,
        status,
        fleet_acked,
        started,
        telemetry_nanos,
        progress,
        connecting,
    } = run;
    let handshake = connecting
        .acquire_owned()
        .await
        .context("the fleet's connection limiter closed")?;
    let tls = hub_mqtt::tls_config(&endpoint.ca_pem, Some(&device.identity))?;
    let mut mqtt = hub_mqtt::mqtt_options(&device.id, &endpoint.host, endpoint.port, tls);
    let offline = serde_json::json!({"status": "offline", "simulated": true}).to_string();
    mqtt.set_last_will(LastWill::new(
        status_topic(&device.id),
        offline,
        QoS::AtLeastOnce,
        false,
    ));
    mqtt.set_inflight(100);
    let (client, events) = AsyncClient::new(mqtt, 256);

    let (counts_tx, mut counts_rx) = watch::channel(Counts::default());
    let (connected_tx, mut connected_rx) = watch::channel(None::<Result<(), String>>);
    let (close_tx, close_rx) = watch::channel(false);
    let (outcome_tx, outcome_rx) = mpsc::channel(4);
    let agent = Agent::new(&device.id);
    let ota = OtaAgent::new(
        &device.id,
        &options.firmware_version,
        options.ota.clone(),
        ota_seed,
    );
    let driver = Driver {
        device_id: device.id.clone(),
        client: client.clone(),
        subscriptions: agent
            .subscriptions()
            .into_iter()
            .chain(ota.subscriptions())
            .collect(),
        subscribed: 0,
        agent,
        ota,
        http,
        outcome_tx,
        installing: None,
        backlog: VecDeque::new(),
        counts: Counts::default(),
        counts_tx,
        connected_tx,
        status: status.clone(),
    };
    let driver = tokio::spawn(driver.run(events, outcome_rx, close_rx));

    let connected = tokio::time::timeout(
        Duration::from_secs(20),
        connected_rx.wait_for(Option::is_some),
    )
    .await
    .with_context(|| format!("{}: no CONNACK within 20 s", device.id))?
    .map_err(|_| anyhow::anyhow!("{}: connection closed", device.id))?
    .clone();
    drop(handshake);
    if let Some(Err(err)) = connected {
        bail!(err);
    }

    let online = serde_json::json!({"status": "online", "simulated": true}).to_string();
    client
        .publish(status_topic(&device.id), QoS::AtLeastOnce, false, online)
        .await?;
    let mut published = 1u64;
    tokio::select! {
        _ = tokio::time::sleep(offset) => {}
        _ = stop_requested(&mut stop) => {}
    }
    let mut ticker = tokio::time::interval(interval.max(Duration::from_micros(10)));
    let topic = telemetry_topic(&device.id);
    for message in script.messages {
        tokio::select! {
            _ = ticker.tick() => {}
            _ = stop_requested(&mut stop) => break,
        }
        client
            .publish(&topic, QoS::AtLeastOnce, false, message.payload)
            .await?;
        published += 1;
        progress.inc(1);
    }
    if !options.linger.is_zero() {
        // The run's rate counts up to the telemetry's acknowledgement, not the lingering.
        let _ = tokio::time::timeout(
            Duration::from_secs(60),
            counts_rx.wait_for(|c| c.acked >= published + c.answers),
        )
        .await;
        let nanos = u64::try_from(started.elapsed().as_nanos()).unwrap_or(u64::MAX);
        telemetry_nanos.fetch_max(nanos, Ordering::Relaxed);
        tokio::select! {
            _ = tokio::time::sleep(options.linger) => {}
            _ = stop_requested(&mut stop) => {}
        }
    }

    // From here the device answers nothing more, so the answers' count holds still and
    // the telemetry's PUBACKs are the rest.
    close_tx.send_replace(true);
    let all_acked = tokio::time::timeout(
        Duration::from_secs(60),
        counts_rx.wait_for(|c| c.closing && c.acked >= published + c.answers),
    )
    .await
    .is_ok_and(|r| r.is_ok());
    let counts = *counts_rx.borrow();
    let acked = counts.acked.saturating_sub(counts.answers).min(published);
    fleet_acked.fetch_add(acked.saturating_sub(1), Ordering::Relaxed);
    status.update(&device.id, |d| d.ready = false);
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

/// PUBACKs received, and how many of the publishes were the device's own answers
/// (commands, shadow, jobs) rather than its script's.
#[derive(Clone, Copy, Debug, Default)]
struct Counts {
    acked: u64,
    answers: u64,
    /// The driver has stopped answering: `answers` is final.
    closing: bool,
}

/// The event loop's task: sends what was queued, counts acks, and answers what arrives.
struct Driver {
    device_id: String,
    client: AsyncClient,
    subscriptions: Vec<String>,
    subscribed: usize,
    agent: Agent,
    ota: OtaAgent,
    http: reqwest::Client,
    outcome_tx: mpsc::Sender<(String, Result<(), String>)>,
    /// The install task running, by job id.
    installing: Option<(String, AbortHandle)>,
    /// Answers the request queue had no room for yet; never wait on it from in here.
    backlog: VecDeque<(String, Vec<u8>)>,
    counts: Counts,
    counts_tx: watch::Sender<Counts>,
    connected_tx: watch::Sender<Option<Result<(), String>>>,
    status: Arc<FleetStatus>,
}

impl Driver {
    async fn run(
        mut self,
        mut events: EventLoop,
        mut outcomes: mpsc::Receiver<(String, Result<(), String>)>,
        mut close: watch::Receiver<bool>,
    ) {
        loop {
            let event = {
                // `poll` is not cancel-safe (a write cut short mid-flush would corrupt the
                // stream), so one poll future lives across installs finishing.
                let poll = events.poll();
                tokio::pin!(poll);
                loop {
                    tokio::select! {
                        event = &mut poll => break event,
                        Some((job_id, verified)) = outcomes.recv() => {
                            if self.installing.as_ref().is_some_and(|(job, _)| *job == job_id) {
                                self.installing = None;
                            }
                            if !self.counts.closing {
                                let actions = self.ota.finished(&job_id, verified);
                                self.act(actions);
                            }
                        }
                        Ok(()) = close.changed(), if !self.counts.closing => self.close(),
                    }
                }
            };
            match event {
                Ok(Event::Incoming(Packet::ConnAck(ack))) => {
                    let result = if ack.code == rumqttc::ConnectReturnCode::Success {
                        self.on_connected();
                        Ok(())
                    } else {
                        Err(format!(
                            "{}: broker refused the connection: {:?}",
                            self.device_id, ack.code
                        ))
                    };
                    self.connected_tx.send_replace(Some(result));
                }
                Ok(Event::Incoming(Packet::SubAck(ack))) => {
                    if ack
                        .return_codes
                        .iter()
                        .any(|code| matches!(code, SubscribeReasonCode::Failure))
                    {
                        tracing::warn!(device = %self.device_id, "broker refused a subscription");
                    }
                    self.subscribed += 1;
                    if self.subscribed == self.subscriptions.len() {
                        self.status.update(&self.device_id, |d| d.ready = true);
                    }
                }
                Ok(Event::Incoming(Packet::PubAck(_))) => {
                    self.counts.acked += 1;
                    self.counts_tx.send_replace(self.counts);
                }
                Ok(Event::Incoming(Packet::Publish(message))) if !self.counts.closing => {
                    for (topic, body) in self.agent.on_message(&message.topic, &message.payload) {
                        self.publish(topic, body);
                    }
                    let actions = self.ota.on_message(&message.topic, &message.payload);
                    self.act(actions);
                }
                Ok(Event::Outgoing(Outgoing::Disconnect)) => return,
                Ok(_) => {}
                Err(err) => {
                    self.connected_tx
                        .send_replace(Some(Err(format!("{}: {err}", self.device_id))));
                    return;
                }
            }
            self.flush();
        }
    }

    /// Subscribes, then asks for pending jobs: the broker handles a connection's packets
    /// in order, so the answer finds the subscription in place.
    fn on_connected(&mut self) {
        for topic in &self.subscriptions {
            if let Err(err) = self.client.try_subscribe(topic, QoS::AtLeastOnce) {
                tracing::warn!(device = %self.device_id, %topic, %err, "subscribing");
            }
        }
        let actions = self.ota.on_connected();
        self.act(actions);
    }

    fn act(&mut self, actions: Vec<Action>) {
        for action in actions {
            match action {
                Action::Publish { topic, payload } => self.publish(topic, payload),
                Action::Install(install) => {
                    let (http, done) = (self.http.clone(), self.outcome_tx.clone());
                    let job_id = install.job_id.clone();
                    let task = tokio::spawn(async move {
                        let verified = install.run(&http).await;
                        done.send((install.job_id, verified)).await.ok();
                    });
                    if let Some((_, previous)) =
                        self.installing.replace((job_id, task.abort_handle()))
                    {
                        previous.abort();
                    }
                }
                Action::Abandon { job_id } => {
                    if let Some((_, task)) = self.installing.take_if(|(job, _)| *job == job_id) {
                        task.abort();
                    }
                }
            }
        }
        let (version, jobs) = (self.ota.firmware_version.clone(), self.ota.tally);
        self.status.update(&self.device_id, |d| {
            d.firmware_version = version;
            d.jobs = jobs;
        });
    }

    fn publish(&mut self, topic: String, payload: Vec<u8>) {
        self.backlog.push_back((topic, payload));
        self.flush();
    }

    /// Queues what fits; the rest waits for the event loop to take requests.
    fn flush(&mut self) {
        while let Some((topic, payload)) = self.backlog.front() {
            if self
                .client
                .try_publish(topic.clone(), QoS::AtLeastOnce, false, payload.clone())
                .is_err()
            {
                return;
            }
            self.backlog.pop_front();
            self.counts.answers += 1;
            self.counts_tx.send_replace(self.counts);
        }
    }

    fn close(&mut self) {
        self.flush();
        if !self.backlog.is_empty() {
            tracing::warn!(
                device = %self.device_id,
                dropped = self.backlog.len(),
                "closing with answers still unsent"
            );
            self.backlog.clear();
        }
        self.counts.closing = true;
        self.counts_tx.send_replace(self.counts);
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        // A device that goes away stops installing, as a power cut would.
        if let Some((_, task)) = self.installing.take() {
            task.abort();
        }
    }
}
