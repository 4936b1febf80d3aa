//! BatchGetItem and BatchWriteItem in full: split into the API's chunk sizes, with
//! unprocessed keys and items retried (with backoff) until done or out of attempts.

use std::{collections::HashMap, time::Duration};

use aws_sdk_dynamodb::types::{AttributeValue, KeysAndAttributes, WriteRequest};
use futures::{StreamExt as _, TryStreamExt as _};

pub type Item = HashMap<String, AttributeValue>;

const GET_CHUNK: usize = 100;
const WRITE_CHUNK: usize = 25;
const ATTEMPTS: u32 = 8;
const WRITE_CONCURRENCY: usize = 8;

pub async fn batch_get(
    client: &aws_sdk_dynamodb::Client,
    table: &str,
    keys: Vec<Item>,
) -> Result<Vec<Item>, String> {
    let mut items = Vec::new();
    for chunk in keys.chunks(GET_CHUNK) {
        let mut request = Some(
            KeysAndAttributes::builder()
                .set_keys(Some(chunk.to_vec()))
                .consistent_read(true)
                .build()
                .map_err(|e| e.to_string())?,
        );
        let mut attempt = 0;
        while let Some(keys) = request.take() {
            let output = client
                .batch_get_item()
                .request_items(table, keys)
                .send()
                .await
                .map_err(|e| aws_sdk_dynamodb::error::DisplayErrorContext(e).to_string())?;
            if let Some(found) = output.responses().and_then(|r| r.get(table)) {
                items.extend(found.iter().cloned());
            }
            request = output
                .unprocessed_keys()
                .and_then(|u| u.get(table))
                .filter(|k| !k.keys().is_empty())
                .cloned();
            attempt += 1;
            if request.is_some() {
                if attempt >= ATTEMPTS {
                    return Err(format!(
                        "{table}: keys still unprocessed after {ATTEMPTS} attempts"
                    ));
                }
                tokio::time::sleep(backoff(attempt)).await;
            }
        }
    }
    Ok(items)
}

/// Writes in chunks of 25, up to `WRITE_CONCURRENCY` chunks in flight, each retried until
/// DynamoDB has processed every item.
pub async fn batch_write(
    client: &aws_sdk_dynamodb::Client,
    table: &str,
    requests: Vec<WriteRequest>,
) -> Result<(), String> {
    let chunks: Vec<Vec<WriteRequest>> = requests.chunks(WRITE_CHUNK).map(<[_]>::to_vec).collect();
    futures::stream::iter(chunks)
        .map(|chunk| write_chunk(client, table, chunk))
        .buffer_unordered(WRITE_CONCURRENCY)
        .try_collect()
        .await
}

async fn write_chunk(
    client: &aws_sdk_dynamodb::Client,
    table: &str,
    mut pending: Vec<WriteRequest>,
) -> Result<(), String> {
    let mut attempt = 0;
    while !pending.is_empty() {
        let output = client
            .batch_write_item()
            .request_items(table, pending)
            .send()
            .await
            .map_err(|e| aws_sdk_dynamodb::error::DisplayErrorContext(e).to_string())?;
        pending = output
            .unprocessed_items()
            .and_then(|u| u.get(table))
            .cloned()
            .unwrap_or_default();
        attempt += 1;
        if !pending.is_empty() {
            if attempt >= ATTEMPTS {
                return Err(format!(
                    "{table}: items still unprocessed after {ATTEMPTS} attempts"
                ));
            }
            tokio::time::sleep(backoff(attempt)).await;
        }
    }
    Ok(())
}

fn backoff(attempt: u32) -> Duration {
    Duration::from_millis(25 << attempt.min(6))
}
