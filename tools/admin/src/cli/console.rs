//! `hub-admin console publish`.

use std::path::PathBuf;

use anyhow::Result;
use clap::{Args, Subcommand};
use hub_admin::console::{self, ConsoleConfig};

#[derive(Subcommand)]
pub enum ConsoleCommand {
    /// Upload the built console and this stack's config.json to the console bucket.
    Publish(Publish),
}

#[derive(Args)]
pub struct Publish {
    /// The stack's ConsoleBucketName output.
    #[arg(long, env = "HUB_CONSOLE_BUCKET")]
    bucket: String,
    /// The console's build (npm run build in console/).
    #[arg(long, default_value = "console/dist")]
    dist: PathBuf,
    /// The stack's RealtimeUrl output.
    #[arg(long, env = "HUB_REALTIME_URL")]
    realtime_url: String,
    /// The hosted UI's base URL (the user pool domain).
    #[arg(long, env = "HUB_AUTH_URL")]
    auth_url: String,
    /// The stack's ConsoleClientId output.
    #[arg(long, env = "HUB_CONSOLE_CLIENT_ID")]
    client_id: String,
    /// The stack's ConsoleUrl output.
    #[arg(long, env = "HUB_CONSOLE_URL")]
    console_url: String,
}

impl ConsoleCommand {
    pub async fn run(self) -> Result<()> {
        let ConsoleCommand::Publish(p) = self;
        let aws = hub_runtime::AwsEnv::load().await;
        let config = ConsoleConfig {
            // The console's origin serves the API under /v1 (CloudFront on AWS, the
            // console proxy locally).
            api_url: String::new(),
            realtime_url: p.realtime_url,
            auth_url: p.auth_url.trim_end_matches('/').to_owned(),
            client_id: p.client_id,
            redirect_uri: p.console_url,
        };
        let published = console::publish(&aws.s3(), &p.bucket, &p.dist, &config).await?;
        eprintln!(
            "published {} files ({} bytes) and config.json to {}",
            published.files, published.bytes, p.bucket
        );
        Ok(())
    }
}
