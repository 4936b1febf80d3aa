//! The `$connect` authorizer's check of a console's Cognito access token: signature
//! against the pool's keys (RS256 only), issuer, expiry, `token_use = access`, an allowed
//! app client, and a role from the token's scopes. Anything else is refused, saying why
//! in the log, never to the caller.

use std::collections::HashMap;

use jsonwebtoken::{decode, decode_header, jwk::JwkSet, Algorithm, DecodingKey, Validation};
use serde::Deserialize;

pub use hub_runtime::role::Role;

/// Who a verified token names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Caller {
    pub subject: String,
    pub role: Role,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum Refusal {
    #[error("no token")]
    Missing,
    #[error("not a token of this pool's keys: {0}")]
    UnknownKey(String),
    #[error("token refused: {0}")]
    Invalid(String),
    #[error("not an access token ({0})")]
    NotAccess(String),
    #[error("app client {0} is not allowed here")]
    Client(String),
    #[error("the token grants no hub role")]
    NoRole,
}

#[derive(Deserialize)]
struct Claims {
    token_use: String,
    #[serde(default)]
    client_id: Option<String>,
    #[serde(default)]
    scope: Option<String>,
    #[serde(default)]
    username: Option<String>,
    sub: String,
}

/// The pool's signing keys by key id, and what a token must say.
pub struct Verifier {
    keys: HashMap<String, DecodingKey>,
    issuer: String,
    clients: Vec<String>,
}

impl Verifier {
    /// From the pool's JWKS document (`{issuer}/.well-known/jwks.json`).
    pub fn from_jwks(jwks: &JwkSet, issuer: &str, clients: Vec<String>) -> Result<Self, String> {
        let mut keys = HashMap::new();
        for jwk in &jwks.keys {
            let Some(kid) = jwk.common.key_id.clone() else {
                continue;
            };
            let key = DecodingKey::from_jwk(jwk).map_err(|e| format!("key {kid}: {e}"))?;
            keys.insert(kid, key);
        }
        if keys.is_empty() {
            return Err("the JWKS holds no keys with an id".into());
        }
        Ok(Self::new(keys, issuer, clients))
    }

    pub fn new(keys: HashMap<String, DecodingKey>, issuer: &str, clients: Vec<String>) -> Self {
        Self {
            keys,
            issuer: issuer.to_owned(),
            clients,
        }
    }

    pub fn verify(&self, token: Option<&str>) -> Result<Caller, Refusal> {
        let token = token
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .ok_or(Refusal::Missing)?;
        let header = decode_header(token).map_err(|e| Refusal::Invalid(e.to_string()))?;
        if header.alg != Algorithm::RS256 {
            return Err(Refusal::Invalid(format!("algorithm {:?}", header.alg)));
        }
        let kid = header.kid.unwrap_or_default();
        let key = self
            .keys
            .get(&kid)
            .ok_or_else(|| Refusal::UnknownKey(kid.clone()))?;
        let mut validation = Validation::new(Algorithm::RS256);
        validation.set_issuer(&[&self.issuer]);
        validation.set_required_spec_claims(&["exp", "iss"]);
        // Access tokens carry client_id, not aud; the client is checked below.
        validation.validate_aud = false;
        validation.leeway = 5;
        validation.validate_nbf = true;
        let claims = decode::<Claims>(token, key, &validation)
            .map_err(|e| Refusal::Invalid(e.to_string()))?
            .claims;
        if claims.token_use != "access" {
            return Err(Refusal::NotAccess(claims.token_use));
        }
        let client = claims.client_id.unwrap_or_default();
        if client.is_empty() || !self.clients.contains(&client) {
            return Err(Refusal::Client(client));
        }
        let role = Role::from_scopes(
            claims
                .scope
                .as_deref()
                .unwrap_or_default()
                .split_whitespace(),
        )
        .ok_or(Refusal::NoRole)?;
        Ok(Caller {
            subject: claims
                .username
                .unwrap_or(claims.sub)
                .chars()
                .take(256)
                .collect(),
            role,
        })
    }
}
