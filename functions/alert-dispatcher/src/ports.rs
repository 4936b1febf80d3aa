//! What the dispatcher needs from outside.

use std::future::Future;

use chrono::{DateTime, Utc};
use hub_events::{AlertRaised, Envelope};

pub use hub_runtime::PortError;

/// One detection, as it counts against an alert.
#[derive(Debug, Clone, PartialEq)]
pub struct Trigger {
    pub alert_id: String,
    pub dedup_key: String,
    /// Id of the detection event; the claim remembers it so the claimant's own retry
    /// still counts as the claimant.
    pub event_id: String,
    pub device_id: String,
    pub device_type: Option<String>,
    pub rule_id: String,
    pub metric: String,
    pub summary: String,
    pub severity: hub_events::Severity,
    pub value: f64,
    pub ts: DateTime<Utc>,
    pub window: hub_events::Window,
    pub simulated: bool,
}

/// The alert after a trigger was counted.
#[derive(Debug, Clone, PartialEq)]
pub struct AlertRow {
    pub alert_id: String,
    pub state: hub_events::AlertState,
    pub count: u64,
    pub raised_at: DateTime<Utc>,
}

pub trait Claims {
    /// True if this trigger is to notify: it is the first to claim the alert's key, or the
    /// same event claiming again after failing before the notification went out.
    fn claim(&self, trigger: &Trigger) -> impl Future<Output = Result<bool, PortError>> + Send;
    /// Records that the notification went out, so a redelivered trigger does not resend it.
    fn notified(&self, trigger: &Trigger) -> impl Future<Output = Result<(), PortError>> + Send;
}

pub trait Alerts {
    /// Creates the alert if needed and adds one to its count.
    fn count(&self, trigger: &Trigger) -> impl Future<Output = Result<AlertRow, PortError>> + Send;
    /// Resolves an open or acknowledged alert; false if there is none or it is resolved.
    fn auto_resolve(
        &self,
        alert_id: &str,
        at: DateTime<Utc>,
    ) -> impl Future<Output = Result<bool, PortError>> + Send;
}

pub trait Notifier {
    fn publish(
        &self,
        alert: &Envelope<AlertRaised>,
    ) -> impl Future<Output = Result<(), PortError>> + Send;
}
