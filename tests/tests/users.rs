//! People on the local stack: `hub-admin user` puts them in the pool's groups, they sign in
//! through the hosted UI on the console's public client (code + PKCE, no secret), and their
//! access token carries the hub scopes of their group and nothing more, which the admin
//! API and the real-time socket enforce.
//!
//! What a person may do is checked against what the API and the socket answer, not
//! against the trigger's own logic.

use hub_admin::users::{self, FirstPassword};
use hub_e2e::{
    admin::Role as MachineRole,
    signin::{Outcome, SignIn, Tokens},
    unique, Stack,
};
use hub_runtime::role::Role;
use reqwest::Method;
use serde_json::{json, Value};

const PASSWORD: &str = "Console-pass-2026";

fn cognito(stack: &Stack) -> aws_sdk_cognitoidentityprovider::Client {
    aws_sdk_cognitoidentityprovider::Client::new(&stack.aws.sdk)
}

fn claims(token: &str) -> Value {
    hub_e2e::jwt_claims(token)
}

fn scopes(token: &str) -> Vec<String> {
    let mut scopes: Vec<String> = claims(token)["scope"]
        .as_str()
        .unwrap_or("")
        .split_whitespace()
        .filter(|s| s.starts_with("hub/"))
        .map(str::to_owned)
        .collect();
    scopes.sort();
    scopes
}

async fn sign_in(stack: &Stack, name: &str, password: &str) -> anyhow::Result<Tokens> {
    let signin = SignIn {
        stack,
        scope: "openid",
    };
    match signin.run(name, password, None).await? {
        Outcome::Tokens(tokens) => Ok(tokens),
        Outcome::Refused(why) => anyhow::bail!("refused: {why}"),
    }
}

async fn person(stack: &Stack, role: Role) -> String {
    let name = unique(role.as_str());
    let first = FirstPassword::Permanent(PASSWORD.into());
    users::add(
        &cognito(stack),
        stack.output("AdminUserPoolId"),
        &name,
        role,
        &first,
        None,
    )
    .await
    .unwrap();
    name
}

/// The status the admin API answers `method path` with, for a person's token.
async fn status(stack: &Stack, token: &str, method: Method, path: &str) -> u16 {
    let api = stack.admin_client(MachineRole::Viewer).unwrap();
    let reply = api
        .call_with_token(method, path, None, Some(token))
        .await
        .unwrap();
    reply.status
}

#[tokio::test(flavor = "multi_thread")]
async fn people_sign_in_with_the_scopes_of_their_group_and_the_api_and_socket_hold_them_to_it() {
    let stack = Stack::from_env().await.unwrap();
    let operator_machine = stack.admin_client(MachineRole::Operator).unwrap();
    let device = unique("person-target");
    let created = operator_machine
        .post(
            "/v1/devices",
            &json!({"device_id": device, "device_type": "env-sensor"}),
        )
        .await
        .unwrap();
    assert_eq!(created.status, 201, "{}", created.body);
    let quarantine = format!("/v1/devices/{device}/quarantine");

    let mut tokens = Vec::new();
    for role in Role::ALL {
        let name = person(&stack, role).await;
        let signed = sign_in(&stack, &name, PASSWORD).await.unwrap();
        let claims = claims(&signed.access_token);
        assert_eq!(claims["client_id"], stack.output("ConsoleClientId"));
        assert_eq!(claims["token_use"], "access");
        assert!(signed.id_token.is_some() && signed.refresh_token.is_some());
        tokens.push((role, signed.access_token));
    }
    let expected = |role: Role| -> Vec<String> {
        let mut up_to: Vec<String> = Role::ALL
            .into_iter()
            .filter(|r| *r <= role)
            .map(|r| r.scope().to_owned())
            .collect();
        up_to.sort();
        up_to
    };
    for (role, token) in &tokens {
        assert_eq!(scopes(token), expected(*role), "{}", role.as_str());
    }
    let [(_, viewer), (_, operator), (_, admin)] = &tokens[..] else {
        unreachable!()
    };

    // Reads for everyone; a change for operators and up; the audit log for admins only.
    assert_eq!(
        status(&stack, viewer, Method::GET, "/v1/devices").await,
        200
    );
    assert_eq!(status(&stack, viewer, Method::PUT, &quarantine).await, 403);
    let quarantined = status(&stack, operator, Method::PUT, &quarantine).await;
    assert!(
        (200..300).contains(&quarantined),
        "operator quarantine: {quarantined}"
    );
    assert_eq!(
        status(&stack, operator, Method::GET, "/v1/audit").await,
        403
    );
    assert_eq!(status(&stack, admin, Method::GET, "/v1/audit").await, 200);
    // The change took effect in the registry.
    let registry = operator_machine
        .get(&format!("/v1/devices/{device}"))
        .await
        .unwrap();
    assert_eq!(registry.body["quarantined"], true, "{}", registry.body);

    // The console's token opens the live socket too.
    let endpoint = stack.env["AWS_ENDPOINT_URL"].replacen("http", "ws", 1);
    let url = format!(
        "{endpoint}/_aws/execute-api/{}/live?token={viewer}",
        stack.output("RealtimeApiId")
    );
    let (socket, _) = tokio_tungstenite::connect_async(url)
        .await
        .expect("the console's token connects");
    drop(socket);
}

#[tokio::test(flavor = "multi_thread")]
async fn no_hub_group_grants_nothing_and_a_sign_in_cannot_ask_for_more() {
    let stack = Stack::from_env().await.unwrap();
    let pool = stack.output("AdminUserPoolId");
    let name = person(&stack, Role::Viewer).await;
    stack
        .cognito(
            "AdminRemoveUserFromGroup",
            &json!({"UserPoolId": pool, "Username": name, "GroupName": "viewer"}),
        )
        .await
        .unwrap();
    let groupless = sign_in(&stack, &name, PASSWORD).await.unwrap().access_token;
    assert_eq!(scopes(&groupless), Vec::<String>::new());
    assert_eq!(
        status(&stack, &groupless, Method::GET, "/v1/devices").await,
        403
    );

    // Positive control: the same person in the viewer group reads.
    users::set_role(&cognito(&stack), pool, &name, Role::Viewer)
        .await
        .unwrap();
    let viewer = sign_in(&stack, &name, PASSWORD).await.unwrap().access_token;
    assert_eq!(
        status(&stack, &viewer, Method::GET, "/v1/devices").await,
        200
    );

    // Asking the hosted UI for the admin scope outright: refused, or at least not granted.
    let asked = SignIn {
        stack: &stack,
        scope: "openid hub/admin",
    }
    .run(&name, PASSWORD, None)
    .await
    .unwrap();
    match asked {
        Outcome::Refused(why) => assert!(why.contains("invalid"), "{why}"),
        Outcome::Tokens(tokens) => {
            assert_eq!(scopes(&tokens.access_token), vec!["hub/read".to_owned()]);
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_temporary_password_is_replaced_at_first_sign_in_and_a_removed_user_is_out() {
    let stack = Stack::from_env().await.unwrap();
    let pool = stack.output("AdminUserPoolId");
    let cognito = cognito(&stack);
    let name = unique("newcomer");
    let temporary = "Temporary-pass-1";
    let first = FirstPassword::Temporary(temporary.into());
    users::add(&cognito, pool, &name, Role::Operator, &first, None)
        .await
        .unwrap();
    let again = users::add(&cognito, pool, &name, Role::Admin, &first, None).await;
    assert!(
        again.is_err_and(|e| e.to_string().contains("exists")),
        "a second add is refused"
    );
    let listed = |users: &[users::User]| users.iter().find(|u| u.name == name).cloned();
    let before = listed(&users::list(&cognito, pool).await.unwrap()).unwrap();
    assert_eq!(before.status, "FORCE_CHANGE_PASSWORD");
    assert_eq!(before.role, Some(Role::Operator));

    // Without a new password the sign-in stops at Cognito's question.
    let signin = SignIn {
        stack: &stack,
        scope: "openid",
    };
    assert!(signin.run(&name, temporary, None).await.is_err());
    let chosen = "Chosen-pass-2026";
    let Outcome::Tokens(tokens) = signin.run(&name, temporary, Some(chosen)).await.unwrap() else {
        panic!("the new password was refused");
    };
    assert!(scopes(&tokens.access_token).contains(&"hub/operate".to_owned()));
    let after = listed(&users::list(&cognito, pool).await.unwrap()).unwrap();
    assert_eq!(after.status, "CONFIRMED");
    assert!(
        sign_in(&stack, &name, temporary).await.is_err(),
        "the temporary password is spent"
    );
    sign_in(&stack, &name, chosen).await.unwrap();

    users::remove(&cognito, pool, &name).await.unwrap();
    assert!(listed(&users::list(&cognito, pool).await.unwrap()).is_none());
    assert!(
        sign_in(&stack, &name, chosen).await.is_err(),
        "a removed user signs in"
    );
}
