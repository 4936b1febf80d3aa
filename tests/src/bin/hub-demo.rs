//! The demo's main job: a device registered through the IoT API connects to Mosquitto
//! with its own X.509 certificate, publishes telemetry, and the message is read back
//! from the raw Kinesis stream, where the topic rule put it. Then a simulated fleet runs
//! through the whole pipeline: the accounting is printed, and the alerts its anomaly
//! episodes raised are read back from an SQS queue subscribed to the alert topic.

use std::time::{Duration, Instant};

use anyhow::Result;
use base64::Engine as _;
use hub_detection::{rules_table::DynamoRules, RuleScope, ThresholdRule};
use hub_e2e::{
    accounting,
    alert_inbox::{match_episodes, AlertInbox},
    drive, find_record, run_fleet, unique, FleetRun, Stack,
};
use hub_events::{Envelope, RawTelemetry, Severity};
use hub_sim::script::{DeviceType, Faults};
use rumqttc::QoS;

#[tokio::main]
async fn main() -> Result<()> {
    let stack = Stack::from_env().await?;
    let device_id = unique("demo-sensor");

    println!("1. Registering device {device_id}: thing, certificate from the device's CSR, policy");
    let device = stack.register_device(&device_id).await?;
    println!("   certificate {}", device.certificate_id);

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

    fleet(&stack).await
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
    };
    // One threshold rule per device type, which the simulator's anomalies break, and a
    // queue subscribed to the alert topic, as an operator's integration would be.
    let rules = DynamoRules {
        client: aws_sdk_dynamodb::Client::new(&stack.aws.sdk),
        table: stack.output("AlertRulesTableName").to_owned(),
    };
    for device_type in DeviceType::ALL {
        let rule = ThresholdRule::new(
            format!("demo-{}", device_type.name()),
            RuleScope::DeviceType(device_type.name().to_owned()),
            device_type.anomaly_condition(),
            Severity::Warning,
        )?;
        rules.put(&rule).await.map_err(anyhow::Error::msg)?;
    }
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

    alerts(&run, &inbox, &prefix).await
}

async fn alerts(run: &FleetRun, inbox: &AlertInbox, prefix: &str) -> Result<()> {
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
        |r| r.starts_with("demo-"),
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
    println!(
        "   z-score: {z_scores} alerts (episodes before a series has 30 readings are not judged)"
    );
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
