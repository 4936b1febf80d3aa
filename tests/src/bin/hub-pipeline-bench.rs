//! End-to-end throughput of the local stack: a simulated fleet publishes at a fixed rate
//! for a while; the figure is readings stored per second from the first publish until
//! the pipeline has drained, and the run only counts if nothing was lost or doubled.
//! With `--sockets N`, N consoles listen over the WebSocket API meanwhile, and the run
//! also says how many of the fleet's readings reached them and how late.
//!
//! `hub-pipeline-bench [RATE] [SECONDS] [DEVICES] [--sockets N]` (defaults 1000 60, devices
//! enough to stay under the per-device rate limit) against the stack that HUB_STACK_DIR
//! points at.

use std::{
    collections::BTreeSet,
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc,
    },
    time::{Duration, Instant},
};

use anyhow::{bail, ensure, Context as _, Result};
use clap::Parser;
use hub_e2e::{accounting, admin::Role, live, run_fleet, unique, Stack};
use hub_sim::script::{DeviceType, Faults};

#[derive(Parser)]
#[command(about = "Throughput of the local stack with every stage, and what live consoles hear")]
struct Args {
    /// Readings offered per second across the fleet.
    #[arg(default_value_t = 1000.0)]
    rate: f64,
    /// How long the fleet publishes, in seconds.
    #[arg(default_value_t = 60.0)]
    seconds: f64,
    /// Devices; at least enough that each stays at half the normalizer's per-device limit.
    #[arg(default_value_t = 0)]
    devices: usize,
    /// Consoles listening over the WebSocket API while the fleet publishes, each subscribed
    /// to every device type's channel.
    #[arg(long, default_value_t = 0)]
    sockets: usize,
}

/// A reading of the benchmark's fleet as one console heard it.
struct Heard {
    device_id: String,
    ts_ms: i64,
    received_ms: i64,
}

/// Opens `count` sockets with a viewer's token, each subscribed to every device type, and
/// keeps what each hears of devices named `{prefix}-...` until `stop` is set and the
/// socket has been quiet for two seconds.
async fn listen(
    stack: &Stack,
    count: usize,
    prefix: &str,
    stop: Arc<AtomicBool>,
) -> Result<Vec<tokio::task::JoinHandle<Result<Vec<Heard>>>>> {
    let token = stack.admin_client(Role::Viewer)?.token().await?;
    let channels: Vec<String> = DeviceType::ALL
        .iter()
        .map(|t| format!("type:{}", t.name()))
        .collect();
    let channels: Vec<&str> = channels.iter().map(String::as_str).collect();
    let mut listeners = Vec::with_capacity(count);
    for _ in 0..count {
        let mut socket = match live::open(stack, Some(&token)).await {
            Ok(socket) => socket,
            Err(refused) => bail!("a listening socket was not opened: {refused:?}"),
        };
        let answer = live::subscribe(&mut socket, &channels).await?;
        ensure!(answer["type"] == "subscribed", "subscribing: {answer}");
        let (stop, prefix) = (stop.clone(), format!("{prefix}-"));
        listeners.push(tokio::spawn(async move {
            let mut heard = Vec::new();
            loop {
                let Some(frame) = live::next(&mut socket, Duration::from_secs(2)).await? else {
                    if stop.load(Ordering::Relaxed) {
                        return Ok(heard);
                    }
                    continue;
                };
                let device = frame["device_id"].as_str().unwrap_or_default();
                if frame["type"] != "reading" || !device.starts_with(&prefix) {
                    continue;
                }
                let ts = frame["ts"].as_str().context("a reading without ts")?;
                heard.push(Heard {
                    device_id: device.to_owned(),
                    ts_ms: chrono::DateTime::parse_from_rfc3339(ts)?.timestamp_millis(),
                    received_ms: accounting::now_ms(),
                });
            }
        }));
    }
    Ok(listeners)
}

/// The value below which `share` of the sorted `values` lie.
fn quantile(sorted: &[i64], share: f64) -> i64 {
    sorted[((sorted.len() - 1) as f64 * share).round() as usize]
}

fn describe_lag(what: &str, heard: &[&Heard]) -> String {
    let mut lags: Vec<i64> = heard.iter().map(|h| h.received_ms - h.ts_ms).collect();
    lags.sort_unstable();
    if lags.is_empty() {
        return format!("{what}: nothing heard");
    }
    format!(
        "{what}: p50 {} ms, p95 {} ms, p99 {} ms, max {} ms ({} frames)",
        quantile(&lags, 0.5),
        quantile(&lags, 0.95),
        quantile(&lags, 0.99),
        lags[lags.len() - 1],
        lags.len()
    )
}

#[tokio::main]
async fn main() -> Result<()> {
    let Args {
        rate,
        seconds,
        devices,
        sockets,
    } = Args::parse();
    // Each device stays at half the normalizer's default limit of 600 messages a minute,
    // so the whole offered load is legitimate traffic.
    let devices = devices.max((rate * 60.0 / 300.0).ceil() as usize);
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
    let prefix = unique("bench");
    let stop = Arc::new(AtomicBool::new(false));
    let listeners = listen(&stack, sockets, &prefix, stop.clone()).await?;
    if sockets > 0 {
        println!("{sockets} consoles listening, each to every device type's channel");
    }
    let started = Instant::now();
    let report = run_fleet(
        &stack,
        &prefix,
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
    if sockets == 0 {
        return Ok(());
    }
    stop.store(true, Ordering::Relaxed);
    let mut per_socket = Vec::with_capacity(sockets);
    for listener in listeners {
        per_socket.push(listener.await??);
    }
    // What a console could at best hear: the pusher passes on each device's newest
    // reading of every second, and each device sends several readings every second.
    let tick_s = devices as f64 / rate;
    let sent_seconds = devices as f64 * (messages as f64 * tick_s).ceil();
    let heard_seconds: Vec<usize> = per_socket
        .iter()
        .map(|heard| {
            heard
                .iter()
                .map(|h| (h.device_id.as_str(), h.ts_ms.div_euclid(1000)))
                .collect::<BTreeSet<_>>()
                .len()
        })
        .collect();
    let frames: Vec<usize> = per_socket.iter().map(Vec::len).collect();
    println!(
        "consoles: {sockets} sockets heard {}..{} reading frames each ({} in all), covering {}..{} device-seconds each of the ~{sent_seconds:.0} the fleet's readings span",
        frames.iter().min().unwrap_or(&0),
        frames.iter().max().unwrap_or(&0),
        frames.iter().sum::<usize>(),
        heard_seconds.iter().min().unwrap_or(&0),
        heard_seconds.iter().max().unwrap_or(&0),
    );
    let all: Vec<&Heard> = per_socket.iter().flatten().collect();
    println!(
        "{}",
        describe_lag("device time -> console, all frames", &all)
    );
    // Falling behind shows as a lag that grows: compare the first and last tenth of the
    // fleet's time.
    if let (Some(first), Some(last)) = (
        all.iter().map(|h| h.ts_ms).min(),
        all.iter().map(|h| h.ts_ms).max(),
    ) {
        let tenth = (last - first) / 10;
        let early: Vec<&Heard> = all
            .iter()
            .copied()
            .filter(|h| h.ts_ms < first + tenth)
            .collect();
        let late: Vec<&Heard> = all
            .iter()
            .copied()
            .filter(|h| h.ts_ms > last - tenth)
            .collect();
        println!("{}", describe_lag("  readings of the first tenth", &early));
        println!("{}", describe_lag("  readings of the last tenth", &late));
    }
    Ok(())
}
