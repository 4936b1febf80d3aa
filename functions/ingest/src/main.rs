//! Wires the API key table and the raw stream to HTTP ingest and hands it to the runtime.

use hub_credentials::dynamodb::DynamoApiKeys;
use hub_runtime::{config, AwsEnv};
use ingest::{aws::KinesisRawSink, Ingest};
use lambda_http::{service_fn, Error, Request};

#[tokio::main]
async fn main() -> Result<(), Error> {
    hub_runtime::init_json_tracing();
    let aws = AwsEnv::load().await;
    let ingest = Ingest {
        keys: DynamoApiKeys {
            client: aws_sdk_dynamodb::Client::new(&aws.sdk),
            table: config::required("CREDENTIALS_TABLE")?,
        },
        sink: KinesisRawSink {
            client: aws_sdk_kinesis::Client::new(&aws.sdk),
            stream: config::required("RAW_STREAM")?,
        },
    };
    let ingest = &ingest;
    lambda_http::run(service_fn(move |request: Request| async move {
        Ok::<_, Error>(ingest.handle_http(request).await)
    }))
    .await
}
