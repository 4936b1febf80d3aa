//! Runs on a schedule: ends the grace of rotated certificates (deactivate, then revoke).

use admin_api::{aws::AwsBackend, aws::Tables, sweeper};
use hub_runtime::{config, emf::Metrics, AwsEnv};
use lambda_runtime::{service_fn, Error, LambdaEvent};

#[tokio::main]
async fn main() -> Result<(), Error> {
    hub_runtime::init_json_tracing();
    let aws = AwsEnv::load().await;
    // Only the credentials table and IoT are used; the other names are not needed here.
    let credentials = config::required("CREDENTIALS_TABLE")?;
    let tables = Tables {
        credentials,
        ..Tables::default()
    };
    let backend = AwsBackend::new(
        aws_sdk_dynamodb::Client::new(&aws.sdk),
        aws_sdk_iot::Client::new(&aws.sdk),
        aws_sdk_iotdataplane::Client::new(&aws.sdk),
        aws.s3(),
        tables,
        config::required("DEVICE_POLICY")?,
        0,
    );
    let backend = &backend;
    lambda_runtime::run(service_fn(
        move |_: LambdaEvent<serde_json::Value>| async move {
            let report = sweeper::sweep(backend, chrono::Utc::now()).await?;
            Metrics::new("credential-sweeper")
                .count("certificates_deactivated_total", report.deactivated as u64)
                .count("certificates_revoked_total", report.revoked as u64)
                .count(
                    "certificate_retirement_failures_total",
                    report.failed as u64,
                )
                .flush();
            tracing::info!(?report, "sweep done");
            Ok::<_, Error>(serde_json::to_value(report)?)
        },
    ))
    .await
}
