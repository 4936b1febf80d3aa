//! Wires the devices, commands, firmware and rollout tables, the firmware bucket, IoT Jobs,
//! the retry queue and the event stream to the fleet handlers and hands them to the
//! Lambda runtime.

use fleet::{
    aws::{AwsRollouts, DynamoRegistry, FirmwareImages},
    Fleet, Origins,
};
use hub_fleet::{commands_table::DynamoCommands, firmware_table::DynamoFirmware};
use hub_runtime::{config, AwsEnv};
use lambda_runtime::{service_fn, Error, LambdaEvent};
use serde_json::Value;

#[tokio::main]
async fn main() -> Result<(), Error> {
    hub_runtime::init_json_tracing();
    let aws = AwsEnv::load().await;
    let dynamodb = aws_sdk_dynamodb::Client::new(&aws.sdk);
    let registry = DynamoRegistry {
        client: dynamodb.clone(),
        table: config::required("DEVICES_TABLE")?,
    };
    let firmware = DynamoFirmware {
        client: dynamodb.clone(),
        table: config::required("FIRMWARE_TABLE")?,
    };
    let fleet = Fleet {
        origins: Origins::from_env()?,
        commands: DynamoCommands {
            client: dynamodb.clone(),
            table: config::required("COMMANDS_TABLE")?,
        },
        images: FirmwareImages {
            table: firmware.clone(),
            s3: aws.s3(),
        },
        rollouts: AwsRollouts::from_env(&aws, dynamodb, firmware, registry.clone())?,
        registry,
    };
    let fleet = &fleet;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| async move {
        let answer = fleet.handle(event.payload, chrono::Utc::now()).await;
        answer.map_err(Error::from)
    }))
    .await
}
