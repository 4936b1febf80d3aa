//! Wires the connections table, `@connections` and the source ARNs to the pusher.

use hub_runtime::{config, AwsEnv};
use lambda_runtime::{service_fn, Error, LambdaEvent};
use realtime::{
    entry::pusher_batch,
    events::{Sources, Table},
};
use serde_json::{json, Value};

#[tokio::main]
async fn main() -> Result<(), Error> {
    hub_runtime::init_json_tracing();
    let aws = AwsEnv::load().await;
    let (connections, sockets) = realtime::aws::wire(&aws)?;
    let sources = Sources {
        readings_stream: config::required("READINGS_STREAM_ARN")?,
        events_stream: config::required("EVENTS_STREAM_ARN")?,
        tables: vec![
            (config::required("ALERTS_TABLE_ARN")?, Table::Alerts),
            (config::required("DEVICES_TABLE_ARN")?, Table::Devices),
            (config::required("COMMANDS_TABLE_ARN")?, Table::Commands),
            (
                config::required("ROLLOUT_DEVICES_TABLE_ARN")?,
                Table::RolloutDevices,
            ),
        ],
    };
    let (connections, sockets, sources) = (&connections, &sockets, &sources);
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| async move {
        let outcome = pusher_batch(sources, connections, sockets, event.payload).await?;
        tracing::info!(
            source = outcome.source,
            records = outcome.records,
            coalesced = outcome.coalesced,
            unreadable = outcome.unreadable,
            foreign = outcome.foreign,
            sent = outcome.push.sent,
            gone = outcome.push.gone,
            failed = outcome.push.failed,
            "batch pushed"
        );
        // Nothing to retry record by record: the batch succeeded as a whole.
        Ok::<_, Error>(json!({"batchItemFailures": []}))
    }))
    .await
}
