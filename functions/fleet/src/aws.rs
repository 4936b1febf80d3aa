//! Connectivity columns of the devices table, written with a condition that keeps the
//! newest event: (timestamp, version) must not be older than what the row holds.

use aws_sdk_dynamodb::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use hub_runtime::{
    dynamodb::{n, s},
    PortError,
};

use hub_fleet::{
    firmware::{hex, Artifact},
    firmware_table::DynamoFirmware,
    rollouts_table::DynamoRollouts,
};

use crate::{firmware::ImageDigest, FirmwareChecks};

use crate::{Applied, ConnectivityStore, PresenceChange};

#[derive(Clone)]
pub struct DynamoRegistry {
    pub client: aws_sdk_dynamodb::Client,
    pub table: String,
}

impl ConnectivityStore for DynamoRegistry {
    async fn apply(&self, change: &PresenceChange) -> Result<Applied, PortError> {
        let mut set = "SET connectivity = :state, last_seen = :at, connectivity_at = :ts, \
                       connectivity_version = :version"
            .to_owned();
        let mut request = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("device_id", s(&change.device_id))
            .expression_attribute_values(":state", s(change.connectivity.as_str()))
            .expression_attribute_values(":at", s(change.at.to_rfc3339()))
            .expression_attribute_values(":ts", n(change.order.0))
            .expression_attribute_values(":version", n(change.order.1));
        match &change.disconnect_reason {
            Some(reason) => {
                set.push_str(", disconnect_reason = :reason");
                request = request.expression_attribute_values(":reason", s(reason));
            }
            None => set.push_str(" REMOVE disconnect_reason"),
        }
        let result = request
            .update_expression(set)
            .condition_expression(
                "attribute_exists(device_id) AND (attribute_not_exists(connectivity_at) \
                 OR connectivity_at < :ts \
                 OR (connectivity_at = :ts AND connectivity_version <= :version))",
            )
            .send()
            .await;
        match result {
            Ok(_) => Ok(Applied::Applied),
            Err(SdkError::ServiceError(e))
                if e.err().code() == Some("ConditionalCheckFailedException") =>
            {
                // Either no row or a newer event; tell them apart for the log.
                let row = self
                    .client
                    .get_item()
                    .table_name(&self.table)
                    .key("device_id", s(&change.device_id))
                    .projection_expression("device_id")
                    .send()
                    .await
                    .map_err(|e| PortError::new("registry read", DisplayErrorContext(e)))?;
                Ok(if row.item.is_some() {
                    Applied::Stale
                } else {
                    Applied::NotADevice
                })
            }
            Err(err) => Err(PortError::new(
                "connectivity update",
                DisplayErrorContext(err),
            )),
        }
    }
}

/// The firmware table and bucket, for the upload check.
pub struct FirmwareImages {
    pub table: DynamoFirmware,
    pub s3: aws_sdk_s3::Client,
}

impl FirmwareChecks for FirmwareImages {
    type Table = DynamoFirmware;

    fn table(&self) -> &DynamoFirmware {
        &self.table
    }

    /// Streams the object through SHA-256: images are never held whole in memory.
    async fn digest(
        &self,
        bucket: &str,
        key: &str,
        version: Option<&str>,
    ) -> Result<ImageDigest, PortError> {
        let object = self
            .s3
            .get_object()
            .bucket(bucket)
            .key(key)
            .set_version_id(version.map(str::to_owned))
            .send()
            .await
            .map_err(|e| {
                PortError::new(
                    "firmware image read",
                    aws_sdk_s3::error::DisplayErrorContext(e),
                )
            })?;
        let mut body = object.body;
        let mut context = ring::digest::Context::new(&ring::digest::SHA256);
        let mut size = 0u64;
        while let Some(chunk) = body
            .try_next()
            .await
            .map_err(|e| PortError::new("firmware image read", e))?
        {
            size += chunk.len() as u64;
            context.update(&chunk);
        }
        Ok(ImageDigest {
            size,
            sha256: hex(context.finish().as_ref()),
        })
    }
}

/// Everything rollouts touch: their tables, IoT Jobs, the firmware table, the registry's
/// firmware version, the retry delay queue and the event stream.
pub struct AwsRollouts {
    pub table: DynamoRollouts,
    pub jobs: hub_fleet::jobs::FirmwareJobs,
    pub firmware: DynamoFirmware,
    pub registry: DynamoRegistry,
    pub sqs: aws_sdk_sqs::Client,
    pub retry_queue_url: String,
    pub kinesis: aws_sdk_kinesis::Client,
    pub events_stream: String,
}

impl AwsRollouts {
    /// The rollouts' tables, jobs, queue and stream as the function's environment names
    /// them, beside the firmware table and registry the function already holds.
    pub fn from_env(
        aws: &hub_runtime::AwsEnv,
        dynamodb: aws_sdk_dynamodb::Client,
        firmware: DynamoFirmware,
        registry: DynamoRegistry,
    ) -> Result<Self, hub_runtime::config::ConfigError> {
        use hub_runtime::config::required;
        Ok(Self {
            table: DynamoRollouts {
                client: dynamodb,
                rollouts: required("ROLLOUTS_TABLE")?,
                devices: required("ROLLOUT_DEVICES_TABLE")?,
            },
            jobs: hub_fleet::jobs::FirmwareJobs {
                iot: aws_sdk_iot::Client::new(&aws.sdk),
                bucket: required("FIRMWARE_BUCKET")?,
                presign_role_arn: required("JOBS_PRESIGN_ROLE_ARN")?,
                arn_prefix: required("IOT_ARN_PREFIX")?,
            },
            firmware,
            registry,
            sqs: aws_sdk_sqs::Client::new(&aws.sdk),
            retry_queue_url: required("ROLLOUT_RETRY_QUEUE_URL")?,
            kinesis: aws_sdk_kinesis::Client::new(&aws.sdk),
            events_stream: required("EVENTS_STREAM")?,
        })
    }
}

fn port(operation: &'static str) -> impl FnOnce(String) -> PortError {
    move |e| PortError::new(operation, e)
}

impl crate::RolloutPorts for AwsRollouts {
    type Rollouts = DynamoRollouts;
    type Firmware = DynamoFirmware;

    fn rollouts_table(&self) -> &DynamoRollouts {
        &self.table
    }

    fn firmware_table(&self) -> &DynamoFirmware {
        &self.firmware
    }

    async fn cancel_job(&self, job_id: &str, comment: &str) -> Result<(), PortError> {
        self.jobs
            .cancel(job_id, comment)
            .await
            .map_err(port("CancelJob"))
    }

    async fn cancel_reason(&self, job_id: &str) -> Result<Option<String>, PortError> {
        Ok(self
            .jobs
            .state(job_id)
            .await
            .map_err(port("DescribeJob"))?
            .and_then(|state| state.reason_code))
    }

    async fn create_job(
        &self,
        job_id: &str,
        things: &[String],
        rollout: &hub_fleet::rollout::Rollout,
        artifact: &Artifact,
        rollback: bool,
    ) -> Result<bool, PortError> {
        let document =
            hub_fleet::jobs::document(&rollout.rollout_id, artifact, &self.jobs.bucket, rollback);
        let description = if rollback {
            format!(
                "rollback to firmware {} after rollout {}",
                artifact.version, rollout.rollout_id
            )
        } else {
            format!(
                "retry of firmware {} (rollout {})",
                artifact.version, rollout.rollout_id
            )
        };
        self.jobs
            .create(
                job_id,
                things.iter().map(|t| self.jobs.thing_arn(t)).collect(),
                &document,
                None,
                rollout.policy.timeout_minutes,
                &description,
            )
            .await
            .map_err(port("CreateJob"))
    }

    async fn record_version(&self, device_id: &str, version: &str) -> Result<(), PortError> {
        let result = self
            .registry
            .client
            .update_item()
            .table_name(&self.registry.table)
            .key("device_id", s(device_id))
            .update_expression("SET firmware_version = :v")
            .condition_expression("attribute_exists(device_id)")
            .expression_attribute_values(":v", s(version))
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            // A device decommissioned meanwhile has no row to update.
            Err(SdkError::ServiceError(e))
                if e.err().code() == Some("ConditionalCheckFailedException") =>
            {
                Ok(())
            }
            Err(err) => Err(PortError::new("registry write", DisplayErrorContext(err))),
        }
    }

    async fn schedule_retry(
        &self,
        retry: &crate::rollout::RetryDue,
        delay: chrono::Duration,
    ) -> Result<(), PortError> {
        let seconds = delay
            .num_seconds()
            .clamp(0, i64::from(hub_fleet::rollout::MAX_BACKOFF_SECONDS));
        self.sqs
            .send_message()
            .queue_url(&self.retry_queue_url)
            .message_body(serde_json::to_string(retry).expect("retries serialize"))
            .delay_seconds(seconds as i32)
            .send()
            .await
            .map_err(|e| {
                PortError::new("retry schedule", aws_sdk_sqs::error::DisplayErrorContext(e))
            })?;
        Ok(())
    }

    async fn publish(
        &self,
        event: &hub_events::Envelope<hub_events::RolloutEvent>,
    ) -> Result<(), PortError> {
        let record = (event.data.rollout_id.clone(), event.to_vec());
        hub_runtime::kinesis::put_records(&self.kinesis, &self.events_stream, vec![record])
            .await
            .into_iter()
            .collect::<Result<Vec<()>, _>>()
            .map_err(|e| port("rollout event")(e.to_string()))?;
        Ok(())
    }
}
