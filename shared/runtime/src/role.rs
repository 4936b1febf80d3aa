//! The roles of the hub's APIs and the OAuth scopes that grant them. The admin API and
//! the real-time socket's authorizer read a token's role the same way, from here.

/// The OAuth resource server the scopes belong to (Cognito: `{identifier}/{scope}`).
pub const SCOPE_PREFIX: &str = "hub/";

/// A caller's role, least first: each role may do what the ones below it may.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Role {
    Viewer,
    Operator,
    Admin,
}

impl Role {
    pub const ALL: [Role; 3] = [Role::Viewer, Role::Operator, Role::Admin];

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

    pub fn from_name(name: &str) -> Option<Role> {
        Self::ALL.into_iter().find(|r| r.as_str() == name)
    }

    /// The highest role any of `scopes` grants.
    pub fn from_scopes<'a>(scopes: impl IntoIterator<Item = &'a str>) -> Option<Role> {
        scopes
            .into_iter()
            .filter_map(|scope| Self::ALL.into_iter().find(|role| role.scope() == scope))
            .max()
    }
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
        for role in Role::ALL {
            assert_eq!(Role::from_name(role.as_str()), Some(role));
        }
    }
}
