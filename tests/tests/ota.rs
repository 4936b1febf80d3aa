//! Firmware rollouts end to end on the local stack: devices registered in a thing group
//! through the API, firmware registered, uploaded and checked, a rollout started through
//! the API as an IoT Job, simulated devices taking it over MQTT (download through the
//! presigned URL, SHA-256 and signature checked, status reported), and the fleet function
//! following the job events into the rollout, the registry, rollbacks and alerts.

use std::{collections::BTreeMap, time::Duration};

use hub_e2e::{
    admin::Role,
    ota::{image, register_group, serve, wait_rollout},
    unique, Stack,
};
use serde_json::{json, Value};

const DEVICE_TYPE: &str = "env-sensor";

fn device_rows(rollout: &Value) -> Vec<Value> {
    rollout["devices"].as_array().cloned().unwrap_or_default()
}

fn count(rollout: &Value, status: &str) -> u64 {
    rollout["counts"][status].as_u64().unwrap()
}

/// Starts a rollout of `version` to `group`; the created rollout.
async fn start(admin: &hub_admin::AdminClient, version: &str, group: &str, policy: Value) -> Value {
    admin
        .post(
            "/v1/ota/rollout",
            &json!({"firmware_version": version, "target": group, "policy": policy}),
        )
        .await
        .unwrap()
        .ok()
        .unwrap()
}

async fn rollout(viewer: &hub_admin::AdminClient, id: &str) -> Value {
    viewer
        .get(&format!("/v1/ota/rollouts/{id}"))
        .await
        .unwrap()
        .ok()
        .unwrap()
}

/// Registers the base version and `next`, both ready, for the test's device type.
async fn firmware(
    stack: &Stack,
    admin: &hub_admin::AdminClient,
    base: &str,
    next: &str,
    seed: u64,
) {
    let key = stack.firmware_signing_key().unwrap();
    for (i, version) in [base, next].into_iter().enumerate() {
        let artifact = admin
            .add_firmware(
                version,
                DEVICE_TYPE,
                image(seed + i as u64, 64 * 1024),
                &key,
                Duration::from_secs(30),
            )
            .await
            .unwrap();
        assert_eq!(artifact["status"], "ready", "{artifact}");
    }
}

async fn registry_versions(
    viewer: &hub_admin::AdminClient,
    group: &str,
) -> BTreeMap<String, String> {
    let mut versions = BTreeMap::new();
    let mut next: Option<String> = None;
    loop {
        let mut path = format!("/v1/devices?group={group}&limit=100");
        if let Some(token) = &next {
            path.push_str(&format!("&next_token={token}"));
        }
        let page = viewer.get(&path).await.unwrap().ok().unwrap();
        for d in page["devices"].as_array().unwrap() {
            versions.insert(
                d["device_id"].as_str().unwrap().to_owned(),
                d["firmware_version"].as_str().unwrap_or("").to_owned(),
            );
        }
        match page["next_token"].as_str() {
            Some(token) => next = Some(token.to_owned()),
            None => return versions,
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn two_hundred_devices_take_the_canary_then_the_rest_and_the_registry_follows() {
    let stack = Stack::from_env().await.unwrap();
    let admin = stack.admin_client(Role::Admin).unwrap();
    let viewer = stack.admin_client(Role::Viewer).unwrap();
    let group = unique("ota-all");
    let base = unique("1.0.0-base");
    let next = unique("2.0.0-all");
    firmware(&stack, &admin, &base, &next, 1).await;
    let started = std::time::Instant::now();
    let devices = register_group(&admin, &group, &group, 200, DEVICE_TYPE, &base)
        .await
        .unwrap();
    let registered = started.elapsed();
    let fleet = serve(&stack, devices, DEVICE_TYPE, &base, 0.0, 1)
        .await
        .unwrap();
    eprintln!(
        "200 devices registered in {:.1} s, connected in {:.1} s",
        registered.as_secs_f64(),
        (started.elapsed() - registered).as_secs_f64()
    );

    // A 20% canary: 40 devices a minute until 40 succeeded, then five times that.
    let begun = std::time::Instant::now();
    let created = start(
        &admin,
        &next,
        &group,
        json!({"canary_percent": 20, "abort_failure_percent": 5}),
    )
    .await;
    assert_eq!(created["status"], "in_progress");
    assert_eq!(created["device_count"], 200);
    assert_eq!(created["canary_size"], 40);
    let id = created["rollout_id"].as_str().unwrap().to_owned();

    // The canary finishes alone before the rest is released.
    let mut canary_alone = None;
    let mut progress = Vec::new();
    let done = wait_rollout(&viewer, &id, Duration::from_secs(240), |r| {
        let succeeded = count(r, "succeeded");
        if succeeded == 40 && canary_alone.is_none() {
            canary_alone = Some(begun.elapsed());
        }
        if progress.last() != Some(&succeeded) {
            progress.push(succeeded);
        }
    })
    .await
    .unwrap();
    let took = begun.elapsed();
    eprintln!(
        "rollout {id}: canary of 40 done alone at {:.1} s, all 200 at {:.1} s; succeeded counts seen {progress:?}",
        canary_alone.map_or(f64::NAN, |d| d.as_secs_f64()),
        took.as_secs_f64()
    );
    assert_eq!(done["status"], "completed", "{done}");
    assert!(
        canary_alone.is_some(),
        "the canary was never seen finished on its own: {progress:?}"
    );
    assert_eq!(count(&done, "succeeded"), 200, "{}", done["counts"]);
    assert_eq!(done["progress_percent"], 100.0);
    let rows = device_rows(&done);
    assert_eq!(rows.len(), 200);
    assert!(rows
        .iter()
        .all(|r| r["status"] == "succeeded" && r["previous_version"] == base.as_str()));

    // Every registry row and every device runs the new version.
    let registry = registry_versions(&viewer, &group).await;
    assert_eq!(registry.len(), 200);
    assert!(
        registry.values().all(|v| *v == next),
        "{:?}",
        registry.iter().find(|(_, v)| **v != next)
    );
    let on_devices = fleet.firmware_versions();
    assert!(on_devices.values().all(|v| *v == next));
    let report = fleet.stop().await.unwrap();
    assert_eq!(report.jobs.succeeded, 200);
    assert_eq!(report.jobs.failed, 0);

    // A finished rollout cannot be cancelled; it is listed.
    let again = admin
        .post(&format!("/v1/ota/rollouts/{id}/cancel"), &json!({}))
        .await
        .unwrap();
    assert_eq!(again.status, 409, "{:?}", again.body);
    let listed = viewer.get("/v1/ota/rollouts").await.unwrap().ok().unwrap();
    assert!(listed["rollouts"]
        .as_array()
        .unwrap()
        .iter()
        .any(|r| r["rollout_id"] == id.as_str() && r["status"] == "completed"));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_fifth_failing_aborts_cancels_the_rest_rolls_back_and_alerts() {
    let stack = Stack::from_env().await.unwrap();
    let admin = stack.admin_client(Role::Admin).unwrap();
    let viewer = stack.admin_client(Role::Viewer).unwrap();
    let group = unique("ota-abort");
    let base = unique("1.0.0-base");
    let next = unique("2.0.0-bad");
    firmware(&stack, &admin, &base, &next, 3).await;
    let devices = register_group(&admin, &group, &group, 200, DEVICE_TYPE, &base)
        .await
        .unwrap();
    // One install in five fails (rollbacks too: they are installs).
    let fleet = serve(&stack, devices, DEVICE_TYPE, &base, 0.2, 7)
        .await
        .unwrap();

    let created = start(&admin, &next, &group, json!({"canary_percent": 10})).await;
    let id = created["rollout_id"].as_str().unwrap().to_owned();
    assert_eq!(created["policy"]["abort_failure_percent"], 5.0);
    let aborted = wait_rollout(&viewer, &id, Duration::from_secs(120), |_| {})
        .await
        .unwrap();
    eprintln!(
        "rollout {id}: {} ({})",
        aborted["status"], aborted["reason"]
    );
    assert_eq!(aborted["status"], "aborted", "{aborted}");
    // The abort then cancels every device still waiting.
    let done = wait_until(Duration::from_secs(60), || async {
        let r = rollout(&viewer, &id).await;
        (count(&r, "queued") + count(&r, "retry_scheduled") + count(&r, "in_progress") == 0)
            .then_some(r)
    })
    .await;
    // In IoT Jobs' words ("... threshold 5.00% met ...") or the hub's ("... over the
    // abort threshold of 5%"), whichever saw it first.
    let reason = done["reason"].as_str().unwrap();
    assert!(
        reason.contains("threshold 5.00%") || reason.contains("threshold of 5%"),
        "{reason}"
    );
    let rows = device_rows(&done);
    let took: Vec<&Value> = rows.iter().filter(|r| r["status"] == "succeeded").collect();
    let failed = rows.iter().filter(|r| r["status"] == "failed").count();
    let cancelled = rows.iter().filter(|r| r["status"] == "cancelled").count();
    eprintln!(
        "took the new version: {}, failed: {failed}, cancelled: {cancelled}",
        took.len()
    );
    // Only the canary ran; the rest of the group never got the version.
    assert!(failed >= 1);
    assert!(took.len() + failed <= 20 + 2, "{} + {failed}", took.len());
    assert!(cancelled >= 170, "{cancelled}");
    assert_eq!(took.len() + failed + cancelled, 200);
    assert!(rows
        .iter()
        .filter(|r| r["status"] == "cancelled")
        .all(|r| r["reason"] == "the rollout was aborted"));

    // Every device that took the version gets a rollback job, and the rollbacks land.
    let rolled_back = wait_until(Duration::from_secs(60), || async {
        let r = rollout(&viewer, &id).await;
        device_rows(&r)
            .iter()
            .filter(|d| d["status"] == "succeeded")
            .all(|d| !d["rollback"].is_null() && d["rollback"] != "sent")
            .then_some(r)
    })
    .await;
    let rolled: Vec<String> = device_rows(&rolled_back)
        .iter()
        .filter(|d| d["rollback"] == "rolled_back")
        .map(|d| d["device_id"].as_str().unwrap().to_owned())
        .collect();
    eprintln!("rolled back: {} of {}", rolled.len(), took.len());
    assert!(!rolled.is_empty());
    let registry = registry_versions(&viewer, &group).await;
    let on_devices = fleet.firmware_versions();
    for device in &rolled {
        assert_eq!(registry[device], base, "{device}");
        assert_eq!(on_devices[device], base, "{device}");
    }
    // Nobody outside the canary ever ran the new version.
    let running_next = on_devices.values().filter(|v| **v == next).count();
    assert_eq!(running_next, took.len() - rolled.len());
    fleet.stop().await.unwrap();

    // Operators hear of it through the alert path.
    let alert = wait_until(Duration::from_secs(30), || async {
        let alerts = viewer
            .get("/v1/alerts?state=open")
            .await
            .unwrap()
            .ok()
            .unwrap();
        alerts["alerts"]
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["device_id"] == format!("group:{group}").as_str())
            .cloned()
    })
    .await;
    assert_eq!(alert["rule_id"], "firmware_rollout_aborted");
    assert_eq!(alert["severity"], "critical");
    assert!(alert["summary"].as_str().unwrap().contains(&id), "{alert}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_tampered_image_is_refused_by_every_device_and_never_installed() {
    let stack = Stack::from_env().await.unwrap();
    let admin = stack.admin_client(Role::Admin).unwrap();
    let viewer = stack.admin_client(Role::Viewer).unwrap();
    let group = unique("ota-tamper");
    let base = unique("1.0.0-base");
    let next = unique("3.0.0-tampered");
    firmware(&stack, &admin, &base, &next, 5).await;
    // Someone with access to the bucket swaps the checked image for another of its size.
    let artifact = viewer
        .get(&format!("/v1/firmware/{next}"))
        .await
        .unwrap()
        .ok()
        .unwrap();
    let bucket = stack.output("FirmwareBucketName").to_owned();
    stack
        .aws
        .s3()
        .put_object()
        .bucket(&bucket)
        .key(artifact["s3_key"].as_str().unwrap())
        .body(image(99, 64 * 1024).into())
        .send()
        .await
        .unwrap();

    let devices = register_group(&admin, &group, &group, 5, DEVICE_TYPE, &base)
        .await
        .unwrap();
    let fleet = serve(&stack, devices, DEVICE_TYPE, &base, 0.0, 11)
        .await
        .unwrap();
    let created = start(
        &admin,
        &next,
        &group,
        json!({"canary_percent": 100, "max_attempts": 1}),
    )
    .await;
    let id = created["rollout_id"].as_str().unwrap().to_owned();
    let done = wait_rollout(&viewer, &id, Duration::from_secs(90), |_| {})
        .await
        .unwrap();
    let rows = device_rows(&done);
    eprintln!(
        "rollout {id}: {}; first device: {}",
        done["status"], rows[0]
    );
    // Every device failed: over the threshold, so the hub aborts (IoT Jobs completed the
    // job: its last execution ended before the abort check).
    assert_eq!(done["status"], "aborted", "{done}");
    assert_eq!(count(&done, "succeeded"), 0, "{}", done["counts"]);
    let refused: Vec<&Value> = rows.iter().filter(|r| r["status"] == "failed").collect();
    assert_eq!(
        refused.len(),
        rows.len(),
        "every device refused it: {rows:?}"
    );
    assert!(
        refused
            .iter()
            .all(|r| r["reason"].as_str().unwrap().contains("sha256 mismatch")),
        "{refused:?}"
    );
    // Nothing was installed: devices and registry still on the base version.
    assert!(fleet.firmware_versions().values().all(|v| *v == base));
    assert!(registry_versions(&viewer, &group)
        .await
        .values()
        .all(|v| *v == base));
    let report = fleet.stop().await.unwrap();
    assert_eq!(report.jobs.succeeded, 0);
    // And by the devices' own record: each of the five reported its refusal.
    assert_eq!(report.jobs.failed, 5, "{:?}", report.jobs);
}

async fn wait_until<T, F, Fut>(timeout: Duration, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = std::time::Instant::now() + timeout;
    loop {
        if let Some(value) = probe().await {
            return value;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "nothing after {timeout:?}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn an_operator_cancels_between_the_canary_and_the_rest() {
    let stack = Stack::from_env().await.unwrap();
    let admin = stack.admin_client(Role::Admin).unwrap();
    let viewer = stack.admin_client(Role::Viewer).unwrap();
    let operator = stack.admin_client(Role::Operator).unwrap();
    let group = unique("ota-cancel");
    let base = unique("1.0.0-base");
    let next = unique("2.0.0-held");
    firmware(&stack, &admin, &base, &next, 13).await;
    let devices = register_group(&admin, &group, &group, 30, DEVICE_TYPE, &base)
        .await
        .unwrap();
    let fleet = serve(&stack, devices, DEVICE_TYPE, &base, 0.0, 17)
        .await
        .unwrap();
    let created = start(&admin, &next, &group, json!({"canary_percent": 10})).await;
    let id = created["rollout_id"].as_str().unwrap().to_owned();
    // The canary (3 devices) succeeds; the rest waits for the next minute's batch.
    wait_until(Duration::from_secs(30), || async {
        let r = rollout(&viewer, &id).await;
        (count(&r, "succeeded") == 3).then_some(())
    })
    .await;
    let path = format!("/v1/ota/rollouts/{id}/cancel");
    let refused = operator.post(&path, &json!({})).await.unwrap();
    assert_eq!(refused.status, 403);
    let cancelled = admin.post(&path, &json!({})).await.unwrap().ok().unwrap();
    assert_eq!(cancelled["status"], "cancelled");
    // The job's cancellation reaches the fleet function: the waiting devices never run.
    let done = wait_until(Duration::from_secs(30), || async {
        let r = rollout(&viewer, &id).await;
        (count(&r, "queued") == 0).then_some(r)
    })
    .await;
    assert_eq!(count(&done, "succeeded"), 3, "{}", done["counts"]);
    assert_eq!(count(&done, "cancelled"), 27, "{}", done["counts"]);
    assert!(done["reason"]
        .as_str()
        .unwrap()
        .starts_with("cancelled by "));
    // No rollback on an operator's cancel: the canary keeps the version it took.
    assert!(device_rows(&done).iter().all(|r| r["rollback"].is_null()));
    let on_devices = fleet.firmware_versions();
    assert_eq!(on_devices.values().filter(|v| **v == next).count(), 3);
    fleet.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_rollout_is_refused_when_the_thing_group_holds_a_thing_the_hub_never_checked() {
    let stack = Stack::from_env().await.unwrap();
    let admin = stack.admin_client(Role::Admin).unwrap();
    let group = unique("ota-stranger");
    let base = unique("1.0.0-strange");
    let next = unique("2.0.0-strange");
    firmware(&stack, &admin, &base, &next, 31).await;
    register_group(&admin, &group, &group, 2, DEVICE_TYPE, &base)
        .await
        .unwrap();
    // Someone with IoT access adds a thing of their own to the group.
    let iot = stack.iot();
    let stranger = unique("stranger");
    iot.create_thing()
        .thing_name(&stranger)
        .send()
        .await
        .unwrap();
    iot.add_thing_to_thing_group()
        .thing_group_name(&group)
        .thing_name(&stranger)
        .send()
        .await
        .unwrap();
    let body = json!({"firmware_version": next, "target": group, "policy": {}});
    let refused = admin.post("/v1/ota/rollout", &body).await.unwrap();
    assert_eq!(refused.status, 409, "{}", refused.body);
    assert!(
        refused.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains(&stranger),
        "{}",
        refused.body
    );
    // Positive control: without the stranger the same rollout starts.
    iot.remove_thing_from_thing_group()
        .thing_group_name(&group)
        .thing_name(&stranger)
        .send()
        .await
        .unwrap();
    let created = admin
        .post("/v1/ota/rollout", &body)
        .await
        .unwrap()
        .ok()
        .unwrap();
    assert_eq!(created["device_count"], 2, "{created}");
    let id = created["rollout_id"].as_str().unwrap();
    admin
        .post(&format!("/v1/ota/rollouts/{id}/cancel"), &json!({}))
        .await
        .unwrap()
        .ok()
        .unwrap();
}
