//! The pipeline's accounting as its functions report it: the CloudWatch EMF documents in
//! their log groups, summed. On AWS, CloudWatch turns the same documents into metrics.

use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use aws_sdk_kinesis::types::ShardIteratorType;
use hub_telemetry::accounting::Tally;
use serde::Serialize;
use serde_json::Value;

use crate::Stack;

/// Totals over every batch the normalizer and the storage stage have completed: the
/// normalizer's [`Tally`] (its fields read through `Deref`), and the storage stage's.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Counts {
    #[serde(flatten)]
    pub normalizer: Tally,
    /// Batches that failed and were retried.
    pub failed_batches: u64,
    /// The storage stage: readings written and records it could not decode.
    pub readings_stored: u64,
    pub rows_written: u64,
    pub store_dead_lettered: u64,
}

impl std::ops::Deref for Counts {
    type Target = Tally;

    fn deref(&self) -> &Tally {
        &self.normalizer
    }
}

impl Counts {
    /// What happened between `earlier` and `self`.
    pub fn since(&self, earlier: &Counts) -> Counts {
        Counts {
            normalizer: self.normalizer.since(&earlier.normalizer),
            failed_batches: self.failed_batches - earlier.failed_batches,
            readings_stored: self.readings_stored - earlier.readings_stored,
            rows_written: self.rows_written - earlier.rows_written,
            store_dead_lettered: self.store_dead_lettered - earlier.store_dead_lettered,
        }
    }

    fn add_document(&mut self, doc: &Value) {
        let n = |name: &str| doc.get(name).and_then(Value::as_f64).unwrap_or(0.0) as u64;
        match (
            doc.get("Function").and_then(Value::as_str),
            doc.get("Reason").and_then(Value::as_str),
        ) {
            (Some("normalizer"), Some(reason)) => {
                for (metric, into) in [
                    ("dead_letters_total", &mut self.normalizer.dead_lettered),
                    ("telemetry_dropped_total", &mut self.normalizer.dropped),
                ] {
                    if doc.get(metric).is_some() {
                        *into.entry(reason.to_owned().into()).or_default() += n(metric);
                    }
                }
            }
            (Some("normalizer"), None) => {
                let tally = &mut self.normalizer;
                tally.received += n("telemetry_ingest_rate");
                tally.stored += n("telemetry_stored_total");
                tally.deduplicated += n("telemetry_deduplicated_total");
                tally.clock_skew_corrected += n("telemetry_clock_skew_corrected_total");
                tally.sequence_gaps += n("telemetry_sequence_gaps_total");
                tally.sequence_resets += n("telemetry_sequence_resets_total");
                self.failed_batches += u64::from(n("telemetry_batch_failed_records") > 0);
            }
            (Some("telemetry-store"), None) => {
                self.readings_stored += n("telemetry_readings_stored_total");
                self.rows_written += n("telemetry_rows_written_total");
                self.store_dead_lettered += n("dead_letters_total");
                self.failed_batches += u64::from(n("telemetry_batch_failed_records") > 0);
            }
            _ => {}
        }
    }
}

/// Reads and sums every EMF document the pipeline's functions have logged.
pub async fn read(stack: &Stack) -> Result<Counts> {
    read_since(stack, 0).await
}

/// Sums the EMF documents logged from `since_ms` (epoch milliseconds) on.
pub async fn read_since(stack: &Stack, since_ms: i64) -> Result<Counts> {
    let logs = aws_sdk_cloudwatchlogs::Client::new(&stack.aws.sdk);
    let mut counts = Counts::default();
    for output in ["NormalizerFunctionName", "TelemetryStoreFunctionName"] {
        let group = format!("/aws/lambda/{}", stack.output(output));
        let mut token = None;
        loop {
            let page = match logs
                .filter_log_events()
                .log_group_name(&group)
                .start_time(since_ms)
                .set_next_token(token)
                .send()
                .await
            {
                Ok(page) => page,
                // No group yet: the function has not run.
                Err(err)
                    if format!(
                        "{}",
                        aws_sdk_cloudwatchlogs::error::DisplayErrorContext(&err)
                    )
                    .contains("ResourceNotFound") =>
                {
                    break
                }
                Err(err) => bail!(
                    "reading {group}: {}",
                    aws_sdk_cloudwatchlogs::error::DisplayErrorContext(err)
                ),
            };
            for event in page.events() {
                let message = event.message().unwrap_or_default();
                if message.contains("\"_aws\"") {
                    if let Ok(doc) = serde_json::from_str::<Value>(message) {
                        counts.add_document(&doc);
                    }
                }
            }
            token = page.next_token().map(str::to_owned);
            if token.is_none() {
                break;
            }
        }
    }
    Ok(counts)
}

/// Records on a stream, all shards, from the start.
pub async fn stream_length(kinesis: &aws_sdk_kinesis::Client, stream: &str) -> Result<u64> {
    records_for(kinesis, stream, "").await
}

/// Records on a stream, all shards, from the start, whose partition key (the device id)
/// starts with `prefix`: what entered the stream for a run's devices, counted apart from
/// what the functions say they received.
pub async fn records_for(
    kinesis: &aws_sdk_kinesis::Client,
    stream: &str,
    prefix: &str,
) -> Result<u64> {
    let shards = kinesis.list_shards().stream_name(stream).send().await?;
    let mut total = 0;
    for shard in shards.shards() {
        let mut iterator = kinesis
            .get_shard_iterator()
            .stream_name(stream)
            .shard_id(shard.shard_id())
            .shard_iterator_type(ShardIteratorType::TrimHorizon)
            .send()
            .await?
            .shard_iterator;
        while let Some(current) = iterator {
            let page = kinesis
                .get_records()
                .shard_iterator(current)
                .limit(10_000)
                .send()
                .await?;
            if page.records().is_empty() {
                break;
            }
            total += page
                .records()
                .iter()
                .filter(|r| r.partition_key().is_some_and(|k| k.starts_with(prefix)))
                .count() as u64;
            iterator = page.next_shard_iterator;
        }
    }
    Ok(total)
}

/// Waits until both stages have processed every record of their input streams, and
/// returns the counts then.
pub async fn wait_until_drained(stack: &Stack, timeout: Duration) -> Result<Counts> {
    let kinesis = stack.kinesis();
    let deadline = Instant::now() + timeout;
    loop {
        let counts = read(stack).await?;
        let raw = stream_length(&kinesis, stack.output("RawStreamName")).await?;
        let normalized = stream_length(&kinesis, stack.output("NormalizedStreamName")).await?;
        let stored_side = counts.readings_stored + counts.store_dead_lettered;
        if counts.received == raw && stored_side == normalized {
            return Ok(counts);
        }
        if Instant::now() > deadline {
            bail!(
                "pipeline not drained after {timeout:?}: raw stream {raw} records, normalizer received {}; \
                 normalized stream {normalized}, storage processed {stored_side}",
                counts.received
            );
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// Waits until the normalizer has received `received` raw records since `since_ms` and
/// the storage stage has stored every reading the normalizer emitted, polling the logs
/// only (cheap for the emulator, unlike re-reading the streams), and returns the counts.
pub async fn wait_for(
    stack: &Stack,
    since_ms: i64,
    received: u64,
    timeout: Duration,
) -> Result<Counts> {
    let deadline = Instant::now() + timeout;
    loop {
        let counts = read_since(stack, since_ms).await?;
        if counts.received >= received && counts.readings_stored >= counts.stored {
            return Ok(counts);
        }
        if Instant::now() > deadline {
            bail!(
                "after {timeout:?} the normalizer has received {} of {received} records and the storage stage stored {} of {} readings",
                counts.received,
                counts.readings_stored,
                counts.stored
            );
        }
        tokio::time::sleep(Duration::from_millis(1000)).await;
    }
}

/// Now, in epoch milliseconds, for `read_since`.
pub fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// Every dead letter of the normalizer, from the dead-letter bucket.
pub async fn dead_letters(stack: &Stack) -> Result<Vec<Value>> {
    let s3 = stack.aws.s3();
    let bucket = stack.output("DeadLetterBucketName");
    let mut letters = Vec::new();
    let mut pages = s3
        .list_objects_v2()
        .bucket(bucket)
        .prefix("normalizer/")
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        for object in page.context("listing dead letters")?.contents() {
            let key = object.key().unwrap_or_default();
            let body = s3
                .get_object()
                .bucket(bucket)
                .key(key)
                .send()
                .await?
                .body
                .collect()
                .await?
                .into_bytes();
            for line in body.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
                letters.push(
                    serde_json::from_slice(line)
                        .with_context(|| format!("dead letter in {key}"))?,
                );
            }
        }
    }
    Ok(letters)
}

/// Hot-store rows of the devices whose ids start with `prefix`.
pub async fn hot_store_rows(stack: &Stack, prefix: &str) -> Result<u64> {
    let dynamodb = aws_sdk_dynamodb::Client::new(&stack.aws.sdk);
    let mut rows = 0;
    let mut pages = dynamodb
        .scan()
        .table_name(stack.output("TelemetryTableName"))
        .filter_expression("begins_with(device_id, :prefix)")
        .expression_attribute_values(
            ":prefix",
            aws_sdk_dynamodb::types::AttributeValue::S(prefix.to_owned()),
        )
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        rows += page.context("scanning the hot store")?.count() as u64;
    }
    Ok(rows)
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct ArchiveSummary {
    pub objects: u64,
    pub readings: u64,
}

/// Archive objects of the devices whose ids start with `prefix`, and the readings in
/// them. Fails on a key outside the `{device}/{yyyy}/{mm}/{dd}/{name}` layout.
pub async fn archive(stack: &Stack, prefix: &str) -> Result<ArchiveSummary> {
    let s3 = stack.aws.s3();
    let bucket = stack.output("ArchiveBucketName");
    let mut summary = ArchiveSummary::default();
    let mut pages = s3
        .list_objects_v2()
        .bucket(bucket)
        .prefix(prefix)
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        for object in page.context("listing the archive")?.contents() {
            let key = object.key().unwrap_or_default();
            let parts: Vec<&str> = key.split('/').collect();
            let dated = parts.len() == 5
                && parts[1].len() == 4
                && parts[2].len() == 2
                && parts[3].len() == 2;
            if !dated {
                bail!("archive key {key} is not {{device}}/{{yyyy}}/{{mm}}/{{dd}}/{{name}}");
            }
            let body = s3
                .get_object()
                .bucket(bucket)
                .key(key)
                .send()
                .await?
                .body
                .collect()
                .await?
                .into_bytes();
            summary.objects += 1;
            summary.readings += body
                .split(|b| *b == b'\n')
                .filter(|l| !l.is_empty())
                .count() as u64;
        }
    }
    Ok(summary)
}
