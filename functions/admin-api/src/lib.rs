//! The admin API: routes, roles, handlers over narrow store traits, and the audit trail.
//!
//! `http` turns an API Gateway (payload 2.0) request into an [`ApiRequest`] (route from
//! the route key, caller from the JWT authorizer's scopes); [`Api::handle`] checks the
//! role, writes the audit row of a change, and dispatches to the handler of the route.

pub mod alerts;
pub mod audit;
pub mod auth;
pub mod aws;
pub mod commands;
pub mod credentials;
pub mod csr;
pub mod devices;
pub mod downsample;
pub mod error;
pub mod firmware;
pub mod http;
#[cfg(any(test, feature = "memory"))]
pub mod memory;
pub mod ports;
pub mod query;
pub mod request;
pub mod rollouts;
pub mod routes;
pub mod shadow;
pub mod sweeper;
pub mod webhooks;

use chrono::{DateTime, Utc};
use error::ApiError;
pub use ports::{Alerts, Credentials, DeviceData, FleetTables, History, Registry, Things};
use ports::{AuditEntry, AuditLog, FirmwareUploads, RolloutEvents, RolloutJobs, WebhookStore};
pub use request::{ApiRequest, ApiResponse};
use routes::Operation;

/// Everything the handlers use; the AWS adapters and the in-memory fakes provide it all.
pub trait Backend:
    Registry
    + Things
    + Credentials
    + History
    + Alerts
    + WebhookStore
    + DeviceData
    + FleetTables
    + FirmwareUploads
    + RolloutJobs
    + RolloutEvents
    + AuditLog
    + Sync
{
}
impl<
        T: Registry
            + Things
            + Credentials
            + History
            + Alerts
            + WebhookStore
            + DeviceData
            + FleetTables
            + FirmwareUploads
            + RolloutJobs
            + RolloutEvents
            + AuditLog
            + Sync,
    > Backend for T
{
}

#[derive(Clone, Debug)]
pub struct ApiConfig {
    /// Width of the detector's aggregate windows: the finest resolution aggregates give.
    pub window_seconds: i64,
    /// Grace of a rotated certificate when the request does not say.
    pub default_grace_seconds: i64,
    /// Accept `http://` webhook URLs (the local stack's receivers); AWS wants https.
    pub allow_http_webhooks: bool,
    /// Accept webhook URLs naming internal addresses (the local stack's receivers).
    pub allow_private_webhooks: bool,
    /// Base64 Ed25519 public key firmware signatures are checked against; None leaves the
    /// check to devices.
    pub firmware_signing_key: Option<String>,
}

impl Default for ApiConfig {
    fn default() -> Self {
        Self {
            window_seconds: 300,
            default_grace_seconds: 24 * 3600,
            allow_http_webhooks: false,
            allow_private_webhooks: false,
            firmware_signing_key: None,
        }
    }
}

pub struct Api<B> {
    pub backend: B,
    pub config: ApiConfig,
}

impl<B: Backend> Api<B> {
    pub fn new(backend: B, config: ApiConfig) -> Self {
        Self { backend, config }
    }

    /// Runs one request: role check, audit row for a change, the handler.
    pub async fn handle(&self, request: &ApiRequest) -> ApiResponse {
        let route = request.route;
        if request.principal.role < route.role {
            return ApiError::forbidden(format!(
                "{} needs the {} role ({} scope); the token grants {}",
                route.key(),
                route.role.as_str(),
                route.role.scope(),
                request.principal.role.as_str()
            ))
            .into();
        }
        let now = Utc::now();
        let audit = route.is_change().then(|| AuditEntry {
            at: now,
            request_id: request.request_id.clone(),
            actor: request.principal.subject.clone(),
            role: request.principal.role.as_str(),
            action: route.key(),
            target: audit_target(request),
        });
        if let Some(entry) = &audit {
            if let Err(err) = self.backend.begin(entry).await {
                return ApiError::from(err).into();
            }
        }
        let response = match self.dispatch(request, now).await {
            Ok(response) => response,
            Err(err) => err.into(),
        };
        if let Some(entry) = &audit {
            if let Err(err) = self.backend.finish(entry, response.status).await {
                // The row exists (begin succeeded); only its outcome is missing.
                tracing::error!(error = %err, request_id = %entry.request_id, "audit outcome not written");
            }
        }
        response
    }

    async fn dispatch(
        &self,
        request: &ApiRequest,
        now: DateTime<Utc>,
    ) -> Result<ApiResponse, ApiError> {
        let b = &self.backend;
        match request.route.operation {
            Operation::RegisterDevice => devices::register(b, request, now).await,
            Operation::ListDevices => devices::list(b, request).await,
            Operation::GetDevice => devices::get(b, request).await,
            Operation::UpdateDevice => devices::update(b, request, now).await,
            Operation::DecommissionDevice => devices::decommission(b, request, now).await,
            Operation::QuarantineDevice => devices::set_quarantine(b, request, true, now).await,
            Operation::ReleaseDevice => devices::set_quarantine(b, request, false, now).await,
            Operation::ListCertificates => credentials::list_certificates(b, request).await,
            Operation::IssueCertificate => credentials::issue(b, request, now).await,
            Operation::RotateCertificate => {
                credentials::rotate(b, request, now, self.config.default_grace_seconds).await
            }
            Operation::RevokeCertificate => credentials::revoke(b, request, now).await,
            Operation::IssueApiKey => credentials::issue_api_key(b, request, now).await,
            Operation::QueryHistory => query::query(b, request, self.config.window_seconds).await,
            Operation::CreateAlertRule => alerts::create_rule(b, request).await,
            Operation::ListAlertRules => alerts::list_rules(b).await,
            Operation::DeleteAlertRule => alerts::delete_rule(b, request).await,
            Operation::ListAlerts => alerts::list(b, request).await,
            Operation::GetAlert => alerts::get(b, request).await,
            Operation::AcknowledgeAlert => {
                alerts::transition(
                    b,
                    request,
                    hub_detection::alert::AlertAction::Acknowledge,
                    now,
                )
                .await
            }
            Operation::CreateWebhook => webhooks::create(b, request, now, &self.config).await,
            Operation::ListWebhooks => webhooks::list(b).await,
            Operation::DeleteWebhook => webhooks::delete(b, request).await,
            Operation::GetShadow => shadow::get(b, request).await,
            Operation::UpdateShadow => shadow::update(b, request).await,
            Operation::SendCommand => commands::send(b, request, now).await,
            Operation::ListCommands => commands::list(b, request, now).await,
            Operation::GetCommand => commands::get(b, request, now).await,
            Operation::RegisterFirmware => {
                firmware::register(b, request, now, self.config.firmware_signing_key.as_deref())
                    .await
            }
            Operation::ListFirmware => firmware::list(b).await,
            Operation::GetFirmware => firmware::get(b, request).await,
            Operation::StartRollout => rollouts::create(b, request, now).await,
            Operation::ListRollouts => rollouts::list(b).await,
            Operation::GetRollout => rollouts::get(b, request).await,
            Operation::CancelRollout => rollouts::cancel(b, request, now).await,
            Operation::GetLatestReading => devices::latest(b, request).await,
            Operation::FleetSummary => devices::summary(b, now).await,
            Operation::ListAudit => audit::list(b, request, now).await,
            Operation::ResolveAlert => {
                alerts::transition(b, request, hub_detection::alert::AlertAction::Resolve, now)
                    .await
            }
        }
    }
}

/// What a change acts on: the path's id, or the device id a registration names.
fn audit_target(request: &ApiRequest) -> Option<String> {
    if let Some(id) = request.params.get("id") {
        return Some(id.clone());
    }
    serde_json::from_slice::<serde_json::Value>(&request.body)
        .ok()?
        .get("device_id")?
        .as_str()
        .map(|s| s.chars().take(128).collect())
}
