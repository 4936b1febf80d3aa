//! The device side of firmware updates over the air, through the AWS IoT Jobs MQTT API:
//! take the next job, download the image, check its size, SHA-256 and Ed25519 signature,
//! install it (or say why not), report the new version on the shadow, take the next job.
//!
//! [`OtaAgent`] is pure (a message in, actions out) so the run loop and tests share it;
//! [`Install::run`] is the download and check, which the run loop spawns.

use std::{collections::BTreeSet, error::Error as _, time::Duration};

use hub_fleet::{
    firmware,
    ota::{topics, JobDocument, FIRMWARE_OPERATION},
};
use serde::Serialize;
use serde_json::{json, Value};

use crate::agent::shadow_update_topic;

/// How long writing the image and rebooting takes.
pub const INSTALL_TIME: Duration = Duration::from_millis(100);

/// Longest reason sent in `statusDetails` (the service bounds its values).
const MAX_REASON_CHARS: usize = 500;

/// How devices treat firmware jobs.
#[derive(Clone, Debug, Default)]
pub struct OtaConfig {
    /// Chance per attempt that the install itself fails.
    pub failure_rate: f64,
    /// Chance per attempt that the device installs, reboots, fails its self-test and
    /// reverts to the version it ran.
    pub selftest_failure_rate: f64,
    /// Base64 of the raw 32-byte Ed25519 key images must be signed with. Without it a
    /// device fails every firmware job rather than install an unverified image.
    pub public_key: Option<String>,
    /// The device type this device runs firmware for; a job for another type is refused.
    /// None takes any type (a fleet of mixed types behind one agent configuration).
    pub device_type: Option<String>,
}

/// Terminal job updates a device sent, by status.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct JobTally {
    pub succeeded: u64,
    pub failed: u64,
    pub rejected: u64,
}

impl JobTally {
    pub fn add(&mut self, other: JobTally) {
        self.succeeded += other.succeeded;
        self.failed += other.failed;
        self.rejected += other.rejected;
    }

    pub fn total(&self) -> u64 {
        self.succeeded + self.failed + self.rejected
    }
}

/// What the run loop does for the agent.
#[derive(Clone, Debug, PartialEq)]
pub enum Action {
    Publish {
        topic: String,
        payload: Vec<u8>,
    },
    /// Run the install in the background and hand its result to [`OtaAgent::finished`].
    Install(Install),
    /// Stop this job's install: the service no longer takes its updates.
    Abandon {
        job_id: String,
    },
}

/// A firmware job the device has taken.
#[derive(Clone, Debug, PartialEq)]
pub struct Install {
    pub job_id: String,
    pub document: JobDocument,
    pub public_key: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum InjectedFault {
    Install,
    SelfTest,
}

#[derive(Clone, Debug)]
struct CurrentJob {
    job_id: String,
    execution_number: u64,
    version: String,
    fault: Option<InjectedFault>,
}

/// One device's firmware and the job it is working on.
#[derive(Clone, Debug)]
pub struct OtaAgent {
    pub device_id: String,
    pub firmware_version: String,
    pub tally: JobTally,
    config: OtaConfig,
    rng: fastrand::Rng,
    current: Option<CurrentJob>,
    /// Executions already answered, so a late duplicate of a start-next answer is not
    /// taken twice (a retried job comes back with a new execution number).
    answered: BTreeSet<(String, u64)>,
}

impl OtaAgent {
    /// `seed` makes the injected faults repeatable per device.
    pub fn new(device_id: &str, firmware_version: &str, config: OtaConfig, seed: u64) -> Self {
        Self {
            device_id: device_id.to_owned(),
            firmware_version: firmware_version.to_owned(),
            tally: JobTally::default(),
            config,
            rng: fastrand::Rng::with_seed(seed),
            current: None,
            answered: BTreeSet::new(),
        }
    }

    /// The job being installed, if any.
    pub fn current_job(&self) -> Option<&str> {
        self.current.as_ref().map(|job| job.job_id.as_str())
    }

    /// The topics to subscribe to.
    pub fn subscriptions(&self) -> Vec<String> {
        let id = &self.device_id;
        let mut topics = vec![
            topics::notify_next(id),
            topics::start_next_accepted(id),
            topics::start_next_rejected(id),
        ];
        topics.extend(topics::update_answers(id));
        topics
    }

    /// Once subscribed: ask for whatever was queued while the device was away.
    pub fn on_connected(&self) -> Vec<Action> {
        vec![publish(topics::start_next(&self.device_id), &json!({}))]
    }

    /// What to do about a message on `topic` (nothing for topics that are not the jobs
    /// service's for this device).
    pub fn on_message(&mut self, topic: &str, payload: &[u8]) -> Vec<Action> {
        let id = &self.device_id;
        if topic == topics::notify_next(id) {
            self.on_notify_next(payload)
        } else if topic == topics::start_next_accepted(id) {
            self.on_start_next_accepted(payload)
        } else if topic == topics::start_next_rejected(id) {
            tracing::debug!(device = %id, answer = %String::from_utf8_lossy(payload), "start-next rejected");
            Vec::new()
        } else if let Some((job_id, accepted)) = update_answer(id, topic) {
            self.on_update_answer(job_id, accepted, payload)
        } else {
            Vec::new()
        }
    }

    /// The install of `job_id` is over: `verified` is the download and check's result.
    /// Returns the messages to publish.
    pub fn finished(&mut self, job_id: &str, verified: Result<(), String>) -> Vec<Action> {
        let Some(job) = self.current.take_if(|job| job.job_id == job_id) else {
            tracing::debug!(device = %self.device_id, job_id, "result of an abandoned install dropped");
            return Vec::new();
        };
        let (status, details) = match (verified, job.fault) {
            (Err(reason), _) => ("FAILED", json!({"reason": reason})),
            (Ok(()), Some(InjectedFault::Install)) => {
                ("FAILED", json!({"reason": "install failed (injected)"}))
            }
            (Ok(()), Some(InjectedFault::SelfTest)) => (
                "FAILED",
                json!({"reason": format!(
                    "self-test failed after installing {}; reverted to {}",
                    job.version, self.firmware_version
                )}),
            ),
            (Ok(()), None) => {
                let previous = std::mem::replace(&mut self.firmware_version, job.version);
                let mut out = self.terminal(
                    &job.job_id,
                    job.execution_number,
                    "SUCCEEDED",
                    json!({"firmware_version": self.firmware_version, "previous_version": previous}),
                );
                let report =
                    json!({"state": {"reported": {"firmware_version": self.firmware_version}}});
                // The shadow report goes before the next start-next.
                out.insert(1, publish(shadow_update_topic(&self.device_id), &report));
                return out;
            }
        };
        self.terminal(&job.job_id, job.execution_number, status, details)
    }

    fn on_notify_next(&mut self, payload: &[u8]) -> Vec<Action> {
        let Ok(message) = serde_json::from_slice::<Value>(payload) else {
            return Vec::new();
        };
        if message.get("execution").is_some_and(Value::is_object) && self.current.is_none() {
            vec![self.start_next()]
        } else {
            Vec::new()
        }
    }

    fn on_start_next_accepted(&mut self, payload: &[u8]) -> Vec<Action> {
        let Ok(message) = serde_json::from_slice::<Value>(payload) else {
            return Vec::new();
        };
        // No execution: nothing is pending.
        let Some(execution) = message.get("execution").filter(|e| e.is_object()) else {
            return Vec::new();
        };
        let Some(job_id) = execution["jobId"].as_str() else {
            return Vec::new();
        };
        let execution_number = execution["executionNumber"].as_u64().unwrap_or(0);
        // Never two installs at once: another job waits for the start-next that follows
        // this one's end.
        if self.current.is_some()
            || self
                .answered
                .contains(&(job_id.to_owned(), execution_number))
        {
            return Vec::new();
        }
        let document = match read_document(&execution["jobDocument"]) {
            Ok(document) => document,
            Err(reason) => {
                return self.terminal(
                    job_id,
                    execution_number,
                    "REJECTED",
                    json!({"reason": reason}),
                )
            }
        };
        if let Some(reason) = self.refusal(&document) {
            return self.terminal(
                job_id,
                execution_number,
                "REJECTED",
                json!({"reason": reason}),
            );
        }
        let Some(public_key) = self.config.public_key.clone() else {
            return self.terminal(
                job_id,
                execution_number,
                "FAILED",
                json!({"reason": "no firmware signing key configured"}),
            );
        };
        // Both rolls every attempt, so one device's sequence does not depend on outcomes.
        let install_fails = self.rng.f64() < self.config.failure_rate;
        let selftest_fails = self.rng.f64() < self.config.selftest_failure_rate;
        let fault = if install_fails {
            Some(InjectedFault::Install)
        } else if selftest_fails {
            Some(InjectedFault::SelfTest)
        } else {
            None
        };
        self.current = Some(CurrentJob {
            job_id: job_id.to_owned(),
            execution_number,
            version: document.firmware_version.clone(),
            fault,
        });
        vec![Action::Install(Install {
            job_id: job_id.to_owned(),
            document,
            public_key,
        })]
    }

    /// Why this device will not take `document` at all, before downloading anything: an
    /// image for another type, or an older release that is not an explicit rollback.
    fn refusal(&self, document: &JobDocument) -> Option<String> {
        if let Some(own) = &self.config.device_type {
            if document.device_type != *own {
                return Some(format!(
                    "firmware for device type {:?}; this device is {own:?}",
                    document.device_type
                ));
            }
        }
        (firmware::is_downgrade(&self.firmware_version, &document.firmware_version)
            && !document.rollback)
            .then(|| {
                format!(
                    "downgrade from {} to {} without rollback",
                    self.firmware_version, document.firmware_version
                )
            })
    }

    fn on_update_answer(&mut self, job_id: &str, accepted: bool, payload: &[u8]) -> Vec<Action> {
        tracing::debug!(
            device = %self.device_id,
            job_id,
            accepted,
            answer = %String::from_utf8_lossy(payload),
            "job update answered"
        );
        if accepted || self.current_job() != Some(job_id) {
            return Vec::new();
        }
        self.current = None;
        vec![Action::Abandon {
            job_id: job_id.to_owned(),
        }]
    }

    /// The job's last update, then a start-next for whatever is queued behind it.
    fn terminal(
        &mut self,
        job_id: &str,
        execution_number: u64,
        status: &str,
        mut details: Value,
    ) -> Vec<Action> {
        match status {
            "SUCCEEDED" => self.tally.succeeded += 1,
            "REJECTED" => self.tally.rejected += 1,
            _ => self.tally.failed += 1,
        }
        if let Some(Value::String(reason)) = details.get_mut("reason") {
            if let Some((cut, _)) = reason.char_indices().nth(MAX_REASON_CHARS) {
                reason.truncate(cut);
            }
        }
        self.answered.insert((job_id.to_owned(), execution_number));
        vec![
            publish(
                topics::update(&self.device_id, job_id),
                &json!({"status": status, "statusDetails": details}),
            ),
            self.start_next(),
        ]
    }

    fn start_next(&self) -> Action {
        publish(
            topics::start_next(&self.device_id),
            &json!({"statusDetails": {"step": "downloading"}}),
        )
    }
}

fn publish(topic: String, body: &Value) -> Action {
    Action::Publish {
        topic,
        payload: body.to_string().into_bytes(),
    }
}

/// `(job id, accepted)` of an answer to one of this device's job updates.
fn update_answer<'t>(device_id: &str, topic: &'t str) -> Option<(&'t str, bool)> {
    let rest = topic
        .strip_prefix("$aws/things/")?
        .strip_prefix(device_id)?
        .strip_prefix("/jobs/")?;
    if let Some(job_id) = rest.strip_suffix("/update/accepted") {
        Some((job_id, true))
    } else {
        rest.strip_suffix("/update/rejected")
            .map(|job_id| (job_id, false))
    }
}

/// The job document of an execution, or why the device will not run it.
fn read_document(document: &Value) -> Result<JobDocument, String> {
    // Some implementations hand the document over as a JSON string.
    let parsed;
    let document = match document {
        Value::String(text) => {
            parsed = serde_json::from_str::<Value>(text)
                .map_err(|err| format!("job document is not JSON: {err}"))?;
            &parsed
        }
        other => other,
    };
    match document.get("operation").and_then(Value::as_str) {
        Some(FIRMWARE_OPERATION) => {}
        Some(other) => return Err(format!("unknown operation {other:?}")),
        None => return Err("job document has no operation".into()),
    }
    serde_json::from_value(document.clone())
        .map_err(|err| format!("bad firmware job document: {err}"))
}

/// Whether `image` is what `document` describes, signed with `public_key` (base64 of the
/// raw Ed25519 key); the error names what did not match.
pub fn verify_image(document: &JobDocument, image: &[u8], public_key: &str) -> Result<(), String> {
    let (sha256, size) = firmware::digest_of(image);
    if size != document.size {
        return Err(format!(
            "size mismatch: got {size} bytes, document says {}",
            document.size
        ));
    }
    if !sha256.eq_ignore_ascii_case(&document.sha256) {
        return Err(format!(
            "sha256 mismatch: got {sha256}, document says {}",
            document.sha256
        ));
    }
    let manifest = firmware::Manifest {
        version: &document.firmware_version,
        device_type: &document.device_type,
        sha256: &document.sha256,
        size: document.size,
    };
    firmware::verify_manifest(public_key, &manifest, &document.signature)
        .map_err(|err| format!("signature check failed: {err}"))
}

impl Install {
    /// Downloads the image, checks it and "installs" it; `Ok` means the image was good.
    /// Injected faults are the agent's to apply.
    pub async fn run(&self, http: &reqwest::Client) -> Result<(), String> {
        let image = download(http, &self.document.url, self.document.size).await?;
        verify_image(&self.document, &image, &self.public_key)?;
        tokio::time::sleep(INSTALL_TIME).await;
        Ok(())
    }
}

/// The image at `url`, sent unchanged: a presigned URL's signature covers it as written.
async fn download(http: &reqwest::Client, url: &str, size: u64) -> Result<Vec<u8>, String> {
    let failed = |err: reqwest::Error| format!("download failed: {}", error_chain(err));
    let mut response = http.get(url).send().await.map_err(failed)?;
    let status = response.status();
    if !status.is_success() {
        // S3 says why in an XML <Code>, e.g. SignatureDoesNotMatch or AccessDenied.
        let body = response.text().await.unwrap_or_default();
        let code = body
            .split_once("<Code>")
            .and_then(|(_, rest)| rest.split_once("</Code>"))
            .map(|(code, _)| format!(" ({code})"))
            .unwrap_or_default();
        return Err(format!("download failed: HTTP {status}{code}"));
    }
    let mut image = Vec::with_capacity(size.min(firmware::MAX_SIZE) as usize);
    while let Some(chunk) = response.chunk().await.map_err(failed)? {
        image.extend_from_slice(&chunk);
        // A byte past the documented size is enough to know the image is wrong.
        if image.len() as u64 > size {
            return Err(format!(
                "size mismatch: got more than {size} bytes, document says {size}"
            ));
        }
    }
    Ok(image)
}

/// The error and its causes, without the URL (a presigned URL is long and a credential).
fn error_chain(err: reqwest::Error) -> String {
    let err = err.without_url();
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::{engine::general_purpose::STANDARD, Engine as _};
    use ring::signature::{Ed25519KeyPair, KeyPair};

    const IMAGE: &[u8] = b"firmware 2.0.0 image bytes";

    /// A key pair: (PKCS#8 private key, base64 public key).
    fn keys() -> (Vec<u8>, String) {
        let pkcs8 = Ed25519KeyPair::generate_pkcs8(&ring::rand::SystemRandom::new()).unwrap();
        let pair = Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).unwrap();
        (
            pkcs8.as_ref().to_vec(),
            STANDARD.encode(pair.public_key().as_ref()),
        )
    }

    /// The signature over the document's manifest with `pkcs8`.
    fn sign(pkcs8: &[u8], doc: &JobDocument) -> String {
        let manifest = firmware::Manifest {
            version: &doc.firmware_version,
            device_type: &doc.device_type,
            sha256: &doc.sha256,
            size: doc.size,
        };
        firmware::sign_manifest(pkcs8, &manifest).unwrap()
    }

    fn document(pkcs8: &[u8], version: &str) -> JobDocument {
        let (sha256, size) = firmware::digest_of(IMAGE);
        let mut doc = JobDocument {
            operation: FIRMWARE_OPERATION.into(),
            rollout_id: "r1".into(),
            firmware_version: version.into(),
            device_type: "env-sensor".into(),
            url: "http://localhost:4566/fw/firmware/2.0.0/x.bin".into(),
            signature: String::new(),
            sha256,
            size,
            rollback: false,
        };
        doc.signature = sign(pkcs8, &doc);
        doc
    }

    fn agent(config: OtaConfig) -> OtaAgent {
        OtaAgent::new("d1", "1.0.0", config, 7)
    }

    fn with_key() -> OtaConfig {
        OtaConfig {
            public_key: Some(keys().1),
            ..OtaConfig::default()
        }
    }

    fn accepted(job_id: &str, job_document: Value) -> Vec<u8> {
        json!({"timestamp": 1, "execution": {
            "jobId": job_id, "status": "IN_PROGRESS", "queuedAt": 1, "startedAt": 2,
            "versionNumber": 2, "executionNumber": 1, "jobDocument": job_document}})
        .to_string()
        .into_bytes()
    }

    fn publishes(actions: &[Action]) -> Vec<(String, Value)> {
        actions
            .iter()
            .map(|action| match action {
                Action::Publish { topic, payload } => {
                    (topic.clone(), serde_json::from_slice(payload).unwrap())
                }
                other => panic!("expected a publish, got {other:?}"),
            })
            .collect()
    }

    /// Takes job `job_id` with a good document and returns the install it started.
    fn take(agent: &mut OtaAgent, job_id: &str) -> Install {
        let doc = document(&keys().0, "2.0.0");
        let out = agent.on_message(
            &topics::start_next_accepted("d1"),
            &accepted(job_id, serde_json::to_value(doc).unwrap()),
        );
        match out.as_slice() {
            [Action::Install(install)] => install.clone(),
            other => panic!("expected an install, got {other:?}"),
        }
    }

    #[test]
    fn other_types_and_downgrades_without_rollback_are_refused_before_download() {
        let config = OtaConfig {
            device_type: Some("env-sensor".into()),
            ..with_key()
        };
        let (pkcs8, _) = keys();
        let offer = |agent: &mut OtaAgent, doc: JobDocument| {
            agent.on_message(
                &topics::start_next_accepted("d1"),
                &accepted("j1", serde_json::to_value(doc).unwrap()),
            )
        };
        let refused = |actions: Vec<Action>| -> String {
            // The refusal, then the ask for the next job.
            let published = publishes(&actions);
            assert_eq!(published.len(), 2, "{published:?}");
            assert_eq!(published[0].1["status"], "REJECTED", "{published:?}");
            published[0].1["statusDetails"]["reason"]
                .as_str()
                .unwrap()
                .to_owned()
        };
        let mut other_type = document(&pkcs8, "2.0.0");
        other_type.device_type = "dc-meter".into();
        other_type.signature = sign(&pkcs8, &other_type);
        let reason = refused(offer(&mut agent(config.clone()), other_type));
        assert!(reason.contains("dc-meter"), "{reason}");
        // Running 1.0.0: a signed 0.9.0 is an older release.
        let older = document(&pkcs8, "0.9.0");
        let reason = refused(offer(&mut agent(config.clone()), older.clone()));
        assert!(reason.contains("downgrade"), "{reason}");
        // Positive controls: the same image as an explicit rollback, and a newer release
        // of this device's type, are taken.
        let rollback = JobDocument {
            rollback: true,
            ..older
        };
        assert!(matches!(
            offer(&mut agent(config.clone()), rollback).as_slice(),
            [Action::Install(_)]
        ));
        assert!(matches!(
            offer(&mut agent(config), document(&pkcs8, "2.0.0")).as_slice(),
            [Action::Install(_)]
        ));
    }

    #[test]
    fn a_notification_asks_for_the_next_job_unless_busy() {
        let mut agent = agent(with_key());
        assert_eq!(agent.subscriptions().len(), 5);
        assert_eq!(
            publishes(&agent.on_connected()),
            [("$aws/things/d1/jobs/start-next".to_owned(), json!({}))]
        );
        let notify = json!({"timestamp": 1, "execution": {"jobId": "j1", "status": "QUEUED",
            "queuedAt": 1, "versionNumber": 1, "executionNumber": 1, "jobDocument": {}}});
        let out = publishes(&agent.on_message(
            "$aws/things/d1/jobs/notify-next",
            notify.to_string().as_bytes(),
        ));
        assert_eq!(
            out,
            [(
                "$aws/things/d1/jobs/start-next".to_owned(),
                json!({"statusDetails": {"step": "downloading"}})
            )]
        );
        // Nothing pending; another device's topic; garbage.
        assert!(agent
            .on_message("$aws/things/d1/jobs/notify-next", br#"{"timestamp":2}"#)
            .is_empty());
        assert!(agent
            .on_message(
                "$aws/things/d2/jobs/notify-next",
                notify.to_string().as_bytes()
            )
            .is_empty());
        assert!(agent
            .on_message("$aws/things/d1/jobs/notify-next", b"{")
            .is_empty());

        take(&mut agent, "j1");
        assert_eq!(agent.current_job(), Some("j1"));
        assert!(agent
            .on_message(
                "$aws/things/d1/jobs/notify-next",
                notify.to_string().as_bytes()
            )
            .is_empty());
    }

    #[test]
    fn an_accepted_start_installs_once() {
        let mut agent = agent(with_key());
        let install = take(&mut agent, "j1");
        assert_eq!(install.job_id, "j1");
        assert_eq!(install.document.firmware_version, "2.0.0");
        assert_eq!(Some(&install.public_key), agent.config.public_key.as_ref());
        // The same execution again, or another job while busy: nothing.
        let doc = serde_json::to_value(&install.document).unwrap();
        let topic = topics::start_next_accepted("d1");
        assert!(agent
            .on_message(&topic, &accepted("j1", doc.clone()))
            .is_empty());
        assert!(agent.on_message(&topic, &accepted("j2", doc)).is_empty());
        // Idle answer.
        assert!(agent.on_message(&topic, br#"{"timestamp":3}"#).is_empty());
        assert_eq!(agent.current_job(), Some("j1"));
    }

    #[test]
    fn documents_the_device_cannot_run_are_rejected() {
        let mut agent = agent(with_key());
        let topic = topics::start_next_accepted("d1");
        let out = publishes(&agent.on_message(
            &topic,
            &accepted("j1", json!({"operation": "factory_reset"})),
        ));
        assert_eq!(out.len(), 2);
        assert_eq!(out[0].0, "$aws/things/d1/jobs/j1/update");
        assert_eq!(
            out[0].1,
            json!({"status": "REJECTED", "statusDetails": {"reason": "unknown operation \"factory_reset\""}})
        );
        assert_eq!(out[1].0, "$aws/things/d1/jobs/start-next");

        let out = publishes(&agent.on_message(
            &topic,
            &accepted("j2", json!({"operation": "firmware_update", "url": 3})),
        ));
        assert_eq!(out[0].1["status"], "REJECTED");
        assert!(out[0].1["statusDetails"]["reason"]
            .as_str()
            .unwrap()
            .starts_with("bad firmware job document"));
        assert_eq!(agent.current_job(), None);
        assert_eq!(
            agent.tally,
            JobTally {
                rejected: 2,
                ..JobTally::default()
            }
        );
        // A late duplicate of an answered execution is not answered again.
        assert!(agent
            .on_message(
                &topic,
                &accepted("j1", json!({"operation": "factory_reset"}))
            )
            .is_empty());
    }

    #[test]
    fn without_a_signing_key_every_firmware_job_fails() {
        let mut agent = agent(OtaConfig::default());
        let doc = serde_json::to_value(document(&keys().0, "2.0.0")).unwrap();
        let out =
            publishes(&agent.on_message(&topics::start_next_accepted("d1"), &accepted("j1", doc)));
        assert_eq!(
            out[0].1,
            json!({"status": "FAILED", "statusDetails": {"reason": "no firmware signing key configured"}})
        );
        assert_eq!(agent.firmware_version, "1.0.0");
        assert_eq!(agent.tally.failed, 1);
    }

    #[test]
    fn a_good_install_is_reported_on_the_job_and_the_shadow() {
        let mut agent = agent(with_key());
        take(&mut agent, "j1");
        let out = publishes(&agent.finished("j1", Ok(())));
        assert_eq!(
            out,
            [
                (
                    "$aws/things/d1/jobs/j1/update".to_owned(),
                    json!({"status": "SUCCEEDED", "statusDetails": {
                        "firmware_version": "2.0.0", "previous_version": "1.0.0"}})
                ),
                (
                    "$aws/things/d1/shadow/update".to_owned(),
                    json!({"state": {"reported": {"firmware_version": "2.0.0"}}})
                ),
                (
                    "$aws/things/d1/jobs/start-next".to_owned(),
                    json!({"statusDetails": {"step": "downloading"}})
                ),
            ]
        );
        assert_eq!(agent.firmware_version, "2.0.0");
        assert_eq!(agent.current_job(), None);
        assert_eq!(agent.tally.succeeded, 1);
        // A stale result for a job no longer current changes nothing.
        assert!(agent.finished("j1", Ok(())).is_empty());
    }

    #[test]
    fn a_failed_install_keeps_the_version() {
        let mut agent = agent(with_key());
        take(&mut agent, "j1");
        let out =
            publishes(&agent.finished("j1", Err("sha256 mismatch: got a, document says b".into())));
        assert_eq!(out.len(), 2);
        assert_eq!(
            out[0].1,
            json!({"status": "FAILED", "statusDetails": {"reason": "sha256 mismatch: got a, document says b"}})
        );
        assert_eq!(out[1].0, "$aws/things/d1/jobs/start-next");
        assert_eq!(agent.firmware_version, "1.0.0");
        assert_eq!(agent.current_job(), None);
        assert_eq!(agent.tally.failed, 1);
    }

    #[test]
    fn injected_faults_fail_good_images() {
        let mut broken = agent(OtaConfig {
            failure_rate: 1.0,
            ..with_key()
        });
        take(&mut broken, "j1");
        let out = publishes(&broken.finished("j1", Ok(())));
        assert_eq!(
            out[0].1["statusDetails"]["reason"],
            "install failed (injected)"
        );
        assert_eq!(broken.firmware_version, "1.0.0");

        let mut flaky = agent(OtaConfig {
            selftest_failure_rate: 1.0,
            ..with_key()
        });
        take(&mut flaky, "j1");
        let out = publishes(&flaky.finished("j1", Ok(())));
        assert_eq!(
            out[0].1["statusDetails"]["reason"],
            "self-test failed after installing 2.0.0; reverted to 1.0.0"
        );
        assert_eq!(flaky.firmware_version, "1.0.0");
        // A bad image is reported as such, whatever the dice said.
        take(&mut flaky, "j2");
        let out = publishes(&flaky.finished("j2", Err("download failed: HTTP 403".into())));
        assert_eq!(
            out[0].1["statusDetails"]["reason"],
            "download failed: HTTP 403"
        );
    }

    #[test]
    fn fault_rates_are_per_attempt_and_repeatable() {
        let config = OtaConfig {
            failure_rate: 0.5,
            ..with_key()
        };
        let outcomes = |seed| {
            let mut agent = OtaAgent::new("d1", "1.0.0", config.clone(), seed);
            (0..40)
                .map(|n| {
                    let job = format!("j{n}");
                    take(&mut agent, &job);
                    publishes(&agent.finished(&job, Ok(())))[0].1["status"] == "SUCCEEDED"
                })
                .collect::<Vec<_>>()
        };
        let first = outcomes(3);
        assert_eq!(first, outcomes(3));
        let succeeded = first.iter().filter(|ok| **ok).count();
        assert!((8..=32).contains(&succeeded), "{succeeded} of 40");
    }

    #[test]
    fn a_rejected_update_for_the_current_job_abandons_it() {
        let mut agent = agent(with_key());
        take(&mut agent, "j1");
        assert!(agent
            .on_message("$aws/things/d1/jobs/j0/update/rejected", b"{}")
            .is_empty());
        assert!(agent
            .on_message("$aws/things/d1/jobs/j1/update/accepted", b"{}")
            .is_empty());
        assert_eq!(agent.current_job(), Some("j1"));
        let out = agent.on_message(
            "$aws/things/d1/jobs/j1/update/rejected",
            br#"{"code":"InvalidStateTransition"}"#,
        );
        assert_eq!(
            out,
            [Action::Abandon {
                job_id: "j1".into()
            }]
        );
        assert_eq!(agent.current_job(), None);
        assert!(agent.finished("j1", Ok(())).is_empty());
        assert_eq!(agent.firmware_version, "1.0.0");
    }

    #[test]
    fn long_reasons_are_cut() {
        let mut agent = agent(with_key());
        take(&mut agent, "j1");
        let out = publishes(&agent.finished("j1", Err("é".repeat(2000))));
        let reason = out[0].1["statusDetails"]["reason"].as_str().unwrap();
        assert_eq!(reason.chars().count(), MAX_REASON_CHARS);
    }

    #[test]
    fn documents_may_arrive_as_strings() {
        let doc = document(&keys().0, "2.0.0");
        let text = Value::String(serde_json::to_string(&doc).unwrap());
        assert_eq!(read_document(&text), Ok(doc));
        assert!(read_document(&json!({"rollout_id": "r1"})).is_err());
    }

    #[test]
    fn images_are_checked_against_the_document_and_the_key() {
        let (pkcs8, public) = keys();
        let doc = document(&pkcs8, "2.0.0");
        assert_eq!(verify_image(&doc, IMAGE, &public), Ok(()));

        let mut tampered = IMAGE.to_vec();
        tampered[0] ^= 1;
        let err = verify_image(&doc, &tampered, &public).unwrap_err();
        assert!(err.starts_with("sha256 mismatch: got "), "{err}");
        assert!(
            err.ends_with(&format!("document says {}", doc.sha256)),
            "{err}"
        );

        let err = verify_image(&doc, &IMAGE[1..], &public).unwrap_err();
        assert_eq!(
            err,
            format!(
                "size mismatch: got {} bytes, document says {}",
                IMAGE.len() - 1,
                IMAGE.len()
            )
        );

        // Signed by someone else's key: the digest matches, the signature does not.
        let (forger, _) = keys();
        let forged = JobDocument {
            signature: sign(&forger, &doc),
            ..doc.clone()
        };
        let err = verify_image(&forged, IMAGE, &public).unwrap_err();
        assert!(err.starts_with("signature check failed"), "{err}");

        // A valid image and signature, labelled as another version or for another type.
        for relabelled in [
            JobDocument {
                firmware_version: "9.0.0".into(),
                ..doc.clone()
            },
            JobDocument {
                device_type: "dc-meter".into(),
                ..doc.clone()
            },
        ] {
            let err = verify_image(&relabelled, IMAGE, &public).unwrap_err();
            assert!(err.starts_with("signature check failed"), "{err}");
        }

        // An attacker's image with a matching document but the real signature of another.
        let (evil_sha, evil_size) = firmware::digest_of(b"evil");
        let swapped = JobDocument {
            sha256: evil_sha,
            size: evil_size,
            ..doc
        };
        assert!(verify_image(&swapped, b"evil", &public)
            .unwrap_err()
            .starts_with("signature check failed"));
    }

    #[test]
    fn update_answers_name_their_job() {
        assert_eq!(
            update_answer("d1", "$aws/things/d1/jobs/j-7/update/accepted"),
            Some(("j-7", true))
        );
        assert_eq!(
            update_answer("d1", "$aws/things/d1/jobs/j-7/update/rejected"),
            Some(("j-7", false))
        );
        assert_eq!(
            update_answer("d1", "$aws/things/d10/jobs/j-7/update/rejected"),
            None
        );
        assert_eq!(
            update_answer("d1", "$aws/things/d1/jobs/start-next/accepted"),
            None
        );
    }
}
