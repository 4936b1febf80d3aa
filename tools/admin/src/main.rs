//! `hub-admin`: the common admin tasks over the hub's HTTP API, so nobody needs curl.
//! Settings come from the environment (`source .local/stack/stack.env` locally) or flags.

use std::path::PathBuf;

use anyhow::{Context, Result};
use chrono::{Duration, Utc};
use clap::{Args, Parser, Subcommand};
use hub_admin::{files, rollout, AdminClient, Settings};
use hub_fleet::rollout::DeviceStatus;
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::{json, Value};

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
    /// Register a device, make its key and CSR here, get its certificate, write the files.
    Register {
        device_id: String,
        #[arg(long = "type")]
        device_type: String,
        #[arg(long)]
        group: Option<String>,
        #[arg(long)]
        location: Option<String>,
        /// Where to write key.pem, cert.pem and certificate-id (default: ./devices/{id}).
        #[arg(long)]
        out: Option<PathBuf>,
        /// Also issue an API key for HTTP ingest and write it to `api-key`.
        #[arg(long)]
        api_key: bool,
    },
    /// List devices, every page.
    List {
        #[arg(long = "type")]
        device_type: Option<String>,
        #[arg(long)]
        status: Option<String>,
        #[arg(long)]
        group: Option<String>,
    },
    /// Show one device.
    Get { device_id: String },
    /// Quarantine a device (its messages are dropped and counted), or release it.
    Quarantine {
        device_id: String,
        #[arg(long)]
        release: bool,
    },
    /// Rotate a device's certificate: new key and CSR here; the old certificate keeps
    /// working for the grace period.
    Rotate {
        device_id: String,
        #[arg(long)]
        out: Option<PathBuf>,
        #[arg(long)]
        grace_seconds: Option<i64>,
    },
    /// Revoke one certificate of a device.
    Revoke {
        device_id: String,
        certificate_id: String,
    },
    /// Issue an API key for HTTP ingest (shown once).
    ApiKey {
        device_id: String,
        /// Let the device's current keys work this much longer, then expire.
        #[arg(long)]
        grace_seconds: Option<i64>,
    },
    /// Decommission a device: credentials revoked, thing deleted, history kept.
    Decommission { device_id: String },
    /// A metric's history, downsampled.
    Query {
        device_id: String,
        metric: String,
        /// How far back from now, e.g. 90m, 6h, 7d (ignored with --start).
        #[arg(long, default_value = "1h")]
        since: String,
        #[arg(long)]
        start: Option<String>,
        #[arg(long)]
        end: Option<String>,
        #[arg(long, default_value_t = 1000)]
        max_points: usize,
    },
    /// Show a device's shadow, or set desired state with `--set key=value` (a JSON value;
    /// `key=null` removes the key).
    Shadow {
        device_id: String,
        #[arg(long = "set", value_name = "KEY=VALUE")]
        set: Vec<String>,
    },
    /// Send a command to a device (it answers on its ack topic); `--wait` polls for the
    /// answer.
    #[command(name = "command")]
    Send {
        device_id: String,
        name: String,
        /// Parameters as a JSON object.
        #[arg(long)]
        params: Option<String>,
        #[arg(long)]
        ttl_seconds: Option<i64>,
        #[arg(long)]
        wait: bool,
    },
    /// Alerts and alert rules.
    #[command(subcommand)]
    Alerts(AlertCommand),
    /// Firmware artifacts.
    #[command(subcommand)]
    Firmware(FirmwareCommand),
    /// Firmware rollouts to thing groups.
    #[command(subcommand)]
    Rollout(RolloutCommand),
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

#[derive(Subcommand)]
enum FirmwareCommand {
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

#[derive(Subcommand)]
enum RolloutCommand {
    /// Send a ready firmware version to every device of a thing group (an IoT Job): the
    /// canary first, then the rest. Policy fields not given take the hub's defaults.
    Start {
        /// The firmware version (registered and checked: `ready`).
        #[arg(long)]
        version: String,
        /// The thing group.
        #[arg(long)]
        group: String,
        #[command(flatten)]
        policy: PolicyArgs,
        /// Then watch it until it ends.
        #[arg(long)]
        watch: bool,
    },
    /// List rollouts, newest first, with their counts.
    List,
    /// Show one rollout and every device's status.
    Get { rollout_id: String },
    /// Cancel a rollout in progress (devices already installing finish).
    Cancel { rollout_id: String },
    /// Follow a rollout until it ends; fails unless it completed.
    Watch { rollout_id: String },
}

/// A rollout's policy; only the fields given are sent.
#[derive(Args, Debug, Default)]
struct PolicyArgs {
    /// Share of the group that goes first (hub default 10; 0: no canary).
    #[arg(long)]
    canary_percent: Option<f64>,
    /// Most devices started per minute after the canary (default 1000).
    #[arg(long)]
    max_per_minute: Option<u32>,
    /// Abort once this share of finished devices failed (default 5).
    #[arg(long)]
    abort_failure_percent: Option<f64>,
    /// Attempts per device, the first included (default 3).
    #[arg(long)]
    max_attempts: Option<u32>,
    /// Wait before the first retry; it doubles for each later one (default 30).
    #[arg(long)]
    retry_backoff_seconds: Option<u32>,
    /// Time out a device installing this long (default 60).
    #[arg(long)]
    timeout_minutes: Option<u32>,
}

impl PolicyArgs {
    /// The policy object of the request, or `None` if no field was given.
    fn body(&self) -> Option<Value> {
        let fields = [
            ("canary_percent", self.canary_percent.map(|v| json!(v))),
            ("max_per_minute", self.max_per_minute.map(|v| json!(v))),
            (
                "abort_failure_percent",
                self.abort_failure_percent.map(|v| json!(v)),
            ),
            ("max_attempts", self.max_attempts.map(|v| json!(v))),
            (
                "retry_backoff_seconds",
                self.retry_backoff_seconds.map(|v| json!(v)),
            ),
            ("timeout_minutes", self.timeout_minutes.map(|v| json!(v))),
        ];
        let policy: serde_json::Map<String, Value> = fields
            .into_iter()
            .filter_map(|(name, value)| Some((name.to_owned(), value?)))
            .collect();
        (!policy.is_empty()).then_some(Value::Object(policy))
    }
}

/// The body of `POST /v1/ota/rollout`.
fn rollout_request(version: &str, group: &str, policy: &PolicyArgs) -> Value {
    let mut body = json!({ "firmware_version": version, "target": group });
    if let Some(policy) = policy.body() {
        body["policy"] = policy;
    }
    body
}

/// The progress line: devices finished, and their outcomes so far.
fn rollout_progress(rollout: &Value) -> String {
    let mut message = format!(
        "{}/{} done: {} succeeded, {} failed, {} cancelled",
        rollout::finished(rollout),
        rollout["device_count"].as_u64().unwrap_or(0),
        rollout::count(rollout, DeviceStatus::Succeeded.as_str()),
        rollout::count(rollout, DeviceStatus::Failed.as_str()),
        rollout::count(rollout, DeviceStatus::Cancelled.as_str()),
    );
    for status in [DeviceStatus::TimedOut, DeviceStatus::Rejected].map(DeviceStatus::as_str) {
        let n = rollout::count(rollout, status);
        if n > 0 {
            message.push_str(&format!(", {n} {status}"));
        }
    }
    message
}

/// Polls the rollout every second with a progress bar of its finished devices (on stderr;
/// a line per change when stderr is not a terminal), prints the last reading without its
/// devices and a line of devices per status, and fails unless it completed.
async fn watch_rollout(client: &AdminClient, rollout_id: &str) -> Result<()> {
    let bar = ProgressBar::new(0).with_style(
        ProgressStyle::with_template("{bar:20} {msg}  {elapsed}").expect("valid progress template"),
    );
    let mut last = String::new();
    let watched = client
        .watch_rollout(rollout_id, std::time::Duration::from_secs(1), None, |r| {
            // The counts are in the message, so a redraw between these calls shows no
            // count that disagrees with another; the bar at worst lags by one reading.
            let message = rollout_progress(r);
            if bar.is_hidden() && message != last {
                eprintln!("{message}");
            }
            bar.set_length(r["device_count"].as_u64().unwrap_or(0));
            bar.set_message(message.clone());
            bar.set_position(rollout::finished(r));
            last = message;
        })
        .await;
    bar.finish();
    let mut rollout = watched?;
    let summary = rollout::device_summary(&rollout);
    if let Some(fields) = rollout.as_object_mut() {
        fields.remove("devices");
    }
    print(&rollout);
    eprintln!("{summary}");
    rollout::completed(&rollout)
}

#[derive(Subcommand)]
enum AlertCommand {
    /// List alerts.
    List {
        #[arg(long)]
        state: Option<String>,
        #[arg(long)]
        device_id: Option<String>,
    },
    Ack {
        alert_id: String,
    },
    Resolve {
        alert_id: String,
    },
    /// Add a threshold rule, e.g. `--device-type env-sensor "temperature > 80"`.
    AddRule {
        rule: String,
        #[arg(
            long,
            conflicts_with = "device_type",
            required_unless_present = "device_type"
        )]
        device_id: Option<String>,
        #[arg(long)]
        device_type: Option<String>,
        #[arg(long, default_value = "warning")]
        severity: String,
    },
    Rules,
    DeleteRule {
        rule_id: String,
    },
    /// Subscribe a URL to alerts; prints the signing secret (shown only once).
    AddWebhook {
        url: String,
        #[arg(long = "severity")]
        severities: Vec<String>,
        #[arg(long = "device-type")]
        device_types: Vec<String>,
    },
    Webhooks,
    DeleteWebhook {
        webhook_id: String,
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

/// `90m`, `6h`, `7d`, `30s`.
fn parse_since(text: &str) -> Result<Duration> {
    let (number, unit) = text.split_at(text.len().saturating_sub(1));
    let n: i64 = number
        .parse()
        .with_context(|| format!("--since {text:?}: expected a number and one of s, m, h, d"))?;
    Ok(match unit {
        "s" => Duration::seconds(n),
        "m" => Duration::minutes(n),
        "h" => Duration::hours(n),
        "d" => Duration::days(n),
        _ => anyhow::bail!("--since {text:?}: the unit must be one of s, m, h, d"),
    })
}

/// `key=value` pairs as a desired-state object; a value that is not JSON is a string.
fn desired_state(pairs: &[String]) -> Result<Value> {
    let mut desired = serde_json::Map::new();
    for pair in pairs {
        let (key, value) = pair
            .split_once('=')
            .with_context(|| format!("--set {pair:?}: expected KEY=VALUE"))?;
        let value = serde_json::from_str(value).unwrap_or_else(|_| json!(value));
        desired.insert(key.to_owned(), value);
    }
    Ok(Value::Object(desired))
}

fn print(value: &Value) {
    println!(
        "{}",
        serde_json::to_string_pretty(value).unwrap_or_default()
    );
}

/// Query strings from pairs; values are percent-encoded.
fn query_string(pairs: &[(&str, Option<&str>)]) -> String {
    let url = reqwest::Url::parse_with_params(
        "http://x/",
        pairs.iter().filter_map(|(k, v)| v.map(|v| (*k, v))),
    )
    .expect("a static base URL");
    url.query()
        .filter(|q| !q.is_empty())
        .map(|q| format!("?{q}"))
        .unwrap_or_default()
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
    let client = AdminClient::new(settings(cli.connection)?)?;
    match cli.command {
        Command::Register {
            device_id,
            device_type,
            group,
            location,
            out,
            api_key,
        } => {
            let mut body = json!({"device_id": device_id, "device_type": device_type});
            if let Some(group) = group {
                body["group"] = json!(group);
            }
            if let Some(location) = location {
                body["location"] = json!(location);
            }
            let device = client.post("/v1/devices", &body).await?.ok()?;
            let dir = out.unwrap_or_else(|| PathBuf::from("devices").join(&device_id));
            let (key_pem, csr) = hub_mqtt::key_and_csr(&device_id)?;
            let cert = client
                .post(
                    &format!("/v1/devices/{device_id}/certificates"),
                    &json!({ "csr": csr }),
                )
                .await?
                .ok()?;
            files::write_credentials(
                &dir,
                &key_pem,
                cert["certificate_pem"].as_str().unwrap_or_default(),
                cert["certificate_id"].as_str().unwrap_or_default(),
            )?;
            let mut summary = json!({
                "device": device,
                "certificate_id": cert["certificate_id"],
                "files": dir.display().to_string(),
            });
            if api_key {
                let key = client
                    .post(&format!("/v1/devices/{device_id}/api-keys"), &json!({}))
                    .await?
                    .ok()?;
                files::write_private(
                    &dir.join("api-key"),
                    key["api_key"].as_str().unwrap_or_default().as_bytes(),
                )?;
                summary["api_key_id"] = key["key_id"].clone();
            }
            print(&summary);
        }
        Command::List {
            device_type,
            status,
            group,
        } => {
            let mut devices = Vec::new();
            let mut token: Option<String> = None;
            loop {
                let path = format!(
                    "/v1/devices{}",
                    query_string(&[
                        ("type", device_type.as_deref()),
                        ("status", status.as_deref()),
                        ("group", group.as_deref()),
                        ("limit", Some("100")),
                        ("next_token", token.as_deref()),
                    ])
                );
                let page = client.get(&path).await?.ok()?;
                devices.extend(page["devices"].as_array().cloned().unwrap_or_default());
                match page["next_token"].as_str() {
                    Some(next) => token = Some(next.to_owned()),
                    None => break,
                }
            }
            print(&json!({ "count": devices.len(), "devices": devices }));
        }
        Command::Get { device_id } => print(
            &client
                .get(&format!("/v1/devices/{device_id}"))
                .await?
                .ok()?,
        ),
        Command::Quarantine { device_id, release } => {
            let path = format!("/v1/devices/{device_id}/quarantine");
            let reply = if release {
                client.delete(&path).await?
            } else {
                client.put(&path).await?
            };
            print(&reply.ok()?);
        }
        Command::Rotate {
            device_id,
            out,
            grace_seconds,
        } => {
            let dir = out.unwrap_or_else(|| PathBuf::from("devices").join(&device_id));
            let (key_pem, csr) = hub_mqtt::key_and_csr(&device_id)?;
            let mut body = json!({ "csr": csr });
            if let Some(grace) = grace_seconds {
                body["grace_seconds"] = json!(grace);
            }
            let cert = client
                .post(
                    &format!("/v1/devices/{device_id}/certificates/rotate"),
                    &body,
                )
                .await?
                .ok()?;
            files::write_credentials(
                &dir,
                &key_pem,
                cert["certificate_pem"].as_str().unwrap_or_default(),
                cert["certificate_id"].as_str().unwrap_or_default(),
            )?;
            print(&json!({
                "certificate_id": cert["certificate_id"],
                "retiring": cert["retiring"],
                "files": dir.display().to_string(),
            }));
        }
        Command::Revoke {
            device_id,
            certificate_id,
        } => print(
            &client
                .delete(&format!(
                    "/v1/devices/{device_id}/certificates/{certificate_id}"
                ))
                .await?
                .ok()?,
        ),
        Command::ApiKey {
            device_id,
            grace_seconds,
        } => {
            let body = match grace_seconds {
                Some(g) => json!({ "grace_seconds": g }),
                None => json!({}),
            };
            print(
                &client
                    .post(&format!("/v1/devices/{device_id}/api-keys"), &body)
                    .await?
                    .ok()?,
            );
        }
        Command::Shadow { device_id, set } => {
            let path = format!("/v1/devices/{device_id}/shadow");
            if set.is_empty() {
                print(&client.get(&path).await?.ok()?);
            } else {
                let desired = desired_state(&set)?;
                print(
                    &client
                        .patch(&path, &json!({ "desired": desired }))
                        .await?
                        .ok()?,
                );
            }
        }
        Command::Send {
            device_id,
            name,
            params,
            ttl_seconds,
            wait,
        } => {
            let mut body = json!({ "name": name });
            if let Some(params) = params {
                body["params"] = serde_json::from_str(&params).context("--params is not JSON")?;
            }
            if let Some(ttl) = ttl_seconds {
                body["ttl_seconds"] = json!(ttl);
            }
            let mut command = client
                .post(&format!("/v1/devices/{device_id}/commands"), &body)
                .await?
                .ok()?;
            if wait {
                let path = format!(
                    "/v1/devices/{device_id}/commands/{}",
                    command["command_id"].as_str().unwrap_or_default()
                );
                while command["status"] == "sent" {
                    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
                    command = client.get(&path).await?.ok()?;
                }
            }
            print(&command);
        }
        Command::Decommission { device_id } => print(
            &client
                .delete(&format!("/v1/devices/{device_id}"))
                .await?
                .ok()?,
        ),
        Command::Query {
            device_id,
            metric,
            since,
            start,
            end,
            max_points,
        } => {
            let end = end.unwrap_or_else(|| Utc::now().to_rfc3339());
            let start = match start {
                Some(start) => start,
                None => (Utc::now() - parse_since(&since)?).to_rfc3339(),
            };
            let max_points = max_points.to_string();
            let path = format!(
                "/v1/query{}",
                query_string(&[
                    ("device_id", Some(&device_id)),
                    ("metric", Some(&metric)),
                    ("start", Some(&start)),
                    ("end", Some(&end)),
                    ("max_points", Some(&max_points)),
                ])
            );
            print(&client.get(&path).await?.ok()?);
        }
        Command::Firmware(FirmwareCommand::Add {
            file,
            version,
            device_type,
            signing_key,
        }) => {
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
        Command::Firmware(FirmwareCommand::List) => print(&client.get("/v1/firmware").await?.ok()?),
        Command::Firmware(FirmwareCommand::Get { version }) => {
            print(&client.get(&format!("/v1/firmware/{version}")).await?.ok()?)
        }
        Command::Rollout(RolloutCommand::Start {
            version,
            group,
            policy,
            watch,
        }) => {
            let created = client
                .post(
                    "/v1/ota/rollout",
                    &rollout_request(&version, &group, &policy),
                )
                .await?
                .ok()?;
            print(&created);
            if watch {
                let id = created["rollout_id"]
                    .as_str()
                    .context("no rollout_id in the answer")?;
                watch_rollout(&client, id).await?;
            }
        }
        Command::Rollout(RolloutCommand::List) => {
            print(&client.get("/v1/ota/rollouts").await?.ok()?)
        }
        Command::Rollout(RolloutCommand::Get { rollout_id }) => print(
            &client
                .get(&format!("/v1/ota/rollouts/{rollout_id}"))
                .await?
                .ok()?,
        ),
        Command::Rollout(RolloutCommand::Cancel { rollout_id }) => print(
            &client
                .post(&format!("/v1/ota/rollouts/{rollout_id}/cancel"), &json!({}))
                .await?
                .ok()?,
        ),
        Command::Rollout(RolloutCommand::Watch { rollout_id }) => {
            watch_rollout(&client, &rollout_id).await?
        }
        Command::Alerts(command) => {
            let value = match command {
                AlertCommand::List { state, device_id } => {
                    let path = format!(
                        "/v1/alerts{}",
                        query_string(&[
                            ("state", state.as_deref()),
                            ("device_id", device_id.as_deref()),
                            ("limit", Some("100")),
                        ])
                    );
                    client.get(&path).await?
                }
                AlertCommand::Ack { alert_id } => {
                    client
                        .post(&format!("/v1/alerts/{alert_id}/ack"), &json!({}))
                        .await?
                }
                AlertCommand::Resolve { alert_id } => {
                    client
                        .post(&format!("/v1/alerts/{alert_id}/resolve"), &json!({}))
                        .await?
                }
                AlertCommand::AddRule {
                    rule,
                    device_id,
                    device_type,
                    severity,
                } => {
                    let mut body = json!({ "rule": rule, "severity": severity });
                    if let Some(id) = device_id {
                        body["device_id"] = json!(id);
                    }
                    if let Some(t) = device_type {
                        body["device_type"] = json!(t);
                    }
                    client.post("/v1/alerts", &body).await?
                }
                AlertCommand::Rules => client.get("/v1/rules").await?,
                AlertCommand::AddWebhook {
                    url,
                    severities,
                    device_types,
                } => {
                    client
                        .post(
                            "/v1/webhooks",
                            &json!({"url": url, "severities": severities, "device_types": device_types}),
                        )
                        .await?
                }
                AlertCommand::Webhooks => client.get("/v1/webhooks").await?,
                AlertCommand::DeleteWebhook { webhook_id } => {
                    client.delete(&format!("/v1/webhooks/{webhook_id}")).await?
                }
                AlertCommand::DeleteRule { rule_id } => {
                    client.delete(&format!("/v1/rules/{rule_id}")).await?
                }
            };
            print(&value.ok()?);
        }
        Command::Token => println!("{}", client.token().await?),
        Command::Replay { .. } => unreachable!("handled before the API client is made"),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_and_query_strings() {
        assert_eq!(parse_since("90m").unwrap(), Duration::minutes(90));
        assert_eq!(parse_since("7d").unwrap(), Duration::days(7));
        assert!(parse_since("7w").is_err());
        assert!(parse_since("h").is_err());
        assert_eq!(
            query_string(&[
                ("start", Some("2026-11-23T10:00:00+00:00")),
                ("x", None),
                ("metric", Some("temperature")),
            ]),
            "?start=2026-11-23T10%3A00%3A00%2B00%3A00&metric=temperature"
        );
        assert_eq!(query_string(&[("x", None)]), "");
    }

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
    fn the_progress_line_counts_finished_devices_and_outcomes() {
        let mut rollout = json!({"device_count": 50, "counts": {"queued": 30, "in_progress": 5,
            "retry_scheduled": 1, "succeeded": 12, "failed": 2, "cancelled": 0}});
        assert_eq!(
            rollout_progress(&rollout),
            "14/50 done: 12 succeeded, 2 failed, 0 cancelled"
        );
        rollout["counts"]["queued"] = json!(29);
        rollout["counts"]["timed_out"] = json!(1);
        assert_eq!(
            rollout_progress(&rollout),
            "15/50 done: 12 succeeded, 2 failed, 0 cancelled, 1 timed_out"
        );
    }

    #[test]
    fn the_cli_parses() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }
}
