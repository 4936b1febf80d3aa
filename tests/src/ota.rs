//! Firmware rollouts from outside, as an operator and a fleet see them: devices
//! registered in a thing group through the API, firmware added and checked, simulated
//! devices that take jobs over MQTT, and a rollout watched until it ends.

use std::time::Duration;

use anyhow::{Context, Result};
use futures::{StreamExt as _, TryStreamExt as _};
use hub_admin::AdminClient;
use hub_sim::{
    ota::OtaConfig,
    provision::Device,
    run::{DeviceOptions, Endpoint},
    serve::ServingFleet,
};
use serde_json::{json, Value};

use crate::{admin::certificate, Stack};

/// Registrations in flight at once.
const CONCURRENCY: usize = 8;

impl Stack {
    /// Where simulated devices connect.
    pub fn endpoint(&self) -> Endpoint {
        Endpoint {
            host: self.mqtt_host.clone(),
            port: self.mqtt_port,
            ca_pem: self.ca_pem.clone(),
        }
    }

    /// The fleet's firmware signing public key (base64), as devices hold it.
    pub fn firmware_public_key(&self) -> Result<String> {
        Ok(
            std::fs::read_to_string(self.dir.join("pki/firmware-signing.pub"))
                .context("reading pki/firmware-signing.pub")?
                .trim()
                .to_owned(),
        )
    }

    /// The private key firmware is signed with (PKCS#8).
    pub fn firmware_signing_key(&self) -> Result<Vec<u8>> {
        std::fs::read(self.dir.join("pki/firmware-signing.pk8"))
            .context("reading pki/firmware-signing.pk8")
    }
}

/// Registers `count` devices (`{prefix}-NNN`) in thing group `group` through the API,
/// each on `firmware_version`, with a certificate from a CSR made here.
pub async fn register_group(
    admin: &AdminClient,
    prefix: &str,
    group: &str,
    count: usize,
    device_type: &str,
    firmware_version: &str,
) -> Result<Vec<Device>> {
    futures::stream::iter(0..count)
        .map(|i| async move {
            let id = format!("{prefix}-{i:03}");
            admin
                .post(
                    "/v1/devices",
                    &json!({"device_id": id, "device_type": device_type, "group": group,
                            "firmware_version": firmware_version}),
                )
                .await?
                .ok()?;
            let identity = certificate(admin, &id, "certificates", json!({})).await;
            Ok::<_, anyhow::Error>(Device {
                id,
                certificate_id: String::new(),
                identity,
            })
        })
        .buffered(CONCURRENCY)
        .try_collect()
        .await
}

/// Connects `devices` (all of `device_type`) as simulated devices that take firmware
/// jobs, verifying images with the stack's signing key, `failure_rate` of installs
/// failing; waits until all are subscribed.
pub async fn serve(
    stack: &Stack,
    devices: Vec<Device>,
    device_type: &str,
    firmware_version: &str,
    failure_rate: f64,
    seed: u64,
) -> Result<ServingFleet> {
    let options = DeviceOptions {
        firmware_version: firmware_version.to_owned(),
        ota: OtaConfig {
            public_key: Some(stack.firmware_public_key()?),
            device_type: Some(device_type.to_owned()),
            failure_rate,
            selftest_failure_rate: 0.0,
        },
        seed,
        ..DeviceOptions::default()
    };
    let count = devices.len();
    let fleet = ServingFleet::start(stack.endpoint(), devices, options);
    fleet
        .wait_ready(Duration::from_secs(60 + count as u64 / 2))
        .await?;
    Ok(fleet)
}

/// Polls a rollout every half second until it is no longer in progress, calling `seen`
/// with every reading; the last reading.
pub async fn wait_rollout(
    viewer: &AdminClient,
    rollout_id: &str,
    timeout: Duration,
    seen: impl FnMut(&Value),
) -> Result<Value> {
    viewer
        .watch_rollout(rollout_id, Duration::from_millis(500), Some(timeout), seen)
        .await
}

/// A firmware image of `size` bytes, different for every `seed`.
pub fn image(seed: u64, size: usize) -> Vec<u8> {
    let mut rng = fastrand::Rng::with_seed(seed);
    (0..size).map(|_| rng.u8(..)).collect()
}
