//! A person's access token carries the hub scopes of their highest group's role, and no
//! other hub scope, whatever the sign-in asked for. Machine clients (client credentials) never reach
//! this trigger: their scopes are the app client's own.

use aws_lambda_events::event::cognito::{
    ClaimsAndScopeOverrideDetailsV2, CognitoAccessTokenGenerationV2,
    CognitoEventUserPoolsPreTokenGenV2,
};
use hub_runtime::role::Role;

/// The highest role any of the user's groups names; other groups grant nothing.
pub fn role_of<'a>(groups: impl IntoIterator<Item = &'a str>) -> Option<Role> {
    groups.into_iter().filter_map(Role::from_name).max()
}

/// The trigger's answer: the role's scopes added, every other hub scope suppressed, the
/// groups left as they are.
pub fn grant(mut event: CognitoEventUserPoolsPreTokenGenV2) -> CognitoEventUserPoolsPreTokenGenV2 {
    let groups = &event.request.group_configuration.groups_to_override;
    let role = role_of(groups.iter().map(String::as_str));
    // As the machine clients do: the role's scope and those of the roles below it.
    let (granted, refused): (Vec<Role>, Vec<Role>) =
        Role::ALL.into_iter().partition(|r| Some(*r) <= role);
    let scopes = |roles: Vec<Role>| roles.into_iter().map(|r| r.scope().to_owned()).collect();
    let mut access = CognitoAccessTokenGenerationV2::default();
    access.scopes_to_add = scopes(granted);
    access.scopes_to_suppress = scopes(refused);
    tracing::info!(
        user = event
            .cognito_event_user_pools_header
            .user_name
            .as_deref()
            .unwrap_or(""),
        role = role.map_or("none", Role::as_str),
        "access token scoped"
    );
    let mut details = ClaimsAndScopeOverrideDetailsV2::default();
    details.group_override_details = event.request.group_configuration.clone();
    details.access_token_generation = Some(access);
    event.response.claims_and_scope_override_details = Some(details);
    event
}
