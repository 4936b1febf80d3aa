//! Wires AWS clients to the normalizer and hands it to the Lambda runtime.

use std::time::Duration;

use hub_runtime::{config, stream, AwsEnv};
use hub_telemetry::SkewPolicy;
use lambda_runtime::Error;
use normalizer::{
    aws::{AwsOutputs, DynamoDedup, DynamoDeviceStates, DynamoRegistry},
    handler::Normalizer,
    process::Config,
};

#[tokio::main]
async fn main() -> Result<(), Error> {
    hub_runtime::init_json_tracing();
    let aws = AwsEnv::load().await;
    let dynamodb = aws_sdk_dynamodb::Client::new(&aws.sdk);
    let normalizer = Normalizer {
        registry: DynamoRegistry::new(
            dynamodb.clone(),
            config::required("DEVICES_TABLE")?,
            Duration::from_secs(config::or("REGISTRY_CACHE_SECONDS", 60)?),
            config::or(
                "REGISTRY_CACHE_DEVICES",
                std::num::NonZeroUsize::new(100_000).expect("not zero"),
            )?,
        ),
        states: DynamoDeviceStates {
            client: dynamodb.clone(),
            table: config::required("DEVICE_STATE_TABLE")?,
        },
        dedup: DynamoDedup {
            client: dynamodb,
            table: config::required("DEDUP_TABLE")?,
            ttl: Duration::from_secs(config::or("DEDUP_TTL_HOURS", 168u64)? * 3600),
        },
        outputs: AwsOutputs {
            kinesis: aws_sdk_kinesis::Client::new(&aws.sdk),
            normalized_stream: config::required("NORMALIZED_STREAM")?,
            s3: aws.s3(),
            dead_letter_bucket: config::required("DEAD_LETTER_BUCKET")?,
        },
        config: Config {
            skew: SkewPolicy {
                threshold: chrono::Duration::seconds(config::or(
                    "CLOCK_SKEW_THRESHOLD_SECONDS",
                    300,
                )?),
            },
            rate_limit_per_minute: config::or("RATE_LIMIT_PER_MINUTE", 600)?,
        },
        partial_batch_response: config::or("PARTIAL_BATCH_RESPONSE", true)?,
    };
    stream::serve(normalizer).await
}
