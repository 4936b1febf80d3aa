//! Who is calling, from what the API Gateway JWT authorizer verified. The authorizer
//! already refused missing, forged and expired tokens (401) and tokens without one of the
//! route's scopes (403); the function checks the role again from the same scopes, so a
//! route deployed without its scopes still cannot be used by the wrong role.

use serde::Serialize;

/// The OAuth resource server the scopes belong to (Cognito: `{identifier}/{scope}`).
pub const SCOPE_PREFIX: &str = "hub/";

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Viewer,
    Operator,
    Admin,
}

impl Role {
    /// The scope a token needs for this role: `hub/read`, `hub/operate`, `hub/admin`.
    pub fn scope(self) -> &'static str {
        match self {
            Role::Viewer => "hub/read",
            Role::Operator => "hub/operate",
            Role::Admin => "hub/admin",
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Operator => "operator",
            Role::Admin => "admin",
        }
    }

    /// The highest role any of `scopes` grants.
    pub fn from_scopes<'a>(scopes: impl IntoIterator<Item = &'a str>) -> Option<Role> {
        scopes
            .into_iter()
            .filter_map(|scope| {
                [Role::Viewer, Role::Operator, Role::Admin]
                    .into_iter()
                    .find(|role| role.scope() == scope)
            })
            .max()
    }
}

/// The caller of one request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Principal {
    /// The token's subject (for client-credentials tokens, the app client id).
    pub subject: String,
    pub role: Role,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_highest_granted_role_wins_and_foreign_scopes_grant_nothing() {
        assert_eq!(Role::from_scopes(["hub/read"]), Some(Role::Viewer));
        assert_eq!(
            Role::from_scopes(["hub/admin", "hub/read", "openid"]),
            Some(Role::Admin)
        );
        assert_eq!(
            Role::from_scopes(["hub/operate", "hub/read"]),
            Some(Role::Operator)
        );
        assert_eq!(Role::from_scopes(["other/admin", "admin", "hub/"]), None);
        assert_eq!(Role::from_scopes([]), None);
        assert!(Role::Viewer < Role::Operator && Role::Operator < Role::Admin);
    }
}
