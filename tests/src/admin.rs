//! The admin API as its callers reach it: a client per role with tokens from the stack's
//! Cognito, and the few Cognito control-plane calls the auth tests need.

use anyhow::{Context, Result};
use hub_admin::{AdminClient, Settings};
use hub_mqtt::ClientIdentity;
use serde_json::{json, Value};

use crate::Stack;

#[derive(Clone, Copy, Debug)]
pub enum Role {
    Viewer,
    Operator,
    Admin,
}

impl Role {
    fn env_name(self) -> &'static str {
        match self {
            Role::Viewer => "VIEWER",
            Role::Operator => "OPERATOR",
            Role::Admin => "ADMIN",
        }
    }
}

impl Stack {
    /// The app client credentials of `role`, as `up.sh` wrote them.
    pub fn admin_settings(&self, role: Role) -> Result<Settings> {
        let var = |name: String| {
            self.env
                .get(&name)
                .cloned()
                .with_context(|| format!("{name} missing from stack.env"))
        };
        Ok(Settings {
            api_url: self.api_url.clone(),
            token_url: var("HUB_TOKEN_URL".into())?,
            client_id: var(format!("HUB_{}_CLIENT_ID", role.env_name()))?,
            client_secret: var(format!("HUB_{}_CLIENT_SECRET", role.env_name()))?,
        })
    }

    pub fn admin_client(&self, role: Role) -> Result<AdminClient> {
        AdminClient::new(self.admin_settings(role)?)
    }

    /// One Cognito user-pools API call (JSON protocol) against the emulator.
    pub async fn cognito(&self, action: &str, body: &Value) -> Result<Value> {
        let endpoint = self
            .env
            .get("AWS_ENDPOINT_URL")
            .context("AWS_ENDPOINT_URL missing from stack.env")?;
        let region = self
            .env
            .get("AWS_REGION")
            .map_or("us-east-1", String::as_str);
        let response = reqwest::Client::new()
            .post(format!("{endpoint}/"))
            .header(
                "x-amz-target",
                format!("AWSCognitoIdentityProviderService.{action}"),
            )
            .header("content-type", "application/x-amz-json-1.1")
            .header(
                "authorization",
                format!("AWS4-HMAC-SHA256 Credential=local/20260101/{region}/cognito-idp/aws4_request, SignedHeaders=host, Signature=0"),
            )
            .body(body.to_string())
            .send()
            .await
            .with_context(|| format!("cognito {action}"))?;
        let status = response.status();
        let text = response.text().await?;
        anyhow::ensure!(status.is_success(), "cognito {action}: {status}: {text}");
        Ok(serde_json::from_str(&text)?)
    }
}

/// A device registered through the admin API that sends over HTTP, with a key the API
/// issued.
pub async fn http_device(
    stack: &Stack,
    admin: &AdminClient,
    id: &str,
    device_type: &str,
) -> Result<crate::http_device::HttpDevice> {
    admin
        .post(
            "/v1/devices",
            &serde_json::json!({"device_id": id, "device_type": device_type}),
        )
        .await?
        .ok()?;
    let key = admin
        .post(
            &format!("/v1/devices/{id}/api-keys"),
            &serde_json::json!({}),
        )
        .await?
        .ok()?;
    let key = key["api_key"]
        .as_str()
        .context("no api_key in the answer")?;
    Ok(crate::http_device::HttpDevice::with_key(stack, id, key))
}

/// `normal` ordinary temperatures (enough to warm the z-score up), then `hot` readings at
/// `hot_value` that do not clear, one a second, the last a few seconds ago.
pub fn warm_then_hot(normal: u64, hot: u64, hot_value: f64) -> Vec<Value> {
    let start = chrono::Utc::now() - chrono::TimeDelta::seconds((normal + hot + 10) as i64);
    (0..normal + hot)
        .map(|i| {
            let t = if i < normal {
                20.0 + (i % 5) as f64 * 0.3
            } else {
                hot_value
            };
            serde_json::json!({"v": 2, "seq": i + 1, "msg_type": "telemetry",
                   "ts": (start + chrono::TimeDelta::seconds(i as i64)).to_rfc3339(),
                   "metrics": {"temperature": t}, "status": "OK"})
        })
        .collect()
}

/// Registers a device through the API and gives it a certificate from a CSR made here.
pub async fn provision(
    admin: &AdminClient,
    id: &str,
    device_type: &str,
) -> (Value, ClientIdentity) {
    let device = admin
        .post(
            "/v1/devices",
            &json!({"device_id": id, "device_type": device_type}),
        )
        .await
        .unwrap()
        .ok()
        .unwrap();
    let identity = certificate(admin, id, "certificates", json!({})).await;
    (device, identity)
}

/// A new key and CSR, sent to `certificates` or `certificates/rotate`.
pub async fn certificate(
    admin: &AdminClient,
    id: &str,
    path: &str,
    mut body: Value,
) -> ClientIdentity {
    let (key_pem, csr) = hub_mqtt::key_and_csr(id).unwrap();
    body["csr"] = json!(csr);
    let cert = admin
        .post(&format!("/v1/devices/{id}/{path}"), &body)
        .await
        .unwrap()
        .ok()
        .unwrap();
    ClientIdentity {
        cert_pem: cert["certificate_pem"]
            .as_str()
            .unwrap()
            .as_bytes()
            .to_vec(),
        key_pem: key_pem.into_bytes(),
    }
}
