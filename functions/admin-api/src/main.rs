//! Wires DynamoDB, IoT and IoT data plane clients to the admin API and hands it to the runtime.

use admin_api::{
    aws::{data_plane, AwsBackend, Tables},
    Api, ApiConfig,
};
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
        Tables::from_env()?,
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
