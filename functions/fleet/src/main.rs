//! Wires the devices, commands, firmware and rollout tables, the firmware bucket, IoT Jobs,
//! the retry queue and the event stream to the fleet handlers and hands them to the
//! Lambda runtime.

use fleet::{
    aws::{AwsRollouts, DynamoRegistry, FirmwareImages},
    Origins,
};
use hub_fleet::{
    commands_table::DynamoCommands, firmware_table::DynamoFirmware, jobs::FirmwareJobs,
    rollouts_table::DynamoRollouts,
};
use hub_runtime::{config, AwsEnv};
use lambda_runtime::{service_fn, Error, LambdaEvent};

#[tokio::main]
async fn main() -> Result<(), Error> {
    hub_runtime::init_json_tracing();
    let aws = AwsEnv::load().await;
    let dynamodb = aws_sdk_dynamodb::Client::new(&aws.sdk);
    let registry = DynamoRegistry {
        client: dynamodb.clone(),
        table: config::required("DEVICES_TABLE")?,
    };
    let commands = DynamoCommands {
        client: dynamodb.clone(),
        table: config::required("COMMANDS_TABLE")?,
    };
    let firmware = DynamoFirmware {
        client: dynamodb.clone(),
        table: config::required("FIRMWARE_TABLE")?,
    };
    let images = FirmwareImages {
        table: firmware.clone(),
        s3: aws.s3(),
    };
    let rollouts = AwsRollouts {
        table: DynamoRollouts {
            client: dynamodb.clone(),
            rollouts: config::required("ROLLOUTS_TABLE")?,
            devices: config::required("ROLLOUT_DEVICES_TABLE")?,
        },
        jobs: FirmwareJobs {
            iot: aws_sdk_iot::Client::new(&aws.sdk),
            bucket: config::required("FIRMWARE_BUCKET")?,
            presign_role_arn: config::required("JOBS_PRESIGN_ROLE_ARN")?,
            arn_prefix: config::required("IOT_ARN_PREFIX")?,
        },
        firmware,
        registry: DynamoRegistry {
            client: dynamodb,
            table: registry.table.clone(),
        },
        sqs: aws_sdk_sqs::Client::new(&aws.sdk),
        retry_queue_url: config::required("ROLLOUT_RETRY_QUEUE_URL")?,
        kinesis: aws_sdk_kinesis::Client::new(&aws.sdk),
        events_stream: config::required("EVENTS_STREAM")?,
    };
    let origins = Origins {
        firmware_bucket: config::required("FIRMWARE_BUCKET")?,
        retry_queue_arn: config::required("ROLLOUT_RETRY_QUEUE_ARN")?,
    };
    let (origins, registry, commands, images, rollouts) =
        (&origins, &registry, &commands, &images, &rollouts);
    lambda_runtime::run(service_fn(
        move |event: LambdaEvent<serde_json::Value>| async move {
            fleet::dispatch(
                origins,
                registry,
                commands,
                images,
                rollouts,
                event.payload,
                chrono::Utc::now(),
            )
            .await
            .map(|outcome| outcome.response())
            .map_err(Error::from)
        },
    ))
    .await
}
