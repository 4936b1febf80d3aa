//! The IoT job ids of a rollout and its retries, and what kind of job an id names.

/// What a job of a rollout is for. Job ids carry it, so an execution event (which names
/// only the job and the thing) finds its rollout, device row and attempt.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum JobKind {
    /// The rollout's job to the whole group: attempt 1.
    Rollout,
    /// A one-device retry.
    Retry { attempt: u32 },
    /// A rollback job (`batch` numbers them).
    Rollback { batch: u32 },
}

/// Rollout ids: `ota-` and 32 hex digits (a UUID v7, so they sort by creation).
pub fn new_rollout_id() -> String {
    format!("ota-{}", uuid::Uuid::now_v7().simple())
}

pub fn is_rollout_id(id: &str) -> bool {
    id.strip_prefix("ota-")
        .is_some_and(|rest| rest.len() == 32 && rest.bytes().all(|b| b.is_ascii_hexdigit()))
}

pub fn rollout_job_id(rollout_id: &str) -> String {
    rollout_id.to_owned()
}

/// One job per device and attempt; the device's hash keeps ids within Jobs' 64 characters.
pub fn retry_job_id(rollout_id: &str, device_id: &str, attempt: u32) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, device_id.as_bytes());
    let short = crate::firmware::hex(&digest.as_ref()[..4]);
    format!("{rollout_id}_r{attempt}_{short}")
}

pub fn rollback_job_id(rollout_id: &str, batch: u32) -> String {
    format!("{rollout_id}_rb{batch}")
}

/// The rollout and kind of a job id the hub made; None for anyone else's job.
pub fn parse_job_id(job_id: &str) -> Option<(&str, JobKind)> {
    let mut parts = job_id.split('_');
    let rollout = parts.next().filter(|id| is_rollout_id(id))?;
    let kind = match (parts.next(), parts.next(), parts.next()) {
        (None, _, _) => JobKind::Rollout,
        (Some(r), Some(hash), None) if r.starts_with('r') && !r.starts_with("rb") => {
            let attempt = r[1..].parse().ok().filter(|a| *a >= 2)?;
            (hash.len() == 8).then_some(JobKind::Retry { attempt })?
        }
        (Some(rb), None, _) if rb.starts_with("rb") => JobKind::Rollback {
            batch: rb[2..].parse().ok()?,
        },
        _ => return None,
    };
    Some((rollout, kind))
}

/// The thing name in a thing ARN (`arn:aws:iot:region:account:thing/NAME`).
pub fn thing_of_arn(arn: &str) -> Option<&str> {
    arn.split_once(":thing/")
        .map(|(_, name)| name)
        .filter(|n| !n.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn job_ids_lead_back_to_their_rollout_and_attempt() {
        let id = new_rollout_id();
        assert!(is_rollout_id(&id), "{id}");
        assert!(new_rollout_id() != id);
        assert_eq!(parse_job_id(&id), Some((id.as_str(), JobKind::Rollout)));
        let retry = retry_job_id(&id, "sensor-0042", 3);
        assert!(retry.len() <= 64);
        assert_eq!(
            parse_job_id(&retry),
            Some((id.as_str(), JobKind::Retry { attempt: 3 }))
        );
        assert_ne!(retry, retry_job_id(&id, "sensor-0043", 3));
        assert_eq!(
            parse_job_id(&rollback_job_id(&id, 2)),
            Some((id.as_str(), JobKind::Rollback { batch: 2 }))
        );
        for other in [
            "someone-elses-job",
            "ota-123",
            &format!("{id}_r1_abcdef01"),
            &format!("{id}_rx"),
            &format!("{id}_r2_abc"),
            &format!("{id}_rb"),
        ] {
            assert_eq!(parse_job_id(other), None, "{other}");
        }
        assert_eq!(
            thing_of_arn("arn:aws:iot:us-east-1:000000000000:thing/sim-0001"),
            Some("sim-0001")
        );
        assert_eq!(thing_of_arn("arn:aws:iot:us-east-1:0:thinggroup/g"), None);
    }
}
