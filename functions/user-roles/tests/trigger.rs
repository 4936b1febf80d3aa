//! The trigger on the event shape Cognito sends (V2, from the hosted UI's code exchange).

use aws_lambda_events::event::cognito::CognitoEventUserPoolsPreTokenGenV2;
use serde_json::{json, Value};

fn event(groups: &[&str]) -> CognitoEventUserPoolsPreTokenGenV2 {
    let mut fixture: Value = serde_json::from_str(include_str!(
        "fixtures/cognito-pre-token-generation-v2.json"
    ))
    .unwrap();
    fixture["request"]["groupConfiguration"]["groupsToOverride"] = json!(groups);
    serde_json::from_value(fixture).unwrap()
}

/// The access-token part of the answer, as Cognito reads it back.
fn access(groups: &[&str]) -> Value {
    let answer = serde_json::to_value(user_roles::grant(event(groups))).unwrap();
    let details = &answer["response"]["claimsAndScopeOverrideDetails"];
    assert_eq!(
        details["groupOverrideDetails"]["groupsToOverride"],
        json!(groups),
        "groups are left as they are"
    );
    details["accessTokenGeneration"].clone()
}

#[test]
fn a_group_grants_its_roles_scopes_and_every_other_hub_scope_is_suppressed() {
    // The fixture's sign-in asked for hub/admin; the operator group grants up to operate.
    let operator = access(&["night-shift", "operator"]);
    assert_eq!(operator["scopesToAdd"], json!(["hub/read", "hub/operate"]));
    assert_eq!(operator["scopesToSuppress"], json!(["hub/admin"]));

    let admin = access(&["viewer", "admin"]);
    assert_eq!(
        admin["scopesToAdd"],
        json!(["hub/read", "hub/operate", "hub/admin"])
    );
    assert_eq!(admin["scopesToSuppress"], json!([]));

    let viewer = access(&["viewer"]);
    assert_eq!(viewer["scopesToAdd"], json!(["hub/read"]));
    assert_eq!(
        viewer["scopesToSuppress"],
        json!(["hub/operate", "hub/admin"])
    );
}

#[test]
fn no_hub_group_grants_nothing() {
    for groups in [&[][..], &["night-shift"], &["Admin", "admins", "hub/admin"]] {
        let none = access(groups);
        assert_eq!(none["scopesToAdd"], json!([]), "{groups:?}");
        assert_eq!(
            none["scopesToSuppress"],
            json!(["hub/read", "hub/operate", "hub/admin"]),
            "{groups:?}"
        );
    }
}
