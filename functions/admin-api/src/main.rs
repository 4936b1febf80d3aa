//! Wires DynamoDB, IoT and IoT data plane clients to the admin API and hands it to the runtime.

use admin_api::{aws::AwsBackend, aws::Tables, Api, ApiConfig};
use hub_runtime::{config, AwsEnv};
use lambda_http::{service_fn, Error, Request};

#[tokio::main]
async fn main() -> Result<(), Error> {
    hub_runtime::init_json_tracing();
    let aws = AwsEnv::load().await;
    let iot = aws_sdk_iot::Client::new(&aws.sdk);
    let data = data_plane(&aws, &iot).await?;
    let backend = AwsBackend::new(
        aws_sdk_dynamodb::Client::new(&aws.sdk),
        iot,
        data,
        aws.s3(),
        tables()?,
        config::required("DEVICE_POLICY")?,
        config::or("AUDIT_RETENTION_DAYS", 0)?,
    )
    .with_events(
        aws_sdk_kinesis::Client::new(&aws.sdk),
        config::required("EVENTS_STREAM")?,
    )
    .with_webhook_secrets(
        aws_sdk_kms::Client::new(&aws.sdk),
        config::required("WEBHOOK_SECRETS_KEY")?,
    );
    let api = Api::new(
        backend,
        ApiConfig {
            window_seconds: config::or("WINDOW_SECONDS", 300)?,
            default_grace_seconds: config::or("CERTIFICATE_GRACE_SECONDS", 24 * 3600)?,
            allow_http_webhooks: config::or("ALLOW_HTTP_WEBHOOKS", false)?,
            allow_private_webhooks: config::or("ALLOW_PRIVATE_WEBHOOK_ADDRESSES", false)?,
            firmware_signing_key: std::env::var("FIRMWARE_SIGNING_PUBLIC_KEY")
                .ok()
                .filter(|k| !k.trim().is_empty()),
        },
    );
    let api = &api;
    lambda_http::run(service_fn(move |request: Request| async move {
        Ok::<_, Error>(api.handle_http(request).await)
    }))
    .await
}

pub fn tables() -> Result<Tables, config::ConfigError> {
    Ok(Tables {
        devices: config::required("DEVICES_TABLE")?,
        credentials: config::required("CREDENTIALS_TABLE")?,
        telemetry: config::required("TELEMETRY_TABLE")?,
        aggregates: config::required("AGGREGATES_TABLE")?,
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

/// The data plane client. On AWS its endpoint is the account's own (`iot:Data-ATS`),
/// asked once per cold start; an overridden endpoint (the emulator) serves it directly.
async fn data_plane(
    aws: &AwsEnv,
    iot: &aws_sdk_iot::Client,
) -> Result<aws_sdk_iotdataplane::Client, Error> {
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
