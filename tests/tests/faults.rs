//! The pipeline under the faults a deployment meets, checked against what the simulator
//! sent and what the stores hold, not against the functions' own word: the bridge
//! crashes in the middle of a run and comes back (the broker redelivers what it had not
//! acknowledged, some of it already on the stream), and the emulator freezes for seconds
//! (every AWS call waits), and the emulator restarts (every AWS call is refused until it
//! is back on its saved state). Afterwards every message is accounted for exactly, and no
//! reading is stored twice.

use std::time::Duration;

use hub_e2e::{accounting, run_fleet, unique, Stack};
use hub_sim::script::Faults;

/// The faults take the whole stack down: one run at a time.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

#[tokio::test(flavor = "multi_thread")]
async fn a_bridge_crash_and_a_frozen_emulator_lose_and_double_nothing() {
    let _alone = ONE_AT_A_TIME.lock().await;
    let stack = Stack::from_env().await.unwrap();
    let before = accounting::wait_until_drained(&stack, Duration::from_secs(180))
        .await
        .unwrap();
    let prefix = unique("faults");
    // Every fourth device speaks v1 (no seq): its redelivered copies must be caught too.
    let faults = Faults {
        duplicate: 0.02,
        out_of_order: 0.02,
        heartbeat_every: 10,
        ..Faults::default()
    };
    let run = run_fleet(
        &stack,
        &prefix,
        20,
        100,
        150.0,
        &faults,
        indicatif::ProgressBar::hidden(),
    );
    let chaos = async {
        tokio::time::sleep(Duration::from_secs(3)).await;
        stack.freeze_emulator(Duration::from_secs(6)).await.unwrap();
        // Just after the thaw the bridge's backlog of puts completes in a burst: a crash
        // now leaves messages on the stream that the broker still counts unacknowledged.
        tokio::time::sleep(Duration::from_millis(300)).await;
        stack
            .crash_and_restart_bridge(Duration::from_secs(3))
            .await
            .unwrap();
    };
    let (report, ()) = tokio::join!(run, chaos);
    let report = report.unwrap().report;
    let expected = &report.expected;
    assert_eq!(
        report.acked, report.sent,
        "the broker acknowledged every publish"
    );

    let after = accounting::wait_until_drained(&stack, Duration::from_secs(240))
        .await
        .unwrap();
    let counts = after.since(&before);
    // What entered the raw stream for this run, counted on the stream itself: at least
    // every message sent, more where the broker redelivered.
    let entered = accounting::records_for(&stack.kinesis(), stack.output("RawStreamName"), &prefix)
        .await
        .unwrap();
    let redelivered = entered - report.sent;
    println!(
        "sent {}, entered the stream {entered} ({redelivered} redelivered); counted {counts:#?}",
        report.sent
    );
    assert!(entered >= report.sent, "messages lost before the stream");
    assert_eq!(
        counts.received, entered,
        "a record entered but got no outcome"
    );
    assert!(counts.balances(), "{counts:?}");
    assert_eq!(counts.stored, expected.stored, "{counts:?}");
    assert_eq!(
        counts.deduplicated,
        expected.deduplicated + redelivered,
        "every redelivered copy is a duplicate, and only those"
    );
    assert_eq!(counts.dead_lettered_total(), 0, "{counts:?}");
    // The stores: one hot-store row per metric of each reading, one archive line each.
    assert_eq!(
        accounting::hot_store_rows(&stack, &prefix).await.unwrap(),
        expected.rows,
        "hot-store rows"
    );
    let archive = accounting::archive(&stack, &prefix).await.unwrap();
    assert_eq!(archive.readings, expected.stored, "archived readings");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_emulator_restart_in_the_middle_of_a_run_loses_and_doubles_nothing() {
    let _alone = ONE_AT_A_TIME.lock().await;
    let stack = Stack::from_env().await.unwrap();
    let before = accounting::wait_until_drained(&stack, Duration::from_secs(180))
        .await
        .unwrap();
    let prefix = unique("restart");
    let faults = Faults {
        duplicate: 0.02,
        heartbeat_every: 10,
        ..Faults::default()
    };
    let run = run_fleet(
        &stack,
        &prefix,
        20,
        100,
        150.0,
        &faults,
        indicatif::ProgressBar::hidden(),
    );
    let restart = async {
        tokio::time::sleep(Duration::from_secs(4)).await;
        let started = std::time::Instant::now();
        stack.restart_emulator().await.unwrap();
        started.elapsed()
    };
    let (report, down) = tokio::join!(run, restart);
    let report = report.unwrap().report;
    let expected = &report.expected;
    assert_eq!(
        report.acked, report.sent,
        "the broker acknowledged every publish"
    );

    let after = accounting::wait_until_drained(&stack, Duration::from_secs(240))
        .await
        .unwrap();
    let counts = after.since(&before);
    let entered = accounting::records_for(&stack.kinesis(), stack.output("RawStreamName"), &prefix)
        .await
        .unwrap();
    println!(
        "emulator away {down:?}; sent {}, entered the stream {entered}; counted {counts:#?}",
        report.sent
    );
    assert!(entered >= report.sent, "messages lost before the stream");
    assert!(counts.balances(), "{counts:?}");
    assert_eq!(counts.dead_lettered_total(), 0, "{counts:?}");
    assert_eq!(
        accounting::hot_store_rows(&stack, &prefix).await.unwrap(),
        expected.rows,
        "hot-store rows"
    );
    let archive = accounting::archive(&stack, &prefix).await.unwrap();
    assert_eq!(archive.readings, expected.stored, "archived readings");
}
