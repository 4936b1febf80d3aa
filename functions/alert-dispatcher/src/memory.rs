//! In-memory ports for unit tests, with the same first-claim-wins rule as DynamoDB.

use std::{collections::HashMap, sync::Mutex};

use chrono::{DateTime, Utc};
use hub_events::{AlertRaised, AlertState, Envelope};

use crate::ports::{AlertRow, Alerts, Claims, Notifier, PortError, Trigger};

#[derive(Default)]
pub struct MemoryClaims {
    /// Dedup key -> id of the event that claimed it, and whether it notified.
    pub claims: Mutex<HashMap<String, (String, bool)>>,
}

impl Claims for MemoryClaims {
    async fn claim(&self, trigger: &Trigger) -> Result<bool, PortError> {
        let mut claims = self.claims.lock().unwrap();
        let (owner, notified) = claims
            .entry(trigger.dedup_key.clone())
            .or_insert_with(|| (trigger.event_id.clone(), false));
        Ok(*owner == trigger.event_id && !*notified)
    }

    async fn notified(&self, trigger: &Trigger) -> Result<(), PortError> {
        if let Some((_, notified)) = self.claims.lock().unwrap().get_mut(&trigger.dedup_key) {
            *notified = true;
        }
        Ok(())
    }
}

#[derive(Default)]
pub struct MemoryAlerts {
    pub alerts: Mutex<HashMap<String, AlertRow>>,
}

impl Alerts for MemoryAlerts {
    async fn count(&self, trigger: &Trigger) -> Result<AlertRow, PortError> {
        let mut alerts = self.alerts.lock().unwrap();
        let row = alerts
            .entry(trigger.alert_id.clone())
            .or_insert_with(|| AlertRow {
                alert_id: trigger.alert_id.clone(),
                state: AlertState::Open,
                count: 0,
                raised_at: trigger.ts,
            });
        row.count += 1;
        Ok(row.clone())
    }

    async fn auto_resolve(&self, alert_id: &str, _at: DateTime<Utc>) -> Result<bool, PortError> {
        let mut alerts = self.alerts.lock().unwrap();
        match alerts.get_mut(alert_id) {
            Some(row) if row.state != AlertState::Resolved => {
                row.state = AlertState::Resolved;
                Ok(true)
            }
            _ => Ok(false),
        }
    }
}

#[derive(Default)]
pub struct MemoryNotifier {
    pub sent: Mutex<Vec<Envelope<AlertRaised>>>,
}

impl Notifier for MemoryNotifier {
    async fn publish(&self, alert: &Envelope<AlertRaised>) -> Result<(), PortError> {
        self.sent.lock().unwrap().push(alert.clone());
        Ok(())
    }
}
