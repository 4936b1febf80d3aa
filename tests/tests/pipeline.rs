//! The telemetry pipeline end to end on the local stack: simulated devices with their own
//! certificates publish through Mosquitto, the bridge puts the messages on the raw stream,
//! the normalizer and the storage stage run as Lambdas in the emulator. With 5% malformed,
//! 2% duplicated, out-of-order and clock-skewed messages, every message is accounted for
//! exactly, and every dead letter carries its reason and the original bytes.

use std::{collections::BTreeMap, time::Duration};

use hub_e2e::{accounting, run_fleet, unique, Stack};
use hub_sim::script::Faults;

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
        anomaly_scale: 1.0,
    };
    let report = run_fleet(
        &stack,
        &prefix,
        24,
        60,
        400.0,
        &faults,
        indicatif::ProgressBar::hidden(),
    )
    .await
    .unwrap()
    .report;
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
        BTreeMap::from([("heartbeat".into(), expected.heartbeats)])
    );
    assert_eq!(counts.clock_skew_corrected, expected.clock_skewed);
    assert_eq!(counts.readings_stored, expected.stored);
    assert_eq!(counts.rows_written, expected.rows);
    assert_eq!(counts.store_dead_lettered, 0);

    // The stores agree with the counters: one hot-store row per metric and reading.
    assert_eq!(
        accounting::hot_store_rows(&stack, &prefix).await.unwrap(),
        expected.rows,
        "hot-store rows"
    );

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
    let mut by_reason = BTreeMap::<std::borrow::Cow<str>, u64>::new();
    for letter in &letters {
        *by_reason
            .entry(letter["reason"].as_str().unwrap().to_owned().into())
            .or_default() += 1;
    }
    println!("dead letters by reason: {by_reason:?}");
    assert_eq!(
        by_reason, counts.dead_lettered,
        "the dead-letter store and the metrics agree"
    );

    // A simulated device's newest reading is served, marked as simulation data.
    let viewer = stack.admin_client(hub_e2e::admin::Role::Viewer).unwrap();
    let latest = viewer
        .get(&format!("/v1/devices/{prefix}-00/latest"))
        .await
        .unwrap();
    assert_eq!(latest.status, 200, "{}", latest.body);
    assert_eq!(latest.data_source.as_deref(), Some("simulation"));
    assert!(
        latest.body["metrics"]
            .as_object()
            .is_some_and(|m| !m.is_empty()),
        "{}",
        latest.body
    );

    // The archive holds each stored reading once, under {device}/{yyyy}/{mm}/{dd}/.
    let archive = accounting::archive(&stack, &prefix).await.unwrap();
    assert_eq!(archive.readings, expected.stored, "archived readings");
    assert!(
        archive.objects < archive.readings,
        "readings are batched into objects: {archive:?}"
    );
}
