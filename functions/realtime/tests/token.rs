//! The `$connect` token check on tokens signed here with a test-only key whose public
//! half is in the fixture JWKS: a good token passes, and each way a token can be wrong is
//! refused for that reason.

use jsonwebtoken::{encode, jwk::JwkSet, Algorithm, EncodingKey, Header};
use realtime::token::{Caller, Refusal, Role, Verifier};
use serde_json::{json, Value};

const ISSUER: &str = "https://cognito-idp.us-east-1.amazonaws.com/us-east-1_TESTPOOL";
const CONSOLE: &str = "console-client";

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(format!(
        "{}/tests/fixtures/{name}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
}

fn verifier() -> Verifier {
    let jwks: JwkSet = serde_json::from_slice(&fixture("jwks.json")).unwrap();
    Verifier::from_jwks(&jwks, ISSUER, vec![CONSOLE.to_owned()]).unwrap()
}

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

/// An access token as the pool issues them, for an operator.
fn claims() -> Value {
    json!({
        "sub": "5f0c-operator", "iss": ISSUER, "token_use": "access", "client_id": CONSOLE,
        "scope": "openid hub/read hub/operate", "username": "olga", "iat": now(),
        "exp": now() + 3600, "cognito:groups": ["operator"],
    })
}

fn sign(claims: &Value, key: &str, kid: &str) -> String {
    let mut header = Header::new(Algorithm::RS256);
    header.kid = Some(kid.to_owned());
    let key = EncodingKey::from_rsa_pem(&fixture(key)).unwrap();
    encode(&header, claims, &key).unwrap()
}

fn pool_token(claims: &Value) -> String {
    sign(claims, "test-only-pool-key.pem", "pool-key-1")
}

fn with(change: impl FnOnce(&mut Value)) -> String {
    let mut c = claims();
    change(&mut c);
    pool_token(&c)
}

#[test]
fn a_pool_access_token_names_its_user_and_highest_role() {
    assert_eq!(
        verifier().verify(Some(&pool_token(&claims()))),
        Ok(Caller {
            subject: "olga".into(),
            role: Role::Operator
        })
    );
}

#[test]
fn every_kind_of_bad_token_is_refused_for_its_reason() {
    let v = verifier();
    assert_eq!(v.verify(None), Err(Refusal::Missing));
    assert_eq!(v.verify(Some("  ")), Err(Refusal::Missing));
    assert!(matches!(
        v.verify(Some("not.a.jwt")),
        Err(Refusal::Invalid(_))
    ));
    // Signed by another key under the pool's key id: a forgery.
    let forged = sign(&claims(), "test-only-forger-key.pem", "pool-key-1");
    assert!(
        matches!(v.verify(Some(&forged)), Err(Refusal::Invalid(ref m)) if m.contains("Signature")),
        "{:?}",
        v.verify(Some(&forged))
    );
    // A key id the pool does not have.
    let stranger = sign(&claims(), "test-only-forger-key.pem", "other-kid");
    assert_eq!(
        v.verify(Some(&stranger)),
        Err(Refusal::UnknownKey("other-kid".into()))
    );
    // Expired (beyond the leeway), from another pool, an id token, another client, no role.
    let expired = with(|c| c["exp"] = json!(now() - 60));
    assert!(
        matches!(v.verify(Some(&expired)), Err(Refusal::Invalid(ref m)) if m.contains("Expired"))
    );
    let other_pool =
        with(|c| c["iss"] = json!("https://cognito-idp.us-east-1.amazonaws.com/us-east-1_OTHER"));
    assert!(
        matches!(v.verify(Some(&other_pool)), Err(Refusal::Invalid(ref m)) if m.contains("Issuer"))
    );
    let id_token = with(|c| c["token_use"] = json!("id"));
    assert_eq!(
        v.verify(Some(&id_token)),
        Err(Refusal::NotAccess("id".into()))
    );
    let machine = with(|c| c["client_id"] = json!("viewer-machine-client"));
    assert_eq!(
        v.verify(Some(&machine)),
        Err(Refusal::Client("viewer-machine-client".into()))
    );
    let no_role = with(|c| c["scope"] = json!("openid email"));
    assert_eq!(v.verify(Some(&no_role)), Err(Refusal::NoRole));
    // A token with no expiry at all.
    let eternal = with(|c| {
        c.as_object_mut().unwrap().remove("exp");
    });
    assert!(matches!(v.verify(Some(&eternal)), Err(Refusal::Invalid(_))));
    // The control: the same verifier still takes the good token.
    assert!(v.verify(Some(&pool_token(&claims()))).is_ok());
}

#[test]
fn an_unsigned_token_is_refused() {
    // alg none: the header says there is nothing to check.
    use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine as _};
    let header = URL_SAFE_NO_PAD.encode(r#"{"alg":"none","kid":"pool-key-1"}"#);
    let body = URL_SAFE_NO_PAD.encode(claims().to_string());
    let token = format!("{header}.{body}.");
    assert!(matches!(
        verifier().verify(Some(&token)),
        Err(Refusal::Invalid(_))
    ));
}
