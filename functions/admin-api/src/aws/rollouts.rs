//! Rollouts: their tables, and their jobs in IoT Jobs.

use chrono::{DateTime, Utc};
use hub_events::{Envelope, RolloutEvent};
use hub_fleet::jobs::document;

use super::AwsBackend;
use crate::ports::*;

impl RolloutEvents for AwsBackend {
    async fn announce(&self, event: &Envelope<RolloutEvent>) -> Result<(), PortError> {
        let Some((kinesis, stream)) = &self.events else {
            return Ok(());
        };
        let record = vec![(event.data.rollout_id.clone(), event.to_vec())];
        hub_runtime::kinesis::put_all(kinesis, stream, record)
            .await
            .map_err(|e| PortError::new("rollout event", e))
    }
}

impl RolloutStore for AwsBackend {
    async fn create_rollout(
        &self,
        rollout: &Rollout,
        rows: &[DeviceRow],
    ) -> Result<bool, PortError> {
        self.rollouts
            .create(rollout, rows)
            .await
            .map_err(|e| PortError::new("rollout write", e))
    }

    async fn rollout(&self, id: &str) -> Result<Option<(Rollout, Counts)>, PortError> {
        self.rollouts
            .get(id)
            .await
            .map_err(|e| PortError::new("rollout read", e))
    }

    async fn rollouts(&self) -> Result<Vec<(Rollout, Counts)>, PortError> {
        self.rollouts
            .all()
            .await
            .map_err(|e| PortError::new("rollout read", e))
    }

    async fn rollout_devices(&self, id: &str) -> Result<Vec<DeviceRow>, PortError> {
        self.rollouts
            .devices(id)
            .await
            .map_err(|e| PortError::new("rollout devices read", e))
    }

    async fn set_rollout_status(
        &self,
        id: &str,
        from: RolloutStatus,
        to: RolloutStatus,
        reason: Option<&str>,
        at: DateTime<Utc>,
    ) -> Result<bool, PortError> {
        self.rollouts
            .set_status(id, from, to, reason, at)
            .await
            .map_err(|e| PortError::new("rollout write", e))
    }

    async fn start_rollout_job(
        &self,
        rollout: &Rollout,
        artifact: &Artifact,
    ) -> Result<(), PortError> {
        self.jobs
            .ensure_events()
            .await
            .map_err(|e| PortError::new("job events", e))?;
        let config = rollout.policy.job_config(rollout.device_count);
        let description = format!(
            "firmware {} to {} (rollout {})",
            artifact.version, rollout.target, rollout.rollout_id
        );
        self.jobs
            .create(
                &rollout.job_id,
                vec![self.jobs.group_arn(&rollout.target)],
                &document(&rollout.rollout_id, artifact, &self.jobs.bucket, false),
                Some(&config),
                rollout.policy.timeout_minutes,
                &description,
            )
            .await
            .map_err(|e| PortError::new("CreateJob", e))?;
        Ok(())
    }

    async fn cancel_rollout_job(&self, rollout: &Rollout, comment: &str) -> Result<(), PortError> {
        self.jobs
            .cancel(&rollout.job_id, comment)
            .await
            .map_err(|e| PortError::new("CancelJob", e))?;
        Ok(())
    }

    async fn group_things(&self, group: &str) -> Result<Vec<String>, PortError> {
        self.jobs
            .group_things(group)
            .await
            .map_err(|e| PortError::new("ListThingsInThingGroup", e))
    }

    async fn installing(&self, rollout: &Rollout) -> Result<Vec<String>, PortError> {
        self.jobs
            .installing(&rollout.job_id)
            .await
            .map_err(|e| PortError::new("ListJobExecutionsForJob", e))
    }
}
