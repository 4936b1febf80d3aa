//! In-memory fakes of every port, for fast tests of the handlers' logic. They keep what
//! the IoT service would hold (things, certificate status, attachments) so tests can check
//! the effects, not just the answers.

use std::{
    collections::{BTreeMap, HashMap},
    sync::Mutex,
};

use chrono::{DateTime, Utc};
use hub_credentials::StoredKey;
use hub_detection::rule::ThresholdRule;
use hub_events::AlertState;
use hub_fleet::memory::{MemoryCommands, MemoryFirmware, MemoryRollouts};

use crate::ports::*;

#[derive(Default, Debug)]
pub struct IotState {
    /// Thing name -> (type, group).
    pub things: BTreeMap<String, (String, Option<String>)>,
    /// Certificate id -> status (`ACTIVE`, `INACTIVE`, `REVOKED`).
    pub certificate_status: BTreeMap<String, &'static str>,
    /// (thing, certificate ARN) attachments.
    pub attached: Vec<(String, String)>,
    pub issued: usize,
}

#[derive(Default)]
pub struct MemoryBackend {
    pub devices: Mutex<BTreeMap<String, Device>>,
    pub iot: Mutex<IotState>,
    pub certificates: Mutex<Vec<CertificateRecord>>,
    pub api_keys: Mutex<Vec<StoredKey>>,
    pub readings: Mutex<HashMap<String, Vec<Point>>>,
    /// Device id -> newest reading.
    pub latest: Mutex<HashMap<String, LatestReading>>,
    pub windows: Mutex<HashMap<String, Vec<WindowRow>>>,
    pub rules: Mutex<BTreeMap<String, ThresholdRule>>,
    pub webhooks: Mutex<BTreeMap<String, hub_detection::webhook::Webhook>>,
    pub alerts: Mutex<BTreeMap<String, AlertRecord>>,
    /// (entry, outcome status once finished).
    pub audit: Mutex<Vec<(AuditEntry, Option<u16>)>>,
    /// When set, every IoT call fails (a store outage).
    pub iot_down: Mutex<bool>,
    /// Device id -> (version, desired, reported).
    pub shadows: Mutex<BTreeMap<String, (i64, serde_json::Value, serde_json::Value)>>,
    /// (topic, payload) in publish order.
    pub published: Mutex<Vec<(String, Vec<u8>)>>,
    /// When set, publishing fails.
    pub publish_down: Mutex<bool>,
    pub commands: MemoryCommands,
    pub firmware: MemoryFirmware,
    pub rollouts: MemoryRollouts,
    /// Job id -> (targets: the group, version); cancelled job ids apart.
    pub jobs: Mutex<BTreeMap<String, (String, String)>>,
    pub cancelled_jobs: Mutex<Vec<String>>,
    /// Devices whose job execution is in progress.
    pub installing: Mutex<Vec<String>>,
    /// Rollout events announced, in order.
    pub rollout_events: Mutex<Vec<hub_events::Envelope<hub_events::RolloutEvent>>>,
}

fn iot_check(b: &MemoryBackend) -> Result<(), PortError> {
    if *b.iot_down.lock().unwrap() {
        Err(PortError::new("iot", "service unavailable"))
    } else {
        Ok(())
    }
}

impl Registry for MemoryBackend {
    async fn create(&self, device: &Device) -> Result<bool, PortError> {
        let mut devices = self.devices.lock().unwrap();
        if devices.contains_key(&device.device_id) {
            return Ok(false);
        }
        devices.insert(device.device_id.clone(), device.clone());
        Ok(true)
    }

    async fn get(&self, device_id: &str) -> Result<Option<Device>, PortError> {
        Ok(self.devices.lock().unwrap().get(device_id).cloned())
    }

    async fn update(
        &self,
        device_id: &str,
        c: &DeviceChanges,
        at: DateTime<Utc>,
    ) -> Result<Option<Device>, PortError> {
        let mut devices = self.devices.lock().unwrap();
        let Some(d) = devices.get_mut(device_id) else {
            return Ok(None);
        };
        fn set<T: Clone>(field: &mut T, value: &Option<T>) {
            if let Some(v) = value {
                *field = v.clone();
            }
        }
        fn set_some<T: Clone>(field: &mut Option<T>, value: &Option<T>) {
            if value.is_some() {
                *field = value.clone();
            }
        }
        set(&mut d.device_type, &c.device_type);
        set_some(&mut d.serial, &c.serial);
        set_some(&mut d.group, &c.group);
        set_some(&mut d.location, &c.location);
        set_some(&mut d.tenant, &c.tenant);
        set_some(&mut d.firmware_version, &c.firmware_version);
        set(&mut d.quarantined, &c.quarantined);
        set_some(&mut d.decommissioned_at, &c.decommissioned_at);
        // As the DynamoDB adapter: a decommissioned device never comes back to life.
        if let Some(status) = c.status {
            if d.status != DeviceStatus::Decommissioned {
                d.status = status;
            }
        }
        d.updated_at = at;
        Ok(Some(d.clone()))
    }

    async fn list(
        &self,
        filter: &DeviceFilter,
        limit: usize,
        after: Option<&str>,
    ) -> Result<Page<Device>, PortError> {
        let devices = self.devices.lock().unwrap();
        let mut items: Vec<Device> = devices
            .values()
            .filter(|d| after.is_none_or(|a| d.device_id.as_str() > a))
            .filter(|d| filter.admits(d))
            .take(limit + 1)
            .cloned()
            .collect();
        let next = (items.len() > limit).then(|| {
            items.truncate(limit);
            items.last().unwrap().device_id.clone()
        });
        Ok(Page { items, next })
    }
}

impl Things for MemoryBackend {
    async fn create_thing(
        &self,
        device_id: &str,
        device_type: &str,
        group: Option<&str>,
    ) -> Result<(), PortError> {
        iot_check(self)?;
        self.iot.lock().unwrap().things.insert(
            device_id.to_owned(),
            (device_type.to_owned(), group.map(str::to_owned)),
        );
        Ok(())
    }

    async fn move_thing(
        &self,
        device_id: &str,
        _from: Option<&str>,
        to: Option<&str>,
    ) -> Result<bool, PortError> {
        iot_check(self)?;
        let mut iot = self.iot.lock().unwrap();
        let Some(thing) = iot.things.get_mut(device_id) else {
            return Ok(false);
        };
        thing.1 = to.map(str::to_owned);
        Ok(true)
    }

    async fn delete_thing(&self, device_id: &str) -> Result<(), PortError> {
        iot_check(self)?;
        self.iot.lock().unwrap().things.remove(device_id);
        Ok(())
    }

    async fn issue_certificate(
        &self,
        device_id: &str,
        _csr_pem: &str,
    ) -> Result<SignedCertificate, PortError> {
        iot_check(self)?;
        let mut iot = self.iot.lock().unwrap();
        iot.issued += 1;
        let id = format!("{:064x}", iot.issued);
        let arn = format!("arn:aws:iot:us-east-1:000000000000:cert/{id}");
        iot.certificate_status.insert(id.clone(), "ACTIVE");
        iot.attached.push((device_id.to_owned(), arn.clone()));
        Ok(SignedCertificate {
            certificate_id: id,
            certificate_arn: arn,
            certificate_pem: "-----BEGIN CERTIFICATE-----\n...\n-----END CERTIFICATE-----\n".into(),
        })
    }

    async fn set_certificate_status(
        &self,
        certificate_id: &str,
        status: IotCertificateStatus,
    ) -> Result<(), PortError> {
        iot_check(self)?;
        let name = match status {
            IotCertificateStatus::Inactive => "INACTIVE",
            IotCertificateStatus::Revoked => "REVOKED",
        };
        self.iot
            .lock()
            .unwrap()
            .certificate_status
            .insert(certificate_id.to_owned(), name);
        Ok(())
    }

    async fn attached_certificates(&self, device_id: &str) -> Result<Vec<String>, PortError> {
        iot_check(self)?;
        Ok(self
            .iot
            .lock()
            .unwrap()
            .attached
            .iter()
            .filter(|(d, _)| d == device_id)
            .map(|(_, arn)| arn.clone())
            .collect())
    }

    async fn detach_certificate(
        &self,
        device_id: &str,
        certificate_arn: &str,
    ) -> Result<(), PortError> {
        iot_check(self)?;
        self.iot
            .lock()
            .unwrap()
            .attached
            .retain(|(d, a)| !(d == device_id && a == certificate_arn));
        Ok(())
    }
}

impl Credentials for MemoryBackend {
    async fn put_certificate(&self, record: &CertificateRecord) -> Result<(), PortError> {
        let mut all = self.certificates.lock().unwrap();
        all.retain(|c| c.certificate_id != record.certificate_id);
        all.push(record.clone());
        Ok(())
    }

    async fn certificates(&self, device_id: &str) -> Result<Vec<CertificateRecord>, PortError> {
        Ok(self
            .certificates
            .lock()
            .unwrap()
            .iter()
            .filter(|c| c.device_id == device_id)
            .cloned()
            .collect())
    }

    async fn retirements_due(
        &self,
        now: DateTime<Utc>,
    ) -> Result<Vec<CertificateRecord>, PortError> {
        Ok(self
            .certificates
            .lock()
            .unwrap()
            .iter()
            .filter(|c| {
                matches!(
                    c.state,
                    CertificateState::Retiring | CertificateState::Inactive
                ) && c.retire_at.is_some_and(|t| t <= now)
            })
            .cloned()
            .collect())
    }

    async fn put_api_key(&self, key: &StoredKey) -> Result<(), PortError> {
        self.api_keys.lock().unwrap().push(key.clone());
        Ok(())
    }

    async fn api_keys(&self, device_id: &str) -> Result<Vec<StoredKey>, PortError> {
        Ok(self
            .api_keys
            .lock()
            .unwrap()
            .iter()
            .filter(|k| k.device_id == device_id)
            .cloned()
            .collect())
    }

    async fn revoke_api_key(
        &self,
        device_id: &str,
        key_id: &str,
        _at: DateTime<Utc>,
    ) -> Result<(), PortError> {
        for key in self.api_keys.lock().unwrap().iter_mut() {
            if key.device_id == device_id && key.key_id == key_id {
                key.revoked = true;
            }
        }
        Ok(())
    }

    async fn expire_api_key(
        &self,
        device_id: &str,
        key_id: &str,
        at: DateTime<Utc>,
    ) -> Result<(), PortError> {
        for key in self.api_keys.lock().unwrap().iter_mut() {
            if key.device_id == device_id && key.key_id == key_id {
                key.expires_at = Some(at);
            }
        }
        Ok(())
    }
}

impl History for MemoryBackend {
    async fn latest(
        &self,
        device_ids: &[String],
    ) -> Result<HashMap<String, LatestReading>, PortError> {
        assert!(
            device_ids.len() <= MAX_LATEST_IDS,
            "one BatchGetItem's worth"
        );
        let latest = self.latest.lock().unwrap();
        Ok(device_ids
            .iter()
            .filter_map(|id| Some((id.clone(), latest.get(id)?.clone())))
            .collect())
    }

    async fn readings(
        &self,
        series: &str,
        start_ms: i64,
        end_ms: i64,
        limit: usize,
    ) -> Result<(Vec<Point>, bool), PortError> {
        let readings = self.readings.lock().unwrap();
        let mut points: Vec<Point> = readings
            .get(series)
            .into_iter()
            .flatten()
            .filter(|p| (start_ms..=end_ms).contains(&p.ts_ms))
            .copied()
            .collect();
        points.sort_by_key(|p| p.ts_ms);
        let more = points.len() > limit;
        points.truncate(limit);
        Ok((points, more))
    }

    async fn windows(
        &self,
        series: &str,
        start_ms: i64,
        end_ms: i64,
    ) -> Result<Vec<WindowRow>, PortError> {
        let windows = self.windows.lock().unwrap();
        let mut rows: Vec<WindowRow> = windows
            .get(series)
            .into_iter()
            .flatten()
            .filter(|w| (start_ms..=end_ms).contains(&w.start_ms))
            .copied()
            .collect();
        rows.sort_by_key(|w| w.start_ms);
        Ok(rows)
    }
}

impl Alerts for MemoryBackend {
    async fn put_rule(&self, rule: &ThresholdRule) -> Result<(), PortError> {
        self.rules
            .lock()
            .unwrap()
            .insert(rule.id.clone(), rule.clone());
        Ok(())
    }

    async fn rules(&self) -> Result<Vec<ThresholdRule>, PortError> {
        Ok(self.rules.lock().unwrap().values().cloned().collect())
    }

    async fn delete_rule(&self, rule_id: &str) -> Result<bool, PortError> {
        Ok(self.rules.lock().unwrap().remove(rule_id).is_some())
    }

    async fn get_alert(&self, alert_id: &str) -> Result<Option<AlertRecord>, PortError> {
        Ok(self.alerts.lock().unwrap().get(alert_id).cloned())
    }

    async fn list_alerts(
        &self,
        filter: &AlertFilter,
        limit: usize,
        after: Option<&str>,
    ) -> Result<Page<AlertRecord>, PortError> {
        let alerts = self.alerts.lock().unwrap();
        let mut items: Vec<AlertRecord> = alerts
            .values()
            .filter(|a| after.is_none_or(|x| a.alert_id.as_str() > x))
            .filter(|a| filter.admits(a))
            .take(limit + 1)
            .cloned()
            .collect();
        let next = (items.len() > limit).then(|| {
            items.truncate(limit);
            items.last().unwrap().alert_id.clone()
        });
        Ok(Page { items, next })
    }

    async fn set_alert_state(
        &self,
        alert_id: &str,
        from: AlertState,
        to: AlertState,
        at: DateTime<Utc>,
        by: &str,
    ) -> Result<bool, PortError> {
        let mut alerts = self.alerts.lock().unwrap();
        let Some(alert) = alerts.get_mut(alert_id).filter(|a| a.state == from) else {
            return Ok(false);
        };
        alert.state = to;
        match to {
            AlertState::Acknowledged => {
                alert.acknowledged_at = Some(at.to_rfc3339());
                alert.acknowledged_by = Some(by.to_owned());
            }
            AlertState::Resolved => {
                alert.resolved_at = Some(at.to_rfc3339());
                alert.resolved_by = Some(by.to_owned());
            }
            AlertState::Open => {}
        }
        Ok(true)
    }
}

/// The row key the table sorts a day's rows by.
fn audit_key(entry: &AuditEntry) -> String {
    format!(
        "{}#{}",
        entry
            .at
            .to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
        entry.request_id
    )
}

impl AuditLog for MemoryBackend {
    async fn day(
        &self,
        day: chrono::NaiveDate,
        limit: usize,
        after: Option<&str>,
    ) -> Result<Page<AuditRecord>, PortError> {
        let audit = self.audit.lock().unwrap();
        let mut rows: Vec<(String, AuditRecord)> = audit
            .iter()
            .filter(|(entry, _)| entry.at.date_naive() == day)
            .map(|(entry, status)| {
                let outcome = match status {
                    None => "pending",
                    Some(s) if *s < 400 => "done",
                    Some(_) => "refused",
                };
                (
                    audit_key(entry),
                    AuditRecord {
                        at: entry.at.to_rfc3339(),
                        request_id: entry.request_id.clone(),
                        actor: entry.actor.clone(),
                        role: entry.role.to_owned(),
                        action: entry.action.clone(),
                        target: entry.target.clone(),
                        outcome: outcome.to_owned(),
                        status: *status,
                    },
                )
            })
            .filter(|(key, _)| after.is_none_or(|after| key.as_str() < after))
            .collect();
        rows.sort_by(|a, b| b.0.cmp(&a.0));
        let next = (rows.len() > limit).then(|| rows[limit - 1].0.clone());
        rows.truncate(limit);
        Ok(Page {
            items: rows.into_iter().map(|(_, record)| record).collect(),
            next,
        })
    }

    async fn begin(&self, entry: &AuditEntry) -> Result<(), PortError> {
        self.audit.lock().unwrap().push((entry.clone(), None));
        Ok(())
    }

    async fn finish(&self, entry: &AuditEntry, status: u16) -> Result<(), PortError> {
        if let Some(row) = self
            .audit
            .lock()
            .unwrap()
            .iter_mut()
            .find(|(e, _)| e.request_id == entry.request_id)
        {
            row.1 = Some(status);
        }
        Ok(())
    }
}

impl WebhookStore for MemoryBackend {
    async fn put_webhook(&self, hook: &hub_detection::webhook::Webhook) -> Result<(), PortError> {
        self.webhooks
            .lock()
            .unwrap()
            .insert(hook.webhook_id.clone(), hook.clone());
        Ok(())
    }

    async fn webhooks(&self) -> Result<Vec<hub_detection::webhook::Webhook>, PortError> {
        Ok(self.webhooks.lock().unwrap().values().cloned().collect())
    }

    async fn delete_webhook(&self, webhook_id: &str) -> Result<bool, PortError> {
        Ok(self.webhooks.lock().unwrap().remove(webhook_id).is_some())
    }
}

/// Merges `patch` into `into` as the shadow service does: objects merge key by key, a
/// null removes the key, anything else replaces.
fn merge(into: &mut serde_json::Value, patch: &serde_json::Value) {
    use serde_json::Value;
    match (into, patch) {
        (Value::Object(target), Value::Object(changes)) => {
            for (key, change) in changes {
                if change.is_null() {
                    target.remove(key);
                } else if change.is_object() && target.get(key).is_some_and(Value::is_object) {
                    merge(target.get_mut(key).expect("checked"), change);
                } else {
                    target.insert(key.clone(), change.clone());
                }
            }
        }
        (into, patch) => *into = patch.clone(),
    }
}

/// Desired keys whose value reported does not match.
fn delta(desired: &serde_json::Value, reported: &serde_json::Value) -> serde_json::Value {
    let mut out = serde_json::Map::new();
    if let Some(desired) = desired.as_object() {
        for (key, want) in desired {
            match (want.is_object(), reported.get(key)) {
                (true, Some(have)) if have.is_object() => {
                    let inner = delta(want, have);
                    if inner.as_object().is_some_and(|m| !m.is_empty()) {
                        out.insert(key.clone(), inner);
                    }
                }
                (_, Some(have)) if have == want => {}
                _ => {
                    out.insert(key.clone(), want.clone());
                }
            }
        }
    }
    serde_json::Value::Object(out)
}

impl MemoryBackend {
    /// What a device reporting through its shadow topic would do.
    pub fn report(&self, device_id: &str, reported: serde_json::Value) {
        let mut shadows = self.shadows.lock().unwrap();
        let entry = shadows
            .entry(device_id.to_owned())
            .or_insert_with(|| (0, serde_json::json!({}), serde_json::json!({})));
        merge(&mut entry.2, &reported);
        entry.0 += 1;
    }
}

impl DeviceData for MemoryBackend {
    async fn shadow(&self, device_id: &str) -> Result<Option<serde_json::Value>, PortError> {
        iot_check(self)?;
        Ok(self
            .shadows
            .lock()
            .unwrap()
            .get(device_id)
            .map(|(version, desired, reported)| {
                let mut state = serde_json::json!({"desired": desired, "reported": reported});
                let delta = delta(desired, reported);
                if delta.as_object().is_some_and(|m| !m.is_empty()) {
                    state["delta"] = delta;
                }
                serde_json::json!({"state": state, "metadata": {}, "version": version})
            }))
    }

    async fn update_shadow(
        &self,
        device_id: &str,
        document: &serde_json::Value,
    ) -> Result<ShadowWrite, PortError> {
        iot_check(self)?;
        let mut shadows = self.shadows.lock().unwrap();
        let entry = shadows
            .entry(device_id.to_owned())
            .or_insert_with(|| (0, serde_json::json!({}), serde_json::json!({})));
        if let Some(expected) = document["version"].as_i64() {
            if expected != entry.0 {
                return Ok(ShadowWrite::VersionConflict);
            }
        }
        match &document["state"]["desired"] {
            serde_json::Value::Null => entry.1 = serde_json::json!({}),
            patch => merge(&mut entry.1, patch),
        }
        entry.0 += 1;
        Ok(ShadowWrite::Written(
            serde_json::json!({"state": document["state"], "version": entry.0}),
        ))
    }

    async fn publish(&self, topic: &str, payload: Vec<u8>) -> Result<(), PortError> {
        if *self.publish_down.lock().unwrap() {
            return Err(PortError::new("publish", "data plane unavailable"));
        }
        self.published
            .lock()
            .unwrap()
            .push((topic.to_owned(), payload));
        Ok(())
    }
}

impl FleetTables for MemoryBackend {
    type Commands = MemoryCommands;
    type Firmware = MemoryFirmware;
    type Rollouts = MemoryRollouts;

    fn commands_table(&self) -> &MemoryCommands {
        &self.commands
    }

    fn firmware_table(&self) -> &MemoryFirmware {
        &self.firmware
    }

    fn rollouts_table(&self) -> &MemoryRollouts {
        &self.rollouts
    }
}

impl FirmwareUploads for MemoryBackend {
    async fn upload_url(
        &self,
        key: &str,
        sha256: &str,
        size: u64,
        expires: chrono::Duration,
    ) -> Result<PresignedUpload, PortError> {
        Ok(PresignedUpload {
            url: format!(
                "https://firmware.example/{key}?expires={}",
                expires.num_seconds()
            ),
            headers: [
                ("x-amz-checksum-sha256".to_owned(), sha256.to_owned()),
                ("content-length".to_owned(), size.to_string()),
            ]
            .into(),
        })
    }
}

impl RolloutEvents for MemoryBackend {
    async fn announce(
        &self,
        event: &hub_events::Envelope<hub_events::RolloutEvent>,
    ) -> Result<(), PortError> {
        self.rollout_events.lock().unwrap().push(event.clone());
        Ok(())
    }
}

impl RolloutJobs for MemoryBackend {
    async fn start_rollout_job(
        &self,
        rollout: &Rollout,
        artifact: &Artifact,
    ) -> Result<(), PortError> {
        iot_check(self)?;
        self.jobs.lock().unwrap().insert(
            rollout.job_id.clone(),
            (rollout.target.clone(), artifact.version.clone()),
        );
        Ok(())
    }

    async fn cancel_rollout_job(&self, rollout: &Rollout, _comment: &str) -> Result<(), PortError> {
        iot_check(self)?;
        self.cancelled_jobs
            .lock()
            .unwrap()
            .push(rollout.job_id.clone());
        Ok(())
    }

    async fn group_things(&self, group: &str) -> Result<Vec<String>, PortError> {
        iot_check(self)?;
        Ok(self
            .iot
            .lock()
            .unwrap()
            .things
            .iter()
            .filter(|(_, (_, g))| g.as_deref() == Some(group))
            .map(|(name, _)| name.clone())
            .collect())
    }

    async fn installing(&self, _rollout: &Rollout) -> Result<Vec<String>, PortError> {
        iot_check(self)?;
        Ok(self.installing.lock().unwrap().clone())
    }
}
