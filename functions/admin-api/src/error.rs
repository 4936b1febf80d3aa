//! One error type for every route, mapped to a status and a JSON body in one place:
//! `{"error": {"code", "message", "field"?}}`. Store failures become 503 (retry), never a
//! 500 with a stack trace.

use hub_runtime::PortError;
use serde_json::{json, Value};

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{status} {code}: {message}")]
pub struct ApiError {
    pub status: u16,
    pub code: &'static str,
    pub message: String,
    /// The request field at fault, as a JSON path (`csr`, `metrics.temperature`) or a
    /// query/path parameter name.
    pub field: Option<String>,
}

impl ApiError {
    pub fn new(status: u16, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            field: None,
        }
    }

    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: Some(field.into()),
            ..Self::new(400, "invalid_request", message)
        }
    }

    pub fn bad_body(message: impl Into<String>) -> Self {
        Self::new(400, "invalid_body", message)
    }

    pub fn unauthorized() -> Self {
        Self::new(401, "unauthorized", "a valid bearer token is required")
    }

    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(403, "forbidden", message)
    }

    pub fn not_found(what: impl Into<String>) -> Self {
        Self::new(404, "not_found", format!("{} does not exist", what.into()))
    }

    pub fn route_not_found(method: &str, path: &str) -> Self {
        Self::new(404, "no_such_route", format!("no route {method} {path}"))
    }

    pub fn conflict(message: impl Into<String>) -> Self {
        Self::new(409, "conflict", message)
    }

    pub fn too_large(limit: usize) -> Self {
        Self::new(
            413,
            "payload_too_large",
            format!("the request body exceeds {limit} bytes"),
        )
    }

    pub fn unavailable(err: &PortError) -> Self {
        Self::new(
            503,
            "unavailable",
            format!(
                "{} failed; nothing was changed unless said otherwise, retry",
                err.operation
            ),
        )
    }

    pub fn body(&self) -> Value {
        let mut error = json!({ "code": self.code, "message": self.message });
        if let Some(field) = &self.field {
            error["field"] = json!(field);
        }
        json!({ "error": error })
    }
}

impl From<hub_fleet::TableError> for ApiError {
    fn from(err: hub_fleet::TableError) -> Self {
        PortError::from(err).into()
    }
}

impl From<PortError> for ApiError {
    fn from(err: PortError) -> Self {
        tracing::error!(operation = err.operation, error = %err.message, "store call failed");
        ApiError::unavailable(&err)
    }
}
