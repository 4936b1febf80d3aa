//! Firmware artifacts: register, upload and wait for the check; list; show.

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Subcommand;
use hub_admin::AdminClient;

use super::print;

#[derive(Subcommand)]
pub enum FirmwareCommand {
    /// Register an image (its SHA-256, signed with the Ed25519 key), upload it, and wait
    /// for the hub's check of the upload.
    Add {
        file: PathBuf,
        #[arg(long)]
        version: String,
        #[arg(long = "type")]
        device_type: String,
        /// PKCS#8 (DER) Ed25519 private key; the local stack writes one.
        #[arg(long, env = "HUB_FIRMWARE_SIGNING_KEY")]
        signing_key: PathBuf,
    },
    /// List artifacts, newest first.
    List,
    /// Show one artifact and its status.
    Get { version: String },
}

impl FirmwareCommand {
    pub async fn run(self, client: &AdminClient) -> Result<()> {
        match self {
            FirmwareCommand::Add {
                file,
                version,
                device_type,
                signing_key,
            } => {
                let image =
                    std::fs::read(&file).with_context(|| format!("reading {}", file.display()))?;
                let key = std::fs::read(&signing_key)
                    .with_context(|| format!("reading {}", signing_key.display()))?;
                let artifact = client
                    .add_firmware(
                        &version,
                        &device_type,
                        image,
                        &key,
                        std::time::Duration::from_secs(60),
                    )
                    .await?;
                print(&artifact);
            }
            FirmwareCommand::List => print(&client.get("/v1/firmware").await?.ok()?),
            FirmwareCommand::Get { version } => {
                print(&client.get(&format!("/v1/firmware/{version}")).await?.ok()?)
            }
        }
        Ok(())
    }
}
