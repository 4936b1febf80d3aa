//! The demo's main job: a device registered through the IoT API connects to Mosquitto
//! with its own X.509 certificate, publishes telemetry, and the message is read back
//! from the raw Kinesis stream, where the topic rule put it.

use std::time::{Duration, Instant};

use anyhow::Result;
use base64::Engine as _;
use hub_e2e::{drive, find_record, unique, Stack};
use hub_events::{Envelope, RawTelemetry};
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
    Ok(())
}
