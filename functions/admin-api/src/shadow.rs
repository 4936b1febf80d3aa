//! Device shadows: `GET /v1/devices/{id}/shadow` (desired, reported, their delta and the
//! version) and `PATCH` to set desired state. A device reads and reports through its
//! shadow topics; the Device Shadow service keeps the document and tells the device the
//! delta.

use serde::Deserialize;
use serde_json::{json, Value};

use crate::{
    devices::in_service,
    error::ApiError,
    ports::{DeviceData, Registry, ShadowWrite},
    request::{ApiRequest, ApiResponse},
};

/// AWS's limits for a classic shadow: the state document's size and nesting.
pub const MAX_DESIRED_BYTES: usize = 8 * 1024;
pub const MAX_DEPTH: usize = 6;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Patch {
    /// Keys to set; a null value removes a key, a null `desired` clears it (so a null
    /// here is `Some(Null)`, and only a missing field is `None`).
    #[serde(default, deserialize_with = "present")]
    desired: Option<Value>,
    /// Apply only if the shadow is at this version (optimistic concurrency).
    #[serde(default, deserialize_with = "hub_fleet::body::given_integer")]
    expected_version: Option<i64>,
}

fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Value>, D::Error> {
    Value::deserialize(d).map(Some)
}

/// The API's view of a shadow document.
pub fn view(device_id: &str, document: Option<&Value>) -> Value {
    let section = |name: &str| {
        document
            .and_then(|d| d["state"].get(name))
            .cloned()
            .filter(|v| v.is_object())
    };
    json!({
        "device_id": device_id,
        "version": document.and_then(|d| d["version"].as_i64()).unwrap_or(0),
        "desired": section("desired").unwrap_or_else(|| json!({})),
        "reported": section("reported").unwrap_or_else(|| json!({})),
        "delta": section("delta"),
    })
}

/// Levels of objects and arrays below `value` (a scalar is 0).
fn depth(value: &Value) -> usize {
    match value {
        Value::Object(map) => 1 + map.values().map(depth).max().unwrap_or(0),
        Value::Array(items) => 1 + items.iter().map(depth).max().unwrap_or(0),
        _ => 0,
    }
}

fn check_desired(desired: &Value) -> Result<(), ApiError> {
    match desired {
        Value::Null => return Ok(()),
        Value::Object(map) if !map.is_empty() => {}
        Value::Object(_) => {
            return Err(ApiError::invalid(
                "desired",
                "desired must set at least one key (null clears it)",
            ))
        }
        _ => {
            return Err(ApiError::invalid(
                "desired",
                "desired must be an object or null",
            ))
        }
    }
    if let Some(key) = desired
        .as_object()
        .into_iter()
        .flat_map(|m| m.keys())
        .find(|k| k.is_empty() || k.chars().count() > 128 || k.starts_with('$'))
    {
        return Err(ApiError::invalid(
            format!("desired.{key}"),
            "keys must be 1 to 128 characters and not start with '$'",
        ));
    }
    let size = desired.to_string().len();
    if size > MAX_DESIRED_BYTES {
        return Err(ApiError::invalid(
            "desired",
            format!("desired is {size} bytes; at most {MAX_DESIRED_BYTES}"),
        ));
    }
    if depth(desired) > MAX_DEPTH {
        return Err(ApiError::invalid(
            "desired",
            format!("desired nests deeper than {MAX_DEPTH} levels"),
        ));
    }
    Ok(())
}

pub async fn get<B: Registry + DeviceData>(
    b: &B,
    request: &ApiRequest,
) -> Result<ApiResponse, ApiError> {
    let device = in_service(b, request).await?;
    let document = b.shadow(&device.device_id).await?;
    Ok(ApiResponse::ok(view(&device.device_id, document.as_ref())).simulated(device.simulated))
}

pub async fn update<B: Registry + DeviceData>(
    b: &B,
    request: &ApiRequest,
) -> Result<ApiResponse, ApiError> {
    let patch: Patch = request.json()?;
    let desired = patch
        .desired
        .ok_or_else(|| ApiError::invalid("desired", "missing field `desired`"))?;
    check_desired(&desired)?;
    if patch.expected_version.is_some_and(|v| v < 0) {
        return Err(ApiError::invalid(
            "expected_version",
            "expected_version must not be negative",
        ));
    }
    let device = in_service(b, request).await?;
    let mut document = json!({ "state": { "desired": desired } });
    if let Some(version) = patch.expected_version {
        document["version"] = json!(version);
    }
    match b.update_shadow(&device.device_id, &document).await? {
        ShadowWrite::Written(_) => {}
        ShadowWrite::VersionConflict => {
            return Err(ApiError::conflict(format!(
                "the shadow is not at version {}; read it and try again",
                patch.expected_version.unwrap_or_default()
            )))
        }
        ShadowWrite::Rejected(why) => return Err(ApiError::invalid("desired", why)),
    }
    let document = b.shadow(&device.device_id).await?;
    Ok(ApiResponse::ok(view(&device.device_id, document.as_ref())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn view_of_a_service_document_and_of_none() {
        let document = json!({
            "state": {"desired": {"interval": 30}, "reported": {"interval": 60},
                      "delta": {"interval": 30}},
            "metadata": {}, "version": 4, "timestamp": 1_790_000_000
        });
        assert_eq!(
            view("d1", Some(&document)),
            json!({"device_id": "d1", "version": 4, "desired": {"interval": 30},
                   "reported": {"interval": 60}, "delta": {"interval": 30}})
        );
        assert_eq!(
            view("d1", None),
            json!({"device_id": "d1", "version": 0, "desired": {}, "reported": {},
                   "delta": null})
        );
    }

    #[test]
    fn desired_documents_are_checked() {
        assert!(check_desired(&json!({"interval": 30, "led": {"color": "red"}})).is_ok());
        assert!(check_desired(&Value::Null).is_ok());
        for (bad, field) in [
            (json!([1]), "desired"),
            (json!("x"), "desired"),
            (json!({}), "desired"),
            (json!({"$x": 1}), "desired.$x"),
            (json!({"": 1}), "desired."),
            (
                json!({"a": {"b": {"c": {"d": {"e": {"f": {"g": 1}}}}}}}),
                "desired",
            ),
            (json!({"big": "x".repeat(MAX_DESIRED_BYTES)}), "desired"),
        ] {
            assert_eq!(
                check_desired(&bad).unwrap_err().field.as_deref(),
                Some(field),
                "{bad}"
            );
        }
    }
}
