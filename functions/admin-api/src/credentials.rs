//! Device credentials: X.509 certificates signed from the device's own CSR (the private
//! key never leaves the device), rotation with a grace period, revocation, and API keys
//! for HTTP ingest (shown once, stored hashed).

use chrono::{DateTime, Duration, Utc};
use hub_credentials::ApiKey;
use serde::Deserialize;
use serde_json::json;

use crate::{
    csr,
    devices::in_service,
    error::ApiError,
    ports::{
        CertificateRecord, CertificateState, Credentials, DeviceChanges, DeviceStatus,
        IotCertificateStatus, Registry, Things,
    },
    request::{ApiRequest, ApiResponse},
};

/// The longest grace a rotated credential may keep.
pub const MAX_GRACE_SECONDS: i64 = 30 * 24 * 3600;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct IssueBody {
    csr: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RotateBody {
    csr: String,
    #[serde(default, deserialize_with = "hub_fleet::body::given_integer")]
    grace_seconds: Option<i64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ApiKeyBody {
    /// When set, the device's current keys stay valid this long, then expire.
    #[serde(default, deserialize_with = "hub_fleet::body::given_integer")]
    grace_seconds: Option<i64>,
}

fn grace(value: Option<i64>, default: i64) -> Result<Duration, ApiError> {
    let seconds = value.unwrap_or(default);
    if !(0..=MAX_GRACE_SECONDS).contains(&seconds) {
        return Err(ApiError::invalid(
            "grace_seconds",
            format!("grace_seconds must be between 0 and {MAX_GRACE_SECONDS}"),
        ));
    }
    Ok(Duration::seconds(seconds))
}

pub async fn list_certificates<B: Registry + Credentials>(
    b: &B,
    request: &ApiRequest,
) -> Result<ApiResponse, ApiError> {
    let device = crate::devices::existing(b, request).await?;
    let certificates = b.certificates(&device.device_id).await?;
    Ok(ApiResponse::ok(json!({ "certificates": certificates })))
}

/// Signs the CSR, records the certificate, and marks the device active.
async fn sign<B: Registry + Things + Credentials>(
    b: &B,
    device_id: &str,
    csr_pem: &str,
    now: DateTime<Utc>,
) -> Result<(CertificateRecord, String), ApiError> {
    csr::check(csr_pem, device_id)?;
    let signed = b.issue_certificate(device_id, csr_pem).await?;
    let record = CertificateRecord {
        device_id: device_id.to_owned(),
        certificate_id: signed.certificate_id,
        certificate_arn: signed.certificate_arn,
        state: CertificateState::Active,
        created_at: now,
        retire_at: None,
        revoked_at: None,
    };
    b.put_certificate(&record).await?;
    let changes = DeviceChanges {
        status: Some(DeviceStatus::Active),
        ..DeviceChanges::default()
    };
    b.update(device_id, &changes, now).await?;
    Ok((record, signed.certificate_pem))
}

fn issued(record: &CertificateRecord, pem: &str) -> serde_json::Value {
    json!({
        "device_id": record.device_id,
        "certificate_id": record.certificate_id,
        "certificate_arn": record.certificate_arn,
        "certificate_pem": pem,
        "state": record.state,
        "created_at": record.created_at,
    })
}

pub async fn issue<B: Registry + Things + Credentials>(
    b: &B,
    request: &ApiRequest,
    now: DateTime<Utc>,
) -> Result<ApiResponse, ApiError> {
    let body: IssueBody = request.json()?;
    let device = in_service(b, request).await?;
    let certificates = b.certificates(&device.device_id).await?;
    if certificates
        .iter()
        .any(|c| c.state == CertificateState::Active)
    {
        return Err(ApiError::conflict(format!(
            "device {} already has an active certificate; rotate it instead",
            device.device_id
        )));
    }
    let (record, pem) = sign(b, &device.device_id, &body.csr, now).await?;
    Ok(ApiResponse::created(issued(&record, &pem)))
}

/// A new certificate from a new CSR; the current ones keep working for the grace period,
/// then the sweeper deactivates and revokes them.
pub async fn rotate<B: Registry + Things + Credentials>(
    b: &B,
    request: &ApiRequest,
    now: DateTime<Utc>,
    default_grace_seconds: i64,
) -> Result<ApiResponse, ApiError> {
    let body: RotateBody = request.json()?;
    let grace = grace(body.grace_seconds, default_grace_seconds)?;
    let device = in_service(b, request).await?;
    let current: Vec<CertificateRecord> = b
        .certificates(&device.device_id)
        .await?
        .into_iter()
        .filter(|c| c.state == CertificateState::Active)
        .collect();
    if current.is_empty() {
        return Err(ApiError::conflict(format!(
            "device {} has no active certificate to rotate; issue one",
            device.device_id
        )));
    }
    let (record, pem) = sign(b, &device.device_id, &body.csr, now).await?;
    let retire_at = now + grace;
    let mut retiring = Vec::new();
    for mut old in current {
        if grace.is_zero() {
            b.set_certificate_status(&old.certificate_id, IotCertificateStatus::Inactive)
                .await?;
            old.state = CertificateState::Inactive;
        } else {
            old.state = CertificateState::Retiring;
        }
        old.retire_at = Some(retire_at);
        b.put_certificate(&old).await?;
        retiring.push(old);
    }
    let mut body = issued(&record, &pem);
    body["retiring"] = json!(retiring);
    Ok(ApiResponse::created(body))
}

pub async fn revoke<B: Registry + Things + Credentials>(
    b: &B,
    request: &ApiRequest,
    now: DateTime<Utc>,
) -> Result<ApiResponse, ApiError> {
    let device = crate::devices::existing(b, request).await?;
    let certificate_id = request.param("certId")?;
    let mut record = b
        .certificates(&device.device_id)
        .await?
        .into_iter()
        .find(|c| c.certificate_id == certificate_id)
        .ok_or_else(|| {
            ApiError::not_found(format!(
                "certificate {certificate_id} of device {}",
                device.device_id
            ))
        })?;
    if record.state != CertificateState::Revoked {
        revoke_now(b, &mut record, now).await?;
    }
    Ok(ApiResponse::ok(record))
}

/// Revokes in IoT first, then detaches, then records: a failure part way leaves the
/// certificate refused, and a retry finishes the rest.
pub async fn revoke_now<B: Things + Credentials>(
    b: &B,
    record: &mut CertificateRecord,
    now: DateTime<Utc>,
) -> Result<(), ApiError> {
    b.set_certificate_status(&record.certificate_id, IotCertificateStatus::Revoked)
        .await?;
    b.detach_certificate(&record.device_id, &record.certificate_arn)
        .await?;
    record.state = CertificateState::Revoked;
    record.revoked_at = Some(now);
    b.put_certificate(record).await?;
    Ok(())
}

pub async fn issue_api_key<B: Registry + Credentials>(
    b: &B,
    request: &ApiRequest,
    now: DateTime<Utc>,
) -> Result<ApiResponse, ApiError> {
    let body: ApiKeyBody = request.json()?;
    let grace = body.grace_seconds.map(|g| grace(Some(g), 0)).transpose()?;
    let device = in_service(b, request).await?;
    let issued = ApiKey::issue(&device.device_id, now)
        .map_err(|e| ApiError::invalid("id", e.to_string()))?;
    b.put_api_key(&issued.stored).await?;
    let mut replaced = Vec::new();
    if let Some(grace) = grace {
        let expires_at = now + grace;
        for key in b.api_keys(&device.device_id).await? {
            let current = !key.revoked && key.expires_at.is_none_or(|t| t > expires_at);
            if key.key_id != issued.stored.key_id && current {
                b.expire_api_key(&device.device_id, &key.key_id, expires_at)
                    .await?;
                replaced.push(json!({ "key_id": key.key_id, "expires_at": expires_at }));
            }
        }
    }
    Ok(ApiResponse::created(json!({
        "device_id": device.device_id,
        "key_id": issued.stored.key_id,
        "api_key": issued.key,
        "created_at": issued.stored.created_at,
        "replaced": replaced,
        "note": "the key is shown only now; the hub keeps only its hash",
    })))
}
