//! Webhook subscriptions to alerts: `POST /v1/webhooks` (the signing secret is shown
//! once), `GET /v1/webhooks` (never the secrets), `DELETE /v1/webhooks/{id}`.

use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine as _};
use chrono::{DateTime, Utc};
use hub_detection::webhook::Webhook;
use hub_events::Severity;
use ring::rand::{SecureRandom, SystemRandom};
use serde::Deserialize;
use serde_json::json;

use crate::{
    error::ApiError,
    ports::{PortError, WebhookStore},
    request::{name, ApiRequest, ApiResponse},
};

pub const MAX_URL: usize = 2048;
pub const MAX_HOOKS: usize = 100;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Subscription {
    url: String,
    #[serde(default)]
    severities: Vec<String>,
    #[serde(default)]
    device_types: Vec<String>,
}

fn url(value: &str, allow_http: bool, allow_private: bool) -> Result<String, ApiError> {
    let bad = |why: &str| ApiError::invalid("url", format!("url {why}"));
    let rest = value
        .strip_prefix("https://")
        .or_else(|| value.strip_prefix("http://").filter(|_| allow_http))
        .ok_or_else(|| bad("must start with https://"))?;
    if value.len() > MAX_URL {
        return Err(bad(&format!("must be at most {MAX_URL} characters")));
    }
    let host = rest.split(['/', '?', '#']).next().unwrap_or_default();
    if host.is_empty() || host.contains('@') {
        return Err(bad("must name a host (and no user info)"));
    }
    // A literal internal address is refused here already; names are checked again when
    // each delivery resolves them (the webhook function refuses internal answers).
    let literal = host
        .rsplit_once(':')
        .filter(|(h, port)| !h.is_empty() && port.chars().all(|c| c.is_ascii_digit()))
        .map_or(host, |(h, _)| h)
        .trim_start_matches('[')
        .trim_end_matches(']');
    if let (false, Ok(ip)) = (allow_private, literal.parse::<std::net::IpAddr>()) {
        if let Some(why) = hub_runtime::net::refusal(ip) {
            return Err(bad(&format!("names an internal address ({ip}: {why})")));
        }
    }
    if value.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(bad("must not contain spaces or control characters"));
    }
    Ok(value.to_owned())
}

fn secret() -> Result<String, ApiError> {
    let mut bytes = [0u8; 32];
    SystemRandom::new()
        .fill(&mut bytes)
        .map_err(|_| ApiError::from(PortError::new("randomness", "no random bytes")))?;
    Ok(URL_SAFE_NO_PAD.encode(bytes))
}

pub async fn create<W: WebhookStore>(
    store: &W,
    request: &ApiRequest,
    now: DateTime<Utc>,
    config: &crate::ApiConfig,
) -> Result<ApiResponse, ApiError> {
    let mut body: Subscription = request.json()?;
    // Filters are sets: the same value twice means it once.
    for list in [&mut body.severities, &mut body.device_types] {
        list.sort();
        list.dedup();
    }
    let url = url(
        body.url.trim(),
        config.allow_http_webhooks,
        config.allow_private_webhooks,
    )?;
    for (i, severity) in body.severities.iter().enumerate() {
        if Severity::from_name(severity).is_none() {
            return Err(ApiError::invalid(
                format!("severities[{i}]"),
                "severities are info, warning, critical",
            ));
        }
    }
    for (i, device_type) in body.device_types.iter().enumerate() {
        name(&format!("device_types[{i}]"), device_type, 64)?;
    }
    if store.webhooks().await?.len() >= MAX_HOOKS {
        return Err(ApiError::conflict(format!(
            "at most {MAX_HOOKS} webhooks; delete one first"
        )));
    }
    let hook = Webhook {
        webhook_id: uuid::Uuid::new_v4().to_string(),
        url,
        secret: secret()?,
        severities: body.severities,
        device_types: body.device_types,
        created_at: now,
    };
    store.put_webhook(&hook).await?;
    let mut shown = serde_json::to_value(&hook).expect("hooks serialize");
    shown["secret"] = json!(hook.secret);
    shown["note"] = json!(
        "the secret is shown only now: verify the x-hub-signature header (t=..,v1=HMAC-SHA256 of \"{t}.{body}\")"
    );
    Ok(ApiResponse::created(shown))
}

pub async fn list<W: WebhookStore>(store: &W) -> Result<ApiResponse, ApiError> {
    let mut hooks = store.webhooks().await?;
    hooks.sort_by_key(|h| h.created_at);
    Ok(ApiResponse::ok(json!({ "webhooks": hooks })))
}

pub async fn delete<W: WebhookStore>(
    store: &W,
    request: &ApiRequest,
) -> Result<ApiResponse, ApiError> {
    let id = name("id", request.param("id")?, 128)?;
    if !store.delete_webhook(&id).await? {
        return Err(ApiError::not_found(format!("webhook {id}")));
    }
    Ok(ApiResponse::ok(
        json!({ "webhook_id": id, "deleted": true }),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        assert!(url("https://hooks.example.com/alerts?x=1", false, false).is_ok());
        assert!(url("https://93.184.216.34:8443/h", false, false).is_ok());
        assert!(url("http://127.0.0.1:9000/h", true, true).is_ok());
        for bad in [
            "http://127.0.0.1:9000/h",
            "https://127.0.0.1:9000/h",
            "https://169.254.169.254/latest/meta-data/",
            "https://[fd00:ec2::254]/",
            "https://10.0.0.8/h",
            "ftp://x",
            "https://",
            "https://user:pw@host/",
            "https://a b/",
            "hooks.example.com",
        ] {
            assert_eq!(
                url(bad, false, false).unwrap_err().field.as_deref(),
                Some("url"),
                "{bad}"
            );
        }
    }
}
