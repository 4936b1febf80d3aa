//! `hub-sim`: runs a simulated fleet against the local stack (or a real IoT endpoint).

use std::{io::Write, path::PathBuf, time::Duration};

use anyhow::{bail, Context, Result};
use base64::{engine::general_purpose::STANDARD, Engine as _};
use clap::Parser;
use hub_sim::{
    local,
    ota::OtaConfig,
    provision,
    run::{run_fleet, DeviceOptions, Endpoint},
    script::{device_type_for, script, DeviceType, Faults},
};
use indicatif::{ProgressBar, ProgressStyle};

#[derive(Parser)]
#[command(version, about = "Simulated device fleet for IoT Control Hub")]
struct Cli {
    /// Local stack directory (written by localstack/up.sh); supplies the endpoint, CA and
    /// policy unless given below.
    #[arg(long, env = "HUB_STACK_DIR")]
    stack_dir: Option<PathBuf>,
    /// MQTT endpoint host (the IoT data endpoint on AWS).
    #[arg(long)]
    mqtt_host: Option<String>,
    #[arg(long)]
    mqtt_port: Option<u16>,
    /// CA certificate that signed the broker's certificate (AmazonRootCA1.pem on AWS).
    #[arg(long)]
    ca_file: Option<PathBuf>,
    /// IoT policy attached to each device certificate.
    #[arg(long)]
    policy_name: Option<String>,
    /// Device registry table, for each device's type (the stack's `DevicesTableName`).
    #[arg(long)]
    devices_table: Option<String>,
    /// Where device certificates and keys are kept between runs.
    #[arg(long)]
    credentials_dir: Option<PathBuf>,

    /// Devices in the fleet; types rotate through sensor, DC meter, AC meter, legacy v1.
    #[arg(long, default_value_t = 10)]
    devices: usize,
    /// Make every device this type instead (a firmware rollout goes to one type).
    #[arg(long, value_enum)]
    device_type: Option<DeviceType>,
    /// Upper bound on --devices, so a typo cannot register a million things.
    #[arg(long, env = "HUB_SIM_MAX_DEVICES", default_value_t = 1000)]
    max_devices: usize,
    /// Telemetry messages per device (heartbeats and injected faults come on top).
    #[arg(long, conflicts_with = "duration")]
    messages: Option<u64>,
    /// Run for about this many seconds instead of a fixed message count.
    #[arg(long)]
    duration: Option<f64>,
    /// Messages per second across the fleet.
    #[arg(long, default_value_t = 100.0)]
    rate: f64,
    /// Device id prefix; ids are `{prefix}-{index:04}`.
    #[arg(long, default_value = "sim")]
    prefix: String,
    #[arg(long, default_value_t = 1)]
    seed: u64,

    /// Fraction of messages that are malformed (bad JSON, wrong types, NaN, out of range).
    #[arg(long, default_value_t = 0.0)]
    malformed: f64,
    /// Fraction of messages sent twice (same seq).
    #[arg(long, default_value_t = 0.0)]
    duplicates: f64,
    /// Fraction of messages sent before their predecessor.
    #[arg(long, default_value_t = 0.0)]
    out_of_order: f64,
    /// Fraction of messages whose device clock is two hours off.
    #[arg(long, default_value_t = 0.0)]
    clock_skew: f64,
    /// Chance per reading that a labelled anomaly episode (4 to 6 readings) starts.
    #[arg(long, default_value_t = 0.0)]
    anomalies: f64,
    /// A heartbeat every this many telemetry messages (0: none).
    #[arg(long, default_value_t = 10)]
    heartbeat_every: u64,

    /// Firmware version the devices run when they start.
    #[arg(long, default_value = "1.0.0")]
    firmware_version: String,
    /// Chance per firmware job attempt that the install fails.
    #[arg(long, default_value_t = 0.0)]
    ota_failure_rate: f64,
    /// Chance per firmware job attempt that the device installs the image, fails its
    /// self-test after the reboot and reverts.
    #[arg(long, default_value_t = 0.0)]
    ota_selftest_failure_rate: f64,
    /// Ed25519 public key firmware images must be signed with (base64 of the raw 32
    /// bytes); default: the stack's pki/firmware-signing.pub. Without one, devices fail
    /// every firmware job.
    #[arg(long)]
    firmware_public_key: Option<PathBuf>,
    /// Seconds each device stays connected after its telemetry, answering commands and
    /// taking firmware jobs; Ctrl-C ends it early.
    #[arg(long, default_value_t = 0.0)]
    linger: f64,
    /// Put every device in this IoT thing group (created if missing) and record the group
    /// and firmware version in its registry row.
    #[arg(long)]
    group: Option<String>,

    /// Write the run report (sent, acked, rate, what the pipeline should count) as JSON.
    #[arg(long)]
    report: Option<PathBuf>,
    /// Write the anomaly labels as JSON lines.
    #[arg(long)]
    labels: Option<PathBuf>,
}

#[tokio::main]
async fn main() -> Result<()> {
    hub_runtime::init_cli_tracing();
    let cli = Cli::parse();
    if cli.devices == 0 || cli.devices > cli.max_devices {
        bail!(
            "--devices must be between 1 and {} (raise --max-devices to go further)",
            cli.max_devices
        );
    }
    if !(cli.rate > 0.0 && cli.rate.is_finite()) {
        bail!("--rate must be a positive number of messages per second");
    }
    for (name, value) in [
        ("--malformed", cli.malformed),
        ("--duplicates", cli.duplicates),
        ("--out-of-order", cli.out_of_order),
        ("--clock-skew", cli.clock_skew),
        ("--anomalies", cli.anomalies),
        ("--ota-failure-rate", cli.ota_failure_rate),
        ("--ota-selftest-failure-rate", cli.ota_selftest_failure_rate),
    ] {
        if !(0.0..=1.0).contains(&value) {
            bail!("{name} is a fraction between 0 and 1, got {value}");
        }
    }
    if !(cli.linger >= 0.0 && cli.linger.is_finite()) {
        bail!("--linger is a number of seconds, 0 or more");
    }
    if cli.firmware_version.trim().is_empty() {
        bail!("--firmware-version must not be empty");
    }
    if cli.group.as_deref().is_some_and(|g| g.trim().is_empty()) {
        bail!("--group must not be empty");
    }

    let stack_env = match &cli.stack_dir {
        Some(dir) => Some(local::export_aws_settings(dir)?),
        None => None,
    };
    let outputs = match &cli.stack_dir {
        Some(dir) => local::read_outputs(dir)?,
        None => Default::default(),
    };
    let host = cli
        .mqtt_host
        .or_else(|| stack_env.as_ref()?.get("HUB_MQTT_HOST").cloned())
        .context("--mqtt-host (or --stack-dir) is required")?;
    let port = match cli.mqtt_port {
        Some(port) => port,
        None => stack_env
            .as_ref()
            .and_then(|env| env.get("HUB_MQTT_PORT"))
            .context("--mqtt-port (or --stack-dir) is required")?
            .parse()?,
    };
    let ca_file = cli
        .ca_file
        .or_else(|| Some(cli.stack_dir.as_ref()?.join("pki/ca.pem")))
        .context("--ca-file (or --stack-dir) is required")?;
    let policy = cli
        .policy_name
        .or_else(|| outputs.get("DevicePolicyName").cloned())
        .context("--policy-name (or --stack-dir) is required")?;
    let credentials_dir = cli
        .credentials_dir
        .or_else(|| Some(cli.stack_dir.as_ref()?.join("sim-devices")))
        .unwrap_or_else(|| PathBuf::from(".hub-sim"));
    let public_key_file = cli.firmware_public_key.or_else(|| {
        Some(cli.stack_dir.as_ref()?.join("pki/firmware-signing.pub")).filter(|p| p.exists())
    });
    let public_key = match &public_key_file {
        Some(path) => Some(read_public_key(path)?),
        None => {
            eprintln!("no firmware signing key (--firmware-public-key): devices will fail every firmware job");
            None
        }
    };
    let endpoint = Endpoint {
        host,
        port,
        ca_pem: std::fs::read(&ca_file)
            .with_context(|| format!("reading {}", ca_file.display()))?,
    };

    let interval = Duration::from_secs_f64(cli.devices as f64 / cli.rate);
    let messages = match (cli.messages, cli.duration) {
        (Some(n), _) => n,
        (None, Some(seconds)) => ((seconds * cli.rate) / cli.devices as f64).ceil().max(1.0) as u64,
        (None, None) => 100,
    };
    let faults = Faults {
        malformed: cli.malformed,
        duplicate: cli.duplicates,
        out_of_order: cli.out_of_order,
        clock_skew: cli.clock_skew,
        anomaly: cli.anomalies,
        heartbeat_every: cli.heartbeat_every,
        anomaly_scale: 1.0,
    };

    let aws = hub_runtime::AwsEnv::load().await;
    let iot = aws_sdk_iot::Client::new(&aws.sdk);
    eprintln!(
        "provisioning {} devices (certificates in {})",
        cli.devices,
        credentials_dir.display()
    );
    let dynamodb = aws_sdk_dynamodb::Client::new(&aws.sdk);
    let registry = cli
        .devices_table
        .or_else(|| outputs.get("DevicesTableName").cloned());
    if let Some(group) = &cli.group {
        provision::ensure_thing_group(&iot, group).await?;
    }
    let mut devices = Vec::with_capacity(cli.devices);
    for index in 0..cli.devices {
        let device_id = format!("{}-{index:04}", cli.prefix);
        devices.push(
            provision::device_with_saved_credentials(&iot, &policy, &device_id, &credentials_dir)
                .await?,
        );
        if let Some(group) = &cli.group {
            provision::add_to_thing_group(&iot, group, &device_id).await?;
        }
        let device_type = cli.device_type.unwrap_or(device_type_for(index)).name();
        match (&registry, &cli.group) {
            (Some(table), Some(group)) => {
                provision::register_in_registry_with_group(
                    &dynamodb,
                    table,
                    &device_id,
                    device_type,
                    group,
                    &cli.firmware_version,
                )
                .await?
            }
            (Some(table), None) => {
                provision::register_in_registry(&dynamodb, table, &device_id, device_type).await?
            }
            (None, _) => {}
        }
    }
    // Device time starts now, after provisioning, so it tracks the real send times.
    let start = chrono::Utc::now();
    let tick = chrono::Duration::from_std(interval).unwrap_or(chrono::Duration::seconds(1));
    let fleet: Vec<_> = devices
        .into_iter()
        .enumerate()
        .map(|(index, device)| {
            let seed = cli.seed.wrapping_mul(1_000_003).wrapping_add(index as u64);
            let script = script(
                &device.id,
                cli.device_type.unwrap_or(device_type_for(index)),
                messages,
                &faults,
                start,
                tick,
                seed,
            );
            (device, script)
        })
        .collect();
    let labels: Vec<_> = fleet
        .iter()
        .flat_map(|(_, s)| s.anomalies.clone())
        .collect();
    let total: u64 = fleet.iter().map(|(_, s)| s.messages.len() as u64).sum();

    eprintln!(
        "sending {total} messages from {} devices at {} msg/s to {}:{}",
        cli.devices, cli.rate, endpoint.host, endpoint.port
    );
    let progress = ProgressBar::new(total).with_style(
        ProgressStyle::with_template("{bar:40} {pos}/{len} msgs  {per_sec}  eta {eta}")
            .expect("valid progress template"),
    );
    let options = DeviceOptions {
        firmware_version: cli.firmware_version.clone(),
        ota: OtaConfig {
            failure_rate: cli.ota_failure_rate,
            selftest_failure_rate: cli.ota_selftest_failure_rate,
            public_key,
            // A mixed fleet's jobs are checked by their signature only.
            device_type: cli.device_type.map(|t| t.name().to_owned()),
        },
        linger: Duration::from_secs_f64(cli.linger),
        seed: cli.seed,
    };
    if cli.linger > 0.0 {
        eprintln!(
            "devices stay connected {} s after their telemetry (Ctrl-C to stop sooner)",
            cli.linger
        );
    }
    let (stop_tx, stop) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            eprintln!("stopping: devices disconnect once their publishes are acknowledged (Ctrl-C again to quit now)");
            stop_tx.send_replace(true);
            if tokio::signal::ctrl_c().await.is_ok() {
                std::process::exit(130);
            }
        }
    });
    let report = run_fleet(
        &endpoint,
        fleet,
        interval,
        &options,
        stop,
        Default::default(),
        progress,
    )
    .await?;

    println!(
        "sent {} messages from {} devices, {} acknowledged, in {:.1} s: {:.0} msg/s",
        report.sent, report.devices, report.acked, report.seconds, report.rate
    );
    let e = &report.expected;
    println!(
        "the pipeline should count: stored {}, deduplicated {}, dead-lettered {}, heartbeats {}, clock-skewed {}, rows {}, labelled anomalies {}",
        e.stored, e.deduplicated, e.dead_lettered, e.heartbeats, e.clock_skewed, e.rows, e.anomalies
    );
    if report.jobs.total() > 0 || cli.linger > 0.0 {
        let versions: Vec<String> = report
            .firmware
            .iter()
            .map(|(version, devices)| format!("{version}: {devices}"))
            .collect();
        println!(
            "firmware jobs: {} succeeded, {} failed, {} rejected; devices per version: {}",
            report.jobs.succeeded,
            report.jobs.failed,
            report.jobs.rejected,
            versions.join(", ")
        );
    }
    if let Some(path) = &cli.report {
        std::fs::write(path, serde_json::to_vec_pretty(&report)?)?;
    }
    if let Some(path) = &cli.labels {
        let mut file = std::io::BufWriter::new(std::fs::File::create(path)?);
        for label in &labels {
            serde_json::to_writer(&mut file, label)?;
            file.write_all(b"\n")?;
        }
    }
    if report.acked < report.sent {
        bail!(
            "{} of {} messages were not acknowledged",
            report.sent - report.acked,
            report.sent
        );
    }
    Ok(())
}

/// A base64 Ed25519 public key (the raw 32 bytes) from `path`.
fn read_public_key(path: &std::path::Path) -> Result<String> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let key = text.trim().to_owned();
    match STANDARD.decode(&key) {
        Ok(raw) if raw.len() == 32 => Ok(key),
        _ => bail!(
            "{}: expected base64 of a raw 32-byte Ed25519 public key",
            path.display()
        ),
    }
}
