//! Wires DynamoDB and Kinesis to the anomaly detector and hands it to the Lambda runtime.

use std::time::Duration;

use anomaly_detector::{
    aws::{CachedRules, DynamoSeries, KinesisDetections},
    handler::AnomalyDetector,
};
use hub_detection::{rules_table::DynamoRules, AdaptiveConfig, DetectorConfig, Hysteresis};
use hub_runtime::{config, stream, AwsEnv};
use lambda_runtime::Error;

#[tokio::main]
async fn main() -> Result<(), Error> {
    hub_runtime::init_json_tracing();
    let aws = AwsEnv::load().await;
    let dynamodb = aws_sdk_dynamodb::Client::new(&aws.sdk);
    let raise_after = config::or("RAISE_AFTER_POINTS", 2)?;
    let defaults = AdaptiveConfig::default();
    let detector = AnomalyDetector {
        rules: CachedRules::new(
            DynamoRules {
                client: dynamodb.clone(),
                table: config::required("ALERT_RULES_TABLE")?,
            },
            Duration::from_secs(config::or("RULES_CACHE_SECONDS", 30)?),
        ),
        series: DynamoSeries {
            client: dynamodb,
            state_table: config::required("DETECTOR_STATE_TABLE")?,
            aggregates_table: config::required("AGGREGATES_TABLE")?,
            aggregates_retention: chrono::Duration::days(config::or(
                "AGGREGATE_RETENTION_DAYS",
                400,
            )?),
        },
        detections: KinesisDetections {
            client: aws_sdk_kinesis::Client::new(&aws.sdk),
            stream: config::required("ANOMALY_STREAM")?,
        },
        config: DetectorConfig {
            anomaly: AdaptiveConfig {
                threshold: config::or("ANOMALY_THRESHOLD", defaults.threshold)?,
                warmup: config::or("ANOMALY_WARMUP", defaults.warmup)?,
                hysteresis: Hysteresis {
                    raise_after,
                    clear_after: config::or(
                        "ANOMALY_CLEAR_AFTER_POINTS",
                        defaults.hysteresis.clear_after,
                    )?,
                },
                ..defaults
            },
            threshold_hysteresis: Hysteresis {
                raise_after,
                clear_after: config::or("CLEAR_AFTER_POINTS", 3)?,
            },
            window: chrono::Duration::seconds(config::or("WINDOW_SECONDS", 300)?),
            ..DetectorConfig::default()
        },
        partial_batch_response: config::or("PARTIAL_BATCH_RESPONSE", true)?,
    };
    stream::serve(detector).await
}
