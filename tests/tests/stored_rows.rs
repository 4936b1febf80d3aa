//! What the stores hold after a device's awkward traffic, read from the tables
//! themselves: a late reading stored at its own time without moving the latest value
//! back, a reading from a clock far off stored at its receive time and flagged, and a
//! device over its rate limit keeping exactly its allowance with the rest dead-lettered.

use std::time::{Duration, Instant};

use aws_sdk_dynamodb::types::AttributeValue;
use chrono::{TimeDelta, Utc};
use hub_e2e::{
    accounting,
    admin::{provision, Role},
    drive, unique, Stack,
};
use rumqttc::{AsyncClient, QoS};
use serde_json::{json, Value};

type Item = std::collections::HashMap<String, AttributeValue>;

fn number(item: &Item, name: &str) -> Option<i64> {
    item.get(name)?.as_n().ok()?.parse().ok()
}

async fn temperature_rows(stack: &Stack, device: &str) -> Vec<Item> {
    aws_sdk_dynamodb::Client::new(&stack.aws.sdk)
        .query()
        .table_name(stack.output("TelemetryTableName"))
        .key_condition_expression("series = :s")
        .expression_attribute_values(":s", AttributeValue::S(format!("{device}#temperature")))
        .send()
        .await
        .unwrap()
        .items
        .unwrap_or_default()
}

async fn latest(stack: &Stack, device: &str) -> Option<Item> {
    aws_sdk_dynamodb::Client::new(&stack.aws.sdk)
        .get_item()
        .table_name(stack.output("LatestTableName"))
        .key("device_id", AttributeValue::S(device.to_owned()))
        .consistent_read(true)
        .send()
        .await
        .unwrap()
        .item
}

async fn rows_until(stack: &Stack, device: &str, count: usize) -> Vec<Item> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let rows = temperature_rows(stack, device).await;
        if rows.len() >= count {
            return rows;
        }
        assert!(
            Instant::now() < deadline,
            "{} of {count} rows after 60 s",
            rows.len()
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

async fn send(device: &AsyncClient, id: &str, payload: Value) {
    device
        .publish(
            format!("devices/{id}/telemetry"),
            QoS::AtLeastOnce,
            false,
            payload.to_string(),
        )
        .await
        .unwrap();
}

fn reading(seq: u64, ts: chrono::DateTime<Utc>, temperature: f64) -> Value {
    json!({"v": 2, "seq": seq, "msg_type": "telemetry", "ts": ts.to_rfc3339(),
           "metrics": {"temperature": temperature}, "status": "OK"})
}

#[tokio::test(flavor = "multi_thread")]
async fn late_and_skewed_readings_are_stored_at_their_time_and_latest_only_moves_forward() {
    let stack = Stack::from_env().await.unwrap();
    let admin = stack.admin_client(Role::Admin).unwrap();
    let id = unique("rows");
    let (_, identity) = provision(&admin, &id, "env-sensor").await;
    let (device, events) = stack.connect(&id, Some(&identity)).await.unwrap();
    let _incoming = drive(events);
    let t0 = Utc::now() - TimeDelta::seconds(60);
    let ms = |t: chrono::DateTime<Utc>| t.timestamp_millis();

    // Seq 2 first, then seq 1 late, then seq 2 again (a resend).
    send(&device, &id, reading(2, t0 + TimeDelta::seconds(2), 20.2)).await;
    send(&device, &id, reading(1, t0 + TimeDelta::seconds(1), 20.1)).await;
    send(&device, &id, reading(2, t0 + TimeDelta::seconds(2), 20.2)).await;
    let rows = rows_until(&stack, &id, 2).await;
    let mut times: Vec<i64> = rows.iter().filter_map(|r| number(r, "ts")).collect();
    times.sort();
    assert_eq!(
        times,
        [
            ms(t0 + TimeDelta::seconds(1)),
            ms(t0 + TimeDelta::seconds(2))
        ]
    );
    assert!(rows.iter().all(|r| !r.contains_key("clock_skew_corrected")));
    let deadline = Instant::now() + Duration::from_secs(30);
    let newest = loop {
        if let Some(item) = latest(&stack, &id).await {
            break item;
        }
        assert!(Instant::now() < deadline, "no latest value");
        tokio::time::sleep(Duration::from_millis(300)).await;
    };
    // The late seq 1 arrived after seq 2: the latest value stays seq 2's.
    assert_eq!(number(&newest, "ts"), Some(ms(t0 + TimeDelta::seconds(2))));
    assert_eq!(number(&newest, "seq"), Some(2));

    // A clock a month ahead: stored at its receive time, flagged.
    let sent_at = Utc::now();
    send(
        &device,
        &id,
        reading(3, sent_at + TimeDelta::days(30), 20.3),
    )
    .await;
    let rows = rows_until(&stack, &id, 3).await;
    let skewed = rows
        .iter()
        .find(|r| number(r, "seq") == Some(3))
        .expect("the skewed reading is stored");
    assert_eq!(
        skewed.get("clock_skew_corrected"),
        Some(&AttributeValue::Bool(true))
    );
    let stored_at = number(skewed, "ts").unwrap();
    assert!(
        (ms(sent_at) - 5_000..=ms(Utc::now()) + 5_000).contains(&stored_at),
        "stored at {stored_at}, sent at {}",
        ms(sent_at)
    );
    let newest = latest(&stack, &id).await.unwrap();
    assert_eq!(number(&newest, "seq"), Some(3), "latest moves forward");
    assert_eq!(rows.len(), 3, "the resend made no row");
    let _ = device.disconnect().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_device_over_its_rate_limit_keeps_its_allowance_and_the_rest_is_dead_lettered() {
    let stack = Stack::from_env().await.unwrap();
    let admin = stack.admin_client(Role::Admin).unwrap();
    let id = unique("chatty");
    let (_, identity) = provision(&admin, &id, "env-sensor").await;
    let (device, events) = stack.connect(&id, Some(&identity)).await.unwrap();
    let _incoming = drive(events);
    // RateLimitPerMinute is 600 on the test stack: 1,300 messages in a few seconds
    // exceed it whichever minute boundaries they straddle (at most two).
    const SENT: u64 = 1_300;
    const PER_MINUTE: u64 = 600;
    let start = Utc::now() - TimeDelta::seconds(30);
    for seq in 1..=SENT {
        let ts = start + TimeDelta::milliseconds(seq as i64 * 10);
        send(&device, &id, reading(seq, ts, 21.0)).await;
    }
    let deadline = Instant::now() + Duration::from_secs(120);
    let (stored, limited) = loop {
        let stored = temperature_rows(&stack, &id).await.len() as u64;
        let limited = accounting::dead_letters(&stack)
            .await
            .unwrap()
            .into_iter()
            .filter(|l| l["device_id"] == id.as_str())
            .inspect(|l| assert_eq!(l["reason"], "rate_limited", "{l}"))
            .count() as u64;
        if stored + limited >= SENT {
            break (stored, limited);
        }
        assert!(
            Instant::now() < deadline,
            "{stored} stored + {limited} dead-lettered of {SENT}"
        );
        tokio::time::sleep(Duration::from_secs(1)).await;
    };
    println!("{SENT} sent: {stored} stored, {limited} dead-lettered as rate_limited");
    assert_eq!(
        stored + limited,
        SENT,
        "every message is stored or dead-lettered"
    );
    assert!((PER_MINUTE..=2 * PER_MINUTE).contains(&stored), "{stored}");
    assert!(limited >= SENT - 2 * PER_MINUTE, "{limited}");
    let _ = device.disconnect().await;
}
