//! Kinesis delivery with batching: messages arrive one by one from MQTT, but PutRecords
//! takes up to 500 at once, which is what keeps the bridge from being the bottleneck.

use std::{collections::HashMap, sync::Arc, time::Duration};

use tokio::sync::{mpsc, oneshot, Semaphore};

const MAX_RECORDS: usize = hub_runtime::kinesis::MAX_RECORDS_PER_CALL;
const MAX_BATCH_BYTES: usize = 5 * 1024 * 1024;
const MAX_RECORD_BYTES: usize = 1024 * 1024;
const LINGER: Duration = Duration::from_millis(5);
const CONCURRENT_CALLS: usize = 4;

pub type Outcome = Result<(), String>;

struct Record {
    stream: String,
    partition_key: String,
    data: Vec<u8>,
    done: oneshot::Sender<Outcome>,
}

#[derive(Clone)]
pub struct KinesisSink {
    tx: mpsc::Sender<Record>,
}

impl KinesisSink {
    pub fn spawn(client: aws_sdk_kinesis::Client) -> Self {
        let (tx, rx) = mpsc::channel(10_000);
        tokio::spawn(batcher(client, rx));
        Self { tx }
    }

    /// Puts one record; resolves when Kinesis accepted or finally refused it.
    pub async fn put(&self, stream: String, partition_key: String, data: Vec<u8>) -> Outcome {
        let size = data.len() + partition_key.len();
        if size > MAX_RECORD_BYTES {
            return Err(format!(
                "record of {size} bytes exceeds the Kinesis limit of {MAX_RECORD_BYTES} bytes"
            ));
        }
        let (done, result) = oneshot::channel();
        let record = Record {
            stream,
            partition_key,
            data,
            done,
        };
        if self.tx.send(record).await.is_err() {
            return Err("Kinesis sink stopped".into());
        }
        result
            .await
            .unwrap_or_else(|_| Err("Kinesis sink dropped the record".into()))
    }
}

async fn batcher(client: aws_sdk_kinesis::Client, mut rx: mpsc::Receiver<Record>) {
    let calls = Arc::new(Semaphore::new(CONCURRENT_CALLS));
    while let Some(first) = rx.recv().await {
        let mut batch = vec![first];
        let mut bytes = batch[0].data.len();
        let deadline = tokio::time::Instant::now() + LINGER;
        while batch.len() < MAX_RECORDS && bytes < MAX_BATCH_BYTES - MAX_RECORD_BYTES {
            match tokio::time::timeout_at(deadline, rx.recv()).await {
                Ok(Some(record)) => {
                    bytes += record.data.len() + record.partition_key.len();
                    batch.push(record);
                }
                _ => break,
            }
        }
        let mut by_stream: HashMap<String, Vec<Record>> = HashMap::new();
        for record in batch {
            by_stream
                .entry(record.stream.clone())
                .or_default()
                .push(record);
        }
        for (stream, records) in by_stream {
            let permit = calls.clone().acquire_owned().await.expect("semaphore open");
            let client = client.clone();
            tokio::spawn(async move {
                put_records(&client, &stream, records).await;
                drop(permit);
            });
        }
    }
}

/// On AWS the rules engine's Kinesis is always there; locally the emulator may be
/// restarting. While it cannot be reached, records wait (their MQTT messages stay
/// unacknowledged, so the broker keeps what comes behind them) rather than fail into the
/// error action. Past this, they fail like any other record.
const UNREACHABLE_PATIENCE: Duration = Duration::from_secs(180);

async fn put_records(client: &aws_sdk_kinesis::Client, stream: &str, records: Vec<Record>) {
    let deadline = tokio::time::Instant::now() + UNREACHABLE_PATIENCE;
    let mut pause = Duration::from_millis(200);
    let mut pending = records;
    loop {
        let entries = pending
            .iter()
            .map(|r| (r.partition_key.clone(), r.data.clone()))
            .collect();
        let results = hub_runtime::kinesis::put_records(client, stream, entries).await;
        let waiting = tokio::time::Instant::now() < deadline;
        let mut unreachable = Vec::new();
        for (record, result) in pending.into_iter().zip(results) {
            match result {
                Err(err) if err.unreachable && waiting => unreachable.push(record),
                result => {
                    let _ = record.done.send(result.map_err(|e| e.message));
                }
            }
        }
        if unreachable.is_empty() {
            return;
        }
        tracing::warn!(
            stream,
            records = unreachable.len(),
            "Kinesis unreachable; holding the records until it answers"
        );
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(Duration::from_secs(2));
        pending = unreachable;
    }
}
