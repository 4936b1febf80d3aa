//! The device commands: registration and credentials, quarantine, shadows, commands and
//! history.

use std::path::PathBuf;

use anyhow::{Context, Result};
use chrono::{Duration, Utc};
use clap::Subcommand;
use hub_admin::{files, AdminClient};
use serde_json::{json, Value};

use super::{print, query_string};

#[derive(Subcommand)]
pub enum Command {
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
}

impl Command {
    pub async fn run(self, client: &AdminClient) -> Result<()> {
        match self {
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
                let path = format!("/v1/devices/{device_id}/certificates");
                let cert = certify(client, &path, &json!({ "csr": csr }), &dir, &key_pem).await?;
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
                let path = format!("/v1/devices/{device_id}/certificates/rotate");
                let cert = certify(client, &path, &body, &dir, &key_pem).await?;
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
                    body["params"] =
                        serde_json::from_str(&params).context("--params is not JSON")?;
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
        }
        Ok(())
    }
}

/// Sends a CSR to `path` and writes the key beside the certificate it is answered with.
async fn certify(
    client: &AdminClient,
    path: &str,
    body: &Value,
    dir: &std::path::Path,
    key_pem: &str,
) -> Result<Value> {
    let cert = client.post(path, body).await?.ok()?;
    files::write_credentials(
        dir,
        key_pem,
        cert["certificate_pem"].as_str().unwrap_or_default(),
        cert["certificate_id"].as_str().unwrap_or_default(),
    )?;
    Ok(cert)
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
}
