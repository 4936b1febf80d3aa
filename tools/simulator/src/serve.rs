//! A fleet for end-to-end tests: already-provisioned devices that send no telemetry and
//! only answer (commands, shadow deltas, firmware jobs) until they are stopped.
//!
//! ```ignore
//! let options = DeviceOptions {
//!     ota: OtaConfig { public_key: Some(public_key_b64), ..OtaConfig::default() },
//!     ..DeviceOptions::default()
//! };
//! let fleet = ServingFleet::start(endpoint, devices, options);
//! fleet.wait_ready(Duration::from_secs(60)).await?;
//! // ... start a rollout and wait for it ...
//! let versions = fleet.firmware_versions(); // device id -> version, live
//! let report = fleet.stop().await?; // report.jobs, report.firmware
//! ```

use std::{collections::BTreeMap, sync::Arc, time::Duration};

use anyhow::{bail, Context, Result};
use indicatif::ProgressBar;
use tokio::{sync::watch, task::JoinHandle};

use crate::{
    ota::JobTally,
    provision::Device,
    run::{run_fleet, DeviceOptions, Endpoint, FleetStatus, RunReport},
    script::{device_type_for, DeviceScript},
};

/// Devices connected and answering; dropping it stops them too, without waiting.
pub struct ServingFleet {
    stop: watch::Sender<bool>,
    status: Arc<FleetStatus>,
    devices: usize,
    task: JoinHandle<Result<RunReport>>,
}

impl ServingFleet {
    /// Connects every device in the background. `options.linger` is not used: the
    /// devices serve until [`ServingFleet::stop`]. Must be called within a Tokio runtime.
    pub fn start(endpoint: Endpoint, devices: Vec<Device>, options: DeviceOptions) -> Self {
        let (stop, stopped) = watch::channel(false);
        let status = Arc::new(FleetStatus::default());
        let count = devices.len();
        let fleet = devices
            .into_iter()
            .enumerate()
            .map(|(index, device)| {
                let script = DeviceScript::silent(&device.id, device_type_for(index));
                (device, script)
            })
            .collect();
        let options = DeviceOptions {
            linger: Duration::MAX,
            ..options
        };
        let shared = status.clone();
        let task = tokio::spawn(async move {
            run_fleet(
                &endpoint,
                fleet,
                Duration::ZERO,
                &options,
                stopped,
                shared,
                ProgressBar::hidden(),
            )
            .await
        });
        Self {
            stop,
            status,
            devices: count,
            task,
        }
    }

    /// Waits until every device is connected and subscribed.
    pub async fn wait_ready(&self, timeout: Duration) -> Result<()> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let ready = self.status.ready();
            if ready == self.devices {
                return Ok(());
            }
            if self.task.is_finished() {
                bail!("the fleet ended before all devices were ready ({ready} of {}); stop() says why", self.devices);
            }
            if tokio::time::Instant::now() >= deadline {
                bail!(
                    "{ready} of {} devices connected and subscribed after {timeout:?}",
                    self.devices
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The devices as they are now.
    pub fn status(&self) -> &Arc<FleetStatus> {
        &self.status
    }

    /// Device id -> the firmware version it runs now.
    pub fn firmware_versions(&self) -> BTreeMap<String, String> {
        self.status.firmware_versions()
    }

    /// Firmware jobs finished so far, by the status the devices reported.
    pub fn jobs(&self) -> JobTally {
        self.status.jobs()
    }

    /// Disconnects every device (an install under way is cut short and its job stays
    /// IN_PROGRESS, as after a power cut) and returns the run's report.
    pub async fn stop(self) -> Result<RunReport> {
        self.stop.send_replace(true);
        self.task.await.context("the fleet's task panicked")?
    }
}
