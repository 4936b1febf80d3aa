//! Helpers that drive the deployed local stack from outside, as a device or an operator
//! would: register a device through the IoT API, connect to Mosquitto with its
//! certificate, read what reached Kinesis. The end-to-end tests and the demo share them.
//!
//! `localstack/up.sh` writes `stack.env` and `outputs.json` into the stack directory;
//! everything here starts from `HUB_STACK_DIR`.

pub mod accounting;
pub mod admin;
pub mod alert_inbox;
pub mod http_device;
pub mod live;
pub mod ota;
pub mod signin;
pub mod webhook_receiver;

pub use hub_sim::provision::Device;

use std::{
    collections::BTreeMap,
    path::PathBuf,
    time::{Duration, Instant},
};

use anyhow::{anyhow, bail, Context, Result};
use aws_sdk_kinesis::types::ShardIteratorType;
use hub_mqtt::ClientIdentity;
use hub_runtime::AwsEnv;
use rumqttc::{AsyncClient, Event, EventLoop, Packet};

/// The deployed local stack, as described by its stack directory.
pub struct Stack {
    pub dir: PathBuf,
    pub mqtt_host: String,
    pub mqtt_port: u16,
    pub ca_pem: Vec<u8>,
    pub outputs: BTreeMap<String, String>,
    pub aws: AwsEnv,
    /// Base URL of the HTTP API (ingest, admin) as the emulator serves it.
    pub api_url: String,
    /// Everything `stack.env` sets.
    pub env: std::collections::HashMap<String, String>,
}

impl Stack {
    /// Loads the stack that `HUB_STACK_DIR` points at and exports its AWS settings, so
    /// that SDK clients talk to the emulator.
    pub async fn from_env() -> Result<Self> {
        // One TLS crypto provider for every client of the process (HTTP and MQTT): ring.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let dir = PathBuf::from(
            std::env::var("HUB_STACK_DIR")
                .context("HUB_STACK_DIR is not set: start the stack with localstack/up.sh")?,
        );
        let env = hub_sim::local::export_aws_settings(&dir)?;
        let outputs = hub_sim::local::read_outputs(&dir)?;
        Ok(Self {
            mqtt_host: env
                .get("HUB_MQTT_HOST")
                .cloned()
                .unwrap_or_else(|| "127.0.0.1".into()),
            mqtt_port: env
                .get("HUB_MQTT_PORT")
                .context("HUB_MQTT_PORT missing from stack.env")?
                .parse()?,
            api_url: env
                .get("HUB_API_URL")
                .context("HUB_API_URL missing from stack.env")?
                .clone(),
            ca_pem: std::fs::read(dir.join("pki/ca.pem")).context("reading the stack CA")?,
            outputs,
            aws: AwsEnv::load().await,
            dir,
            env,
        })
    }

    /// The PID a stack process (`bridge`, `mosquitto`, `emulator`) runs as.
    fn pid(&self, name: &str) -> Result<u32> {
        let file = self.dir.join("pids").join(format!("{name}.pid"));
        Ok(std::fs::read_to_string(&file)
            .with_context(|| format!("reading {}", file.display()))?
            .trim()
            .parse()?)
    }

    /// Kills the bridge as a crash would (SIGKILL: no goodbye to Mosquitto, in-flight
    /// messages unacknowledged), waits `down`, and starts it again with the same command
    /// line and environment, recording its new PID for `down.sh`.
    pub async fn crash_and_restart_bridge(&self, down: Duration) -> Result<()> {
        let pid = self.pid("bridge")?;
        let proc = PathBuf::from(format!("/proc/{pid}"));
        let split = |bytes: Vec<u8>| -> Vec<String> {
            bytes
                .split(|b| *b == 0)
                .filter(|part| !part.is_empty())
                .map(|part| String::from_utf8_lossy(part).into_owned())
                .collect()
        };
        let command = split(std::fs::read(proc.join("cmdline"))?);
        let environment = split(std::fs::read(proc.join("environ"))?);
        let signal = |sig: &str, pid: u32| {
            std::process::Command::new("kill")
                .args([sig, &pid.to_string()])
                .status()
        };
        anyhow::ensure!(signal("-KILL", pid)?.success(), "kill -KILL {pid}");
        tokio::time::sleep(down).await;
        let log = std::fs::OpenOptions::new()
            .append(true)
            .create(true)
            .open(self.dir.join("logs/bridge.log"))?;
        let child = std::process::Command::new(&command[0])
            .args(&command[1..])
            .env_clear()
            .envs(environment.iter().filter_map(|kv| kv.split_once('=')))
            .stdin(std::process::Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .context("starting the bridge again")?;
        std::fs::write(
            self.dir.join("pids/bridge.pid"),
            format!("{}\n", child.id()),
        )?;
        Ok(())
    }

    /// Stops the emulator (SIGSTOP) for `frozen`, then lets it go on: every AWS call of
    /// the stack waits meanwhile, as in a regional slowdown.
    pub async fn freeze_emulator(&self, frozen: Duration) -> Result<()> {
        let pid = self.pid("emulator")?.to_string();
        let signal = |sig: &str| {
            std::process::Command::new("kill")
                .args([sig, &pid])
                .status()
        };
        anyhow::ensure!(signal("-STOP")?.success(), "kill -STOP {pid}");
        tokio::time::sleep(frozen).await;
        anyhow::ensure!(signal("-CONT")?.success(), "kill -CONT {pid}");
        Ok(())
    }

    /// Restarts the emulator the way an orderly restart goes (`localstack/emulator.sh
    /// restart`): it saves its state, is gone for as long as it takes to stop and start,
    /// and comes back on the saved state. Every AWS call meanwhile is refused.
    pub async fn restart_emulator(&self) -> Result<()> {
        let endpoint = self
            .env
            .get("AWS_ENDPOINT_URL")
            .context("AWS_ENDPOINT_URL missing from stack.env")?;
        let port = endpoint
            .rsplit(':')
            .next()
            .context("the emulator's endpoint has no port")?;
        let script =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../localstack/emulator.sh");
        let status = tokio::process::Command::new(script)
            .arg("restart")
            .env("HUB_STACK_DIR", &self.dir)
            .env("HUB_EMULATOR_PORT", port)
            .stdin(std::process::Stdio::null())
            .status()
            .await?;
        anyhow::ensure!(status.success(), "emulator.sh restart: {status}");
        Ok(())
    }

    /// A variable of `stack.env`.
    pub fn env_var(&self, name: &str) -> Result<String> {
        self.env
            .get(name)
            .cloned()
            .with_context(|| format!("{name} missing from stack.env"))
    }

    pub fn output(&self, key: &str) -> &str {
        self.outputs
            .get(key)
            .unwrap_or_else(|| panic!("stack output {key} missing"))
    }

    pub fn iot(&self) -> aws_sdk_iot::Client {
        aws_sdk_iot::Client::new(&self.aws.sdk)
    }

    pub fn kinesis(&self) -> aws_sdk_kinesis::Client {
        aws_sdk_kinesis::Client::new(&self.aws.sdk)
    }

    pub fn sqs(&self) -> aws_sdk_sqs::Client {
        aws_sdk_sqs::Client::new(&self.aws.sdk)
    }

    /// Connects to Mosquitto and waits for the CONNACK. Fails if the broker refuses the
    /// client (TLS handshake or MQTT), which is what the security tests look for.
    pub async fn connect(
        &self,
        client_id: &str,
        identity: Option<&ClientIdentity>,
    ) -> Result<(AsyncClient, EventLoop)> {
        self.connect_trusting(client_id, identity, &self.ca_pem)
            .await
    }

    pub async fn connect_trusting(
        &self,
        client_id: &str,
        identity: Option<&ClientIdentity>,
        ca_pem: &[u8],
    ) -> Result<(AsyncClient, EventLoop)> {
        let tls = hub_mqtt::tls_config(ca_pem, identity)?;
        let options = hub_mqtt::mqtt_options(client_id, &self.mqtt_host, self.mqtt_port, tls);
        let (client, mut events) = AsyncClient::new(options, 100);
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let remaining = deadline.saturating_duration_since(Instant::now());
            match tokio::time::timeout(remaining, events.poll()).await {
                Ok(Ok(Event::Incoming(Packet::ConnAck(ack)))) => {
                    if ack.code == rumqttc::ConnectReturnCode::Success {
                        return Ok((client, events));
                    }
                    bail!("broker refused the connection: {:?}", ack.code);
                }
                Ok(Ok(_)) => {}
                Ok(Err(err)) => bail!("connection failed: {err}"),
                Err(_) => bail!("no CONNACK within 10 s"),
            }
        }
    }

    /// Registers a device the way operators do on AWS (see `hub_sim::provision`).
    pub async fn register_device(&self, device_id: &str) -> Result<Device> {
        hub_sim::provision::register_device(&self.iot(), self.output("DevicePolicyName"), device_id)
            .await
    }
}

/// A record read back from a Kinesis stream.
#[derive(Debug, Clone)]
pub struct StreamRecord {
    pub shard_id: String,
    pub sequence_number: String,
    pub partition_key: String,
    pub data: Vec<u8>,
}

/// Reads every shard of `stream` from the start until a record satisfies `wanted`.
pub async fn find_record(
    kinesis: &aws_sdk_kinesis::Client,
    stream: &str,
    timeout: Duration,
    wanted: impl Fn(&StreamRecord) -> bool,
) -> Result<StreamRecord> {
    let shards = kinesis.list_shards().stream_name(stream).send().await?;
    let mut iterators = Vec::new();
    for shard in shards.shards() {
        let iterator = kinesis
            .get_shard_iterator()
            .stream_name(stream)
            .shard_id(shard.shard_id())
            .shard_iterator_type(ShardIteratorType::TrimHorizon)
            .send()
            .await?
            .shard_iterator
            .context("shard iterator")?;
        iterators.push((shard.shard_id().to_owned(), Some(iterator)));
    }
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        for (shard_id, iterator) in iterators.iter_mut() {
            let Some(current) = iterator.take() else {
                continue;
            };
            let out = kinesis
                .get_records()
                .shard_iterator(current)
                .limit(1000)
                .send()
                .await?;
            for record in out.records() {
                let record = StreamRecord {
                    shard_id: shard_id.clone(),
                    sequence_number: record.sequence_number().to_owned(),
                    partition_key: record.partition_key().unwrap_or_default().to_owned(),
                    data: record.data().as_ref().to_vec(),
                };
                if wanted(&record) {
                    return Ok(record);
                }
            }
            *iterator = out.next_shard_iterator;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    Err(anyhow!("no matching record on {stream} within {timeout:?}"))
}

/// Keeps an MQTT event loop running (acks, pings) and forwards incoming publishes.
pub fn drive(mut events: EventLoop) -> tokio::sync::mpsc::UnboundedReceiver<rumqttc::Publish> {
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        loop {
            match events.poll().await {
                Ok(Event::Incoming(Packet::Publish(publish))) => {
                    if tx.send(publish).is_err() {
                        return;
                    }
                }
                Ok(_) => {}
                Err(_) => return,
            }
        }
    });
    rx
}

/// Reads with `read` every 300 ms until `done` holds, and returns that reading; panics
/// naming `what` and the last reading after 30 s.
pub async fn poll_until(
    what: &str,
    mut read: impl AsyncFnMut() -> serde_json::Value,
    done: impl Fn(&serde_json::Value) -> bool,
) -> serde_json::Value {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let value = read().await;
        if done(&value) {
            return value;
        }
        assert!(
            Instant::now() < deadline,
            "{what}: not within 30 s: {value}"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

/// A unique id for test resources, so runs and parallel tests never collide.
/// The claims of a JWT, unchecked: what a token says of itself, for tests to compare.
pub fn jwt_claims(token: &str) -> serde_json::Value {
    use base64::Engine as _;
    let payload = token.split('.').nth(1).unwrap_or_default();
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .ok()
        .and_then(|bytes| serde_json::from_slice(&bytes).ok())
        .unwrap_or(serde_json::Value::Null)
}

pub fn unique(prefix: &str) -> String {
    format!(
        "{prefix}-{}",
        &uuid::Uuid::new_v4().simple().to_string()[..12]
    )
}

/// What a simulated fleet sent, and the anomaly episodes it injected.
pub struct FleetRun {
    pub report: hub_sim::run::RunReport,
    pub labels: Vec<hub_sim::script::AnomalyLabel>,
}

/// Registers `devices` simulated devices (`{prefix}-NN`, types rotating; certificate and
/// registry row) and runs their scripts through Mosquitto at `rate` messages per second
/// across the fleet.
pub async fn run_fleet(
    stack: &Stack,
    prefix: &str,
    devices: usize,
    messages_per_device: u64,
    rate: f64,
    faults: &hub_sim::script::Faults,
    progress: indicatif::ProgressBar,
) -> Result<FleetRun> {
    use hub_sim::script::{device_type_for, script};
    let interval = Duration::from_secs_f64(devices as f64 / rate);
    let tick = chrono::Duration::from_std(interval)?;
    let dynamodb = aws_sdk_dynamodb::Client::new(&stack.aws.sdk);
    let mut registered = Vec::with_capacity(devices);
    for index in 0..devices {
        let device_id = format!("{prefix}-{index:02}");
        registered.push(stack.register_device(&device_id).await?);
        hub_sim::provision::register_in_registry(
            &dynamodb,
            stack.output("DevicesTableName"),
            &device_id,
            device_type_for(index).name(),
        )
        .await?;
    }
    // Device time starts after provisioning, so it tracks the real send times.
    let start = chrono::Utc::now();
    let fleet: Vec<_> = registered
        .into_iter()
        .enumerate()
        .map(|(index, device)| {
            let script = script(
                &device.id,
                device_type_for(index),
                messages_per_device,
                faults,
                start,
                tick,
                index as u64,
            );
            (device, script)
        })
        .collect();
    let endpoint = hub_sim::run::Endpoint {
        host: stack.mqtt_host.clone(),
        port: stack.mqtt_port,
        ca_pem: stack.ca_pem.clone(),
    };
    progress.set_length(fleet.iter().map(|(_, s)| s.messages.len() as u64).sum());
    let labels = fleet
        .iter()
        .flat_map(|(_, s)| s.anomalies.clone())
        .collect();
    let report = hub_sim::run::run(&endpoint, fleet, interval, progress).await?;
    Ok(FleetRun { report, labels })
}
