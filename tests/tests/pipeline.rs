//! The telemetry pipeline end to end on the local stack: simulated devices with their own
//! certificates publish through Mosquitto, the bridge puts the messages on the raw stream,
//! the normalizer and the storage stage run as Lambdas in the emulator. With 5% malformed,
//! 2% duplicated, out-of-order and clock-skewed messages, every message is accounted for
//! exactly, and every dead letter carries its reason and the original bytes.

use std::{collections::BTreeMap, time::Duration};

use aws_sdk_dynamodb::types::AttributeValue;
use hub_e2e::{accounting, unique, Stack};
use hub_sim::{
    run::{run, Endpoint},
    script::{device_type_for, script, Faults},
};

#[tokio::test(flavor = "multi_thread")]
async fn every_message_is_stored_deduplicated_or_dead_lettered_with_a_reason() {
    let stack = Stack::from_env().await.unwrap();
    // Other tests' messages must be through the pipeline before the baseline is taken.
    let before = accounting::wait_until_drained(&stack, Duration::from_secs(120))
        .await
        .unwrap();

    let prefix = unique("pipe");
    let faults = Faults {
        malformed: 0.05,
        duplicate: 0.02,
        out_of_order: 0.03,
        clock_skew: 0.03,
        anomaly: 0.01,
        heartbeat_every: 10,
    };
    let start = chrono::Utc::now();
    let rate = 400.0;
    let devices = 24;
    let interval = Duration::from_secs_f64(devices as f64 / rate);
    let mut fleet = Vec::new();
    for index in 0..devices {
        let device_id = format!("{prefix}-{index:02}");
        let device = stack.register_device(&device_id).await.unwrap();
        let tick = chrono::Duration::from_std(interval).unwrap();
        fleet.push((
            device,
            script(
                &device_id,
                device_type_for(index),
                60,
                &faults,
                start,
                tick,
                index as u64,
            ),
        ));
    }
    let endpoint = Endpoint {
        host: stack.mqtt_host.clone(),
        port: stack.mqtt_port,
        ca_pem: stack.ca_pem.clone(),
    };
    let report = run(&endpoint, fleet, interval, indicatif::ProgressBar::hidden())
        .await
        .unwrap();
    let expected = &report.expected;
    assert_eq!(
        report.acked, report.sent,
        "the broker acknowledged every publish"
    );
    assert_eq!(report.sent, expected.messages);
    assert!(
        expected.dead_lettered > 0 && expected.deduplicated > 0 && expected.clock_skewed > 0,
        "{expected:?}"
    );

    let after = accounting::wait_until_drained(&stack, Duration::from_secs(180))
        .await
        .unwrap();
    let counts = after.since(&before);
    println!(
        "sent {} messages; the pipeline counted {counts:#?}",
        report.sent
    );
    assert!(
        counts.balances(),
        "received = stored + deduplicated + dead-lettered + dropped: {counts:?}"
    );
    assert_eq!(counts.received, report.sent);
    assert_eq!(counts.stored, expected.stored);
    assert_eq!(counts.deduplicated, expected.deduplicated);
    assert_eq!(counts.dead_lettered_total(), expected.dead_lettered);
    assert_eq!(
        counts.dropped,
        BTreeMap::from([("heartbeat".to_owned(), expected.heartbeats)])
    );
    assert_eq!(counts.clock_skew_corrected, expected.clock_skewed);
    assert_eq!(counts.readings_stored, expected.stored);
    assert_eq!(counts.rows_written, expected.rows);
    assert_eq!(counts.store_dead_lettered, 0);

    // The stores agree with the counters: one hot-store row per metric and reading.
    let dynamodb = aws_sdk_dynamodb::Client::new(&stack.aws.sdk);
    let mut rows = 0;
    let mut pages = dynamodb
        .scan()
        .table_name(stack.output("TelemetryTableName"))
        .filter_expression("begins_with(device_id, :prefix)")
        .expression_attribute_values(":prefix", AttributeValue::S(prefix.clone()))
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        rows += page.unwrap().count() as u64;
    }
    assert_eq!(rows, expected.rows, "hot-store rows");

    // Every dead letter of this run names its reason and keeps the original bytes.
    let letters: Vec<_> = accounting::dead_letters(&stack)
        .await
        .unwrap()
        .into_iter()
        .filter(|l| {
            l["device_id"]
                .as_str()
                .is_some_and(|d| d.starts_with(&prefix))
        })
        .collect();
    assert_eq!(letters.len() as u64, expected.dead_lettered);
    for letter in &letters {
        assert!(
            !letter["reason"].as_str().unwrap_or_default().is_empty(),
            "{letter}"
        );
        assert!(
            !letter["detail"].as_str().unwrap_or_default().is_empty(),
            "{letter}"
        );
        assert!(
            !letter["original"].as_str().unwrap_or_default().is_empty(),
            "{letter}"
        );
        assert!(
            letter["position"]
                .as_str()
                .unwrap_or_default()
                .contains(':'),
            "{letter}"
        );
    }
    let mut by_reason = BTreeMap::<String, u64>::new();
    for letter in &letters {
        *by_reason
            .entry(letter["reason"].as_str().unwrap().to_owned())
            .or_default() += 1;
    }
    println!("dead letters by reason: {by_reason:?}");

    // The archive holds each stored reading once, under {device}/{yyyy}/{mm}/{dd}/.
    let s3 = stack.aws.s3();
    let bucket = stack.output("ArchiveBucketName");
    let mut archived = 0u64;
    let mut pages = s3
        .list_objects_v2()
        .bucket(bucket)
        .prefix(&prefix)
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        for object in page.unwrap().contents() {
            let key = object.key().unwrap();
            let parts: Vec<&str> = key.split('/').collect();
            assert_eq!(parts.len(), 5, "{key}");
            assert!(
                parts[1].len() == 4 && parts[2].len() == 2 && parts[3].len() == 2,
                "{key}"
            );
            let body = s3
                .get_object()
                .bucket(bucket)
                .key(key)
                .send()
                .await
                .unwrap()
                .body
                .collect()
                .await
                .unwrap();
            archived += body
                .into_bytes()
                .split(|b| *b == b'\n')
                .filter(|l| !l.is_empty())
                .count() as u64;
        }
    }
    assert_eq!(archived, expected.stored, "archived readings");
}
