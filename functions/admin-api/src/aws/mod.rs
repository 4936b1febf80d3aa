//! The ports on AWS: DynamoDB tables, the IoT registry and the IoT data plane. Thin: each method is one or a
//! few SDK calls, and every SDK error becomes a `PortError` naming the operation.

mod alerts;
mod audit;
mod credentials;
mod data;
mod firmware;
mod history;
mod iot;
mod registry;
mod rollouts;
mod webhooks;

use hub_credentials::dynamodb::DynamoApiKeys;
use hub_detection::{rules_table::DynamoRules, webhooks_table::DynamoWebhooks};
use hub_fleet::{
    commands_table::DynamoCommands, firmware_table::DynamoFirmware, jobs::FirmwareJobs,
    rollouts_table::DynamoRollouts,
};
use hub_runtime::{config, AwsEnv};

#[derive(Clone, Debug, Default)]
pub struct Tables {
    pub devices: String,
    pub credentials: String,
    pub telemetry: String,
    /// Each device's newest reading.
    pub latest: String,
    pub aggregates: String,
    /// The detector's state per series, which holds the series' open window.
    pub detector_state: String,
    pub alert_rules: String,
    pub alerts: String,
    pub audit: String,
    pub webhooks: String,
    pub commands: String,
    pub firmware: String,
    /// Where firmware images are uploaded.
    pub firmware_bucket: String,
    pub rollouts: String,
    pub rollout_devices: String,
    /// The role IoT Jobs presigns firmware downloads with.
    pub jobs_presign_role_arn: String,
    /// `arn:{partition}:iot:{region}:{account}`.
    pub iot_arn_prefix: String,
}

impl Tables {
    /// The names the function's environment gives.
    pub fn from_env() -> Result<Self, config::ConfigError> {
        Ok(Self {
            devices: config::required("DEVICES_TABLE")?,
            credentials: config::required("CREDENTIALS_TABLE")?,
            telemetry: config::required("TELEMETRY_TABLE")?,
            latest: config::required("LATEST_TABLE")?,
            aggregates: config::required("AGGREGATES_TABLE")?,
            detector_state: config::required("DETECTOR_STATE_TABLE")?,
            alert_rules: config::required("ALERT_RULES_TABLE")?,
            alerts: config::required("ALERTS_TABLE")?,
            audit: config::required("AUDIT_TABLE")?,
            webhooks: config::required("WEBHOOKS_TABLE")?,
            commands: config::required("COMMANDS_TABLE")?,
            firmware: config::required("FIRMWARE_TABLE")?,
            firmware_bucket: config::required("FIRMWARE_BUCKET")?,
            rollouts: config::required("ROLLOUTS_TABLE")?,
            rollout_devices: config::required("ROLLOUT_DEVICES_TABLE")?,
            jobs_presign_role_arn: config::required("JOBS_PRESIGN_ROLE_ARN")?,
            iot_arn_prefix: config::required("IOT_ARN_PREFIX")?,
        })
    }
}

pub struct AwsBackend {
    pub dynamodb: aws_sdk_dynamodb::Client,
    pub iot: aws_sdk_iot::Client,
    /// Shadows and publishing; on AWS its endpoint is the account's IoT data endpoint.
    pub data: aws_sdk_iotdataplane::Client,
    /// Presigns firmware uploads.
    pub s3: aws_sdk_s3::Client,
    pub tables: Tables,
    /// The IoT policy every device certificate gets.
    pub device_policy: String,
    /// Days audit rows are kept (0: forever).
    pub audit_retention_days: i64,
    api_keys: DynamoApiKeys,
    rules: DynamoRules,
    hooks: DynamoWebhooks,
    commands: DynamoCommands,
    firmware: DynamoFirmware,
    rollouts: DynamoRollouts,
    jobs: FirmwareJobs,
    /// Where rollout events go (the event stream), when this backend announces them.
    events: Option<(aws_sdk_kinesis::Client, String)>,
}

impl crate::ports::FleetTables for AwsBackend {
    type Commands = DynamoCommands;
    type Firmware = DynamoFirmware;
    type Rollouts = DynamoRollouts;

    fn commands_table(&self) -> &DynamoCommands {
        &self.commands
    }

    fn firmware_table(&self) -> &DynamoFirmware {
        &self.firmware
    }

    fn rollouts_table(&self) -> &DynamoRollouts {
        &self.rollouts
    }
}

impl AwsBackend {
    pub fn new(
        dynamodb: aws_sdk_dynamodb::Client,
        iot: aws_sdk_iot::Client,
        data: aws_sdk_iotdataplane::Client,
        s3: aws_sdk_s3::Client,
        tables: Tables,
        device_policy: String,
        audit_retention_days: i64,
    ) -> Self {
        Self {
            commands: DynamoCommands {
                client: dynamodb.clone(),
                table: tables.commands.clone(),
            },
            firmware: DynamoFirmware {
                client: dynamodb.clone(),
                table: tables.firmware.clone(),
            },
            rollouts: DynamoRollouts {
                client: dynamodb.clone(),
                rollouts: tables.rollouts.clone(),
                devices: tables.rollout_devices.clone(),
            },
            jobs: FirmwareJobs {
                iot: iot.clone(),
                bucket: tables.firmware_bucket.clone(),
                presign_role_arn: tables.jobs_presign_role_arn.clone(),
                arn_prefix: tables.iot_arn_prefix.clone(),
            },
            api_keys: DynamoApiKeys {
                client: dynamodb.clone(),
                table: tables.credentials.clone(),
            },
            rules: DynamoRules {
                client: dynamodb.clone(),
                table: tables.alert_rules.clone(),
            },
            hooks: DynamoWebhooks {
                client: dynamodb.clone(),
                table: tables.webhooks.clone(),
                secrets: None,
            },
            events: None,
            dynamodb,
            iot,
            data,
            s3,
            tables,
            device_policy,
            audit_retention_days,
        }
    }

    /// Rollout events (`iot.firmware.rollout.started.v1`) go to `stream`.
    /// Seals the signing secrets of new webhooks with KMS under `key_id`.
    pub fn with_webhook_secrets(mut self, kms: aws_sdk_kms::Client, key_id: String) -> Self {
        self.hooks.secrets = Some(hub_detection::webhooks_table::SecretSeal { kms, key_id });
        self
    }

    pub fn with_events(mut self, kinesis: aws_sdk_kinesis::Client, stream: String) -> Self {
        self.events = Some((kinesis, stream));
        self
    }
}

/// The SDK's full error text (service code and message), for logs.
fn describe<E: std::error::Error>(err: E) -> String {
    aws_sdk_dynamodb::error::DisplayErrorContext(err).to_string()
}

use hub_runtime::dynamodb::is_condition_failure;

/// The data plane client. On AWS its endpoint is the account's own (`iot:Data-ATS`),
/// asked once per cold start; an overridden endpoint (the emulator) serves it directly.
pub async fn data_plane(
    aws: &AwsEnv,
    iot: &aws_sdk_iot::Client,
) -> Result<aws_sdk_iotdataplane::Client, String> {
    if aws.endpoint_override.is_some() {
        return Ok(aws_sdk_iotdataplane::Client::new(&aws.sdk));
    }
    let endpoint = iot
        .describe_endpoint()
        .endpoint_type("iot:Data-ATS")
        .send()
        .await
        .map_err(|e| {
            format!(
                "DescribeEndpoint: {}",
                aws_sdk_iot::error::DisplayErrorContext(e)
            )
        })?
        .endpoint_address
        .ok_or("DescribeEndpoint returned no address")?;
    let config = aws_sdk_iotdataplane::config::Builder::from(&aws.sdk)
        .endpoint_url(format!("https://{endpoint}"))
        .build();
    Ok(aws_sdk_iotdataplane::Client::from_conf(config))
}
