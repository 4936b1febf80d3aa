//! Rollouts: start (with the policy fields given), list, show, cancel, watch.

use anyhow::{Context, Result};
use clap::{Args, Subcommand};
use hub_admin::{rollout, AdminClient};
use hub_fleet::rollout::DeviceStatus;
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::{json, Value};

use super::print;

#[derive(Subcommand)]
pub enum RolloutCommand {
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
pub struct PolicyArgs {
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
pub fn rollout_request(version: &str, group: &str, policy: &PolicyArgs) -> Value {
    let mut body = json!({ "firmware_version": version, "target": group });
    if let Some(policy) = policy.body() {
        body["policy"] = policy;
    }
    body
}

/// The progress line: devices finished, and their outcomes so far.
pub fn rollout_progress(rollout: &Value) -> String {
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

impl RolloutCommand {
    pub async fn run(self, client: &AdminClient) -> Result<()> {
        match self {
            RolloutCommand::Start {
                version,
                group,
                policy,
                watch,
            } => {
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
                    watch_rollout(client, id).await?;
                }
            }
            RolloutCommand::List => print(&client.get("/v1/ota/rollouts").await?.ok()?),
            RolloutCommand::Get { rollout_id } => print(
                &client
                    .get(&format!("/v1/ota/rollouts/{rollout_id}"))
                    .await?
                    .ok()?,
            ),
            RolloutCommand::Cancel { rollout_id } => print(
                &client
                    .post(&format!("/v1/ota/rollouts/{rollout_id}/cancel"), &json!({}))
                    .await?
                    .ok()?,
            ),
            RolloutCommand::Watch { rollout_id } => watch_rollout(client, &rollout_id).await?,
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
