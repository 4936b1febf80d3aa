//! Firmware jobs in AWS IoT Jobs: the rollout job (rollout, abort and timeout config from
//! the policy), one-device retry jobs and rollback jobs, all with a job document whose
//! download URL is the presigned-URL placeholder IoT Jobs resolves per device.

use aws_sdk_iot::{
    error::{DisplayErrorContext, ProvideErrorMetadata, SdkError},
    types::{
        AbortAction, AbortConfig, AbortCriteria, Configuration, EventType, ExponentialRolloutRate,
        JobExecutionFailureType, JobExecutionStatus, JobExecutionsRolloutConfig,
        PresignedUrlConfig, RateIncreaseCriteria, TargetSelection, TimeoutConfig,
    },
    Client,
};

use crate::{
    firmware::Artifact,
    ota::{presigned_url_placeholder, JobDocument, FIRMWARE_OPERATION},
    rollout::JobConfig,
};

/// How long a presigned download URL works once a device got its document.
pub const DOWNLOAD_URL_SECONDS: i64 = 3600;
/// The reason code an operator's cancellation carries (the abort's is `ABORT_CANCEL`).
pub const OPERATOR_CANCEL: &str = "OPERATOR_CANCEL";

#[derive(Clone, Debug)]
pub struct FirmwareJobs {
    pub iot: Client,
    /// Where the images are.
    pub bucket: String,
    /// The role IoT Jobs presigns download URLs with.
    pub presign_role_arn: String,
    /// `arn:{partition}:iot:{region}:{account}`: thing and group ARNs start with it.
    pub arn_prefix: String,
}

/// How a job ended, as DescribeJob tells it.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct JobState {
    pub status: String,
    pub reason_code: Option<String>,
    pub comment: Option<String>,
    pub in_progress: u64,
    pub queued: u64,
}

fn error<E: std::error::Error + 'static, R: std::fmt::Debug>(
    operation: &str,
    err: SdkError<E, R>,
) -> String {
    format!("{operation}: {}", DisplayErrorContext(err))
}

fn code<E: ProvideErrorMetadata, R>(err: &SdkError<E, R>) -> Option<&str> {
    match err {
        SdkError::ServiceError(e) => e.err().code(),
        _ => None,
    }
}

/// The document a device gets for `artifact`.
pub fn document(
    rollout_id: &str,
    artifact: &Artifact,
    bucket: &str,
    rollback: bool,
) -> JobDocument {
    JobDocument {
        operation: FIRMWARE_OPERATION.into(),
        rollout_id: rollout_id.into(),
        firmware_version: artifact.version.clone(),
        device_type: artifact.device_type.clone(),
        url: presigned_url_placeholder(bucket, &artifact.s3_key),
        sha256: artifact.sha256.clone(),
        size: artifact.size,
        signature: artifact.signature.clone(),
        rollback,
    }
}

impl FirmwareJobs {
    pub fn thing_arn(&self, thing: &str) -> String {
        format!("{}:thing/{thing}", self.arn_prefix)
    }

    pub fn group_arn(&self, group: &str) -> String {
        format!("{}:thinggroup/{group}", self.arn_prefix)
    }

    /// Job and job-execution events are off in a new account (and there is no
    /// CloudFormation resource for them): the hub switches them on before its first job.
    pub async fn ensure_events(&self) -> Result<(), String> {
        let current = self
            .iot
            .describe_event_configurations()
            .send()
            .await
            .map_err(|e| error("DescribeEventConfigurations", e))?;
        let enabled = |kind: &EventType| {
            current
                .event_configurations()
                .and_then(|c| c.get(kind))
                .is_some_and(Configuration::enabled)
        };
        if enabled(&EventType::Job) && enabled(&EventType::JobExecution) {
            return Ok(());
        }
        let on = Configuration::builder().enabled(true).build();
        self.iot
            .update_event_configurations()
            .event_configurations(EventType::Job, on.clone())
            .event_configurations(EventType::JobExecution, on)
            .send()
            .await
            .map_err(|e| error("UpdateEventConfigurations", e))?;
        Ok(())
    }

    /// Creates a job; `config` is the rollout job's staging and abort (None for a
    /// one-device retry or a rollback). Ok(false) if the job id exists already.
    pub async fn create(
        &self,
        job_id: &str,
        targets: Vec<String>,
        document: &JobDocument,
        config: Option<&JobConfig>,
        timeout_minutes: u32,
        description: &str,
    ) -> Result<bool, String> {
        let mut request = self
            .iot
            .create_job()
            .job_id(job_id)
            .set_targets(Some(targets))
            .document(serde_json::to_string(document).expect("documents serialize"))
            .description(description)
            .target_selection(TargetSelection::Snapshot)
            .presigned_url_config(
                PresignedUrlConfig::builder()
                    .role_arn(&self.presign_role_arn)
                    .expires_in_sec(DOWNLOAD_URL_SECONDS)
                    .build(),
            )
            .timeout_config(
                TimeoutConfig::builder()
                    .in_progress_timeout_in_minutes(i64::from(timeout_minutes))
                    .build(),
            );
        if let Some(config) = config {
            let mut rollout = JobExecutionsRolloutConfig::builder()
                .maximum_per_minute(config.maximum_per_minute as i32);
            if let Some(rate) = &config.exponential_rate {
                rollout = rollout.exponential_rate(
                    ExponentialRolloutRate::builder()
                        .base_rate_per_minute(rate.base_rate_per_minute as i32)
                        .increment_factor(rate.increment_factor)
                        .rate_increase_criteria(
                            RateIncreaseCriteria::builder()
                                .number_of_succeeded_things(rate.number_of_succeeded_things as i32)
                                .build(),
                        )
                        .build()
                        .map_err(|e| e.to_string())?,
                );
            }
            let abort = AbortCriteria::builder()
                .failure_type(JobExecutionFailureType::All)
                .action(AbortAction::Cancel)
                .threshold_percentage(config.abort_threshold_percentage)
                .min_number_of_executed_things(config.abort_min_executed_things as i32)
                .build()
                .map_err(|e| e.to_string())?;
            request = request
                .job_executions_rollout_config(rollout.build())
                .abort_config(
                    AbortConfig::builder()
                        .criteria_list(abort)
                        .build()
                        .map_err(|e| e.to_string())?,
                );
        }
        match request.send().await {
            Ok(_) => Ok(true),
            Err(err) if code(&err) == Some("ResourceAlreadyExistsException") => Ok(false),
            Err(err) => Err(error("CreateJob", err)),
        }
    }

    /// Cancels a job's waiting executions (those installing finish and report).
    pub async fn cancel(&self, job_id: &str, comment: &str) -> Result<(), String> {
        match self
            .iot
            .cancel_job()
            .job_id(job_id)
            .reason_code(OPERATOR_CANCEL)
            .comment(comment)
            .send()
            .await
        {
            Ok(_) => Ok(()),
            // Already ended (completed, cancelled or aborted): nothing left to cancel.
            Err(err) if code(&err) == Some("InvalidRequestException") => Ok(()),
            Err(err) => Err(error("CancelJob", err)),
        }
    }

    pub async fn state(&self, job_id: &str) -> Result<Option<JobState>, String> {
        let output = match self.iot.describe_job().job_id(job_id).send().await {
            Ok(output) => output,
            Err(err) if code(&err) == Some("ResourceNotFoundException") => return Ok(None),
            Err(err) => return Err(error("DescribeJob", err)),
        };
        let Some(job) = output.job() else {
            return Ok(None);
        };
        let details = job.job_process_details();
        let count = |n: Option<i32>| n.unwrap_or(0).max(0) as u64;
        Ok(Some(JobState {
            status: job
                .status()
                .map(|s| s.as_str().to_owned())
                .unwrap_or_default(),
            reason_code: job.reason_code().map(str::to_owned),
            comment: job.comment().map(str::to_owned),
            in_progress: count(details.and_then(|d| d.number_of_in_progress_things())),
            queued: count(details.and_then(|d| d.number_of_queued_things())),
        }))
    }

    /// The things in thing group `group` (its direct members, as a job to the group
    /// reaches them).
    pub async fn group_things(&self, group: &str) -> Result<Vec<String>, String> {
        let mut things = Vec::new();
        let mut pages = self
            .iot
            .list_things_in_thing_group()
            .thing_group_name(group)
            .max_results(250)
            .into_paginator()
            .items()
            .send();
        while let Some(thing) = pages.next().await {
            match thing {
                Ok(thing) => things.push(thing),
                Err(err) if code(&err) == Some("ResourceNotFoundException") => break,
                Err(err) => return Err(error("ListThingsInThingGroup", err)),
            }
        }
        Ok(things)
    }

    /// The things whose execution of `job_id` is in progress right now (IoT Jobs
    /// publishes no event when an execution starts, only when it ends).
    pub async fn installing(&self, job_id: &str) -> Result<Vec<String>, String> {
        let mut things = Vec::new();
        let mut pages = self
            .iot
            .list_job_executions_for_job()
            .job_id(job_id)
            .status(JobExecutionStatus::InProgress)
            .max_results(250)
            .into_paginator()
            .items()
            .send();
        while let Some(summary) = pages.next().await {
            let summary = match summary {
                Ok(summary) => summary,
                Err(err) if code(&err) == Some("ResourceNotFoundException") => break,
                Err(err) => return Err(error("ListJobExecutionsForJob", err)),
            };
            if let Some(thing) = summary.thing_arn().and_then(crate::rollout::thing_of_arn) {
                things.push(thing.to_owned());
            }
        }
        Ok(things)
    }
}
