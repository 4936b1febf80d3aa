//! The SQS side: fan-out messages (alert events from the topic) and delivery messages
//! arrive at the same function; each is told apart by its content. Messages that are
//! neither are logged and dropped (nothing can ever make them deliverable); a message
//! whose handling hit a store or queue failure is reported as a batch item failure and
//! comes back.

use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent};
use chrono::Utc;

use crate::{alert_event, Delivery, Hooks, Poster, Queue, Tally, Webhooks};

impl<H: Hooks, Q: Queue, P: Poster> Webhooks<H, Q, P> {
    pub async fn handle(&self, event: SqsEvent) -> SqsBatchResponse {
        // Messages are independent: one slow receiver must not hold up the others.
        let outcomes = futures::future::join_all(event.records.into_iter().map(|message| async move {
            let id = message.message_id.clone().unwrap_or_default();
            let body = message.body.unwrap_or_default();
            let mut tally = Tally::default();
            let result = match serde_json::from_str::<Delivery>(&body) {
                Ok(delivery) => self.deliver(delivery, Utc::now(), &mut tally).await,
                Err(_) => match alert_event(&body) {
                    Ok(alert) => self.fan_out(alert, &mut tally).await,
                    Err(reason) => {
                        tracing::error!(message_id = %id, %reason, "neither an alert nor a delivery; dropped");
                        Ok(())
                    }
                },
            };
            if let Err(err) = &result {
                tracing::warn!(message_id = %id, error = %err, "message will be retried");
            }
            (id, result.is_err(), tally)
        }))
        .await;
        let mut total = Tally::default();
        let mut failures = Vec::new();
        for (id, failed, tally) in outcomes {
            total.add(&tally);
            if failed {
                let mut failure = BatchItemFailure::default();
                failure.item_identifier = id;
                failures.push(failure);
            }
        }
        total.emit();
        let mut response = SqsBatchResponse::default();
        response.batch_item_failures = failures;
        response
    }
}
