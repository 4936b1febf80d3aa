//! A device that talks HTTP: registry row, API key, `POST /v1/telemetry`.

use anyhow::{Context, Result};
use chrono::Utc;
use hub_credentials::{dynamodb::DynamoApiKeys, ApiKey};
use serde_json::Value;

use crate::Stack;

pub struct HttpDevice {
    pub id: String,
    pub key: String,
    http: reqwest::Client,
    url: String,
}

impl HttpDevice {
    /// Writes the device's registry row (so the pipeline enriches its readings with
    /// `device_type`) and issues it an API key.
    pub async fn register(stack: &Stack, id: &str, device_type: &str) -> Result<Self> {
        let dynamodb = aws_sdk_dynamodb::Client::new(&stack.aws.sdk);
        hub_sim::provision::register_in_registry(
            &dynamodb,
            stack.output("DevicesTableName"),
            id,
            device_type,
        )
        .await?;
        let issued = ApiKey::issue(id, Utc::now())?;
        DynamoApiKeys {
            client: dynamodb,
            table: stack.output("DeviceCredentialsTableName").to_owned(),
        }
        .put(&issued.stored)
        .await?;
        Ok(Self {
            id: id.to_owned(),
            key: issued.key,
            http: reqwest::Client::new(),
            url: format!("{}/v1/telemetry", stack.api_url),
        })
    }

    /// A device whose key was issued elsewhere (the admin API).
    pub fn with_key(stack: &Stack, id: &str, key: &str) -> Self {
        Self {
            id: id.to_owned(),
            key: key.to_owned(),
            http: reqwest::Client::new(),
            url: format!("{}/v1/telemetry", stack.api_url),
        }
    }

    /// Posts a body with this device's key; the status and the JSON answer.
    pub async fn post(&self, body: impl Into<reqwest::Body>) -> Result<(u16, Value)> {
        self.post_with_key(Some(&self.key), body).await
    }

    pub async fn post_with_key(
        &self,
        key: Option<&str>,
        body: impl Into<reqwest::Body>,
    ) -> Result<(u16, Value)> {
        let mut request = self.http.post(&self.url).body(body);
        if let Some(key) = key {
            request = request.header("x-api-key", key);
        }
        let response = request.send().await.context("POST /v1/telemetry")?;
        let status = response.status().as_u16();
        let bytes = response.bytes().await?;
        let body = serde_json::from_slice(&bytes).with_context(|| {
            format!(
                "status {status}: body is not JSON: {}",
                String::from_utf8_lossy(&bytes)
            )
        })?;
        Ok((status, body))
    }
}
