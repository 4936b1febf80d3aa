//! Firmware artifacts: `POST /v1/firmware` registers a version (SHA-256 of the image, an
//! Ed25519 signature over its manifest: version, device type, digest, size) and answers with a presigned upload URL; the upload
//! is checked by the fleet function before the artifact is `ready`. `GET /v1/firmware` and
//! `GET /v1/firmware/{version}` show them.

use chrono::{DateTime, Duration, Utc};
use hub_fleet::firmware::{
    digest_bytes, object_key, verify_manifest, Artifact, ArtifactStatus, DigestError, Manifest,
    MAX_SIZE,
};
use serde::Deserialize;
use serde_json::json;

use crate::{
    devices::device_type,
    error::ApiError,
    ports::{FirmwareTable, FirmwareUploads, FleetTables},
    request::{ApiRequest, ApiResponse},
};

/// How long an upload URL works.
pub const UPLOAD_WINDOW_SECONDS: i64 = 15 * 60;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Registration {
    version: String,
    device_type: String,
    sha256: String,
    #[serde(deserialize_with = "hub_fleet::body::integer")]
    size: u64,
    signature: String,
}

/// `1.2.3`, `2.0.0-rc.1+build.5`: letters, digits and `.`, `_`, `+`, `-`, at most 64.
pub fn version(field: &str, value: &str) -> Result<String, ApiError> {
    let ok = !value.is_empty()
        && value.len() <= 64
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'+' | b'-'))
        && !value.starts_with('.');
    if ok {
        Ok(value.to_owned())
    } else {
        Err(ApiError::invalid(
            field,
            format!("{field} must be 1 to 64 of letters, digits, '.', '_', '+' and '-'"),
        ))
    }
}

pub async fn register<F: FleetTables + FirmwareUploads>(
    store: &F,
    request: &ApiRequest,
    now: DateTime<Utc>,
    signing_key: Option<&str>,
) -> Result<ApiResponse, ApiError> {
    let body: Registration = request.json()?;
    let version = version("version", &body.version)?;
    let device_type = device_type(&body.device_type)?;
    let sha256 = body.sha256.to_ascii_lowercase();
    digest_bytes(&sha256).map_err(|e| ApiError::invalid("sha256", e.to_string()))?;
    if !(1..=MAX_SIZE).contains(&body.size) {
        return Err(ApiError::invalid(
            "size",
            format!("size must be 1 to {MAX_SIZE} bytes"),
        ));
    }
    let signature_verified = match signing_key {
        Some(key) => match verify_manifest(
            key,
            &Manifest {
                version: &version,
                device_type: &device_type,
                sha256: &sha256,
                size: body.size,
            },
            &body.signature,
        ) {
            Ok(()) => true,
            Err(DigestError::BadPublicKey) => {
                return Err(ApiError::new(
                    503,
                    "unavailable",
                    "the hub's firmware signing key is misconfigured",
                ))
            }
            Err(err) => return Err(ApiError::invalid("signature", err.to_string())),
        },
        // No key configured: the shape is checked; devices check the signature.
        None => {
            use base64::{engine::general_purpose::STANDARD, Engine as _};
            if STANDARD.decode(&body.signature).map(|s| s.len()) != Ok(64) {
                return Err(ApiError::invalid(
                    "signature",
                    DigestError::BadSignature.to_string(),
                ));
            }
            false
        }
    };
    let artifact = Artifact {
        s3_key: object_key(&version, &sha256),
        version,
        device_type,
        sha256,
        size: body.size,
        signature: body.signature,
        signature_verified,
        status: ArtifactStatus::PendingUpload,
        reason: None,
        created_at: now,
        created_by: request.principal.subject.clone(),
        checked_at: None,
    };
    if !store.firmware_table().put(&artifact).await? {
        return Err(ApiError::conflict(format!(
            "firmware {} is already registered; versions are immutable",
            artifact.version
        )));
    }
    let expires = Duration::seconds(UPLOAD_WINDOW_SECONDS);
    let upload = store
        .upload_url(&artifact.s3_key, &artifact.sha256, artifact.size, expires)
        .await?;
    let mut shown = serde_json::to_value(&artifact).expect("artifacts serialize");
    shown["upload"] = json!({
        "method": "PUT",
        "url": upload.url,
        "headers": upload.headers,
        "expires_at": now + expires,
        "content_length": artifact.size,
    });
    Ok(ApiResponse::created(shown))
}

pub async fn list<F: FleetTables>(store: &F) -> Result<ApiResponse, ApiError> {
    let mut artifacts = store.firmware_table().all().await?;
    artifacts.sort_by_key(|a| std::cmp::Reverse(a.created_at));
    Ok(ApiResponse::ok(json!({ "firmware": artifacts })))
}

pub async fn get<F: FleetTables>(store: &F, request: &ApiRequest) -> Result<ApiResponse, ApiError> {
    let version = version("version", request.param("version")?)?;
    let artifact = store
        .firmware_table()
        .get(&version)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("firmware {version}")))?;
    Ok(ApiResponse::ok(artifact))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions() {
        for ok in ["1.2.3", "2.0.0-rc.1+build.5", "v7"] {
            assert!(version("version", ok).is_ok(), "{ok}");
        }
        for bad in ["", ".1", "1/2", "a b", &"9".repeat(65)] {
            assert!(version("version", bad).is_err(), "{bad}");
        }
    }
}
