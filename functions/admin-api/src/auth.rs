//! Who is calling, from what the API Gateway JWT authorizer verified. The authorizer
//! already refused missing, forged and expired tokens (401) and tokens without one of the
//! route's scopes (403); the function checks the role again from the same scopes, so a
//! route deployed without its scopes still cannot be used by the wrong role.

pub use hub_runtime::role::{Role, SCOPE_PREFIX};

/// The caller of one request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Principal {
    /// The token's subject (for client-credentials tokens, the app client id).
    pub subject: String,
    pub role: Role,
}
