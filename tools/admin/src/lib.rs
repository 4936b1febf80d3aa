//! A client of the admin API: gets an access token with the OAuth2 client-credentials
//! grant (Cognito's token endpoint, or the emulator's), keeps it until shortly before it
//! expires, and sends JSON requests with it. The CLI and the end-to-end tests use it.

use std::{
    sync::Mutex,
    time::{Duration, Instant},
};

use anyhow::{bail, Context, Result};
use reqwest::Method;
use serde::Deserialize;
use serde_json::Value;

/// Where the API is and who the caller is.
#[derive(Clone, Debug)]
pub struct Settings {
    /// Base URL of the HTTP API (`https://{api}.execute-api.{region}.amazonaws.com`).
    pub api_url: String,
    /// OAuth2 token endpoint (`https://{domain}.auth.{region}.amazoncognito.com/oauth2/token`).
    pub token_url: String,
    pub client_id: String,
    pub client_secret: String,
}

impl Settings {
    /// From `HUB_API_URL`, `HUB_TOKEN_URL`, `HUB_CLIENT_ID`, `HUB_CLIENT_SECRET`.
    pub fn from_env() -> Result<Self> {
        let var = |name: &str| {
            std::env::var(name).with_context(|| {
                format!("{name} is not set (source the stack's stack.env, or see the README)")
            })
        };
        Ok(Self {
            api_url: var("HUB_API_URL")?,
            token_url: var("HUB_TOKEN_URL")?,
            client_id: var("HUB_CLIENT_ID")?,
            client_secret: var("HUB_CLIENT_SECRET")?,
        })
    }
}

/// An API answer: the status and the JSON body (errors included, as the API sends them).
#[derive(Clone, Debug, PartialEq)]
pub struct Reply {
    pub status: u16,
    pub body: Value,
    /// `X-Data-Source`: `simulation` when the answer holds simulated devices' data.
    pub data_source: Option<String>,
}

impl Reply {
    /// The body if the status is 2xx; otherwise an error carrying the API's message.
    pub fn ok(self) -> Result<Value> {
        if (200..300).contains(&self.status) {
            return Ok(self.body);
        }
        let error = &self.body["error"];
        match (error["message"].as_str(), error["field"].as_str()) {
            (Some(message), Some(field)) => bail!("{} ({field}): {message}", self.status),
            (Some(message), None) => bail!("{}: {message}", self.status),
            _ => bail!("{}: {}", self.status, self.body),
        }
    }
}

#[derive(Deserialize)]
struct TokenResponse {
    access_token: String,
    expires_in: Option<u64>,
}

pub struct AdminClient {
    http: reqwest::Client,
    settings: Settings,
    token: Mutex<Option<(String, Instant)>>,
}

impl AdminClient {
    pub fn new(settings: Settings) -> Result<Self> {
        // One crypto provider for the process: ring, as the rest of the hub uses.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(60))
            .build()
            .context("building the HTTP client")?;
        Ok(Self {
            http,
            settings,
            token: Mutex::new(None),
        })
    }

    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// A valid access token, fetched again a minute before the cached one expires.
    pub async fn token(&self) -> Result<String> {
        if let Some((token, until)) = self.token.lock().expect("token lock").as_ref() {
            if Instant::now() < *until {
                return Ok(token.clone());
            }
        }
        let response = self
            .http
            .post(&self.settings.token_url)
            .basic_auth(&self.settings.client_id, Some(&self.settings.client_secret))
            .form(&[("grant_type", "client_credentials")])
            .send()
            .await
            .with_context(|| format!("POST {}", self.settings.token_url))?;
        let status = response.status();
        let text = response.text().await?;
        if !status.is_success() {
            bail!("the token endpoint refused the client credentials ({status}): {text}");
        }
        let token: TokenResponse =
            serde_json::from_str(&text).context("the token endpoint's answer")?;
        let lifetime = Duration::from_secs(token.expires_in.unwrap_or(300).saturating_sub(60));
        *self.token.lock().expect("token lock") =
            Some((token.access_token.clone(), Instant::now() + lifetime));
        Ok(token.access_token)
    }

    /// PUTs `body` as the API's `upload` answer says: to its presigned URL, with its
    /// signed headers (no token: the URL carries its signature).
    pub async fn upload(&self, upload: &Value, body: Vec<u8>) -> Result<()> {
        let url = upload["url"]
            .as_str()
            .context("no upload URL in the answer")?;
        let mut request = self.http.put(url);
        for (name, value) in upload["headers"].as_object().into_iter().flatten() {
            // reqwest sets the length from the body itself.
            if name != "content-length" {
                request = request.header(name, value.as_str().unwrap_or_default());
            }
        }
        let response = request.body(body).send().await.context("uploading")?;
        let status = response.status();
        if !status.is_success() {
            bail!("upload refused ({status}): {}", response.text().await?);
        }
        Ok(())
    }

    /// Registers a firmware image (its digest signed with the PKCS#8 Ed25519 key
    /// `signing_key`), uploads it, and returns the artifact once the hub has checked the
    /// upload (`ready` or `rejected`), or after `wait` if it has not.
    pub async fn add_firmware(
        &self,
        version: &str,
        device_type: &str,
        image: Vec<u8>,
        signing_key: &[u8],
        wait: Duration,
    ) -> Result<Value> {
        let (sha256, size) = hub_fleet::firmware::digest_of(&image);
        let signature = hub_fleet::firmware::sign_manifest(
            signing_key,
            &hub_fleet::firmware::Manifest {
                version,
                device_type,
                sha256: &sha256,
                size,
            },
        )?;
        let registered = self
            .post(
                "/v1/firmware",
                &serde_json::json!({"version": version, "device_type": device_type,
                    "sha256": sha256, "size": size, "signature": signature}),
            )
            .await?
            .ok()?;
        self.upload(&registered["upload"], image).await?;
        let path = format!("/v1/firmware/{version}");
        let deadline = Instant::now() + wait;
        loop {
            let artifact = self.get(&path).await?.ok()?;
            if artifact["status"] != "pending_upload" || Instant::now() >= deadline {
                return Ok(artifact);
            }
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    }

    /// Reads rollout `rollout_id` every `every` until it is no longer in progress, calling
    /// `on_progress` with every reading (devices included); returns the last reading,
    /// whatever its status (see [`rollout::completed`]). With a `timeout`, a rollout still
    /// in progress after it is an error.
    pub async fn watch_rollout(
        &self,
        rollout_id: &str,
        every: Duration,
        timeout: Option<Duration>,
        mut on_progress: impl FnMut(&Value),
    ) -> Result<Value> {
        let path = format!("/v1/ota/rollouts/{rollout_id}");
        let deadline = timeout.map(|t| Instant::now() + t);
        loop {
            let rollout = self.get(&path).await?.ok()?;
            on_progress(&rollout);
            if rollout["status"] != hub_fleet::rollout::RolloutStatus::InProgress.as_str() {
                return Ok(rollout);
            }
            if deadline.is_some_and(|d| Instant::now() >= d) {
                bail!(
                    "rollout {rollout_id} still in progress after {:?}: {}",
                    timeout.unwrap_or_default(),
                    rollout["counts"]
                );
            }
            tokio::time::sleep(every).await;
        }
    }

    /// Sends one request with a bearer token; `path` starts with `/v1/`.
    pub async fn call(&self, method: Method, path: &str, body: Option<&Value>) -> Result<Reply> {
        let token = self.token().await?;
        self.call_with_token(method, path, body, Some(&token)).await
    }

    /// As `call`, with the given token (or none): for tests of the authorizer.
    pub async fn call_with_token(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
        token: Option<&str>,
    ) -> Result<Reply> {
        let url = format!("{}{path}", self.settings.api_url.trim_end_matches('/'));
        let mut request = self.http.request(method.clone(), &url);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = request
            .send()
            .await
            .with_context(|| format!("{method} {url}"))?;
        let status = response.status().as_u16();
        let data_source = response
            .headers()
            .get("x-data-source")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let text = response.text().await?;
        let body = if text.trim().is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        };
        Ok(Reply {
            status,
            body,
            data_source,
        })
    }

    pub async fn get(&self, path: &str) -> Result<Reply> {
        self.call(Method::GET, path, None).await
    }

    pub async fn post(&self, path: &str, body: &Value) -> Result<Reply> {
        self.call(Method::POST, path, Some(body)).await
    }

    pub async fn put(&self, path: &str) -> Result<Reply> {
        self.call(Method::PUT, path, None).await
    }

    pub async fn patch(&self, path: &str, body: &Value) -> Result<Reply> {
        self.call(Method::PATCH, path, Some(body)).await
    }

    pub async fn delete(&self, path: &str) -> Result<Reply> {
        self.call(Method::DELETE, path, None).await
    }
}

/// A device's credentials as files: `key.pem` (0600, made here, never sent), `cert.pem`,
/// `certificate-id`.
pub mod console;
pub mod replay;
pub mod users;

pub mod files {
    use std::path::Path;

    use anyhow::{Context, Result};

    pub fn write_private(path: &Path, bytes: &[u8]) -> Result<()> {
        hub_mqtt::write_private(path, bytes).with_context(|| format!("writing {}", path.display()))
    }

    pub fn write_credentials(
        dir: &Path,
        key_pem: &str,
        cert_pem: &str,
        cert_id: &str,
    ) -> Result<()> {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        write_private(&dir.join("key.pem"), key_pem.as_bytes())?;
        std::fs::write(dir.join("cert.pem"), cert_pem)?;
        std::fs::write(dir.join("certificate-id"), cert_id)?;
        Ok(())
    }
}

/// Rollouts as the API shows them (`GET /v1/ota/rollouts/{id}`): counts per device status,
/// and with one rollout, its devices.
pub mod rollout {
    use anyhow::{bail, Result};
    use hub_fleet::rollout::{DeviceStatus, RollbackStatus, RolloutStatus};
    use serde_json::Value;

    /// Every status a device of a rollout can be in, in the order of its life.
    fn device_statuses() -> impl Iterator<Item = &'static str> {
        DeviceStatus::ALL.into_iter().map(DeviceStatus::as_str)
    }

    /// Devices in `status`, from the rollout's counts (0 if absent).
    pub fn count(rollout: &Value, status: &str) -> u64 {
        rollout["counts"][status].as_u64().unwrap_or(0)
    }

    /// Devices with an outcome: the group less the devices still waiting.
    pub fn finished(rollout: &Value) -> u64 {
        let waiting: u64 = DeviceStatus::ALL
            .into_iter()
            .filter(|s| s.is_pending())
            .map(|s| count(rollout, s.as_str()))
            .sum();
        rollout["device_count"]
            .as_u64()
            .unwrap_or(0)
            .saturating_sub(waiting)
    }

    /// One line: devices per status (those with any), and rollbacks if there were some,
    /// e.g. `50 devices: 48 succeeded, 2 failed; rollbacks: 3 rolled_back`. Tallied from
    /// the devices when the reading has them, otherwise from the counts.
    pub fn device_summary(rollout: &Value) -> String {
        let tally = |statuses: &mut dyn Iterator<Item = &'static str>, of: &dyn Fn(&str) -> u64| {
            statuses
                .map(|s| (s, of(s)))
                .filter(|(_, n)| *n > 0)
                .map(|(s, n)| format!("{n} {s}"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let (total, statuses, rollbacks) = match rollout["devices"].as_array() {
            Some(devices) => {
                let with = |field: &str, value: &str| {
                    devices.iter().filter(|d| d[field] == value).count() as u64
                };
                (
                    devices.len() as u64,
                    tally(&mut device_statuses(), &|s| with("status", s)),
                    tally(
                        &mut RollbackStatus::ALL.into_iter().map(RollbackStatus::as_str),
                        &|s| with("rollback", s),
                    ),
                )
            }
            None => (
                rollout["device_count"].as_u64().unwrap_or(0),
                tally(&mut device_statuses(), &|s| count(rollout, s)),
                tally(
                    &mut std::iter::once(RollbackStatus::RolledBack.as_str()),
                    &|s| count(rollout, s),
                ),
            ),
        };
        let mut line = format!("{total} devices: {statuses}");
        if !rollbacks.is_empty() {
            line.push_str(&format!("; rollbacks: {rollbacks}"));
        }
        line
    }

    /// Ok if the rollout completed; otherwise an error naming its status and reason.
    pub fn completed(rollout: &Value) -> Result<()> {
        let status = rollout["status"].as_str().unwrap_or("unknown");
        if status == RolloutStatus::Completed.as_str() {
            return Ok(());
        }
        let id = rollout["rollout_id"].as_str().unwrap_or_default();
        match rollout["reason"].as_str() {
            Some(reason) => bail!("rollout {id} is {status}: {reason}"),
            None => bail!("rollout {id} is {status}"),
        }
    }

    #[cfg(test)]
    mod tests {
        use serde_json::json;

        use super::*;

        fn reading() -> Value {
            json!({
                "rollout_id": "ota-1", "status": "aborted", "device_count": 5,
                "reason": "4 of 5 finished devices failed",
                "counts": {"queued": 1, "in_progress": 0, "retry_scheduled": 0, "succeeded": 1,
                           "failed": 2, "timed_out": 1, "rejected": 0, "cancelled": 0,
                           "rolled_back": 1},
            })
        }

        #[test]
        fn finished_devices_are_the_group_less_the_waiting() {
            assert_eq!(finished(&reading()), 4);
            assert_eq!(finished(&json!({})), 0);
        }

        #[test]
        fn the_summary_tallies_devices_or_else_counts() {
            let mut rollout = reading();
            assert_eq!(
                device_summary(&rollout),
                "5 devices: 1 queued, 1 succeeded, 2 failed, 1 timed_out; rollbacks: 1 rolled_back"
            );
            rollout["devices"] = json!([
                {"device_id": "a", "status": "succeeded", "rollback": "rolled_back"},
                {"device_id": "b", "status": "succeeded"},
                {"device_id": "c", "status": "cancelled"},
            ]);
            assert_eq!(
                device_summary(&rollout),
                "3 devices: 2 succeeded, 1 cancelled; rollbacks: 1 rolled_back"
            );
        }

        #[test]
        fn only_a_completed_rollout_is_ok() {
            let error = completed(&reading()).unwrap_err().to_string();
            assert_eq!(
                error,
                "rollout ota-1 is aborted: 4 of 5 finished devices failed"
            );
            assert!(completed(&json!({"rollout_id": "ota-1", "status": "completed"})).is_ok());
            assert_eq!(
                completed(&json!({"rollout_id": "ota-1", "status": "cancelled"}))
                    .unwrap_err()
                    .to_string(),
                "rollout ota-1 is cancelled"
            );
        }
    }
}
