//! Wires the devices, commands and firmware tables and the firmware bucket to the fleet
//! handlers and hands it to the Lambda runtime.

use fleet::aws::{DynamoRegistry, FirmwareImages};
use hub_fleet::{commands_table::DynamoCommands, firmware_table::DynamoFirmware};
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
    let commands = DynamoCommands {
        client: aws_sdk_dynamodb::Client::new(&aws.sdk),
        table: config::required("COMMANDS_TABLE")?,
    };
    let images = FirmwareImages {
        table: DynamoFirmware {
            client: aws_sdk_dynamodb::Client::new(&aws.sdk),
            table: config::required("FIRMWARE_TABLE")?,
        },
        s3: aws.s3(),
    };
    let (registry, commands, images) = (&registry, &commands, &images);
    lambda_runtime::run(service_fn(
        move |event: LambdaEvent<serde_json::Value>| async move {
            fleet::dispatch(
                registry,
                commands,
                images,
                event.payload,
                chrono::Utc::now(),
            )
            .await
            .map(|outcome| serde_json::json!({ "outcome": format!("{outcome:?}") }))
            .map_err(Error::from)
        },
    ))
    .await
}
