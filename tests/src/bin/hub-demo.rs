//! The demo's main job: a device registered through the IoT API connects to Mosquitto
//! with its own X.509 certificate, publishes telemetry, and the message is read back
//! from the raw Kinesis stream, where the topic rule put it. Then a simulated fleet runs
//! through the whole pipeline and the accounting is printed.

use std::time::{Duration, Instant};

use anyhow::Result;
use base64::Engine as _;
use hub_e2e::{accounting, drive, find_record, run_fleet, unique, Stack};
use hub_events::{Envelope, RawTelemetry};
use hub_sim::script::Faults;
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

/// A simulated fleet through the whole path, with faults injected, and the accounting.
async fn fleet(stack: &Stack) -> Result<()> {
    let (devices, messages, rate) = (24, 50, 400.0);
    let faults = Faults {
        malformed: 0.05,
        duplicate: 0.02,
        out_of_order: 0.02,
        clock_skew: 0.02,
        anomaly: 0.01,
        heartbeat_every: 10,
    };
    let before = accounting::wait_until_drained(stack, Duration::from_secs(60)).await?;
    let prefix = unique("demo-fleet");
    println!();
    println!(
        "5. Simulated fleet: {devices} devices ({prefix}-NN: environment sensors, DC and AC power meters, \
         legacy v1 sensors), {messages} readings each at {rate} msg/s overall, with 5% malformed, \
         2% duplicated, 2% out-of-order and 2% clock-skewed messages"
    );
    let progress = indicatif::ProgressBar::new(0);
    let report = run_fleet(stack, &prefix, devices, messages, rate, &faults, progress).await?;
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
    println!("OK: nothing lost, nothing doubled");
    Ok(())
}
