//! BatchGetItem and BatchWriteItem in full: split into the API's chunk sizes, with
//! unprocessed keys and items retried (with backoff) until done or out of attempts.

use std::{collections::HashMap, time::Duration};

use aws_sdk_dynamodb::types::{AttributeValue, KeysAndAttributes, PutRequest, WriteRequest};
use futures::{StreamExt as _, TryStreamExt as _};

pub type Item = HashMap<String, AttributeValue>;

pub use crate::TableError;

/// What a DynamoDB call's failure becomes: the operation, and the SDK's whole account of
/// the error (its display alone says only "service error").
pub fn sdk_error<E, R>(
    operation: &'static str,
) -> impl FnOnce(aws_sdk_dynamodb::error::SdkError<E, R>) -> TableError
where
    E: std::error::Error + 'static,
    R: std::fmt::Debug,
{
    move |err| TableError::new(operation, aws_sdk_dynamodb::error::DisplayErrorContext(err))
}

/// A string attribute.
pub fn s(value: impl Into<String>) -> AttributeValue {
    AttributeValue::S(value.into())
}

/// A number attribute.
pub fn n(value: impl ToString) -> AttributeValue {
    AttributeValue::N(value.to_string())
}

/// A key (or item) of one string attribute.
pub fn key(name: &str, value: &str) -> Item {
    HashMap::from([(name.to_owned(), s(value))])
}

/// A BatchWriteItem put of `item`.
pub fn put(item: Item) -> WriteRequest {
    WriteRequest::builder()
        .put_request(
            PutRequest::builder()
                .set_item(Some(item))
                .build()
                .expect("item is set"),
        )
        .build()
}

/// A string attribute of an item, if it is there and a string.
pub fn string(item: &Item, name: &str) -> Option<String> {
    item.get(name)?.as_s().ok().cloned()
}

/// An RFC 3339 time attribute of an item, if it is there and parses.
pub fn time(item: &Item, name: &str) -> Option<chrono::DateTime<chrono::Utc>> {
    Some(
        chrono::DateTime::parse_from_rfc3339(&string(item, name)?)
            .ok()?
            .with_timezone(&chrono::Utc),
    )
}

/// A boolean attribute of an item; false when it is missing or not a boolean.
pub fn flag(item: &Item, name: &str) -> bool {
    matches!(item.get(name), Some(AttributeValue::Bool(true)))
}

/// Whether a call failed only its condition (a conditional write lost to another, or a
/// transaction one of whose conditions failed): the caller's answer, not an error.
pub fn is_condition_failure<E: aws_sdk_dynamodb::error::ProvideErrorMetadata, R>(
    err: &aws_sdk_dynamodb::error::SdkError<E, R>,
) -> bool {
    matches!(err, aws_sdk_dynamodb::error::SdkError::ServiceError(e)
        if matches!(e.err().code(), Some("ConditionalCheckFailedException" | "TransactionCanceledException")))
}

/// A number attribute of an item, parsed, if it is there and parses.
pub fn number<T: std::str::FromStr>(item: &Item, name: &str) -> Option<T> {
    item.get(name)?.as_n().ok()?.parse().ok()
}

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
