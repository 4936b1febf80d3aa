//! A routed, authenticated request and what handlers read from it, with every problem
//! named: the JSON path of a bad body field, the name of a bad parameter.

use std::collections::HashMap;

use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::{auth::Principal, error::ApiError, routes::Route};

/// Bodies beyond this are refused with 413 before they are parsed.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

#[derive(Clone, Debug)]
pub struct ApiRequest {
    pub route: &'static Route,
    pub params: HashMap<String, String>,
    pub query: HashMap<String, String>,
    pub body: Vec<u8>,
    pub principal: Principal,
    pub request_id: String,
}

#[derive(Clone, Debug, PartialEq)]
pub struct ApiResponse {
    pub status: u16,
    pub body: Value,
    /// The answer holds data of simulated devices (`X-Data-Source: simulation`), so no
    /// client mistakes it for a real fleet's.
    pub simulated: bool,
}

impl ApiResponse {
    pub fn ok(body: impl serde::Serialize) -> Self {
        Self::with_status(200, body)
    }

    pub fn created(body: impl serde::Serialize) -> Self {
        Self::with_status(201, body)
    }

    fn with_status(status: u16, body: impl serde::Serialize) -> Self {
        Self {
            status,
            body: serde_json::to_value(body).expect("response bodies serialize"),
            simulated: false,
        }
    }

    /// Marks the answer as holding simulated devices' data when `simulated`.
    pub fn simulated(mut self, simulated: bool) -> Self {
        self.simulated = simulated;
        self
    }
}

impl From<ApiError> for ApiResponse {
    fn from(err: ApiError) -> Self {
        Self {
            status: err.status,
            body: err.body(),
            simulated: false,
        }
    }
}

impl ApiRequest {
    /// A path parameter the route declares.
    pub fn param(&self, name: &str) -> Result<&str, ApiError> {
        self.params
            .get(name)
            .map(String::as_str)
            .ok_or_else(|| ApiError::invalid(name, format!("path parameter {name} is missing")))
    }

    /// A query parameter as given. An empty value (`?limit=`) is a value, which its
    /// parser refuses, not an absent parameter: the document allows no empty values.
    pub fn query(&self, name: &str) -> Option<&str> {
        self.query.get(name).map(String::as_str)
    }

    /// A query parameter parsed as a number in `range`, or `default` when absent.
    pub fn query_number<T>(
        &self,
        name: &str,
        default: T,
        range: std::ops::RangeInclusive<T>,
    ) -> Result<T, ApiError>
    where
        T: std::str::FromStr + PartialOrd + std::fmt::Display + Copy,
    {
        let Some(text) = self.query(name) else {
            return Ok(default);
        };
        let value: T = text.parse().map_err(|_| {
            ApiError::invalid(name, format!("{name} must be a number, not {text:?}"))
        })?;
        if !range.contains(&value) {
            return Err(ApiError::invalid(
                name,
                format!(
                    "{name} must be between {} and {}",
                    range.start(),
                    range.end()
                ),
            ));
        }
        Ok(value)
    }

    /// The body as `T`; an empty body reads as `{}`. Errors name the field's JSON path.
    pub fn json<T: DeserializeOwned>(&self) -> Result<T, ApiError> {
        let body: &[u8] = if self.body.iter().all(u8::is_ascii_whitespace) {
            b"{}"
        } else {
            &self.body
        };
        let mut deserializer = serde_json::Deserializer::from_slice(body);
        let value = serde_path_to_error::deserialize(&mut deserializer).map_err(|err| {
            let path = err.path().to_string();
            let inner = err.into_inner();
            let message = if inner.is_syntax() || inner.is_eof() {
                format!("the body is not valid JSON: {inner}")
            } else {
                inner.to_string()
            };
            // serde names a missing field only in its message: take it out, so
            // the error names the field like every other.
            // (An unknown field is already the last part of the path.)
            let named = message
                .strip_prefix("missing field `")
                .and_then(|rest| rest.split('`').next());
            match (path.as_str(), named) {
                (".", Some(field)) => ApiError::invalid(field, message.clone()),
                (_, Some(field)) => ApiError::invalid(format!("{path}.{field}"), message.clone()),
                (".", None) => ApiError::bad_body(message),
                _ => ApiError::invalid(path, message),
            }
        })?;
        deserializer.end().map_err(|e| {
            ApiError::bad_body(format!("trailing characters after the JSON body: {e}"))
        })?;
        Ok(value)
    }
}

/// Checks a free-text field: at most `max` characters, no control characters, and not
/// empty once trimmed (the trimmed value is what is kept).
pub fn text(field: &str, value: &str, max: usize) -> Result<String, ApiError> {
    // The length is of the value as sent, as the document states it; the trim is after.
    let too_long = value.chars().count() > max;
    let value = value.trim();
    if value.is_empty() {
        return Err(ApiError::invalid(
            field,
            format!("{field} must not be empty"),
        ));
    }
    if too_long {
        return Err(ApiError::invalid(
            field,
            format!("{field} must be at most {max} characters"),
        ));
    }
    if value.chars().any(char::is_control) {
        return Err(ApiError::invalid(
            field,
            format!("{field} must not contain control characters"),
        ));
    }
    Ok(value.to_owned())
}

/// A name used in keys and IoT: `[a-zA-Z0-9:_-]`, 1..=`max` characters.
pub fn name(field: &str, value: &str, max: usize) -> Result<String, ApiError> {
    let ok = !value.is_empty()
        && value.len() <= max
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b':' | b'_' | b'-'));
    if ok {
        Ok(value.to_owned())
    } else {
        Err(ApiError::invalid(
            field,
            format!("{field} must be 1 to {max} of letters, digits, ':', '_' and '-'"),
        ))
    }
}

/// Opaque paging tokens: the last key of a page, base64url.
pub fn encode_token(last_key: &str) -> String {
    use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine as _};
    URL_SAFE_NO_PAD.encode(last_key)
}

pub fn decode_token(token: Option<&str>) -> Result<Option<String>, ApiError> {
    use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine as _};
    token
        .map(|t| {
            URL_SAFE_NO_PAD
                .decode(t)
                .ok()
                .and_then(|bytes| String::from_utf8(bytes).ok())
                .filter(|key| !key.is_empty() && key.len() <= 512)
                .ok_or_else(|| {
                    ApiError::invalid("next_token", "next_token is not a token this API issued")
                })
        })
        .transpose()
}
