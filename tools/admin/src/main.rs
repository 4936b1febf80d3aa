//! `hub-admin`: the common admin tasks over the hub's HTTP API, so nobody needs curl.
//! Settings come from the environment (`source .local/stack/stack.env` locally) or flags.

mod cli;

use anyhow::{Context, Result};
use clap::{Args, Parser, Subcommand};
use cli::{
    alerts::AlertCommand, console::ConsoleCommand, firmware::FirmwareCommand,
    rollouts::RolloutCommand, users::UserCommand,
};
use hub_admin::{AdminClient, Settings};

#[derive(Parser)]
#[command(
    name = "hub-admin",
    version,
    about = "Manage an IoT Control Hub fleet through its admin API"
)]
struct Cli {
    #[command(flatten)]
    connection: Connection,
    #[command(subcommand)]
    command: Command,
}

#[derive(Args)]
struct Connection {
    /// Base URL of the HTTP API.
    #[arg(long, env = "HUB_API_URL", global = true, hide_env_values = true)]
    api_url: Option<String>,
    /// OAuth2 token endpoint (client-credentials grant).
    #[arg(long, env = "HUB_TOKEN_URL", global = true, hide_env_values = true)]
    token_url: Option<String>,
    #[arg(long, env = "HUB_CLIENT_ID", global = true, hide_env_values = true)]
    client_id: Option<String>,
    #[arg(long, env = "HUB_CLIENT_SECRET", global = true, hide_env_values = true)]
    client_secret: Option<String>,
}

#[derive(Subcommand)]
enum Command {
    #[command(flatten)]
    Devices(cli::devices::Command),
    /// Alerts and alert rules.
    #[command(subcommand)]
    Alerts(AlertCommand),
    /// Firmware artifacts.
    #[command(subcommand)]
    Firmware(FirmwareCommand),
    /// Firmware rollouts to thing groups.
    #[command(subcommand)]
    Rollout(RolloutCommand),
    /// People who sign in to the console, and their roles (AWS credentials from the
    /// environment; `AWS_ENDPOINT_URL` locally).
    User(UserCommand),
    /// The operator console's files (AWS credentials from the environment).
    #[command(subcommand)]
    Console(ConsoleCommand),
    /// Print an access token (for scripts).
    Token,
    /// Hand the events waiting on the asynchronous-failure queue back to their
    /// functions (AWS credentials from the environment; `AWS_ENDPOINT_URL` locally).
    Replay {
        /// The queue (the stack's AsyncFailureQueueUrl output).
        #[arg(long, env = "HUB_ASYNC_FAILURE_QUEUE_URL")]
        queue_url: String,
        /// List what would be replayed and leave it on the queue.
        #[arg(long)]
        dry_run: bool,
    },
}

fn settings(c: Connection) -> Result<Settings> {
    let need = |value: Option<String>, name: &str| {
        value.with_context(|| {
            format!("{name} is not set (source .local/stack/stack.env locally, or pass the flag)")
        })
    };
    Ok(Settings {
        api_url: need(c.api_url, "HUB_API_URL")?,
        token_url: need(c.token_url, "HUB_TOKEN_URL")?,
        client_id: need(c.client_id, "HUB_CLIENT_ID")?,
        client_secret: need(c.client_secret, "HUB_CLIENT_SECRET")?,
    })
}

#[tokio::main]
async fn main() -> Result<()> {
    let cli = Cli::parse();
    if let Command::Replay { queue_url, dry_run } = &cli.command {
        // Works on AWS directly, not through the admin API.
        let aws = hub_runtime::AwsEnv::load().await;
        let outcome = hub_admin::replay::replay(
            &aws_sdk_sqs::Client::new(&aws.sdk),
            &aws_sdk_lambda::Client::new(&aws.sdk),
            queue_url,
            *dry_run,
        )
        .await?;
        for (id, why) in &outcome.unreadable {
            eprintln!("left on the queue: {id}: {why}");
        }
        eprintln!("replayed {}", outcome.replayed);
        return Ok(());
    }
    // These work on AWS directly, not through the admin API.
    let cli = match cli.command {
        Command::User(command) => return command.run().await,
        Command::Console(command) => return command.run().await,
        command => Cli { command, ..cli },
    };
    let client = AdminClient::new(settings(cli.connection)?)?;
    match cli.command {
        Command::Devices(command) => command.run(&client).await?,
        Command::Alerts(command) => command.run(&client).await?,
        Command::Firmware(command) => command.run(&client).await?,
        Command::Rollout(command) => command.run(&client).await?,
        Command::Token => println!("{}", client.token().await?),
        Command::Replay { .. } | Command::User(_) | Command::Console(_) => {
            unreachable!("handled before the API client is made")
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use cli::rollouts::rollout_request;
    use serde_json::json;

    #[test]
    fn a_rollout_sends_only_the_policy_fields_given() {
        let start = |flags: &[&str]| {
            let args = ["hub-admin", "rollout", "start", "--version", "2.0.0"]
                .iter()
                .chain(["--group", "lobby"].iter())
                .chain(flags);
            match Cli::try_parse_from(args).unwrap().command {
                Command::Rollout(RolloutCommand::Start {
                    version,
                    group,
                    policy,
                    watch,
                }) => (rollout_request(&version, &group, &policy), watch),
                _ => unreachable!("not rollout start"),
            }
        };
        assert_eq!(
            start(&[]),
            (
                json!({"firmware_version": "2.0.0", "target": "lobby"}),
                false
            )
        );
        assert_eq!(
            start(&["--canary-percent", "20", "--max-attempts", "1", "--watch"]),
            (
                json!({"firmware_version": "2.0.0", "target": "lobby",
                       "policy": {"canary_percent": 20.0, "max_attempts": 1}}),
                true
            )
        );
        let (all, _) = start(&[
            "--canary-percent",
            "0",
            "--max-per-minute",
            "50",
            "--abort-failure-percent",
            "2.5",
            "--max-attempts",
            "3",
            "--retry-backoff-seconds",
            "10",
            "--timeout-minutes",
            "5",
        ]);
        assert_eq!(
            all["policy"],
            json!({"canary_percent": 0.0, "max_per_minute": 50, "abort_failure_percent": 2.5,
                   "max_attempts": 3, "retry_backoff_seconds": 10, "timeout_minutes": 5})
        );
    }

    #[test]
    fn the_cli_parses() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }
}
