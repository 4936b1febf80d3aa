//! The admin API as its callers reach it: a client per role with tokens from the stack's
//! Cognito, and the few Cognito control-plane calls the auth tests need.

use anyhow::{Context, Result};
use hub_admin::{AdminClient, Settings};
use serde_json::Value;

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
