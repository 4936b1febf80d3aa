//! The pipeline under the faults a deployment meets, checked against what the simulator
//! sent and what the stores hold, not against the functions' own word: the bridge
//! crashes in the middle of a run and comes back (the broker redelivers what it had not
//! acknowledged, some of it already on the stream), the emulator freezes for seconds
//! (every AWS call waits), and the emulator restarts (every AWS call is refused until it
//! is back on its saved state). Afterwards every message is accounted for, and no
//! reading is stored twice.

use std::{future::Future, time::Duration};

use hub_e2e::{accounting, accounting::Counts, run_fleet, unique, Stack};
use hub_sim::{run::RunReport, script::Faults};

/// The faults take the whole stack down: one run at a time.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// What a run under a fault came to: the simulator's report, the functions' counts for
/// the run, and how many records entered the raw stream, counted on the stream itself.
struct Run {
    report: RunReport,
    counts: Counts,
    entered: u64,
}

/// 20 devices, 100 messages each at 150 messages/s, v1 and v2 alike (every fourth device
/// speaks v1, without seq: its redelivered copies must be caught too), with `fault`
/// running beside them; then the pipeline drained and everything counted.
async fn run_under(stack: &Stack, name: &str, faults: Faults, fault: impl Future) -> Run {
    let before = accounting::wait_until_drained(stack, Duration::from_secs(180))
        .await
        .unwrap();
    let prefix = unique(name);
    let run = run_fleet(
        stack,
        &prefix,
        20,
        100,
        150.0,
        &faults,
        indicatif::ProgressBar::hidden(),
    );
    let (report, _) = tokio::join!(run, fault);
    let report = report.unwrap().report;
    assert_eq!(
        report.acked, report.sent,
        "the broker acknowledged every publish"
    );
    let after = accounting::wait_until_drained(stack, Duration::from_secs(240))
        .await
        .unwrap();
    let entered = accounting::records_for(&stack.kinesis(), stack.output("RawStreamName"), &prefix)
        .await
        .unwrap();
    assert!(entered >= report.sent, "messages lost before the stream");
    // The stores: one hot-store row per metric of each reading, one archive line each.
    let expected = &report.expected;
    assert_eq!(
        accounting::hot_store_rows(stack, &prefix).await.unwrap(),
        expected.rows,
        "hot-store rows"
    );
    let archive = accounting::archive(stack, &prefix).await.unwrap();
    assert_eq!(archive.readings, expected.stored, "archived readings");
    Run {
        counts: after.since(&before),
        report,
        entered,
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_bridge_crash_and_a_frozen_emulator_lose_and_double_nothing() {
    let _alone = ONE_AT_A_TIME.lock().await;
    let stack = Stack::from_env().await.unwrap();
    let faults = Faults {
        duplicate: 0.02,
        out_of_order: 0.02,
        heartbeat_every: 10,
        ..Faults::default()
    };
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
    let Run {
        report,
        counts,
        entered,
    } = run_under(&stack, "faults", faults, chaos).await;
    let expected = &report.expected;
    let redelivered = entered - report.sent;
    println!(
        "sent {}, entered the stream {entered} ({redelivered} redelivered); counted {counts:#?}",
        report.sent
    );
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
}

#[tokio::test(flavor = "multi_thread")]
async fn an_emulator_restart_in_the_middle_of_a_run_loses_and_doubles_nothing() {
    let _alone = ONE_AT_A_TIME.lock().await;
    let stack = Stack::from_env().await.unwrap();
    let faults = Faults {
        duplicate: 0.02,
        heartbeat_every: 10,
        ..Faults::default()
    };
    let restart = async {
        tokio::time::sleep(Duration::from_secs(4)).await;
        let started = std::time::Instant::now();
        stack.restart_emulator().await.unwrap();
        println!("emulator away {:?}", started.elapsed());
    };
    let Run {
        report,
        counts,
        entered,
    } = run_under(&stack, "restart", faults, restart).await;
    println!(
        "sent {}, entered the stream {entered}; counted {counts:#?}",
        report.sent
    );
    // The stores are checked above. The functions' own counts are only required to
    // balance: a batch whose metrics were logged but whose completion the emulator had
    // not saved when it stopped comes again and is counted twice.
    assert!(counts.balances(), "{counts:?}");
    assert_eq!(counts.dead_lettered_total(), 0, "{counts:?}");
}
