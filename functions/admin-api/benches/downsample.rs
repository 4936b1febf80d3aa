//! Downsampling time for history queries: 600,000 readings (a week at one per second)
//! to 1,000 and 10,000 points, and a year of 5-minute aggregates merged to 1,000.
//! Figures, not a timed test:
//!
//!   CARGO_TARGET_DIR=target/bench cargo bench -p admin-api --bench downsample

use std::hint::black_box;

use admin_api::{
    downsample::{merge_windows, min_max},
    ports::{Point, WindowRow},
};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};

const READINGS: usize = 600_000;

fn readings() -> Vec<Point> {
    let mut rng = fastrand_like(7);
    (0..READINGS)
        .map(|i| Point {
            ts_ms: 1_795_428_000_000 + i as i64 * 1000,
            value: 20.0 + (i as f64 / 3600.0).sin() * 5.0 + rng() * 0.5,
        })
        .collect()
}

/// A small deterministic generator, so runs compare.
fn fastrand_like(mut state: u64) -> impl FnMut() -> f64 {
    move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state % 10_000) as f64 / 10_000.0
    }
}

fn windows() -> Vec<WindowRow> {
    (0..365 * 288)
        .map(|i| WindowRow {
            start_ms: 1_795_428_000_000 + i as i64 * 300_000,
            count: 300,
            mean: 20.0 + (i as f64 / 288.0).sin(),
            m2: 12.5,
            min: 18.0,
            max: 23.0,
        })
        .collect()
}

fn bench(c: &mut Criterion) {
    let points = readings();
    let mut group = c.benchmark_group("downsample");
    group.throughput(Throughput::Elements(READINGS as u64));
    for max_points in [1_000, 10_000] {
        group.bench_function(format!("min_max 600k -> {max_points}"), |b| {
            b.iter(|| min_max(black_box(&points), max_points))
        });
    }
    let windows = windows();
    group.throughput(Throughput::Elements(windows.len() as u64));
    group.bench_function("merge_windows 105120 -> 1000", |b| {
        b.iter(|| merge_windows(black_box(&windows), 1_000))
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
