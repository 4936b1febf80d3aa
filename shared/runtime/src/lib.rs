//! What every binary of the hub needs before doing any work: an AWS configuration that
//! points at AWS or at the local emulator, and tracing.
//!
//! The same binary runs in both places; the only switch is `AWS_ENDPOINT_URL`, which the
//! SDK honours by itself. What the SDK cannot infer is that an emulator serves S3 on one
//! host, so buckets must be addressed path-style there.

pub mod config;
#[cfg(feature = "s3")]
pub mod dead_letter;
#[cfg(feature = "dynamodb")]
pub mod dynamodb;
pub mod emf;
#[cfg(feature = "kinesis")]
pub mod kinesis;
pub mod net;
pub mod role;
#[cfg(feature = "stream")]
pub mod stream;

use aws_config::{BehaviorVersion, SdkConfig};
use aws_smithy_http_client::tls;
use tracing_subscriber::EnvFilter;

/// A transient failure of a store or stream a function depends on: the records involved
/// are retried, never dropped.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{operation}: {message}")]
pub struct PortError {
    pub operation: &'static str,
    pub message: String,
}

impl PortError {
    pub fn new(operation: &'static str, message: impl std::fmt::Display) -> Self {
        Self {
            operation,
            message: message.to_string(),
        }
    }
}

/// A table helper's failure: which call, and what the store said. Ports turn it into a
/// [`PortError`] with `?`.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{operation}: {message}")]
pub struct TableError {
    pub operation: &'static str,
    pub message: String,
}

impl TableError {
    pub fn new(operation: &'static str, message: impl std::fmt::Display) -> Self {
        Self {
            operation,
            message: message.to_string(),
        }
    }
}

impl From<TableError> for PortError {
    fn from(err: TableError) -> Self {
        PortError {
            operation: err.operation,
            message: err.message,
        }
    }
}

/// The loaded SDK configuration plus what was learned about where it points.
#[derive(Clone, Debug)]
pub struct AwsEnv {
    pub sdk: SdkConfig,
    /// Set when the endpoint is overridden (the local emulator, or any single-host proxy).
    pub endpoint_override: Option<String>,
}

impl AwsEnv {
    /// Loads region, credentials and endpoint from the environment and profile, with one
    /// HTTP client (rustls on ring) shared by every service client built from it.
    pub async fn load() -> Self {
        let http_client = aws_smithy_http_client::Builder::new()
            .tls_provider(tls::Provider::Rustls(
                tls::rustls_provider::CryptoMode::Ring,
            ))
            .build_https();
        let sdk = aws_config::defaults(BehaviorVersion::latest())
            .http_client(http_client)
            .load()
            .await;
        let endpoint_override = sdk.endpoint_url().map(str::to_owned);
        Self {
            sdk,
            endpoint_override,
        }
    }

    /// True when requests go to an emulator rather than AWS.
    pub fn is_local(&self) -> bool {
        self.endpoint_override.is_some()
    }

    /// S3 client configuration: path-style addressing whenever the endpoint is overridden,
    /// because an emulator on `127.0.0.1:4566` has no per-bucket DNS names.
    #[cfg(feature = "s3")]
    pub fn s3_config(&self) -> aws_sdk_s3::Config {
        aws_sdk_s3::config::Builder::from(&self.sdk)
            .force_path_style(self.is_local())
            .build()
    }

    #[cfg(feature = "s3")]
    pub fn s3(&self) -> aws_sdk_s3::Client {
        aws_sdk_s3::Client::from_conf(self.s3_config())
    }
}

/// JSON logs on stdout, one object per line, filtered by `RUST_LOG` (default `info`).
/// This is what Lambda functions and long-running local services use.
pub fn init_json_tracing() {
    let _ = tracing_subscriber::fmt()
        .json()
        .with_env_filter(env_filter())
        .with_current_span(true)
        .with_target(false)
        .with_ansi(false)
        .try_init();
}

/// Human-readable logs on stderr for command-line tools, so stdout stays for results.
pub fn init_cli_tracing() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(env_filter())
        .with_target(false)
        .with_writer(std::io::stderr)
        .try_init();
}

fn env_filter() -> EnvFilter {
    EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"))
}

#[cfg(test)]
mod tests {
    use super::*;

    // Environment variables are process-wide, so both cases live in one test.
    #[tokio::test]
    async fn endpoint_override_follows_aws_endpoint_url() {
        std::env::set_var("AWS_REGION", "us-east-1");
        std::env::set_var("AWS_ACCESS_KEY_ID", "test");
        std::env::set_var("AWS_SECRET_ACCESS_KEY", "test");
        std::env::remove_var("AWS_ENDPOINT_URL");
        let aws = AwsEnv::load().await;
        assert!(!aws.is_local());

        std::env::set_var("AWS_ENDPOINT_URL", "http://127.0.0.1:4566");
        let aws = AwsEnv::load().await;
        assert_eq!(
            aws.endpoint_override.as_deref(),
            Some("http://127.0.0.1:4566")
        );
        std::env::remove_var("AWS_ENDPOINT_URL");
    }
}
