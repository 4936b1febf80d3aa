//! The device registry: register (IoT thing + thing group + registry row), list, get,
//! update, quarantine, decommission (credentials refused, thing deleted, row kept).

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::{
    error::ApiError,
    ports::{
        CertificateRecord, CertificateState, Credentials, Device, DeviceChanges, DeviceFilter,
        DeviceStatus, History, IotCertificateStatus, Registry, Things,
    },
    request::{decode_token, encode_token, name, text, ApiRequest, ApiResponse},
};

const MAX_TEXT: usize = 256;
pub const MAX_PAGE: usize = 100;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Registration {
    device_id: String,
    device_type: String,
    #[serde(default, deserialize_with = "hub_fleet::body::given")]
    serial: Option<String>,
    #[serde(default, deserialize_with = "hub_fleet::body::given")]
    group: Option<String>,
    #[serde(default, deserialize_with = "hub_fleet::body::given")]
    location: Option<String>,
    #[serde(default, deserialize_with = "hub_fleet::body::given")]
    tenant: Option<String>,
    #[serde(default, deserialize_with = "hub_fleet::body::given")]
    firmware_version: Option<String>,
    #[serde(default)]
    simulated: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Update {
    #[serde(default, deserialize_with = "hub_fleet::body::given")]
    device_type: Option<String>,
    #[serde(default, deserialize_with = "hub_fleet::body::given")]
    serial: Option<String>,
    #[serde(default, deserialize_with = "hub_fleet::body::given")]
    group: Option<String>,
    #[serde(default, deserialize_with = "hub_fleet::body::given")]
    location: Option<String>,
    #[serde(default, deserialize_with = "hub_fleet::body::given")]
    tenant: Option<String>,
    #[serde(default, deserialize_with = "hub_fleet::body::given")]
    firmware_version: Option<String>,
}

/// A device id as IoT allows thing names (and API keys rely on: no `.`).
pub fn device_id(field: &str, value: &str) -> Result<String, ApiError> {
    name(field, value, 128)
}

/// Client ids of the platform's own broker clients (the local stack's bridge connects as
/// `hub-local-bridge`): no device may take one, or it would connect with the bridge's
/// rights.
pub const RESERVED_ID_PREFIX: &str = "hub-local-";

fn new_device_id(value: &str) -> Result<String, ApiError> {
    let id = device_id("device_id", value)?;
    if id.starts_with(RESERVED_ID_PREFIX) {
        return Err(ApiError::invalid(
            "device_id",
            format!("device ids starting with {RESERVED_ID_PREFIX} are reserved for the platform's own clients"),
        ));
    }
    Ok(id)
}

pub fn device_type(value: &str) -> Result<String, ApiError> {
    let ok = !value.is_empty()
        && value.len() <= 64
        && value
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'_' | b'-'));
    if ok {
        Ok(value.to_owned())
    } else {
        Err(ApiError::invalid(
            "device_type",
            "device_type must be 1 to 64 of lowercase letters, digits, '_' and '-'",
        ))
    }
}

fn optional_text(field: &str, value: Option<&String>) -> Result<Option<String>, ApiError> {
    value.map(|v| text(field, v, MAX_TEXT)).transpose()
}

fn optional_group(value: Option<&String>) -> Result<Option<String>, ApiError> {
    value.map(|g| name("group", g, 128)).transpose()
}

/// The device of the path, or 404.
pub async fn existing<R: Registry>(registry: &R, request: &ApiRequest) -> Result<Device, ApiError> {
    let id = device_id("id", request.param("id")?)?;
    registry
        .get(&id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("device {id}")))
}

/// The device of the path if it is not decommissioned; 404 or 409 otherwise.
pub async fn in_service<R: Registry>(
    registry: &R,
    request: &ApiRequest,
) -> Result<Device, ApiError> {
    let device = existing(registry, request).await?;
    if device.status == DeviceStatus::Decommissioned {
        return Err(ApiError::conflict(format!(
            "device {} is decommissioned",
            device.device_id
        )));
    }
    Ok(device)
}

pub async fn register<B: Registry + Things>(
    b: &B,
    request: &ApiRequest,
    now: DateTime<Utc>,
) -> Result<ApiResponse, ApiError> {
    let body: Registration = request.json()?;
    let device = Device {
        device_id: new_device_id(&body.device_id)?,
        device_type: device_type(&body.device_type)?,
        status: DeviceStatus::Registered,
        serial: optional_text("serial", body.serial.as_ref())?,
        group: optional_group(body.group.as_ref())?,
        location: optional_text("location", body.location.as_ref())?,
        tenant: optional_text("tenant", body.tenant.as_ref())?,
        firmware_version: optional_text("firmware_version", body.firmware_version.as_ref())?,
        quarantined: false,
        simulated: body.simulated,
        created_at: now,
        updated_at: now,
        decommissioned_at: None,
        connectivity: None,
        last_seen: None,
    };
    let taken = || {
        ApiError::conflict(format!(
            "device {} is already registered (ids are never reused)",
            device.device_id
        ))
    };
    if b.get(&device.device_id).await?.is_some() {
        return Err(taken());
    }
    // The thing first: creating it again with the same attributes is harmless, so a
    // registration that fails after this step can simply be retried.
    b.create_thing(
        &device.device_id,
        &device.device_type,
        device.group.as_deref(),
    )
    .await?;
    if !b.create(&device).await? {
        return Err(taken());
    }
    Ok(ApiResponse::created(&device))
}

pub async fn get<R: Registry>(registry: &R, request: &ApiRequest) -> Result<ApiResponse, ApiError> {
    let device = existing(registry, request).await?;
    let simulated = device.simulated;
    Ok(ApiResponse::ok(device).simulated(simulated))
}

/// `GET /v1/devices/{id}/latest`: the device's newest reading by measurement time.
pub async fn latest<B: Registry + History>(
    b: &B,
    request: &ApiRequest,
) -> Result<ApiResponse, ApiError> {
    let device = existing(b, request).await?;
    let reading = b
        .latest(std::slice::from_ref(&device.device_id))
        .await?
        .remove(&device.device_id)
        .ok_or_else(|| {
            ApiError::not_found(format!("a reading from device {}", device.device_id))
        })?;
    let mut body = serde_json::to_value(reading).expect("readings serialize");
    body["device_id"] = json!(device.device_id);
    Ok(ApiResponse::ok(body).simulated(device.simulated))
}

/// `include` of the device list: which extras each device carries.
fn include_latest(request: &ApiRequest) -> Result<bool, ApiError> {
    match request.query("include") {
        None => Ok(false),
        Some("latest") => Ok(true),
        Some(other) => Err(ApiError::invalid(
            "include",
            format!("include must be latest, not {other:?}"),
        )),
    }
}

pub async fn list<B: Registry + History>(
    registry: &B,
    request: &ApiRequest,
) -> Result<ApiResponse, ApiError> {
    let filter = DeviceFilter {
        device_type: request.query("type").map(device_type).transpose()?,
        status: request
            .query("status")
            .map(|s| {
                DeviceStatus::from_name(s).ok_or_else(|| {
                    ApiError::invalid(
                        "status",
                        "status must be one of registered, active, decommissioned",
                    )
                })
            })
            .transpose()?,
        group: request
            .query("group")
            .map(|g| name("group", g, 128))
            .transpose()?,
    };
    let limit = request.query_number("limit", 50, 1..=MAX_PAGE)?;
    let with_latest = include_latest(request)?;
    let after = decode_token(request.query("next_token"))?;
    let page = registry.list(&filter, limit, after.as_deref()).await?;
    let simulated = page.items.iter().any(|d| d.simulated);
    let mut devices: Vec<Value> = page
        .items
        .iter()
        .map(|d| serde_json::to_value(d).expect("devices serialize"))
        .collect();
    if with_latest {
        let ids: Vec<String> = page.items.iter().map(|d| d.device_id.clone()).collect();
        let mut latest = registry.latest(&ids).await?;
        for (device, id) in devices.iter_mut().zip(&ids) {
            device["latest"] = latest.remove(id).map_or(Value::Null, |r| {
                serde_json::to_value(r).expect("readings serialize")
            });
        }
    }
    Ok(ApiResponse::ok(json!({
        "devices": devices,
        "next_token": page.next.as_deref().map(encode_token),
    }))
    .simulated(simulated))
}

/// Counts of one field's values, the absent value counted as `unknown`.
fn tally(counts: &mut BTreeMap<String, u64>, value: Option<&str>) {
    *counts
        .entry(value.unwrap_or("unknown").to_owned())
        .or_default() += 1;
}

/// `GET /v1/fleet/summary`: the fleet counted by status, and the devices in service by
/// connectivity, firmware version and type. It reads the whole registry, a page at a
/// time: made for a console's header, not for polling every second.
pub async fn summary<R: Registry>(
    registry: &R,
    now: DateTime<Utc>,
) -> Result<ApiResponse, ApiError> {
    let mut by_status = BTreeMap::new();
    let mut by_connectivity = BTreeMap::new();
    let mut by_firmware = BTreeMap::new();
    let mut by_type = BTreeMap::new();
    let (mut devices, mut in_service, mut quarantined, mut simulated) = (0u64, 0u64, 0u64, 0u64);
    let mut after: Option<String> = None;
    loop {
        let page = registry
            .list(&DeviceFilter::default(), MAX_PAGE, after.as_deref())
            .await?;
        for device in &page.items {
            devices += 1;
            tally(&mut by_status, Some(device.status.as_str()));
            if device.status == DeviceStatus::Decommissioned {
                continue;
            }
            in_service += 1;
            tally(&mut by_connectivity, device.connectivity.as_deref());
            tally(&mut by_firmware, device.firmware_version.as_deref());
            tally(&mut by_type, Some(&device.device_type));
            quarantined += u64::from(device.quarantined);
            simulated += u64::from(device.simulated);
        }
        match page.next {
            Some(next) => after = Some(next),
            None => break,
        }
    }
    Ok(ApiResponse::ok(json!({
        "as_of": now.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        "devices": devices,
        "in_service": in_service,
        "quarantined": quarantined,
        "simulated": simulated,
        "by_status": by_status,
        "by_connectivity": by_connectivity,
        "by_firmware_version": by_firmware,
        "by_type": by_type,
    }))
    .simulated(simulated > 0))
}

pub async fn update<B: Registry + Things>(
    b: &B,
    request: &ApiRequest,
    now: DateTime<Utc>,
) -> Result<ApiResponse, ApiError> {
    let body: Update = request.json()?;
    let changes = DeviceChanges {
        device_type: body.device_type.as_deref().map(device_type).transpose()?,
        serial: optional_text("serial", body.serial.as_ref())?,
        group: optional_group(body.group.as_ref())?,
        location: optional_text("location", body.location.as_ref())?,
        tenant: optional_text("tenant", body.tenant.as_ref())?,
        firmware_version: optional_text("firmware_version", body.firmware_version.as_ref())?,
        ..DeviceChanges::default()
    };
    if changes.is_empty() {
        return Err(ApiError::bad_body(
            "nothing to change: give at least one of device_type, serial, group, location, tenant, firmware_version",
        ));
    }
    let device = in_service(b, request).await?;
    if changes.group.is_some() && changes.group != device.group {
        let moved = b
            .move_thing(
                &device.device_id,
                device.group.as_deref(),
                changes.group.as_deref(),
            )
            .await?;
        if !moved {
            return Err(ApiError::conflict(format!(
                "device {} has no IoT thing to move (it was not registered through the API)",
                device.device_id
            )));
        }
    }
    let updated = b
        .update(&device.device_id, &changes, now)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("device {}", device.device_id)))?;
    Ok(ApiResponse::ok(updated))
}

pub async fn set_quarantine<R: Registry>(
    registry: &R,
    request: &ApiRequest,
    quarantined: bool,
    now: DateTime<Utc>,
) -> Result<ApiResponse, ApiError> {
    let device = existing(registry, request).await?;
    let changes = DeviceChanges {
        quarantined: Some(quarantined),
        ..DeviceChanges::default()
    };
    let updated = registry
        .update(&device.device_id, &changes, now)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("device {}", device.device_id)))?;
    Ok(ApiResponse::ok(updated))
}

/// Revokes every certificate and API key, deletes the thing, keeps the row. Repeating it
/// is harmless: each step skips what is already done.
pub async fn decommission<B: Registry + Things + Credentials>(
    b: &B,
    request: &ApiRequest,
    now: DateTime<Utc>,
) -> Result<ApiResponse, ApiError> {
    let device = existing(b, request).await?;
    if device.status == DeviceStatus::Decommissioned {
        return Ok(ApiResponse::ok(device));
    }
    let id = &device.device_id;
    for mut certificate in b.certificates(id).await? {
        if certificate.state == CertificateState::Revoked {
            continue;
        }
        b.set_certificate_status(&certificate.certificate_id, IotCertificateStatus::Revoked)
            .await?;
        b.detach_certificate(id, &certificate.certificate_arn)
            .await?;
        certificate.state = CertificateState::Revoked;
        certificate.revoked_at = Some(now);
        b.put_certificate(&certificate).await?;
    }
    // Certificates attached outside the API (by hand, by other tools) are refused too:
    // the thing cannot be deleted while any is attached.
    for arn in b.attached_certificates(id).await? {
        let Some(certificate_id) = arn.rsplit('/').next().filter(|c| !c.is_empty()) else {
            continue;
        };
        b.set_certificate_status(certificate_id, IotCertificateStatus::Revoked)
            .await?;
        b.detach_certificate(id, &arn).await?;
        b.put_certificate(&CertificateRecord {
            device_id: id.clone(),
            certificate_id: certificate_id.to_owned(),
            certificate_arn: arn.clone(),
            state: CertificateState::Revoked,
            created_at: now,
            retire_at: None,
            revoked_at: Some(now),
        })
        .await?;
    }
    for key in b.api_keys(id).await? {
        if !key.revoked {
            b.revoke_api_key(id, &key.key_id, now).await?;
        }
    }
    b.delete_thing(id).await?;
    let changes = DeviceChanges {
        status: Some(DeviceStatus::Decommissioned),
        decommissioned_at: Some(now),
        ..DeviceChanges::default()
    };
    let updated = b
        .update(id, &changes, now)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("device {id}")))?;
    Ok(ApiResponse::ok(updated))
}
