//! Alerts, alert rules and webhook subscriptions.

use anyhow::Result;
use clap::Subcommand;
use hub_admin::AdminClient;
use serde_json::json;

use super::{print, query_string};

#[derive(Subcommand)]
pub enum AlertCommand {
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

impl AlertCommand {
    pub async fn run(self, client: &AdminClient) -> Result<()> {
        let value = match self {
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
            } => client
                .post(
                    "/v1/webhooks",
                    &json!({"url": url, "severities": severities, "device_types": device_types}),
                )
                .await?,
            AlertCommand::Webhooks => client.get("/v1/webhooks").await?,
            AlertCommand::DeleteWebhook { webhook_id } => {
                client.delete(&format!("/v1/webhooks/{webhook_id}")).await?
            }
            AlertCommand::DeleteRule { rule_id } => {
                client.delete(&format!("/v1/rules/{rule_id}")).await?
            }
        };
        print(&value.ok()?);
        Ok(())
    }
}
