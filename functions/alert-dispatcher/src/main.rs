//! Wires DynamoDB and SNS to the alert dispatcher and hands it to the Lambda runtime.

use alert_dispatcher::{
    aws::{DynamoAlerts, DynamoClaims, SnsNotifier},
    handler::AlertDispatcher,
};
use hub_runtime::{config, stream, AwsEnv};
use lambda_runtime::Error;

#[tokio::main]
async fn main() -> Result<(), Error> {
    hub_runtime::init_json_tracing();
    let aws = AwsEnv::load().await;
    let dynamodb = aws_sdk_dynamodb::Client::new(&aws.sdk);
    let dispatcher = AlertDispatcher {
        claims: DynamoClaims {
            client: dynamodb.clone(),
            table: config::required("ALERT_DEDUP_TABLE")?,
            keep: chrono::Duration::hours(config::or("ALERT_DEDUP_KEEP_HOURS", 24)?),
        },
        alerts: DynamoAlerts {
            client: dynamodb,
            table: config::required("ALERTS_TABLE")?,
        },
        notifier: SnsNotifier {
            client: aws_sdk_sns::Client::new(&aws.sdk),
            topic_arn: config::required("ALERT_TOPIC_ARN")?,
        },
        partial_batch_response: config::or("PARTIAL_BATCH_RESPONSE", true)?,
    };
    stream::serve(dispatcher).await
}
