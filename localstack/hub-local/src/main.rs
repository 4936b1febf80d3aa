//! `hub-local`: the parts of the local stack that the emulator and Mosquitto do not
//! provide themselves. The scripts in `localstack/` call it; see `localstack/README.md`.

mod acl;
mod bridge;
mod console;
mod deploy;
mod mosquitto;
mod package;
mod pki;
mod rules;

use std::{path::PathBuf, time::Duration};

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use hub_runtime::AwsEnv;

#[derive(Parser)]
#[command(version, about = "Local stack tooling for IoT Control Hub")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Create the local CA, broker and bridge certificates, an empty CRL, and the
    /// emulator's IoT state seed that makes the emulator sign with this CA.
    PkiInit {
        #[arg(long)]
        pki_dir: PathBuf,
        #[arg(long)]
        seed_file: PathBuf,
    },
    /// Package the template's cargo-lambda functions from host-built binaries, deploy it
    /// into the emulator's CloudFormation and write the outputs.
    Deploy {
        #[arg(long)]
        stack_name: String,
        #[arg(long, default_value = "template.yaml")]
        template: PathBuf,
        /// Directory of the host-built function executables.
        #[arg(long, default_value = "target/debug")]
        binaries_dir: PathBuf,
        /// Emulator bucket that receives the function packages.
        #[arg(long, default_value = "hub-local-artifacts")]
        artifacts_bucket: String,
        /// Template parameter as KEY=VALUE; repeatable.
        #[arg(long = "parameter", value_parser = parse_key_value)]
        parameters: Vec<(String, String)>,
        #[arg(long)]
        outputs_file: PathBuf,
    },
    /// Write mosquitto.conf and the ACL file derived from the deployed IoT policy.
    MosquittoConfig {
        #[arg(long)]
        policy_name: String,
        #[arg(long)]
        pki_dir: PathBuf,
        #[arg(long)]
        port: u16,
        /// Directory for mosquitto.conf, acl and mosquitto.log.
        #[arg(long)]
        dir: PathBuf,
    },
    /// Serve the console at a fixed local address: `/v1/*` to the HTTP API, the rest to
    /// the console's distribution.
    ConsoleProxy {
        #[arg(long)]
        port: u16,
        /// The emulator's endpoint (`http://127.0.0.1:{port}`).
        #[arg(long, env = "AWS_ENDPOINT_URL")]
        emulator: String,
        #[arg(long)]
        api_id: String,
        /// The distribution's DomainName (`{label}.cloudfront.net`).
        #[arg(long)]
        distribution_domain: String,
    },
    /// Run the IoT rules the emulator does not execute, and keep the CRL current.
    Bridge {
        #[arg(long, default_value = "127.0.0.1")]
        mqtt_host: String,
        #[arg(long)]
        mqtt_port: u16,
        #[arg(long)]
        pki_dir: PathBuf,
        /// Mosquitto's PID file; the bridge sends it SIGHUP when the CRL changes.
        #[arg(long)]
        mosquitto_pid_file: Option<PathBuf>,
        #[arg(long, default_value_t = 1000)]
        rule_refresh_ms: u64,
        #[arg(long, default_value_t = 500)]
        certificate_refresh_ms: u64,
        /// The device policy whose subscribe filters the broker enforces per thing.
        #[arg(long)]
        device_policy: Option<String>,
    },
}

fn parse_key_value(s: &str) -> Result<(String, String), String> {
    s.split_once('=')
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .ok_or_else(|| format!("expected KEY=VALUE, got {s:?}"))
}

#[tokio::main]
async fn main() -> Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::PkiInit { pki_dir, seed_file } => {
            hub_runtime::init_cli_tracing();
            pki::init(&pki_dir, &seed_file, acl::BRIDGE_USERNAME)
        }
        Command::Deploy {
            stack_name,
            template,
            binaries_dir,
            artifacts_bucket,
            parameters,
            outputs_file,
        } => {
            hub_runtime::init_cli_tracing();
            let aws = AwsEnv::load().await;
            let template_key = package::package(
                &aws.s3(),
                &package::PackageRequest {
                    template: &template,
                    binaries_dir: &binaries_dir,
                    bucket: &artifacts_bucket,
                },
            )
            .await?;
            let endpoint = aws
                .endpoint_override
                .as_deref()
                .context("deploy needs the emulator's endpoint (AWS_ENDPOINT_URL)")?;
            let template_url = format!(
                "{}/{artifacts_bucket}/{template_key}",
                endpoint.trim_end_matches('/')
            );
            let cfn = aws_sdk_cloudformation::Client::new(&aws.sdk);
            deploy::deploy(
                &cfn,
                &deploy::DeployRequest {
                    stack_name: &stack_name,
                    template_url: &template_url,
                    parameters: &parameters,
                    outputs_file: &outputs_file,
                },
            )
            .await
        }
        Command::ConsoleProxy {
            port,
            emulator,
            api_id,
            distribution_domain,
        } => {
            hub_runtime::init_json_tracing();
            let _ = rustls::crypto::ring::default_provider().install_default();
            let label = distribution_domain
                .split('.')
                .next()
                .context("an empty distribution domain")?;
            let upstreams = console::Upstreams {
                emulator,
                api_id,
                distribution_host: format!("{label}.cloudfront.localhost"),
            };
            let runtime = tokio::runtime::Handle::current();
            tokio::task::spawn_blocking(move || console::serve(port, upstreams, runtime)).await?
        }
        Command::MosquittoConfig {
            policy_name,
            pki_dir,
            port,
            dir,
        } => {
            hub_runtime::init_cli_tracing();
            let aws = AwsEnv::load().await;
            let iot = aws_sdk_iot::Client::new(&aws.sdk);
            let policy = iot
                .get_policy()
                .policy_name(&policy_name)
                .send()
                .await
                .with_context(|| format!("get_policy {policy_name}"))?;
            let acl = acl::acl_from_policy(policy.policy_document().unwrap_or_default())?;
            std::fs::create_dir_all(&dir)?;
            let acl_file = dir.join("acl");
            std::fs::write(&acl_file, acl)?;
            let plugin = mosquitto::dynsec_plugin()?;
            // Empty state: every default access off, no clients or roles of its own.
            let dynsec_file = std::fs::canonicalize(&dir)?.join("dynamic-security.json");
            std::fs::write(&dynsec_file, "{}")?;
            let conf = mosquitto::config(&mosquitto::BrokerSettings {
                port,
                pki_dir: &std::fs::canonicalize(&pki_dir)?,
                acl_file: &std::fs::canonicalize(&acl_file)?,
                log_file: &std::fs::canonicalize(&dir)?.join("mosquitto.log"),
                dynsec: Some((&plugin, &dynsec_file)),
                run_as_root: is_root(),
            });
            std::fs::write(dir.join("mosquitto.conf"), conf)?;
            Ok(())
        }
        Command::Bridge {
            mqtt_host,
            mqtt_port,
            pki_dir,
            mosquitto_pid_file,
            rule_refresh_ms,
            certificate_refresh_ms,
            device_policy,
        } => {
            hub_runtime::init_json_tracing();
            let aws = AwsEnv::load().await;
            bridge::run(
                aws,
                bridge::BridgeSettings {
                    mqtt_host,
                    mqtt_port,
                    pki_dir,
                    mosquitto_pid_file,
                    rule_refresh: Duration::from_millis(rule_refresh_ms),
                    certificate_refresh: Duration::from_millis(certificate_refresh_ms),
                    device_policy,
                },
            )
            .await
        }
    }
}

fn is_root() -> bool {
    std::process::Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}
