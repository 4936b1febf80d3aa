//! Device commands: `POST /v1/devices/{id}/commands` records a command and publishes it on
//! the device's command topic (QoS 1); the device's answer comes back through the ack
//! rule and the fleet function. `GET .../commands` lists them newest first and
//! `GET .../commands/{commandId}` shows one, with its status as of now (a command nobody
//! answered in time reads `expired`).

use chrono::{DateTime, Duration, Utc};
use hub_fleet::command::{command_topic, Command, MAX_ID, MAX_NAME, MAX_PARAMS_BYTES};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::{
    devices::{in_service, MAX_PAGE},
    error::ApiError,
    ports::{CommandsTable, DeviceData, FleetTables, Registry},
    request::{decode_token, encode_token, name, ApiRequest, ApiResponse},
};

pub const DEFAULT_TTL_SECONDS: i64 = 300;
pub const MAX_TTL_SECONDS: i64 = 24 * 3600;
pub const MIN_TTL_SECONDS: i64 = 5;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewCommand {
    name: String,
    #[serde(default, deserialize_with = "hub_fleet::body::given")]
    params: Option<Value>,
    #[serde(default, deserialize_with = "hub_fleet::body::given_integer")]
    ttl_seconds: Option<i64>,
}

/// A command as the API shows it: its status as of `now`.
fn view(command: &Command, now: DateTime<Utc>) -> Value {
    let mut shown = serde_json::to_value(command).expect("commands serialize");
    shown["status"] = json!(command.status_at(now).as_str());
    shown
}

pub async fn send<B: Registry + FleetTables + DeviceData>(
    b: &B,
    request: &ApiRequest,
    now: DateTime<Utc>,
) -> Result<ApiResponse, ApiError> {
    let body: NewCommand = request.json()?;
    let command_name = name("name", &body.name, MAX_NAME)?;
    let params = body.params.unwrap_or_else(|| json!({}));
    if !params.is_object() {
        return Err(ApiError::invalid("params", "params must be an object"));
    }
    let size = params.to_string().len();
    if size > MAX_PARAMS_BYTES {
        return Err(ApiError::invalid(
            "params",
            format!("params is {size} bytes; at most {MAX_PARAMS_BYTES}"),
        ));
    }
    let ttl = body.ttl_seconds.unwrap_or(DEFAULT_TTL_SECONDS);
    if !(MIN_TTL_SECONDS..=MAX_TTL_SECONDS).contains(&ttl) {
        return Err(ApiError::invalid(
            "ttl_seconds",
            format!("ttl_seconds must be between {MIN_TTL_SECONDS} and {MAX_TTL_SECONDS}"),
        ));
    }
    let device = in_service(b, request).await?;
    let command = Command::sent(
        &device.device_id,
        &uuid::Uuid::now_v7().to_string(),
        &command_name,
        params,
        now,
        Duration::seconds(ttl),
        &request.principal.subject,
    );
    // Recorded first, so an answer that comes back at once finds its command.
    if !b.commands_table().put(&command).await? {
        return Err(ApiError::conflict("command id collision; send it again"));
    }
    let payload = serde_json::to_vec(&command.message()).expect("messages serialize");
    if let Err(err) = b.publish(&command_topic(&device.device_id), payload).await {
        b.commands_table()
            .set_undelivered(&device.device_id, &command.command_id, &err.to_string())
            .await?;
        tracing::error!(command_id = command.command_id, error = %err, "command not delivered");
        return Err(ApiError::new(
            503,
            "unavailable",
            format!(
                "command {} was recorded but could not be published (it reads undelivered); send it again",
                command.command_id
            ),
        ));
    }
    Ok(ApiResponse::created(view(&command, now)))
}

pub async fn list<B: Registry + FleetTables>(
    b: &B,
    request: &ApiRequest,
    now: DateTime<Utc>,
) -> Result<ApiResponse, ApiError> {
    let limit = request.query_number("limit", 50, 1..=MAX_PAGE)?;
    let after = decode_token(request.query("next_token"))?;
    let device = in_service(b, request).await?;
    let (commands, next) = b
        .commands_table()
        .list(&device.device_id, limit, after.as_deref())
        .await?;
    let shown: Vec<Value> = commands.iter().map(|c| view(c, now)).collect();
    Ok(ApiResponse::ok(json!({
        "commands": shown,
        "next_token": next.as_deref().map(encode_token),
    })))
}

pub async fn get<B: Registry + FleetTables>(
    b: &B,
    request: &ApiRequest,
    now: DateTime<Utc>,
) -> Result<ApiResponse, ApiError> {
    let command_id = name("commandId", request.param("commandId")?, MAX_ID)?;
    let device = in_service(b, request).await?;
    let command = b
        .commands_table()
        .get(&device.device_id, &command_id)
        .await?
        .ok_or_else(|| {
            ApiError::not_found(format!(
                "command {command_id} of device {}",
                device.device_id
            ))
        })?;
    Ok(ApiResponse::ok(view(&command, now)))
}
