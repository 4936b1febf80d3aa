//! A person's sign-in to the console, done the way a browser does it: the hosted UI's
//! authorization-code flow with PKCE on the console's public client (no secret), the
//! sign-in form posted, a first password replaced when Cognito asks, and the code
//! exchanged for tokens at the token endpoint.

use anyhow::{bail, Context, Result};
use base64::Engine as _;
use reqwest::{redirect::Policy, StatusCode, Url};
use serde::Deserialize;

use crate::Stack;

#[derive(Debug, Deserialize)]
pub struct Tokens {
    pub access_token: String,
    pub id_token: Option<String>,
    pub refresh_token: Option<String>,
}

/// Where the hosted UI sends the browser after the form: the console with a code, or the
/// console with an error.
#[derive(Debug)]
pub enum Outcome {
    Tokens(Tokens),
    /// `error` (and `error_description`) on the redirect back to the console.
    Refused(String),
}

pub struct SignIn<'a> {
    pub stack: &'a Stack,
    /// The scopes the console asks for.
    pub scope: &'a str,
}

impl SignIn<'_> {
    /// Signs `username` in with `password`; when Cognito asks for a new password (a first
    /// sign-in with a temporary one), answers with `new_password`.
    pub async fn run(
        &self,
        username: &str,
        password: &str,
        new_password: Option<&str>,
    ) -> Result<Outcome> {
        let base = self.hosted_ui()?;
        let console = self.stack.env_var("HUB_CONSOLE_URL")?;
        let client_id = self.stack.output("ConsoleClientId");
        let http = reqwest::Client::builder()
            .redirect(Policy::none())
            .build()?;
        let verifier = format!(
            "{}{}",
            uuid::Uuid::new_v4().simple(),
            uuid::Uuid::new_v4().simple()
        );
        let challenge = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(
            ring::digest::digest(&ring::digest::SHA256, verifier.as_bytes()),
        );
        let state = uuid::Uuid::new_v4().simple().to_string();
        let authorize = Url::parse_with_params(
            &format!("{base}/oauth2/authorize"),
            [
                ("client_id", client_id),
                ("response_type", "code"),
                ("redirect_uri", console.as_str()),
                ("scope", self.scope),
                ("state", state.as_str()),
                ("code_challenge", challenge.as_str()),
                ("code_challenge_method", "S256"),
            ],
        )?;
        let page = http.get(authorize).send().await?;
        if page.status().is_redirection() {
            return self
                .back_at_console(&page, &console, &state, &verifier)
                .await;
        }
        let page = page.error_for_status()?.text().await?;
        let mut form = hidden_fields(&page);
        if !form.iter().any(|(name, _)| name == "client_id") {
            bail!("the authorize page is not the sign-in form:\n{page}");
        }
        form.push(("username".into(), username.into()));
        form.push(("password".into(), password.into()));
        let mut answer = http
            .post(format!("{base}/login"))
            .form(&form)
            .send()
            .await?;
        if answer.status() == StatusCode::OK {
            let page = answer.text().await?;
            let Some(np_token) = hidden_fields(&page)
                .into_iter()
                .find_map(|(name, value)| (name == "np_token").then_some(value))
            else {
                bail!("sign-in refused:\n{page}");
            };
            let new = new_password.context("Cognito asks for a new password")?;
            answer = http
                .post(format!("{base}/login"))
                .form(&[
                    ("np_token", np_token.as_str()),
                    ("new_password", new),
                    ("confirm_password", new),
                ])
                .send()
                .await?;
        }
        self.back_at_console(&answer, &console, &state, &verifier)
            .await
    }

    /// Follows the redirect back to the console: the code exchanged with the verifier, or
    /// the error the hosted UI sent.
    async fn back_at_console(
        &self,
        redirect: &reqwest::Response,
        console: &str,
        state: &str,
        verifier: &str,
    ) -> Result<Outcome> {
        let location = redirect
            .headers()
            .get("location")
            .and_then(|l| l.to_str().ok())
            .with_context(|| format!("no redirect from the hosted UI ({})", redirect.status()))?;
        let location = Url::parse(location)?;
        if !location.as_str().starts_with(console) {
            bail!("redirected to {location}, not to the console {console}");
        }
        let param = |key: &str| {
            location
                .query_pairs()
                .find_map(|(k, v)| (k == key).then(|| v.into_owned()))
        };
        if let Some(error) = param("error") {
            let description = param("error_description").unwrap_or_default();
            return Ok(Outcome::Refused(
                format!("{error} {description}").trim().to_owned(),
            ));
        }
        if param("state").as_deref() != Some(state) {
            bail!("the redirect carries another state: {location}");
        }
        let code = param("code").context("the redirect carries no code")?;
        let response = reqwest::Client::new()
            .post(format!("{}/oauth2/token", self.hosted_ui()?))
            .form(&[
                ("grant_type", "authorization_code"),
                ("client_id", self.stack.output("ConsoleClientId")),
                ("code", code.as_str()),
                ("redirect_uri", console),
                ("code_verifier", verifier),
            ])
            .send()
            .await?;
        let status = response.status();
        let body = response.text().await?;
        if !status.is_success() {
            bail!("code exchange: {status} {body}");
        }
        Ok(Outcome::Tokens(serde_json::from_str(&body)?))
    }

    /// The hosted UI's base URL: beside the token endpoint.
    fn hosted_ui(&self) -> Result<String> {
        let token_url = self.stack.env_var("HUB_TOKEN_URL")?;
        Ok(token_url
            .strip_suffix("/oauth2/token")
            .with_context(|| format!("HUB_TOKEN_URL {token_url} does not end in /oauth2/token"))?
            .to_owned())
    }
}

/// `(name, value)` of every hidden input of an HTML page.
fn hidden_fields(page: &str) -> Vec<(String, String)> {
    let attribute = |tag: &str, name: &str| {
        let start = tag.find(&format!("{name}=\""))? + name.len() + 2;
        let end = start + tag[start..].find('"')?;
        Some(unescape(&tag[start..end]))
    };
    page.split("<input")
        .skip(1)
        .filter_map(|rest| rest.split('>').next())
        .filter(|tag| tag.contains("type=\"hidden\""))
        .filter_map(|tag| Some((attribute(tag, "name")?, attribute(tag, "value")?)))
        .collect()
}

fn unescape(text: &str) -> String {
    text.replace("&quot;", "\"")
        .replace("&#x27;", "'")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}
