//! The Kinesis event source's shapes, reduced to what stream handlers work with.

use std::{collections::HashSet, time::Instant};

use aws_lambda_events::{event::kinesis::KinesisEvent, streams::KinesisEventResponse};

use crate::emf::Metrics;

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

/// What processing one batch came to.
#[derive(Debug)]
pub struct Processed<S, E> {
    pub summary: S,
    /// Positions of the records that must come again.
    pub failed: Vec<String>,
    /// The transient failure behind them, if any.
    pub error: Option<E>,
}

impl<S: Default, E> Processed<S, E> {
    /// A batch that succeeds or fails as a whole.
    pub fn whole(result: Result<S, E>, records: &[StreamRecord]) -> Self {
        match result {
            Ok(summary) => Self {
                summary,
                failed: Vec::new(),
                error: None,
            },
            Err(error) => Self {
                summary: S::default(),
                failed: records.iter().map(|r| r.position.clone()).collect(),
                error: Some(error),
            },
        }
    }
}

/// The part of a stream function that differs from the others: what it does with a batch
/// and what it counts. [`handle`] is the rest.
pub trait BatchHandler {
    type Summary: std::fmt::Debug;
    type Error: std::fmt::Display;

    /// Report failed records as batch item failures (AWS). Off where the event source
    /// ignores that response (the local emulator): the batch then fails as a whole and is
    /// redelivered, which every stream function makes harmless.
    fn partial_batch_response(&self) -> bool;

    #[allow(async_fn_in_trait)] // the Lambda runtime drives one batch at a time: no Send needed
    async fn process(&self, records: &[StreamRecord]) -> Processed<Self::Summary, Self::Error>;

    /// The batch's metric documents; the first also gets `processing_latency`.
    fn metrics(
        &self,
        processed: &Processed<Self::Summary, Self::Error>,
        records: usize,
    ) -> Vec<Metrics>;
}

/// Hands a stream function to the Lambda runtime: each batch goes through [`handle`].
pub async fn serve<H>(handler: H) -> Result<(), lambda_runtime::Error>
where
    H: BatchHandler,
    H::Error: std::error::Error + Send + Sync + 'static,
{
    let handler = &handler;
    lambda_runtime::run(lambda_runtime::service_fn(
        // Boxed: the batch future nests deep enough to exceed the compiler's layout
        // depth inside the runtime's own futures; one allocation a batch is nothing.
        move |event: lambda_runtime::LambdaEvent<KinesisEvent>| async move {
            Box::pin(handle(handler, event.payload))
                .await
                .map_err(lambda_runtime::Error::from)
        },
    ))
    .await
}

/// A Kinesis event in, metrics flushed, the batch logged, and the answer the event source
/// honours: the failed records named (AWS), or the error itself so the whole batch comes
/// again (the emulator, which ignores partial responses). Failed records are reported in
/// stream order, since the event source retries from the first of them.
pub async fn handle<H: BatchHandler>(
    handler: &H,
    event: KinesisEvent,
) -> Result<KinesisEventResponse, H::Error> {
    let started = Instant::now();
    let records = records(event);
    let processed = handler.process(&records).await;
    let latency_ms = started.elapsed().as_secs_f64() * 1000.0;
    let mut documents = handler.metrics(&processed, records.len());
    if let Some(first) = documents.first_mut() {
        first.millis("processing_latency", latency_ms);
    }
    for document in &documents {
        document.flush();
    }
    let Processed {
        summary,
        failed,
        error,
    } = processed;
    match error {
        Some(error) => {
            tracing::error!(%error, records = records.len(), failed = failed.len(), "batch failed; it will be retried");
            if !handler.partial_batch_response() {
                return Err(error);
            }
        }
        None => {
            tracing::info!(
                ?summary,
                records = records.len(),
                latency_ms,
                "batch processed"
            )
        }
    }
    let failed: HashSet<&str> = failed.iter().map(String::as_str).collect();
    Ok(failures(
        records
            .iter()
            .filter(|r| failed.contains(r.position.as_str())),
    ))
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

    /// A handler that fails the whole batch, or only its second record.
    struct Failing {
        partial_batch_response: bool,
        whole: bool,
    }

    impl BatchHandler for Failing {
        type Summary = usize;
        type Error = &'static str;

        fn partial_batch_response(&self) -> bool {
            self.partial_batch_response
        }

        async fn process(&self, records: &[StreamRecord]) -> Processed<usize, &'static str> {
            if self.whole {
                return Processed::whole(Err("table unavailable"), records);
            }
            Processed {
                summary: 1,
                failed: vec![records[1].position.clone()],
                error: Some("one record's store failed"),
            }
        }

        fn metrics(&self, processed: &Processed<usize, &'static str>, _: usize) -> Vec<Metrics> {
            let mut metrics = Metrics::new("test");
            metrics.count("failed", processed.failed.len() as u64);
            vec![metrics]
        }
    }

    /// AWS honours partial batch responses; the local emulator's Kinesis event source does
    /// not (it would skip the records named failed), so locally a failed batch is an
    /// error and the whole batch comes again. Both forms retry every record.
    #[tokio::test]
    async fn a_failed_batch_is_answered_in_the_form_its_event_source_honours() {
        let event = || -> KinesisEvent {
            serde_json::from_str(include_str!("../../../tests/fixtures/kinesis-event.json"))
                .unwrap()
        };
        let all: Vec<_> = records(event())
            .iter()
            .map(|r| r.sequence_number.clone())
            .collect();
        let named = |response: KinesisEventResponse| -> Vec<String> {
            response
                .batch_item_failures
                .into_iter()
                .map(|f| f.item_identifier.unwrap())
                .collect()
        };
        let whole = |partial_batch_response| Failing {
            partial_batch_response,
            whole: true,
        };
        assert_eq!(named(handle(&whole(true), event()).await.unwrap()), all);
        assert_eq!(
            handle(&whole(false), event()).await.unwrap_err(),
            "table unavailable"
        );
        // Only the failed record is named when the rest were done.
        let one = Failing {
            partial_batch_response: true,
            whole: false,
        };
        assert_eq!(named(handle(&one, event()).await.unwrap()), all[1..]);
    }
}
