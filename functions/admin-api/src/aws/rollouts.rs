//! Rollouts' events, and their jobs in IoT Jobs.

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

impl RolloutJobs for AwsBackend {
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
