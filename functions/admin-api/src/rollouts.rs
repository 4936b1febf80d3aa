//! Firmware rollouts: `POST /v1/ota/rollout` sends a ready firmware version to a thing
//! group as an IoT Job (canary, abort and timeout config from the policy);
//! `GET /v1/ota/rollouts[/{id}]` shows progress (counts per state, and per device);
//! `POST /v1/ota/rollouts/{id}/cancel` stops it. The fleet function moves rollouts along
//! from the job events (see `hub_fleet::rollout`).

use chrono::{DateTime, Utc};
use hub_events::{Envelope, RolloutCounts, RolloutEvent, RolloutEventKind};
use hub_fleet::{
    firmware::ArtifactStatus,
    rollout::{
        is_rollout_id, new_rollout_id, rollout_job_id, Counts, DeviceRow,
        DeviceStatus as RowStatus, PolicyRequest, Rollout, RolloutPolicy, RolloutStatus,
    },
};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::{
    error::ApiError,
    firmware::version,
    ports::{
        DeviceFilter, DeviceStatus, FirmwareTable, FleetTables, Registry, RolloutEvents,
        RolloutJobs, RolloutsTable,
    },
    request::{name, ApiRequest, ApiResponse},
};

/// Devices one rollout may take (one job; IoT Jobs itself goes much further).
pub const MAX_DEVICES: usize = 10_000;
const PAGE: usize = 100;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RolloutRequest {
    firmware_version: String,
    target: String,
    #[serde(default)]
    policy: PolicyRequest,
}

fn view(rollout: &Rollout, counts: &Counts) -> Value {
    let mut shown = serde_json::to_value(rollout).expect("rollouts serialize");
    shown["counts"] = serde_json::to_value(counts).expect("counts serialize");
    shown["progress_percent"] = json!(counts.progress_percent());
    shown
}

fn rollout_id(request: &ApiRequest) -> Result<String, ApiError> {
    let id = request.param("id")?;
    if is_rollout_id(id) {
        Ok(id.to_owned())
    } else {
        Err(ApiError::invalid(
            "id",
            "a rollout id is 'ota-' and 32 hexadecimal digits",
        ))
    }
}

pub async fn create<B: Registry + FleetTables + RolloutJobs + RolloutEvents>(
    b: &B,
    request: &ApiRequest,
    now: DateTime<Utc>,
) -> Result<ApiResponse, ApiError> {
    let body: RolloutRequest = request.json()?;
    let firmware_version = version("firmware_version", &body.firmware_version)?;
    let target = name("target", &body.target, 128)?;
    let policy = RolloutPolicy::from_request(&body.policy)
        .map_err(|e| ApiError::invalid(format!("policy.{}", e.field), e.to_string()))?;
    let artifact = b
        .firmware_table()
        .get(&firmware_version)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("firmware {firmware_version}")))?;
    if artifact.status != ArtifactStatus::Ready {
        return Err(ApiError::conflict(format!(
            "firmware {firmware_version} is {}: only a checked upload (ready) rolls out",
            artifact.status.as_str()
        )));
    }
    if let Some(running) = b
        .rollouts_table()
        .all()
        .await?
        .into_iter()
        .find(|(r, _)| r.target == target && r.status == RolloutStatus::InProgress)
    {
        return Err(ApiError::conflict(format!(
            "rollout {} is still in progress for {target}; cancel it or wait for it",
            running.0.rollout_id
        )));
    }
    let devices = group_devices(b, &target).await?;
    if devices.is_empty() {
        return Err(ApiError::conflict(format!(
            "thing group {target} has no devices in the registry"
        )));
    }
    let strangers: Vec<&str> = devices
        .iter()
        .filter(|d| d.device_type != artifact.device_type)
        .map(|d| d.device_id.as_str())
        .collect();
    if let Some(first) = strangers.first() {
        return Err(ApiError::conflict(format!(
            "{} device(s) in {target} are not of type {} (e.g. {first}); firmware is built for one type",
            strangers.len(),
            artifact.device_type
        )));
    }
    // The job goes to the IoT thing group, the checks and the tracking to the registry's
    // devices of that name: both must name the same things, or the job would reach
    // devices the hub never checked (or miss devices it tracks).
    let things: std::collections::BTreeSet<String> =
        b.group_things(&target).await?.into_iter().collect();
    let registered: std::collections::BTreeSet<&str> =
        devices.iter().map(|d| d.device_id.as_str()).collect();
    let unchecked: Vec<&str> = things
        .iter()
        .map(String::as_str)
        .filter(|t| !registered.contains(t))
        .collect();
    let missing: Vec<&str> = registered
        .iter()
        .copied()
        .filter(|d| !things.contains(*d))
        .collect();
    if let Some(first) = unchecked.first() {
        return Err(ApiError::conflict(format!(
            "thing group {target} holds {} thing(s) the registry does not list in it (e.g. {first}); \
             the job would reach devices the hub never checked",
            unchecked.len()
        )));
    }
    if let Some(first) = missing.first() {
        return Err(ApiError::conflict(format!(
            "{} registry device(s) of group {target} are not in the thing group (e.g. {first})",
            missing.len()
        )));
    }
    let rollout_id = new_rollout_id();
    let count = devices.len() as u32;
    let rows: Vec<DeviceRow> = devices
        .iter()
        .map(|d| DeviceRow::queued(&d.device_id, d.firmware_version.clone(), now))
        .collect();
    let rollout = Rollout {
        job_id: rollout_job_id(&rollout_id),
        rollout_id,
        firmware_version,
        target,
        canary_size: policy.canary_size(count),
        device_count: count,
        policy,
        status: RolloutStatus::InProgress,
        job_done: false,
        created_at: now,
        created_by: request.principal.subject.clone(),
        updated_at: now,
        finished_at: None,
        reason: None,
    };
    if !b.rollouts_table().create(&rollout, &rows).await? {
        return Err(ApiError::conflict("rollout id taken; try again"));
    }
    if let Err(err) = b.start_rollout_job(&rollout, &artifact).await {
        // The rollout never started: say so on it, then answer with the failure.
        let reason = format!("the job could not be created: {}", err.message);
        b.rollouts_table()
            .set_status(
                &rollout.rollout_id,
                RolloutStatus::InProgress,
                RolloutStatus::Cancelled,
                Some(&reason),
                now,
            )
            .await?;
        return Err(err.into());
    }
    let started = RolloutCounts {
        queued: u64::from(rollout.device_count),
        ..RolloutCounts::default()
    };
    let canary = format!(
        "canary of {} of {} devices",
        rollout.canary_size, rollout.device_count
    );
    announce(b, &rollout, RolloutEventKind::Started, started, canary, now).await;
    Ok(ApiResponse::created(view(
        &rollout,
        &Counts::of_rows(&rows),
    )))
}

/// Every registry device of the group that is not decommissioned.
async fn group_devices<B: Registry>(
    b: &B,
    group: &str,
) -> Result<Vec<crate::ports::Device>, ApiError> {
    let filter = DeviceFilter {
        group: Some(group.to_owned()),
        ..Default::default()
    };
    let mut devices = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let page = b.list(&filter, PAGE, after.as_deref()).await?;
        devices.extend(
            page.items
                .into_iter()
                .filter(|d| d.status != DeviceStatus::Decommissioned),
        );
        if devices.len() > MAX_DEVICES {
            return Err(ApiError::conflict(format!(
                "{group} has more than {MAX_DEVICES} devices; split it into smaller groups"
            )));
        }
        match page.next {
            Some(next) => after = Some(next),
            None => return Ok(devices),
        }
    }
}

pub async fn list<B: FleetTables>(b: &B) -> Result<ApiResponse, ApiError> {
    let mut rollouts = b.rollouts_table().all().await?;
    rollouts.sort_by_key(|(r, _)| std::cmp::Reverse(r.created_at));
    let shown: Vec<Value> = rollouts.iter().map(|(r, c)| view(r, c)).collect();
    Ok(ApiResponse::ok(json!({ "rollouts": shown })))
}

pub async fn get<B: FleetTables + RolloutJobs>(
    b: &B,
    request: &ApiRequest,
) -> Result<ApiResponse, ApiError> {
    let id = rollout_id(request)?;
    let (rollout, counts) = b
        .rollouts_table()
        .get(&id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("rollout {id}")))?;
    let mut devices = b.rollouts_table().devices(&id).await?;
    devices.sort_by(|a, b| a.device_id.cmp(&b.device_id));
    let mut counts = counts;
    if rollout.status == RolloutStatus::InProgress {
        // Jobs says when an execution ends, not when it starts: ask which are running.
        match b.installing(&rollout).await {
            Ok(running) => {
                let running: std::collections::HashSet<String> = running.into_iter().collect();
                for row in devices
                    .iter_mut()
                    .filter(|r| r.status == RowStatus::Queued && running.contains(&r.device_id))
                {
                    row.status = RowStatus::InProgress;
                    counts.queued = counts.queued.saturating_sub(1);
                    counts.in_progress += 1;
                }
            }
            // The rows still tell the rest; not knowing which are installing is no reason
            // to fail the read.
            Err(err) => tracing::warn!(error = %err, "running executions unknown"),
        }
    }
    let mut shown = view(&rollout, &counts);
    shown["devices"] = serde_json::to_value(&devices).expect("rows serialize");
    Ok(ApiResponse::ok(shown))
}

pub async fn cancel<B: FleetTables + RolloutJobs + RolloutEvents>(
    b: &B,
    request: &ApiRequest,
    now: DateTime<Utc>,
) -> Result<ApiResponse, ApiError> {
    let id = rollout_id(request)?;
    let (rollout, _) = b
        .rollouts_table()
        .get(&id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("rollout {id}")))?;
    let reason = format!("cancelled by {}", request.principal.subject);
    // The status first: the job's cancellation event then reads as the operator's.
    if !b
        .rollouts_table()
        .set_status(
            &id,
            RolloutStatus::InProgress,
            RolloutStatus::Cancelled,
            Some(&reason),
            now,
        )
        .await?
    {
        return Err(ApiError::conflict(format!(
            "rollout {id} is {}; only a rollout in progress can be cancelled",
            rollout.status.as_str()
        )));
    }
    b.cancel_rollout_job(&rollout, &reason).await?;
    let (rollout, counts) = b
        .rollouts_table()
        .get(&id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("rollout {id}")))?;
    let kind = RolloutEventKind::Cancelled;
    announce(b, &rollout, kind, counts.to_event(), reason, now).await;
    Ok(ApiResponse::ok(view(&rollout, &counts)))
}

/// A step the API took, on the event stream. The step is made already, so a failure
/// here is logged, not the request's.
async fn announce<B: RolloutEvents>(
    b: &B,
    rollout: &Rollout,
    kind: RolloutEventKind,
    counts: RolloutCounts,
    reason: String,
    at: DateTime<Utc>,
) {
    let event = Envelope::new(
        "admin-api",
        rollout.rollout_id.clone(),
        at,
        RolloutEvent {
            kind,
            rollout_id: rollout.rollout_id.clone(),
            firmware_version: rollout.firmware_version.clone(),
            target: rollout.target.clone(),
            counts,
            reason: Some(reason),
        },
    );
    if let Err(err) = b.announce(&event).await {
        tracing::error!(rollout_id = rollout.rollout_id, error = %err, "rollout event not written");
    }
}
