//! Wires DynamoDB and S3 to the storage stage and hands it to the Lambda runtime.

use hub_runtime::{config, stream, AwsEnv};
use lambda_runtime::Error;
use telemetry_store::{aws::AwsStores, handler::TelemetryStore};

#[tokio::main]
async fn main() -> Result<(), Error> {
    hub_runtime::init_json_tracing();
    let aws = AwsEnv::load().await;
    let function = TelemetryStore {
        stores: AwsStores {
            dynamodb: aws_sdk_dynamodb::Client::new(&aws.sdk),
            telemetry_table: config::required("TELEMETRY_TABLE")?,
            latest_table: config::required("LATEST_TABLE")?,
            s3: aws.s3(),
            archive_bucket: config::required("ARCHIVE_BUCKET")?,
            dead_letter_bucket: config::required("DEAD_LETTER_BUCKET")?,
        },
        retention_days: config::or("RETENTION_DAYS", 30)?,
        partial_batch_response: config::or("PARTIAL_BATCH_RESPONSE", true)?,
    };
    stream::serve(function).await
}
