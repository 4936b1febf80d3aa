//! `hub-detection-report`: precision and recall of the anomaly detector on a seeded
//! simulated fleet, scored against the simulator's labelled episodes; or, with `--nab`,
//! on the Numenta Anomaly Benchmark's real labelled series with NAB's own score. Runs
//! offline with the detector code the Lambda runs and its default settings (or the ones
//! given).

use anyhow::Result;
use chrono::{Duration, Utc};
use clap::Parser;
use hub_detection::{AdaptiveConfig, DetectorConfig, Hysteresis};
use hub_sim::{
    evaluate::evaluate,
    nab,
    script::{device_type_for, script, Faults},
};

#[derive(Parser)]
#[command(
    version,
    about = "Precision and recall of the anomaly detector on a seeded simulated fleet"
)]
struct Cli {
    #[arg(long, default_value_t = 40)]
    devices: usize,
    /// Readings per device.
    #[arg(long, default_value_t = 2000)]
    readings: u64,
    /// Seconds between a device's readings.
    #[arg(long, default_value_t = 10)]
    interval: i64,
    /// Chance per reading that a labelled anomaly episode starts.
    #[arg(long, default_value_t = 0.005)]
    anomalies: f64,
    /// How far anomalies leave the normal band: 1 is far outside (+45 °C), 0.15 close to
    /// the signals' own spread.
    #[arg(long, default_value_t = 1.0)]
    anomaly_scale: f64,
    #[arg(long, default_value_t = 7)]
    seed: u64,
    /// Device time of the first reading: the model learns hours of the day, so the same
    /// seed gives the same figures only from the same start.
    #[arg(long, default_value = "2026-11-23T10:00:00Z")]
    start: chrono::DateTime<Utc>,
    /// |score| above which a reading is anomalous (default: the deployed one).
    #[arg(long)]
    threshold: Option<f64>,
    /// Readings before a series is judged.
    #[arg(long)]
    warmup: Option<u64>,
    #[arg(long)]
    raise_after: Option<u32>,
    #[arg(long)]
    clear_after: Option<u32>,
    /// Print the full evaluation as JSON instead of the table.
    #[arg(long)]
    json: bool,
    /// Score on the Numenta Anomaly Benchmark instead: the path of a NAB checkout
    /// (`git clone https://github.com/numenta/NAB`).
    #[arg(long, value_name = "DIR")]
    nab: Option<std::path::PathBuf>,
    /// With --nab: only these categories (all by default).
    #[arg(long, value_delimiter = ',')]
    nab_categories: Vec<String>,
    /// With --nab: score a published detector's result files (e.g. windowedGaussian)
    /// instead of this detector, and compare with the scores NAB published for it.
    #[arg(long, value_name = "DETECTOR")]
    nab_reference: Option<String>,
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    let defaults = AdaptiveConfig::default();
    let config = DetectorConfig {
        anomaly: AdaptiveConfig {
            threshold: cli.threshold.unwrap_or(defaults.threshold),
            warmup: cli.warmup.unwrap_or(defaults.warmup),
            hysteresis: Hysteresis {
                raise_after: cli.raise_after.unwrap_or(defaults.hysteresis.raise_after),
                clear_after: cli.clear_after.unwrap_or(defaults.hysteresis.clear_after),
            },
            ..defaults
        },
        ..DetectorConfig::default()
    };
    let model = &config.anomaly;
    let described = format!(
        "|score| > {}, warm-up {}, raise after {}, clear after {}",
        model.threshold, model.warmup, model.hysteresis.raise_after, model.hysteresis.clear_after
    );
    if let Some(root) = &cli.nab {
        return nab_report(&cli, root, &config, &described);
    }
    let faults = Faults {
        anomaly: cli.anomalies,
        anomaly_scale: cli.anomaly_scale,
        heartbeat_every: 10,
        ..Faults::default()
    };
    let start = cli.start;
    let fleet: Vec<_> = (0..cli.devices)
        .map(|i| {
            let seed = cli.seed.wrapping_mul(1_000_003).wrapping_add(i as u64);
            script(
                &format!("eval-{i:04}"),
                device_type_for(i),
                cli.readings,
                &faults,
                start,
                Duration::seconds(cli.interval),
                seed,
            )
        })
        .collect();
    let evaluation = evaluate(&config, &[], &fleet);
    if cli.json {
        println!("{}", serde_json::to_string_pretty(&evaluation)?);
        return Ok(());
    }
    println!(
        "{} devices, {} readings, seed {}; adaptive model {described}",
        evaluation.devices, evaluation.readings, cli.seed
    );
    println!(
        "{:<20} {:>9} {:>7} {:>6} {:>6} {:>7} {:>10} {:>7}",
        "device type", "labelled", "raised", "TP", "FP", "missed", "precision", "recall"
    );
    let rows = evaluation
        .by_type
        .iter()
        .map(|(name, s)| (name.as_str(), s))
        .chain([("all", &evaluation.overall)]);
    for (name, s) in rows {
        println!(
            "{:<20} {:>9} {:>7} {:>6} {:>6} {:>7} {:>10.3} {:>7.3}",
            name,
            s.labelled,
            s.raised,
            s.true_positives,
            s.false_positives,
            s.missed,
            s.precision,
            s.recall
        );
    }
    Ok(())
}

fn nab_report(
    cli: &Cli,
    root: &std::path::Path,
    config: &DetectorConfig,
    described: &str,
) -> Result<()> {
    let corpus = nab::Corpus::read(root, &cli.nab_categories)?;
    let (what, detections) = match &cli.nab_reference {
        Some(detector) => {
            let (threshold, detections) = corpus.reference_detections(detector)?;
            (
                format!("{detector}'s published results at threshold {threshold}"),
                detections,
            )
        }
        None => (
            format!("the hub's deployed detector: adaptive model {described}"),
            corpus
                .series
                .iter()
                .map(|series| nab::raises(config, series))
                .collect(),
        ),
    };
    let report = nab::report(&corpus, &detections, &nab::STANDARD);
    if cli.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
        return Ok(());
    }
    println!("NAB at {}, standard profile; {what}", root.display());
    println!(
        "{:<24} {:>5} {:>7} {:>8} {:>7} {:>10} {:>7} {:>10} {:>9}",
        "category",
        "files",
        "windows",
        "detected",
        "recall",
        "detections",
        "in win",
        "precision",
        "NAB score"
    );
    let tuning = format!("tuning ({})", nab::TUNING.join(" + "));
    let rows = report
        .by_category
        .iter()
        .map(|(name, s)| (name.as_str(), s))
        .chain([(tuning.as_str(), &report.tuning), ("all", &report.overall)]);
    for (name, s) in rows {
        println!(
            "{:<24} {:>5} {:>7} {:>8} {:>7.3} {:>10} {:>7} {:>10.3} {:>9.2}",
            name,
            s.files,
            s.raw.windows,
            s.raw.windows_detected,
            s.recall(),
            s.raw.detections,
            s.raw.detections_in_windows,
            s.precision(),
            s.normalized
        );
    }
    if let Some(detector) = &cli.nab_reference {
        let published = corpus.published_scores(detector)?;
        let mut worst: (f64, &str) = (0.0, "");
        let mut compared = 0;
        for (name, file) in &report.files {
            let Some(&expected) = published.get(name) else {
                continue;
            };
            compared += 1;
            let off = (file.score - expected).abs();
            if off >= worst.0 {
                worst = (off, name);
            }
        }
        println!(
            "against the {compared} per-file scores NAB published for {detector}: largest difference {:.2e} ({})",
            worst.0, worst.1
        );
    }
    Ok(())
}
