//! What the API needs from outside, as narrow traits over plain data: the AWS adapters
//! (`aws`) and the in-memory fakes (`memory`) implement them.

use std::{
    collections::{BTreeMap, HashMap},
    future::Future,
};

use chrono::{DateTime, NaiveDate, Utc};
use hub_credentials::StoredKey;
use hub_detection::rule::ThresholdRule;
use hub_events::AlertState;
use serde::Serialize;

pub use hub_runtime::PortError;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DeviceStatus {
    /// In the registry and IoT, without a certificate yet.
    Registered,
    /// Holds at least one certificate.
    Active,
    /// Credentials revoked and the thing deleted; the row stays as history.
    Decommissioned,
}

impl DeviceStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            DeviceStatus::Registered => "registered",
            DeviceStatus::Active => "active",
            DeviceStatus::Decommissioned => "decommissioned",
        }
    }

    pub fn from_name(name: &str) -> Option<Self> {
        [Self::Registered, Self::Active, Self::Decommissioned]
            .into_iter()
            .find(|s| s.as_str() == name)
    }
}

/// A registry row.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Device {
    pub device_id: String,
    pub device_type: String,
    pub status: DeviceStatus,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub serial: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub location: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tenant: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub firmware_version: Option<String>,
    pub quarantined: bool,
    pub simulated: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub decommissioned_at: Option<DateTime<Utc>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub connectivity: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_seen: Option<String>,
}

/// Fields a change sets; `None` leaves a field as it is.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct DeviceChanges {
    pub device_type: Option<String>,
    pub serial: Option<String>,
    pub group: Option<String>,
    pub location: Option<String>,
    pub tenant: Option<String>,
    pub firmware_version: Option<String>,
    pub quarantined: Option<bool>,
    pub status: Option<DeviceStatus>,
    pub decommissioned_at: Option<DateTime<Utc>>,
}

impl DeviceChanges {
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct DeviceFilter {
    pub device_type: Option<String>,
    pub status: Option<DeviceStatus>,
    pub group: Option<String>,
}

impl DeviceFilter {
    pub fn admits(&self, device: &Device) -> bool {
        self.device_type
            .as_ref()
            .is_none_or(|t| *t == device.device_type)
            && self.status.is_none_or(|s| s == device.status)
            && self
                .group
                .as_ref()
                .is_none_or(|g| device.group.as_ref() == Some(g))
    }
}

/// One page of a listing; `next` continues after the last item.
#[derive(Clone, Debug, PartialEq)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next: Option<String>,
}

pub trait Registry {
    /// Writes a new row; false if the device id is taken.
    fn create(&self, device: &Device) -> impl Future<Output = Result<bool, PortError>> + Send;
    fn get(
        &self,
        device_id: &str,
    ) -> impl Future<Output = Result<Option<Device>, PortError>> + Send;
    /// Applies `changes` to an existing row and returns it; None if there is no row.
    fn update(
        &self,
        device_id: &str,
        changes: &DeviceChanges,
        at: DateTime<Utc>,
    ) -> impl Future<Output = Result<Option<Device>, PortError>> + Send;
    /// Up to `limit` rows admitted by `filter`, in device id order, after `after`.
    fn list(
        &self,
        filter: &DeviceFilter,
        limit: usize,
        after: Option<&str>,
    ) -> impl Future<Output = Result<Page<Device>, PortError>> + Send;
}

/// A certificate the IoT service signed.
#[derive(Clone, Debug, PartialEq)]
pub struct SignedCertificate {
    pub certificate_id: String,
    pub certificate_arn: String,
    pub certificate_pem: String,
}

/// Certificate status in the IoT service.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IotCertificateStatus {
    Inactive,
    Revoked,
}

/// The IoT registry: things, thing groups, certificates and their attachments.
pub trait Things {
    /// Creates the thing (with its type as an attribute) and puts it in `group`.
    fn create_thing(
        &self,
        device_id: &str,
        device_type: &str,
        group: Option<&str>,
    ) -> impl Future<Output = Result<(), PortError>> + Send;
    /// Moves the thing from one thing group to another; false if there is no such thing
    /// (a registry row made outside the API).
    fn move_thing(
        &self,
        device_id: &str,
        from: Option<&str>,
        to: Option<&str>,
    ) -> impl Future<Output = Result<bool, PortError>> + Send;
    fn delete_thing(&self, device_id: &str) -> impl Future<Output = Result<(), PortError>> + Send;
    /// Signs a CSR, activates the certificate, attaches the device policy to it and it to
    /// the thing.
    fn issue_certificate(
        &self,
        device_id: &str,
        csr_pem: &str,
    ) -> impl Future<Output = Result<SignedCertificate, PortError>> + Send;
    fn set_certificate_status(
        &self,
        certificate_id: &str,
        status: IotCertificateStatus,
    ) -> impl Future<Output = Result<(), PortError>> + Send;
    /// ARNs of every certificate attached to the thing, including ones attached outside
    /// the API (by hand, or by other tools); empty if there is no thing.
    fn attached_certificates(
        &self,
        device_id: &str,
    ) -> impl Future<Output = Result<Vec<String>, PortError>> + Send;
    /// Detaches the certificate from the thing and the policy (it stays, refused, as history).
    fn detach_certificate(
        &self,
        device_id: &str,
        certificate_arn: &str,
    ) -> impl Future<Output = Result<(), PortError>> + Send;
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CertificateState {
    Active,
    /// Replaced by a rotation; still accepted until `retire_at`.
    Retiring,
    /// Past its grace period: refused, to be revoked.
    Inactive,
    Revoked,
}

impl CertificateState {
    pub fn as_str(self) -> &'static str {
        match self {
            CertificateState::Active => "active",
            CertificateState::Retiring => "retiring",
            CertificateState::Inactive => "inactive",
            CertificateState::Revoked => "revoked",
        }
    }

    pub fn from_name(name: &str) -> Option<Self> {
        [Self::Active, Self::Retiring, Self::Inactive, Self::Revoked]
            .into_iter()
            .find(|s| s.as_str() == name)
    }
}

/// A device certificate as the credentials table keeps it (never the private key: the
/// hub never sees it).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct CertificateRecord {
    pub device_id: String,
    pub certificate_id: String,
    pub certificate_arn: String,
    pub state: CertificateState,
    pub created_at: DateTime<Utc>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retire_at: Option<DateTime<Utc>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub revoked_at: Option<DateTime<Utc>>,
}

pub trait Credentials {
    fn put_certificate(
        &self,
        record: &CertificateRecord,
    ) -> impl Future<Output = Result<(), PortError>> + Send;
    fn certificates(
        &self,
        device_id: &str,
    ) -> impl Future<Output = Result<Vec<CertificateRecord>, PortError>> + Send;
    /// Certificates in `Retiring` or `Inactive` state whose grace ended by `now`.
    fn retirements_due(
        &self,
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<Vec<CertificateRecord>, PortError>> + Send;
    fn put_api_key(&self, key: &StoredKey) -> impl Future<Output = Result<(), PortError>> + Send;
    fn api_keys(
        &self,
        device_id: &str,
    ) -> impl Future<Output = Result<Vec<StoredKey>, PortError>> + Send;
    fn revoke_api_key(
        &self,
        device_id: &str,
        key_id: &str,
        at: DateTime<Utc>,
    ) -> impl Future<Output = Result<(), PortError>> + Send;
    /// Sets when a key stops being accepted (the grace of a key rotation).
    fn expire_api_key(
        &self,
        device_id: &str,
        key_id: &str,
        at: DateTime<Utc>,
    ) -> impl Future<Output = Result<(), PortError>> + Send;
}

/// One stored reading.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Point {
    pub ts_ms: i64,
    pub value: f64,
}

/// One persisted tumbling-window aggregate.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct WindowRow {
    pub start_ms: i64,
    pub count: u64,
    pub mean: f64,
    /// Sum of squared deviations (Welford's M2), so windows merge exactly.
    pub m2: f64,
    pub min: f64,
    pub max: f64,
}

/// A device's newest reading, as the telemetry store keeps it (by measurement time).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct LatestReading {
    /// Measurement time, RFC 3339.
    pub ts: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seq: Option<u64>,
    pub metrics: BTreeMap<String, f64>,
    pub status: String,
    pub received_at: String,
}

/// Device ids one `latest` call reads at most (one DynamoDB BatchGetItem).
pub const MAX_LATEST_IDS: usize = 100;

pub trait History {
    /// The newest reading of each of `device_ids` (at most [`MAX_LATEST_IDS`]) that has
    /// one; devices without a reading are absent.
    fn latest(
        &self,
        device_ids: &[String],
    ) -> impl Future<Output = Result<HashMap<String, LatestReading>, PortError>> + Send;
    /// Readings of `series` with `start_ms <= ts <= end_ms`, in time order, at most
    /// `limit`; the flag says more were left.
    fn readings(
        &self,
        series: &str,
        start_ms: i64,
        end_ms: i64,
        limit: usize,
    ) -> impl Future<Output = Result<(Vec<Point>, bool), PortError>> + Send;
    /// Window aggregates of `series` whose window starts in `[start_ms, end_ms]`.
    fn windows(
        &self,
        series: &str,
        start_ms: i64,
        end_ms: i64,
    ) -> impl Future<Output = Result<Vec<WindowRow>, PortError>> + Send;
}

/// An alert as the dispatcher wrote it and operators move it on.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct AlertRecord {
    pub alert_id: String,
    pub device_id: String,
    pub rule_id: String,
    pub metric: String,
    pub severity: String,
    pub state: AlertState,
    pub count: u64,
    pub summary: String,
    pub raised_at: Option<String>,
    pub window_start: Option<String>,
    pub window_end: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub device_type: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub acknowledged_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub acknowledged_by: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resolved_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resolved_by: Option<String>,
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct AlertFilter {
    pub state: Option<AlertState>,
    pub device_id: Option<String>,
}

impl AlertFilter {
    pub fn admits(&self, alert: &AlertRecord) -> bool {
        self.state.is_none_or(|s| s == alert.state)
            && self
                .device_id
                .as_ref()
                .is_none_or(|d| *d == alert.device_id)
    }
}

pub trait Alerts {
    fn put_rule(&self, rule: &ThresholdRule) -> impl Future<Output = Result<(), PortError>> + Send;
    fn rules(&self) -> impl Future<Output = Result<Vec<ThresholdRule>, PortError>> + Send;
    /// False if there was no such rule.
    fn delete_rule(&self, rule_id: &str) -> impl Future<Output = Result<bool, PortError>> + Send;
    fn get_alert(
        &self,
        alert_id: &str,
    ) -> impl Future<Output = Result<Option<AlertRecord>, PortError>> + Send;
    fn list_alerts(
        &self,
        filter: &AlertFilter,
        limit: usize,
        after: Option<&str>,
    ) -> impl Future<Output = Result<Page<AlertRecord>, PortError>> + Send;
    /// Moves the alert from `from` to `to` if it is still in `from`; false if it moved
    /// meanwhile (the caller reads it again).
    fn set_alert_state(
        &self,
        alert_id: &str,
        from: AlertState,
        to: AlertState,
        at: DateTime<Utc>,
        by: &str,
    ) -> impl Future<Output = Result<bool, PortError>> + Send;
}

pub trait WebhookStore {
    fn put_webhook(
        &self,
        hook: &hub_detection::webhook::Webhook,
    ) -> impl Future<Output = Result<(), PortError>> + Send;
    fn webhooks(
        &self,
    ) -> impl Future<Output = Result<Vec<hub_detection::webhook::Webhook>, PortError>> + Send;
    /// False if there was no such hook.
    fn delete_webhook(
        &self,
        webhook_id: &str,
    ) -> impl Future<Output = Result<bool, PortError>> + Send;
}

/// One admin action: written before the change is made, completed with its outcome after,
/// so no change can happen without a row.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct AuditEntry {
    pub at: DateTime<Utc>,
    pub request_id: String,
    pub actor: String,
    pub role: &'static str,
    /// The route key, `POST /v1/devices/{id}/quarantine`.
    pub action: String,
    /// The device, alert or rule acted on.
    pub target: Option<String>,
}

/// An audit row as read back: the entry and how the change ended.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct AuditRecord {
    pub at: String,
    pub request_id: String,
    pub actor: String,
    pub role: String,
    pub action: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    /// `pending` (the change began and its outcome was never written), `done`, `refused`.
    pub outcome: String,
    /// The HTTP status the change was answered with, once finished.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
}

pub trait AuditLog {
    /// Rows of one UTC day, newest first, at most `limit`, after the row `after` (the
    /// page's `next`, a row key).
    fn day(
        &self,
        day: NaiveDate,
        limit: usize,
        after: Option<&str>,
    ) -> impl Future<Output = Result<Page<AuditRecord>, PortError>> + Send;
    fn begin(&self, entry: &AuditEntry) -> impl Future<Output = Result<(), PortError>> + Send;
    fn finish(
        &self,
        entry: &AuditEntry,
        status: u16,
    ) -> impl Future<Output = Result<(), PortError>> + Send;
}

/// What a shadow update came to.
#[derive(Clone, Debug, PartialEq)]
pub enum ShadowWrite {
    /// Accepted; the service's response document.
    Written(serde_json::Value),
    /// `expected_version` was not the shadow's version.
    VersionConflict,
    /// The service refused the document, saying why.
    Rejected(String),
}

/// The IoT data plane: device shadows (the classic, unnamed one) and publishing.
pub trait DeviceData {
    /// The shadow document (`{state: {desired, reported, delta}, metadata, version}`),
    /// None if the device has none yet.
    fn shadow(
        &self,
        device_id: &str,
    ) -> impl Future<Output = Result<Option<serde_json::Value>, PortError>> + Send;
    fn update_shadow(
        &self,
        device_id: &str,
        document: &serde_json::Value,
    ) -> impl Future<Output = Result<ShadowWrite, PortError>> + Send;
    /// Publishes at QoS 1.
    fn publish(
        &self,
        topic: &str,
        payload: Vec<u8>,
    ) -> impl Future<Output = Result<(), PortError>> + Send;
}

pub use hub_fleet::command::Command;

/// The fleet tables the admin API shares with the fleet function: [`hub_fleet`]'s,
/// with one DynamoDB and one in-memory implementation each.
pub trait FleetTables {
    type Commands: CommandsTable + Sync;
    type Firmware: FirmwareTable + Sync;
    type Rollouts: RolloutsTable + Sync;
    fn commands_table(&self) -> &Self::Commands;
    fn firmware_table(&self) -> &Self::Firmware;
    fn rollouts_table(&self) -> &Self::Rollouts;
}

pub use hub_fleet::{CommandsTable, FirmwareTable, RolloutsTable};

pub use hub_fleet::firmware::Artifact;

/// Firmware images' uploads to the firmware bucket.
pub trait FirmwareUploads {
    /// A presigned PUT of the object `key`, working for `expires`, bound to the
    /// registered image: S3 takes only a body of this SHA-256 (hex) and size.
    fn upload_url(
        &self,
        key: &str,
        sha256: &str,
        size: u64,
        expires: chrono::Duration,
    ) -> impl Future<Output = Result<PresignedUpload, PortError>> + Send;
}

/// A presigned request: its URL and the headers the uploader must send unchanged (they
/// are signed).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct PresignedUpload {
    pub url: String,
    pub headers: std::collections::BTreeMap<String, String>,
}

pub use hub_fleet::rollout::{Counts, DeviceRow, Rollout, RolloutStatus};

/// Where the API announces the rollout steps it takes (`started`, `cancelled`); the
/// fleet function announces the rest.
pub trait RolloutEvents {
    fn announce(
        &self,
        event: &hub_events::Envelope<hub_events::RolloutEvent>,
    ) -> impl Future<Output = Result<(), PortError>> + Send;
}

/// Rollouts' jobs in IoT Jobs, and whom they reach.
pub trait RolloutJobs {
    /// Switches job events on if needed and creates the rollout's job.
    fn start_rollout_job(
        &self,
        rollout: &Rollout,
        artifact: &Artifact,
    ) -> impl Future<Output = Result<(), PortError>> + Send;
    fn cancel_rollout_job(
        &self,
        rollout: &Rollout,
        comment: &str,
    ) -> impl Future<Output = Result<(), PortError>> + Send;
    /// The things IoT lists in thing group `group`: whom a job to the group reaches.
    fn group_things(
        &self,
        group: &str,
    ) -> impl Future<Output = Result<Vec<String>, PortError>> + Send;
    /// Devices whose execution of the rollout's job is in progress now.
    fn installing(
        &self,
        rollout: &Rollout,
    ) -> impl Future<Output = Result<Vec<String>, PortError>> + Send;
}
