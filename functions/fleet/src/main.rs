//! Wires the devices table to the presence handler and hands it to the Lambda runtime.

use fleet::aws::DynamoRegistry;
use hub_runtime::{config, AwsEnv};
use lambda_runtime::{service_fn, Error, LambdaEvent};

#[tokio::main]
async fn main() -> Result<(), Error> {
    hub_runtime::init_json_tracing();
    let aws = AwsEnv::load().await;
    let registry = DynamoRegistry {
        client: aws_sdk_dynamodb::Client::new(&aws.sdk),
        table: config::required("DEVICES_TABLE")?,
    };
    let registry = &registry;
    lambda_runtime::run(service_fn(
        move |event: LambdaEvent<serde_json::Value>| async move {
            fleet::handle(registry, event.payload)
                .await
                .map(|applied| serde_json::json!({ "outcome": format!("{applied:?}") }))
                .map_err(Error::from)
        },
    ))
    .await
}
