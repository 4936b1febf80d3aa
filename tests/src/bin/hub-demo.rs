//! The demo's main job: a device registered through the IoT API connects to Mosquitto
//! with its own X.509 certificate, publishes telemetry, and the message is read back
//! from the raw Kinesis stream, where the topic rule put it. Then a simulated fleet runs
//! through the whole pipeline: the accounting is printed, and the alerts its anomaly
//! episodes raised are read back from an SQS queue subscribed to the alert topic. Then
//! the first device follows its shadow and answers commands sent through the API. Last,
//! a firmware rollout goes to a thing group of simulated devices, canary first.

use std::time::{Duration, Instant};

use anyhow::Result;
use base64::Engine as _;
use hub_e2e::admin::Role;
use hub_e2e::{
    accounting,
    alert_inbox::{match_episodes, AlertInbox},
    drive, find_record, run_fleet, unique, FleetRun, Stack,
};
use hub_events::{Envelope, RawTelemetry};
use hub_sim::script::{DeviceType, Faults};
use rumqttc::QoS;
use serde_json::json;

#[tokio::main]
async fn main() -> Result<()> {
    let stack = Stack::from_env().await?;
    let device_id = unique("demo-sensor");

    println!(
        "1. Registering device {device_id} through the admin API (Cognito token, admin role): \
         thing and registry row, then a certificate signed from the device's own CSR"
    );
    let admin = stack.admin_client(Role::Admin)?;
    admin
        .post(
            "/v1/devices",
            &json!({"device_id": device_id, "device_type": "env-sensor", "group": "demo"}),
        )
        .await?
        .ok()?;
    let (key_pem, csr) = hub_mqtt::key_and_csr(&device_id)?;
    let issued = admin
        .post(
            &format!("/v1/devices/{device_id}/certificates"),
            &json!({ "csr": csr }),
        )
        .await?
        .ok()?;
    println!(
        "   certificate {}",
        issued["certificate_id"].as_str().unwrap_or_default()
    );
    let device = hub_e2e::Device {
        id: device_id.clone(),
        certificate_id: issued["certificate_id"]
            .as_str()
            .unwrap_or_default()
            .to_owned(),
        identity: hub_mqtt::ClientIdentity {
            cert_pem: issued["certificate_pem"]
                .as_str()
                .unwrap_or_default()
                .as_bytes()
                .to_vec(),
            key_pem: key_pem.into_bytes(),
        },
    };

    println!(
        "2. Connecting to Mosquitto at {}:{} with that certificate (mutual TLS)",
        stack.mqtt_host, stack.mqtt_port
    );
    let (client, events) = stack.connect(&device.id, Some(&device.identity)).await?;
    let _incoming = drive(events);

    let topic = format!("devices/{}/telemetry", device.id);
    let payload = serde_json::json!({
        "v": 2, "seq": 1, "msg_type": "telemetry",
        "ts": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        "metrics": {"temperature": 24.1, "voltage": 3.7}, "status": "OK",
    })
    .to_string();
    println!("3. Publishing on {topic}: {payload}");
    let sent = Instant::now();
    client
        .publish(&topic, QoS::AtLeastOnce, false, payload.clone())
        .await?;

    let stream = stack.output("RawStreamName");
    let record = find_record(&stack.kinesis(), stream, Duration::from_secs(20), |r| {
        r.partition_key == device.id
    })
    .await?;
    let event = Envelope::<RawTelemetry>::from_slice(&record.data)?;
    let original = base64::engine::general_purpose::STANDARD.decode(&event.data.payload)?;
    println!(
        "4. Found on Kinesis stream {stream} after {:?}:",
        sent.elapsed()
    );
    println!(
        "   shard {}  sequence {}  partition key {}",
        record.shard_id, record.sequence_number, record.partition_key
    );
    println!(
        "   event {}  type {}  subject {}  time {}",
        event.id, event.event_type, event.subject, event.time
    );
    println!("   payload as sent: {}", String::from_utf8_lossy(&original));
    anyhow::ensure!(original == payload.as_bytes(), "payload changed on the way");
    println!(
        "OK: device -> Mosquitto (mTLS, ACL) -> bridge (rule {}) -> Kinesis",
        stack.output("TelemetryRuleName")
    );
    client.disconnect().await.ok();

    fleet(&stack).await?;
    shadow_and_commands(&stack, &device).await?;
    firmware_rollout(&stack).await
}

/// A simulated fleet through the whole path, with faults and anomaly episodes injected:
/// the accounting, then the alerts.
async fn fleet(stack: &Stack) -> Result<()> {
    let (devices, messages, rate) = (24, 80, 400.0);
    let faults = Faults {
        malformed: 0.05,
        duplicate: 0.02,
        out_of_order: 0.02,
        clock_skew: 0.02,
        anomaly: 0.02,
        heartbeat_every: 10,
        anomaly_scale: 1.0,
    };
    // One threshold rule per device type, which the simulator's anomalies break, and a
    // queue subscribed to the alert topic, as an operator's integration would be.
    let operator = stack.admin_client(Role::Operator)?;
    let mut rule_ids = Vec::new();
    for device_type in DeviceType::ALL {
        let rule = operator
            .post(
                "/v1/alerts",
                &json!({"device_type": device_type.name(), "rule": device_type.anomaly_condition(),
                        "severity": "warning"}),
            )
            .await?
            .ok()?;
        rule_ids.push(rule["rule_id"].as_str().unwrap_or_default().to_owned());
    }
    // The detector reads rules again after at most 2 s locally.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let inbox = AlertInbox::subscribe(
        stack,
        &unique("demo-alerts"),
        Some(serde_json::json!({"simulated": ["true"]})),
    )
    .await?;

    let before = accounting::wait_until_drained(stack, Duration::from_secs(60)).await?;
    let prefix = unique("demo-fleet");
    println!();
    println!(
        "5. Simulated fleet: {devices} devices ({prefix}-NN: environment sensors, DC and AC power meters, \
         legacy v1 sensors), {messages} readings each at {rate} msg/s overall, with 5% malformed, \
         2% duplicated, 2% out-of-order and 2% clock-skewed messages, and anomaly episodes"
    );
    let progress = indicatif::ProgressBar::new(0);
    let run = run_fleet(stack, &prefix, devices, messages, rate, &faults, progress).await?;
    let report = &run.report;
    println!(
        "   sent {} messages, {} acknowledged by the broker, in {:.1} s ({:.0} msg/s)",
        report.sent, report.acked, report.seconds, report.rate
    );
    let waited = Instant::now();
    let counts = accounting::wait_until_drained(stack, Duration::from_secs(180))
        .await?
        .since(&before);
    println!("6. Pipeline drained {:.1} s after the last publish. Accounting (from the functions' EMF metrics):", waited.elapsed().as_secs_f64());
    let e = &report.expected;
    println!(
        "   received        {:>6}   (sent {})",
        counts.received, report.sent
    );
    println!(
        "   stored          {:>6}   (expected {})",
        counts.stored, e.stored
    );
    println!(
        "   deduplicated    {:>6}   (expected {})",
        counts.deduplicated, e.deduplicated
    );
    println!(
        "   dead-lettered   {:>6}   (expected {}) {:?}",
        counts.dead_lettered_total(),
        e.dead_lettered,
        counts.dead_lettered
    );
    println!(
        "   dropped         {:>6}   (expected {} heartbeats) {:?}",
        counts.dropped_total(),
        e.heartbeats,
        counts.dropped
    );
    println!(
        "   clock-corrected {:>6}   (expected {})",
        counts.clock_skew_corrected, e.clock_skewed
    );
    let balanced = counts.balances();
    println!(
        "   received = stored + deduplicated + dead-lettered + dropped: {} = {} + {} + {} + {} -> {}",
        counts.received, counts.stored, counts.deduplicated, counts.dead_lettered_total(), counts.dropped_total(),
        if balanced { "balanced" } else { "NOT BALANCED" }
    );
    let rows = accounting::hot_store_rows(stack, &prefix).await?;
    let archive = accounting::archive(stack, &prefix).await?;
    println!("7. Stores: {rows} hot-store rows (expected {}), {} readings archived in {} S3 objects under {{device}}/{{yyyy}}/{{mm}}/{{dd}}/", e.rows, archive.readings, archive.objects);
    let exact = balanced
        && counts.received == report.sent
        && counts.stored == e.stored
        && counts.deduplicated == e.deduplicated
        && counts.dead_lettered_total() == e.dead_lettered
        && rows == e.rows
        && archive.readings == e.stored;
    anyhow::ensure!(exact, "the accounting does not match what the fleet sent");
    println!("   OK: nothing lost, nothing doubled");

    alerts(&run, &inbox, &prefix, &rule_ids).await?;
    admin_api(stack, &run, &prefix).await
}

async fn alerts(
    run: &FleetRun,
    inbox: &AlertInbox,
    prefix: &str,
    rule_ids: &[String],
) -> Result<()> {
    println!(
        "8. Anomalies: the simulator injected {} labelled episodes; alerts arriving on SQS queue {}:",
        run.labels.len(),
        inbox.queue_url
    );
    let alerts: Vec<_> = inbox
        .receive_until_quiet(Duration::from_secs(8), Duration::from_secs(120))
        .await?
        .into_iter()
        .filter(|a| a.data.device_id.starts_with(prefix))
        .collect();
    for alert in alerts.iter().take(8) {
        let a = &alert.data;
        println!(
            "   [{:?}] {}  {:<26} window {}  {}",
            a.severity,
            a.device_id,
            a.rule_id,
            a.window.start.format("%H:%M"),
            a.summary
        );
    }
    if alerts.len() > 8 {
        println!("   … {} more", alerts.len() - 8);
    }
    let threshold = match_episodes(
        &run.labels,
        &alerts,
        |r| rule_ids.iter().any(|id| id == r),
        2,
        chrono::Duration::minutes(5),
    );
    let z_scores = alerts
        .iter()
        .filter(|a| a.data.rule_id.starts_with("z_score:"))
        .count();
    println!(
        "   threshold rules: {} episodes of 2+ readings began in {} (device, 5-minute window) pairs; {} of those raised exactly one alert, {} duplicates, {} alerts outside an episode",
        threshold.episodes, threshold.windows, threshold.alerted_once, threshold.duplicates, threshold.outside
    );
    println!("   z-score: {z_scores} alerts (a series is judged once it has 100 readings)");
    if threshold.alerted_once != threshold.windows {
        for label in run.labels.iter().take(5) {
            println!(
                "   label: {} {} from {} to {} ({} readings)",
                label.device_id, label.metric, label.start, label.end, label.readings
            );
        }
        for alert in alerts.iter().take(5) {
            println!(
                "   alert: {} {} window {} raised at {}",
                alert.data.device_id,
                alert.data.rule_id,
                alert.data.window.start,
                alert.data.raised_at
            );
        }
    }
    anyhow::ensure!(
        threshold.duplicates == 0
            && threshold.outside == 0
            && threshold.alerted_once == threshold.windows,
        "alerts do not match the injected episodes: one per device, rule and window"
    );
    println!("   OK: one alert per device, rule and window, none doubled");
    Ok(())
}

/// The fleet seen through the admin API, role by role.
async fn admin_api(stack: &Stack, run: &FleetRun, prefix: &str) -> Result<()> {
    let viewer = stack.admin_client(Role::Viewer)?;
    let operator = stack.admin_client(Role::Operator)?;
    let device = run
        .labels
        .first()
        .map(|l| l.device_id.clone())
        .unwrap_or_else(|| format!("{prefix}-00"));
    println!("9. The admin API (viewer and operator tokens):");
    let start = (chrono::Utc::now() - chrono::Duration::minutes(20)).to_rfc3339();
    let end = (chrono::Utc::now() + chrono::Duration::minutes(1)).to_rfc3339();
    let metric = run
        .labels
        .first()
        .map(|l| l.metric.to_string())
        .unwrap_or_else(|| "temperature".to_owned());
    let url = reqwest::Url::parse_with_params(
        "http://x/v1/query",
        [
            ("device_id", device.as_str()),
            ("metric", metric.as_str()),
            ("start", start.as_str()),
            ("end", end.as_str()),
            ("max_points", "16"),
        ],
    )?;
    let history = viewer
        .get(&format!(
            "{}?{}",
            url.path(),
            url.query().unwrap_or_default()
        ))
        .await?
        .ok()?;
    let values: Vec<String> = history["points"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|p| p["value"].as_f64())
        .map(|v| format!("{v:.1}"))
        .collect();
    println!(
        "   GET /v1/query {device} {metric} (last 20 min, max_points 16): {} readings in range ({}), min/max-downsampled to {}: {}",
        history["points_in_range"],
        history["source"].as_str().unwrap_or_default(),
        values.len(),
        values.join(" ")
    );
    let open = viewer
        .get(&format!("/v1/alerts?state=open&device_id={device}"))
        .await?
        .ok()?;
    let open = open["alerts"].as_array().cloned().unwrap_or_default();
    println!(
        "   GET /v1/alerts?state=open&device_id={device}: {} open",
        open.len()
    );
    if let Some(alert_id) = open.first().and_then(|a| a["alert_id"].as_str()) {
        let acked = operator
            .post(&format!("/v1/alerts/{alert_id}/ack"), &json!({}))
            .await?
            .ok()?;
        println!(
            "   POST /v1/alerts/{alert_id}/ack as operator: {}",
            acked["state"].as_str().unwrap_or_default()
        );
    }
    let refused = viewer
        .put(&format!("/v1/devices/{device}/quarantine"))
        .await?;
    println!(
        "   PUT /v1/devices/{device}/quarantine as viewer: {} (the role cannot change devices)",
        refused.status
    );
    anyhow::ensure!(refused.status == 403, "a viewer could quarantine a device");
    println!(
        "   OK: every change above is in the audit log table {}",
        stack.output("AuditLogTableName")
    );
    Ok(())
}

/// The first device again, now running the simulator's device agent: it follows its
/// shadow and answers commands, all sent through the API as an operator.
async fn shadow_and_commands(stack: &Stack, device: &hub_e2e::Device) -> Result<()> {
    println!(
        "10. Shadow and commands for {}: the device is on Mosquitto; the Shadow service is the \
         emulator's, reached through the bridge's relay",
        device.id
    );
    let (client, events) = stack.connect(&device.id, Some(&device.identity)).await?;
    let mut incoming = drive(events);
    let mut agent = hub_sim::agent::Agent::new(&device.id);
    for topic in agent.subscriptions() {
        client.subscribe(topic, QoS::AtLeastOnce).await?;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let responder = client.clone();
    let agent_task = tokio::spawn(async move {
        while let Some(message) = incoming.recv().await {
            for (topic, body) in agent.on_message(&message.topic, &message.payload) {
                if responder
                    .publish(topic, QoS::AtLeastOnce, false, body)
                    .await
                    .is_err()
                {
                    return;
                }
            }
        }
    });

    let operator = stack.admin_client(Role::Operator)?;
    let until_settled = async |path: &str, settled: &dyn Fn(&serde_json::Value) -> bool| {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let value = operator.get(path).await?.ok()?;
            if settled(&value) {
                return anyhow::Ok(value);
            }
            anyhow::ensure!(Instant::now() < deadline, "not settled in 20 s: {value}");
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    };
    let shadow_path = format!("/v1/devices/{}/shadow", device.id);
    let desired = json!({"interval": 15, "led": "on"});
    let set = operator
        .patch(&shadow_path, &json!({ "desired": desired }))
        .await?
        .ok()?;
    println!(
        "   PATCH {shadow_path} desired {desired}: version {}, delta {}",
        set["version"], set["delta"]
    );
    let shadow = until_settled(&shadow_path, &|s| s["delta"].is_null()).await?;
    println!(
        "   the device got the delta, applied it and reported: reported {}, no delta, version {}",
        shadow["reported"], shadow["version"]
    );
    let commands_path = format!("/v1/devices/{}/commands", device.id);
    for (name, params) in [
        ("set_interval", json!({"seconds": 5})),
        ("selfdestruct", json!({})),
    ] {
        let sent = operator
            .post(
                &commands_path,
                &json!({"name": name, "params": params, "ttl_seconds": 30}),
            )
            .await?
            .ok()?;
        let path = format!(
            "{commands_path}/{}",
            sent["command_id"].as_str().unwrap_or_default()
        );
        let answered = until_settled(&path, &|c| c["status"] != "sent").await?;
        println!(
            "   POST {commands_path} {name} {params}: {} {}",
            answered["status"].as_str().unwrap_or_default(),
            answered["result"]
        );
    }
    agent_task.abort();
    client.disconnect().await.ok();
    println!("   OK: desired state reached the device and came back reported; each command answered once");
    Ok(())
}

/// A firmware rollout through the API to a fresh thing group of simulated devices, which
/// take the job over MQTT (download, SHA-256 and signature check, install, report): the
/// canary first, then the rest, followed until it ends; then the registry and the
/// devices say which version they run.
async fn firmware_rollout(stack: &Stack) -> Result<()> {
    const DEVICES: usize = 50;
    const DEVICE_TYPE: &str = "env-sensor";
    let admin = stack.admin_client(Role::Admin)?;
    let viewer = stack.admin_client(Role::Viewer)?;
    let group = unique("demo-ota");
    let base = unique("1.0.0");
    let next = unique("1.1.0");
    let seed = 11;
    println!();
    println!(
        "11. Firmware rollout: {DEVICES} environment sensors registered through the API in thing \
         group {group} on firmware {base}, simulated devices that take IoT Jobs over MQTT"
    );
    let started = Instant::now();
    let devices =
        hub_e2e::ota::register_group(&admin, &group, &group, DEVICES, DEVICE_TYPE, &base).await?;
    println!(
        "   registered {} devices with their certificates in {:.1} s",
        devices.len(),
        started.elapsed().as_secs_f64()
    );
    let key = stack.firmware_signing_key()?;
    for (i, version) in [&base, &next].into_iter().enumerate() {
        let artifact = admin
            .add_firmware(
                version,
                DEVICE_TYPE,
                hub_e2e::ota::image(seed + i as u64, 64 * 1024),
                &key,
                Duration::from_secs(30),
            )
            .await?;
        println!(
            "   firmware {version}: 64 KiB image, SHA-256 signed with Ed25519, uploaded through \
             a presigned URL, checked by the hub: {}",
            artifact["status"].as_str().unwrap_or_default()
        );
        anyhow::ensure!(
            artifact["status"] == "ready",
            "firmware {version} is not ready: {artifact}"
        );
    }
    let connecting = Instant::now();
    let fleet = hub_e2e::ota::serve(stack, devices, DEVICE_TYPE, &base, 0.0, seed).await?;
    println!(
        "   {DEVICES} simulated devices on {base} connected and subscribed to their job topics \
         in {:.1} s",
        connecting.elapsed().as_secs_f64()
    );

    let begun = Instant::now();
    let created = admin
        .post(
            "/v1/ota/rollout",
            &json!({"firmware_version": next, "target": group,
                    "policy": {"canary_percent": 20}}),
        )
        .await?
        .ok()?;
    let id = created["rollout_id"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let policy = &created["policy"];
    println!(
        "   POST /v1/ota/rollout {next} to {group} with a 20% canary: rollout {id}, IoT Job {}",
        created["job_id"].as_str().unwrap_or_default()
    );
    println!(
        "   the canary of {} devices goes first, the other {} once it succeeded (at most {} a \
         minute); the job aborts if {}% of the finished devices fail",
        created["canary_size"],
        created["device_count"].as_u64().unwrap_or(0)
            - created["canary_size"].as_u64().unwrap_or(0),
        policy["max_per_minute"],
        policy["abort_failure_percent"].as_f64().unwrap_or_default()
    );
    println!(
        "   (the local emulator releases rollout batches once a minute, so the rest of the \
         group follows the canary about a minute later)"
    );
    let mut last = None;
    let done = admin
        .watch_rollout(
            &id,
            Duration::from_millis(500),
            Some(Duration::from_secs(240)),
            |r| {
                let count = |s| hub_admin::rollout::count(r, s);
                let now = (
                    count("succeeded"),
                    count("failed") + count("timed_out") + count("rejected"),
                    count("in_progress"),
                    count("queued") + count("retry_scheduled"),
                );
                if last != Some(now) {
                    println!(
                        "   {:>5.1} s  succeeded {:>2}  failed {:>2}  installing {:>2}  queued {:>2}",
                        begun.elapsed().as_secs_f64(),
                        now.0,
                        now.1,
                        now.2,
                        now.3
                    );
                    last = Some(now);
                }
            },
        )
        .await?;
    let took = begun.elapsed();
    println!(
        "   rollout {} after {:.1} s: {}",
        done["status"].as_str().unwrap_or_default(),
        took.as_secs_f64(),
        hub_admin::rollout::device_summary(&done)
    );
    hub_admin::rollout::completed(&done)?;

    let mut registry = 0;
    let mut listed = 0;
    let mut page_token: Option<String> = None;
    loop {
        let mut path = format!("/v1/devices?group={group}&limit=100");
        if let Some(token) = &page_token {
            path.push_str(&format!("&next_token={token}"));
        }
        let page = viewer.get(&path).await?.ok()?;
        for device in page["devices"].as_array().into_iter().flatten() {
            listed += 1;
            if device["firmware_version"] == next.as_str() {
                registry += 1;
            }
        }
        match page["next_token"].as_str() {
            Some(token) => page_token = Some(token.to_owned()),
            None => break,
        }
    }
    let running = fleet
        .firmware_versions()
        .values()
        .filter(|v| **v == next)
        .count();
    let report = fleet.stop().await?;
    println!(
        "   GET /v1/devices?group={group}: {registry} of {listed} registry devices report {next}; \
         {running} of {DEVICES} simulated devices run it ({} jobs they reported succeeded, {} failed)",
        report.jobs.succeeded,
        report.jobs.failed + report.jobs.rejected
    );
    anyhow::ensure!(
        registry == DEVICES && listed == DEVICES && running == DEVICES,
        "not every device took {next}: registry {registry} of {listed}, devices {running} of {DEVICES}"
    );
    println!("   OK: canary first, then the rest; every device and its registry row on {next}");
    Ok(())
}
