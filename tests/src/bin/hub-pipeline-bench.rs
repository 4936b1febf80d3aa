//! End-to-end throughput of the local stack: a simulated fleet publishes at a fixed rate
//! for a while; the figure is readings stored per second from the first publish until
//! the pipeline has drained, and the run only counts if nothing was lost or doubled.
//!
//! `hub-pipeline-bench [RATE] [SECONDS] [DEVICES]` (defaults 1000 60, devices enough to stay
//! under the per-device rate limit) against the stack
//! that HUB_STACK_DIR points at.

use std::time::{Duration, Instant};

use anyhow::{ensure, Result};
use hub_e2e::{accounting, run_fleet, unique, Stack};
use hub_sim::script::Faults;

#[tokio::main]
async fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let arg = |i: usize, default: f64| args.get(i).and_then(|a| a.parse().ok()).unwrap_or(default);
    let (rate, seconds) = (arg(0, 1000.0), arg(1, 60.0));
    // Each device stays at half the normalizer's default limit of 600 messages a minute,
    // so the whole offered load is legitimate traffic.
    let devices = (arg(2, 0.0) as usize).max((rate * 60.0 / 300.0).ceil() as usize);
    let stack = Stack::from_env().await?;
    accounting::wait_until_drained(&stack, Duration::from_secs(600)).await?;
    let since = accounting::now_ms();
    let messages = ((rate * seconds) / devices as f64).ceil() as u64;
    // Clean traffic (no heartbeats or faults): every message is a reading to store.
    let faults = Faults {
        heartbeat_every: 0,
        ..Faults::default()
    };
    println!(
        "offering {rate} msg/s for {seconds} s from {devices} devices ({messages} readings each)"
    );
    let started = Instant::now();
    let report = run_fleet(
        &stack,
        &unique("bench"),
        devices,
        messages,
        rate,
        &faults,
        indicatif::ProgressBar::hidden(),
    )
    .await?
    .report;
    let published = started.elapsed();
    let counts =
        accounting::wait_for(&stack, since, report.sent, Duration::from_secs(1800)).await?;
    let drained = started.elapsed();
    // A moment more, so that anything doubled would show up in the counts too.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let counts_later = accounting::read_since(&stack, since).await?;
    ensure!(
        counts_later == counts,
        "more arrived after the expected counts: {counts_later:?}"
    );
    ensure!(
        counts.balances()
            && counts.received == report.sent
            && counts.stored == report.expected.stored,
        "lost or doubled: sent {}, counted {counts:?}",
        report.sent
    );
    ensure!(
        counts.readings_stored == report.expected.stored,
        "storage stage wrote {} of {}",
        counts.readings_stored,
        report.expected.stored
    );
    println!(
        "publish: {} messages acknowledged in {:.1} s = {:.0} msg/s",
        report.acked,
        published.as_secs_f64(),
        report.acked as f64 / published.as_secs_f64()
    );
    println!(
        "end to end: {} readings normalized and stored ({} rows) in {:.1} s = {:.0} readings/s sustained; drain lag after the last publish {:.1} s",
        counts.readings_stored,
        counts.rows_written,
        drained.as_secs_f64(),
        counts.readings_stored as f64 / drained.as_secs_f64(),
        (drained - published).as_secs_f64()
    );
    println!(
        "zero loss: received {} = stored {}; failed batches retried: {}",
        counts.received, counts.stored, counts.failed_batches
    );
    Ok(())
}
