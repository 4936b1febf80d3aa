//! The Kinesis event source's shapes, reduced to what stream handlers work with.

use aws_lambda_events::{event::kinesis::KinesisEvent, streams::KinesisEventResponse};

/// One stream record: where it sits and its bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamRecord {
    /// `shardId:sequenceNumber` (the event id): unique, and stable across redeliveries.
    pub position: String,
    pub sequence_number: String,
    pub data: Vec<u8>,
}

impl StreamRecord {
    /// A record at `shardId:sequenceNumber`.
    pub fn new(position: impl Into<String>, data: Vec<u8>) -> Self {
        let position = position.into();
        let sequence_number = position.rsplit(':').next().unwrap_or_default().to_owned();
        Self {
            position,
            sequence_number,
            data,
        }
    }
}

pub fn records(event: KinesisEvent) -> Vec<StreamRecord> {
    event
        .records
        .into_iter()
        .map(|r| {
            let sequence_number = r.kinesis.sequence_number;
            StreamRecord {
                position: r.event_id.unwrap_or_else(|| sequence_number.clone()),
                sequence_number,
                data: r.kinesis.data.0,
            }
        })
        .collect()
}

/// A partial batch response naming the failed records. The event source retries from the
/// first of them, so they are reported in stream order.
pub fn failures<'a>(failed: impl IntoIterator<Item = &'a StreamRecord>) -> KinesisEventResponse {
    let mut response = KinesisEventResponse::default();
    for record in failed {
        response.add_failure(record.sequence_number.clone());
    }
    response
}

/// The answer for a batch that failed on a transient error: every record reported failed
/// (partial batch response, so the event source retries from the first), or the error
/// itself where the event source ignores partial responses and retries the whole batch.
pub fn failed_batch<E: std::fmt::Display>(
    error: E,
    records: &[StreamRecord],
    partial_batch_response: bool,
) -> Result<KinesisEventResponse, E> {
    tracing::error!(%error, records = records.len(), "batch failed; it will be retried");
    if partial_batch_response {
        Ok(failures(records))
    } else {
        Err(error)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinesis_fixture_reduces_to_positions_and_bytes() {
        let event: KinesisEvent =
            serde_json::from_str(include_str!("../../../tests/fixtures/kinesis-event.json"))
                .unwrap();
        let records = records(event);
        assert_eq!(records.len(), 2);
        assert_eq!(
            records[0].position,
            "shardId-000000000000:49545115243490985018280067714973144582180062593244200961"
        );
        assert_eq!(records[0].data, b"Hello, this is a test.");
        let response = failures(&records[1..]);
        assert_eq!(response.batch_item_failures.len(), 1);
        assert_eq!(
            response.batch_item_failures[0].item_identifier.as_deref(),
            Some(records[1].sequence_number.as_str())
        );
    }

    /// AWS honours partial batch responses; the local emulator's Kinesis event source does
    /// not (it would skip the records named failed), so locally a failed batch is an
    /// error and the whole batch comes again. Both forms retry every record.
    #[test]
    fn a_failed_batch_is_answered_in_the_form_its_event_source_honours() {
        let event: KinesisEvent =
            serde_json::from_str(include_str!("../../../tests/fixtures/kinesis-event.json"))
                .unwrap();
        let records = records(event);
        let on_aws = failed_batch("table unavailable", &records, true).unwrap();
        let named: Vec<_> = on_aws
            .batch_item_failures
            .iter()
            .map(|f| f.item_identifier.clone().unwrap())
            .collect();
        let all: Vec<_> = records.iter().map(|r| r.sequence_number.clone()).collect();
        assert_eq!(named, all);
        assert_eq!(
            failed_batch("table unavailable", &records, false).unwrap_err(),
            "table unavailable"
        );
    }
}
