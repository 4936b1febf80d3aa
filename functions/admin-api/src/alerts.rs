//! Alert rules (`POST /v1/alerts`, `GET /v1/rules`, `DELETE /v1/rules/{id}`) and the
//! operator side of the alert lifecycle: list, get, acknowledge, resolve.

use chrono::{DateTime, Utc};
use hub_detection::{
    alert::{transition as next_state, AlertAction},
    rule::{RuleScope, ThresholdRule},
};
use hub_events::{AlertState, Severity};
use serde::Deserialize;
use serde_json::json;

use crate::{
    devices::{device_id, device_type, MAX_PAGE},
    error::ApiError,
    ports::{AlertFilter, Alerts, Registry},
    request::{decode_token, encode_token, name, ApiRequest, ApiResponse},
};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleBody {
    #[serde(default, deserialize_with = "hub_fleet::body::given")]
    device_id: Option<String>,
    #[serde(default, deserialize_with = "hub_fleet::body::given")]
    device_type: Option<String>,
    rule: String,
    #[serde(default, deserialize_with = "hub_fleet::body::given")]
    severity: Option<String>,
}

fn rule_json(rule: &ThresholdRule) -> serde_json::Value {
    let (scope, target) = match &rule.scope {
        RuleScope::Device(id) => ("device_id", id),
        RuleScope::DeviceType(t) => ("device_type", t),
    };
    let mut body = json!({
        "rule_id": rule.id,
        "rule": rule.condition(),
        "metric": rule.metric,
        "unit": hub_telemetry::units::unit_of(&rule.metric),
        "severity": rule.severity.as_str(),
    });
    body[scope] = json!(target);
    body
}

pub async fn create_rule<B: Registry + Alerts>(
    b: &B,
    request: &ApiRequest,
) -> Result<ApiResponse, ApiError> {
    let body: RuleBody = request.json()?;
    let scope = match (&body.device_id, &body.device_type) {
        (Some(id), None) => {
            let id = device_id("device_id", id)?;
            if b.get(&id).await?.is_none() {
                return Err(ApiError::not_found(format!("device {id}")));
            }
            RuleScope::Device(id)
        }
        (None, Some(t)) => RuleScope::DeviceType(device_type(t)?),
        _ => return Err(ApiError::invalid(
            "device_id",
            "give exactly one of device_id (one device) or device_type (every device of a type)",
        )),
    };
    let severity = match body.severity.as_deref() {
        None => Severity::Warning,
        Some(s) => Severity::from_name(s).ok_or_else(|| {
            ApiError::invalid(
                "severity",
                "severity must be one of info, warning, critical",
            )
        })?,
    };
    let rule = ThresholdRule::new(
        uuid::Uuid::new_v4().to_string(),
        scope,
        &body.rule,
        severity,
    )
    .map_err(|e| ApiError::invalid("rule", e.to_string()))?;
    b.put_rule(&rule).await?;
    Ok(ApiResponse::created(rule_json(&rule)))
}

pub async fn list_rules<A: Alerts>(alerts: &A) -> Result<ApiResponse, ApiError> {
    let mut rules = alerts.rules().await?;
    rules.sort_by(|a, b| a.id.cmp(&b.id));
    Ok(ApiResponse::ok(json!({
        "rules": rules.iter().map(rule_json).collect::<Vec<_>>(),
    })))
}

pub async fn delete_rule<A: Alerts>(
    alerts: &A,
    request: &ApiRequest,
) -> Result<ApiResponse, ApiError> {
    let id = name("id", request.param("id")?, 128)?;
    if !alerts.delete_rule(&id).await? {
        return Err(ApiError::not_found(format!("rule {id}")));
    }
    Ok(ApiResponse::ok(json!({ "rule_id": id, "deleted": true })))
}

pub async fn list<A: Alerts>(alerts: &A, request: &ApiRequest) -> Result<ApiResponse, ApiError> {
    let filter = AlertFilter {
        state: request
            .query("state")
            .map(|s| {
                AlertState::from_name(s).ok_or_else(|| {
                    ApiError::invalid("state", "state must be one of open, acknowledged, resolved")
                })
            })
            .transpose()?,
        device_id: request
            .query("device_id")
            .map(|d| device_id("device_id", d))
            .transpose()?,
    };
    let limit = request.query_number("limit", 50, 1..=MAX_PAGE)?;
    let after = decode_token(request.query("next_token"))?;
    let page = alerts.list_alerts(&filter, limit, after.as_deref()).await?;
    Ok(ApiResponse::ok(json!({
        "alerts": page.items,
        "next_token": page.next.as_deref().map(encode_token),
    })))
}

fn alert_id(request: &ApiRequest) -> Result<String, ApiError> {
    name("id", request.param("id")?, 128)
}

pub async fn get<A: Alerts>(alerts: &A, request: &ApiRequest) -> Result<ApiResponse, ApiError> {
    let id = alert_id(request)?;
    let alert = alerts
        .get_alert(&id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("alert {id}")))?;
    Ok(ApiResponse::ok(alert))
}

/// Acknowledge or resolve: read, check the lifecycle, write conditioned on the state read,
/// and read again if the dispatcher moved the alert meanwhile.
pub async fn transition<A: Alerts>(
    alerts: &A,
    request: &ApiRequest,
    action: AlertAction,
    now: DateTime<Utc>,
) -> Result<ApiResponse, ApiError> {
    let id = alert_id(request)?;
    for _ in 0..5 {
        let alert = alerts
            .get_alert(&id)
            .await?
            .ok_or_else(|| ApiError::not_found(format!("alert {id}")))?;
        let to = next_state(alert.state, action).map_err(|_| {
            ApiError::conflict(format!(
                "alert {id} is {}; it cannot be {}",
                alert.state.as_str(),
                match action {
                    AlertAction::Acknowledge => "acknowledged",
                    _ => "resolved",
                }
            ))
        })?;
        if to == alert.state {
            return Ok(ApiResponse::ok(alert));
        }
        if alerts
            .set_alert_state(&id, alert.state, to, now, &request.principal.subject)
            .await?
        {
            let updated = alerts
                .get_alert(&id)
                .await?
                .ok_or_else(|| ApiError::not_found(format!("alert {id}")))?;
            return Ok(ApiResponse::ok(updated));
        }
    }
    Err(ApiError::conflict(format!(
        "alert {id} kept changing; try again"
    )))
}
