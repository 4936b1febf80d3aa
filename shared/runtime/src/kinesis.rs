//! PutRecords with the retries every producer needs: up to 500 records a call, throttled
//! records retried with backoff, a per-record result so the caller decides what a final
//! failure means (an error action, a failed batch item).

use std::time::Duration;

use aws_sdk_kinesis::{error::SdkError, primitives::Blob, types::PutRecordsRequestEntry};

pub const MAX_RECORDS_PER_CALL: usize = 500;
/// PutRecords refuses requests over 5 MiB, partition keys included.
pub const MAX_BYTES_PER_CALL: usize = 5 * 1024 * 1024;
const RETRIES: u32 = 3;

/// Splits records into PutRecords calls that respect both the count and the size limit.
fn calls(records: &[(usize, String, Vec<u8>)]) -> Vec<&[(usize, String, Vec<u8>)]> {
    let mut calls = Vec::new();
    let (mut start, mut bytes) = (0, 0);
    for (i, (_, key, data)) in records.iter().enumerate() {
        let size = key.len() + data.len();
        if i > start && (i - start == MAX_RECORDS_PER_CALL || bytes + size > MAX_BYTES_PER_CALL) {
            calls.push(&records[start..i]);
            (start, bytes) = (i, 0);
        }
        bytes += size;
    }
    if start < records.len() {
        calls.push(&records[start..]);
    }
    calls
}

/// Why a record was not written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct PutError {
    pub message: String,
    /// The request never reached Kinesis (no connection, or no answer in time): the
    /// record may be tried again as it is.
    pub unreachable: bool,
}

/// Puts `(partition_key, data)` records on `stream`; one result per record, in order.
pub async fn put_records(
    client: &aws_sdk_kinesis::Client,
    stream: &str,
    records: Vec<(String, Vec<u8>)>,
) -> Vec<Result<(), PutError>> {
    let mut results: Vec<Option<Result<(), PutError>>> = vec![None; records.len()];
    let mut pending: Vec<(usize, String, Vec<u8>)> = records
        .into_iter()
        .enumerate()
        .map(|(i, (key, data))| (i, key, data))
        .collect();
    for attempt in 0..=RETRIES {
        let mut retry = Vec::new();
        for chunk in calls(&pending) {
            let entries = chunk
                .iter()
                .map(|(_, key, data)| {
                    PutRecordsRequestEntry::builder()
                        .partition_key(key)
                        .data(Blob::new(data.clone()))
                        .build()
                        .expect("partition key and data are set")
                })
                .collect();
            match client
                .put_records()
                .stream_name(stream)
                .set_records(Some(entries))
                .send()
                .await
            {
                Err(err) => {
                    let error = PutError {
                        unreachable: matches!(
                            err,
                            SdkError::DispatchFailure(_) | SdkError::TimeoutError(_)
                        ),
                        message: aws_sdk_kinesis::error::DisplayErrorContext(&err).to_string(),
                    };
                    for (i, _, _) in chunk {
                        results[*i] = Some(Err(error.clone()));
                    }
                }
                Ok(output) => {
                    for (record, entry) in chunk.iter().zip(output.records()) {
                        match entry.error_code() {
                            None => results[record.0] = Some(Ok(())),
                            Some(code) if is_retryable(code) && attempt < RETRIES => {
                                retry.push(record.clone())
                            }
                            Some(code) => {
                                let message = entry.error_message().unwrap_or_default();
                                results[record.0] = Some(Err(PutError {
                                    message: format!("{code}: {message}"),
                                    unreachable: false,
                                }));
                            }
                        }
                    }
                }
            }
        }
        if retry.is_empty() {
            break;
        }
        tracing::warn!(
            stream,
            records = retry.len(),
            attempt,
            "retrying throttled Kinesis records"
        );
        tokio::time::sleep(Duration::from_millis(100 << attempt)).await;
        pending = retry;
    }
    results
        .into_iter()
        .map(|r| {
            r.unwrap_or_else(|| {
                Err(PutError {
                    message: "Kinesis returned no result for the record".into(),
                    unreachable: false,
                })
            })
        })
        .collect()
}

/// Puts every record, or says how many could not be written (after retries) and why.
pub async fn put_all(
    client: &aws_sdk_kinesis::Client,
    stream: &str,
    records: Vec<(String, Vec<u8>)>,
) -> Result<(), String> {
    let failed: Vec<PutError> = put_records(client, stream, records)
        .await
        .into_iter()
        .filter_map(Result::err)
        .collect();
    match failed.first() {
        None => Ok(()),
        Some(first) => Err(format!(
            "{} records not written to {stream}, first: {first}",
            failed.len()
        )),
    }
}

fn is_retryable(code: &str) -> bool {
    matches!(
        code,
        "ProvisionedThroughputExceededException" | "InternalFailure"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calls_respect_count_and_size() {
        let small: Vec<_> = (0..1200)
            .map(|i| (i, "k".to_owned(), vec![0u8; 10]))
            .collect();
        let sizes: Vec<usize> = calls(&small).iter().map(|c| c.len()).collect();
        assert_eq!(sizes, [500, 500, 200]);
        let big: Vec<_> = (0..12)
            .map(|i| (i, "key".to_owned(), vec![0u8; 1024 * 1024 - 3]))
            .collect();
        let sizes: Vec<usize> = calls(&big).iter().map(|c| c.len()).collect();
        assert_eq!(sizes, [5, 5, 2]);
        assert!(calls(&[]).is_empty());
    }
}
