//! Asynchronous invokes that keep failing are not lost: after Lambda's retries the whole
//! event waits on the stack's AsyncFailureQueue as Lambda's on-failure record, and
//! `hub-admin replay` hands it back to its function unchanged.

use std::time::{Duration, Instant};

use aws_sdk_lambda::{primitives::Blob, types::InvocationType};
use hub_e2e::{unique, Stack};
use serde_json::{json, Value};

/// The on-failure records on the queue whose event carries `marker`, left on the queue.
async fn records_marked(stack: &Stack, queue: &str, marker: &str) -> Vec<(String, Value)> {
    let received = stack
        .sqs()
        .receive_message()
        .queue_url(queue)
        .max_number_of_messages(10)
        .visibility_timeout(0)
        .wait_time_seconds(1)
        .send()
        .await
        .unwrap();
    received
        .messages
        .unwrap_or_default()
        .into_iter()
        .filter_map(|m| {
            let body: Value = serde_json::from_str(m.body.as_deref()?).ok()?;
            (body["requestPayload"]["comment"] == marker)
                .then(|| (m.message_id.unwrap_or_default(), body))
        })
        .collect()
}

async fn wait_for_record(stack: &Stack, queue: &str, marker: &str) -> (String, Value) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(found) = records_marked(stack, queue, marker)
            .await
            .into_iter()
            .next()
        {
            return found;
        }
        assert!(Instant::now() < deadline, "no failure record for {marker}");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

async fn invoke_async(stack: &Stack, function: &str, event: &Value) {
    aws_sdk_lambda::Client::new(&stack.aws.sdk)
        .invoke()
        .function_name(function)
        .invocation_type(InvocationType::Event)
        .payload(Blob::new(event.to_string()))
        .send()
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failing_async_event_waits_on_the_failure_queue_and_replays_unchanged() {
    let stack = Stack::from_env().await.unwrap();
    let function = stack.output("FleetFunctionName").to_owned();
    let queue = stack.output("AsyncFailureQueueUrl").to_owned();
    // A job event the function cannot read (no jobId): it fails on every try.
    let failing = unique("failing");
    let unreadable = json!({"hub_rule": "job", "eventType": "JOB", "operation": "completed",
        "timestamp": 1_795_428_001i64, "comment": failing});
    // Positive control: a readable one (a job that is not the hub's) succeeds.
    let fine = unique("fine");
    let readable = json!({"hub_rule": "job", "eventType": "JOB", "operation": "completed",
        "jobId": format!("not-ours-{fine}"), "timestamp": 1_795_428_001i64, "comment": fine});
    invoke_async(&stack, &function, &unreadable).await;
    invoke_async(&stack, &function, &readable).await;

    let (first_id, record) = wait_for_record(&stack, &queue, &failing).await;
    assert_eq!(record["requestPayload"], unreadable, "{record}");
    assert_eq!(
        record["requestContext"]["condition"], "RetriesExhausted",
        "{record}"
    );
    assert!(
        record["requestContext"]["functionArn"]
            .as_str()
            .unwrap()
            .contains(&function),
        "{record}"
    );
    assert!(records_marked(&stack, &queue, &fine).await.is_empty());

    // Replayed: the message leaves the queue, the function gets the same event again,
    // and (still unreadable) it is back as a new record.
    let replayed = hub_admin::replay::replay(
        &stack.sqs(),
        &aws_sdk_lambda::Client::new(&stack.aws.sdk),
        &queue,
        false,
    )
    .await
    .unwrap();
    assert!(replayed.replayed >= 1, "{replayed:?}");
    let deadline = Instant::now() + Duration::from_secs(60);
    let again = loop {
        let found = records_marked(&stack, &queue, &failing).await;
        if let Some((id, body)) = found.into_iter().find(|(id, _)| *id != first_id) {
            break (id, body);
        }
        assert!(
            Instant::now() < deadline,
            "the replayed event did not come back"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    assert_eq!(again.1["requestPayload"], unreadable);
    assert!(records_marked(&stack, &queue, &failing)
        .await
        .iter()
        .all(|(id, _)| *id != first_id));
}
