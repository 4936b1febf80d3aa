//! How a rollout goes out: the policy a request states, with defaults and bounds.

use super::*;

/// The policy as a request states it; every field is optional.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyRequest {
    #[serde(default, deserialize_with = "crate::body::given")]
    pub canary_percent: Option<f64>,
    #[serde(default, deserialize_with = "crate::body::given_integer")]
    pub max_per_minute: Option<u32>,
    #[serde(default, deserialize_with = "crate::body::given")]
    pub abort_failure_percent: Option<f64>,
    #[serde(default, deserialize_with = "crate::body::given_integer")]
    pub max_attempts: Option<u32>,
    #[serde(default, deserialize_with = "crate::body::given_integer")]
    pub retry_backoff_seconds: Option<u32>,
    #[serde(default, deserialize_with = "crate::body::given_integer")]
    pub timeout_minutes: Option<u32>,
}

/// How a rollout goes out, with defaults filled in and bounds checked.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RolloutPolicy {
    /// Share of the group that goes first (0: no canary stage).
    pub canary_percent: f64,
    /// Most devices started per minute once the canary has succeeded (Jobs allows 1000).
    pub max_per_minute: u32,
    /// The job aborts once this share of finished executions failed (any failure type).
    pub abort_failure_percent: f64,
    /// Attempts per device, the first included.
    pub max_attempts: u32,
    /// Wait before the second attempt; it doubles for each later one.
    pub retry_backoff_seconds: u32,
    /// An execution in progress this long is timed out.
    pub timeout_minutes: u32,
}

impl Default for RolloutPolicy {
    fn default() -> Self {
        Self {
            canary_percent: 10.0,
            max_per_minute: 1000,
            abort_failure_percent: 5.0,
            max_attempts: 3,
            retry_backoff_seconds: 30,
            timeout_minutes: 60,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("policy.{field}: {problem}")]
pub struct PolicyError {
    pub field: &'static str,
    pub problem: String,
}

fn bad(field: &'static str, problem: impl Into<String>) -> PolicyError {
    PolicyError {
        field,
        problem: problem.into(),
    }
}

impl RolloutPolicy {
    pub fn from_request(request: &PolicyRequest) -> Result<Self, PolicyError> {
        let d = Self::default();
        let policy = Self {
            canary_percent: request.canary_percent.unwrap_or(d.canary_percent),
            max_per_minute: request.max_per_minute.unwrap_or(d.max_per_minute),
            abort_failure_percent: request
                .abort_failure_percent
                .unwrap_or(d.abort_failure_percent),
            max_attempts: request.max_attempts.unwrap_or(d.max_attempts),
            retry_backoff_seconds: request
                .retry_backoff_seconds
                .unwrap_or(d.retry_backoff_seconds),
            timeout_minutes: request.timeout_minutes.unwrap_or(d.timeout_minutes),
        };
        if !(0.0..=100.0).contains(&policy.canary_percent) {
            return Err(bad("canary_percent", "must be between 0 and 100"));
        }
        if !(1..=1000).contains(&policy.max_per_minute) {
            return Err(bad("max_per_minute", "must be between 1 and 1000"));
        }
        // Jobs takes a percentage above 0 with at most two decimals.
        let abort = policy.abort_failure_percent;
        // Compared with the nearest whole hundredth: 0.29 * 100 is 28.999999999999996,
        // whose fraction is nearly 1, not nearly 0.
        let hundredths = abort * 100.0;
        if !(abort > 0.0 && abort <= 100.0) || (hundredths - hundredths.round()).abs() > 1e-6 {
            return Err(bad(
                "abort_failure_percent",
                "must be above 0 and at most 100, with at most two decimals",
            ));
        }
        if !(1..=10).contains(&policy.max_attempts) {
            return Err(bad("max_attempts", "must be between 1 and 10"));
        }
        if !(1..=MAX_BACKOFF_SECONDS).contains(&policy.retry_backoff_seconds) {
            return Err(bad(
                "retry_backoff_seconds",
                format!("must be between 1 and {MAX_BACKOFF_SECONDS}"),
            ));
        }
        if !(1..=10080).contains(&policy.timeout_minutes) {
            return Err(bad(
                "timeout_minutes",
                "must be between 1 and 10080 (a week)",
            ));
        }
        Ok(policy)
    }

    /// Devices in the canary stage of a group of `devices`: at least one when there is a
    /// canary at all, never more than the group.
    pub fn canary_size(&self, devices: u32) -> u32 {
        if self.canary_percent <= 0.0 || devices == 0 {
            return 0;
        }
        let size = (f64::from(devices) * self.canary_percent / 100.0).ceil() as u32;
        size.clamp(1, devices)
    }

    /// The wait before attempt `next_attempt` (2 for the first retry).
    pub fn backoff(&self, next_attempt: u32) -> Duration {
        let doublings = next_attempt.saturating_sub(2).min(16);
        let seconds = u64::from(self.retry_backoff_seconds) << doublings;
        Duration::seconds(seconds.min(u64::from(MAX_BACKOFF_SECONDS)) as i64)
    }

    /// The IoT Jobs configuration of the rollout job for a group of `devices`.
    pub fn job_config(&self, devices: u32) -> JobConfig {
        let canary = self.canary_size(devices);
        let staged = canary > 0 && canary < devices;
        JobConfig {
            maximum_per_minute: self.max_per_minute,
            exponential_rate: staged.then(|| ExponentialRate {
                base_rate_per_minute: canary.min(self.max_per_minute),
                increment_factor: INCREMENT_FACTOR,
                number_of_succeeded_things: canary,
            }),
            abort_threshold_percentage: self.abort_failure_percent,
            // The abort decision waits for the canary (or the first device) to finish.
            abort_min_executed_things: canary.max(1),
            in_progress_timeout_minutes: self.timeout_minutes,
        }
    }
}

/// IoT Jobs settings, as plain data; the AWS adapter turns them into CreateJob members.
#[derive(Clone, Debug, PartialEq)]
pub struct JobConfig {
    pub maximum_per_minute: u32,
    /// The canary stage: `base_rate_per_minute` devices a minute until
    /// `number_of_succeeded_things` succeeded, then `increment_factor` times faster.
    pub exponential_rate: Option<ExponentialRate>,
    /// Abort (failure type ALL, action CANCEL) once this share of finished executions failed.
    pub abort_threshold_percentage: f64,
    pub abort_min_executed_things: u32,
    pub in_progress_timeout_minutes: u32,
}

#[derive(Clone, Debug, PartialEq)]
pub struct ExponentialRate {
    pub base_rate_per_minute: u32,
    pub increment_factor: f64,
    pub number_of_succeeded_things: u32,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn abort_percentages_with_two_decimals_are_taken_whatever_their_binary_form() {
        for ok in [0.29, 0.01, 5.0, 12.57, 100.0] {
            let request = PolicyRequest {
                abort_failure_percent: Some(ok),
                ..PolicyRequest::default()
            };
            assert!(RolloutPolicy::from_request(&request).is_ok(), "{ok}");
        }
        for bad in [0.0, 0.291, 100.01, -1.0] {
            let request = PolicyRequest {
                abort_failure_percent: Some(bad),
                ..PolicyRequest::default()
            };
            assert!(RolloutPolicy::from_request(&request).is_err(), "{bad}");
        }
    }

    #[test]
    fn policy_defaults_and_bounds_name_the_field() {
        let policy = RolloutPolicy::from_request(&PolicyRequest::default()).unwrap();
        assert_eq!(policy, RolloutPolicy::default());
        assert_eq!(policy.abort_failure_percent, 5.0);
        for (request, field) in [
            (
                PolicyRequest {
                    canary_percent: Some(101.0),
                    ..Default::default()
                },
                "canary_percent",
            ),
            (
                PolicyRequest {
                    max_per_minute: Some(0),
                    ..Default::default()
                },
                "max_per_minute",
            ),
            (
                PolicyRequest {
                    abort_failure_percent: Some(0.0),
                    ..Default::default()
                },
                "abort_failure_percent",
            ),
            (
                PolicyRequest {
                    abort_failure_percent: Some(5.125),
                    ..Default::default()
                },
                "abort_failure_percent",
            ),
            (
                PolicyRequest {
                    max_attempts: Some(11),
                    ..Default::default()
                },
                "max_attempts",
            ),
            (
                PolicyRequest {
                    retry_backoff_seconds: Some(901),
                    ..Default::default()
                },
                "retry_backoff_seconds",
            ),
            (
                PolicyRequest {
                    timeout_minutes: Some(0),
                    ..Default::default()
                },
                "timeout_minutes",
            ),
        ] {
            let err = RolloutPolicy::from_request(&request).unwrap_err();
            assert_eq!(err.field, field);
            assert!(err.to_string().starts_with(&format!("policy.{field}: ")));
        }
        assert!(serde_json::from_str::<PolicyRequest>(r#"{"canary":5}"#).is_err());
    }

    #[test]
    fn the_canary_is_the_first_stage_and_gates_the_abort() {
        let policy = RolloutPolicy::default();
        assert_eq!(policy.canary_size(200), 20);
        assert_eq!(policy.canary_size(3), 1);
        assert_eq!(policy.canary_size(0), 0);
        let config = policy.job_config(200);
        assert_eq!(
            config.exponential_rate,
            Some(ExponentialRate {
                base_rate_per_minute: 20,
                increment_factor: 5.0,
                number_of_succeeded_things: 20,
            })
        );
        assert_eq!(config.abort_min_executed_things, 20);
        assert_eq!(config.abort_threshold_percentage, 5.0);
        assert_eq!(config.maximum_per_minute, 1000);
        assert_eq!(config.in_progress_timeout_minutes, 60);
        // No canary, or a canary that is the whole group: one stage.
        let all_at_once = RolloutPolicy {
            canary_percent: 0.0,
            ..policy.clone()
        };
        assert_eq!(all_at_once.job_config(200).exponential_rate, None);
        assert_eq!(all_at_once.job_config(200).abort_min_executed_things, 1);
        assert_eq!(policy.job_config(1).exponential_rate, None);
        // The canary's rate never passes the ceiling.
        let slow = RolloutPolicy {
            max_per_minute: 5,
            ..policy
        };
        assert_eq!(
            slow.job_config(200)
                .exponential_rate
                .unwrap()
                .base_rate_per_minute,
            5
        );
    }
}
