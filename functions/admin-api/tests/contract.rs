//! The API's three descriptions agree: the function's route table, the OpenAPI document
//! (`infra/openapi.yaml`), and the API Gateway routes in `template.yaml` — the same
//! operations, each accepting exactly the scopes of its least role and above.

use std::collections::{BTreeMap, BTreeSet};

use admin_api::{auth::Role, routes::ROUTES};
use serde_norway::Value;

/// HTTP ingest is on the same API, with a device key instead of a token.
const INGEST: &str = "POST /v1/telemetry";

fn load(path: &str) -> Value {
    let text = std::fs::read_to_string(format!("{}/../../{path}", env!("CARGO_MANIFEST_DIR")))
        .unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_norway::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// The scopes a route must accept: its role's and every higher role's.
fn accepted_scopes(role: Role) -> BTreeSet<String> {
    [Role::Viewer, Role::Operator, Role::Admin]
        .into_iter()
        .filter(|r| *r >= role)
        .map(|r| r.scope().to_owned())
        .collect()
}

fn router() -> BTreeMap<String, BTreeSet<String>> {
    ROUTES
        .iter()
        .map(|r| (r.key(), accepted_scopes(r.role)))
        .collect()
}

fn strings(value: &Value) -> BTreeSet<String> {
    value
        .as_sequence()
        .into_iter()
        .flatten()
        .filter_map(|v| v.as_str().map(str::to_owned))
        .collect()
}

#[test]
fn the_openapi_document_describes_exactly_the_router() {
    let doc = load("infra/openapi.yaml");
    assert_eq!(doc["openapi"].as_str(), Some("3.1.0"));
    let mut described = BTreeMap::new();
    for (path, item) in doc["paths"].as_mapping().expect("paths") {
        let path = path.as_str().unwrap();
        let path_params: BTreeSet<String> = path
            .split('/')
            .filter_map(|s| s.strip_prefix('{')?.strip_suffix('}'))
            .map(str::to_owned)
            .collect();
        for (method, operation) in item.as_mapping().unwrap() {
            let method = method.as_str().unwrap();
            if method == "parameters" {
                continue;
            }
            let key = format!("{} {path}", method.to_uppercase());
            // Any one requirement object suffices; each names one scope.
            let scopes: BTreeSet<String> = operation["security"]
                .as_sequence()
                .unwrap_or_else(|| panic!("{key}: no security"))
                .iter()
                .flat_map(|req| strings(&req["cognito"]))
                .collect();
            // Every path parameter is declared, on the path item or the operation.
            let declared: BTreeSet<String> = [&item["parameters"], &operation["parameters"]]
                .into_iter()
                .flat_map(|p| p.as_sequence().cloned().unwrap_or_default())
                .filter_map(|p| {
                    let p = match p["$ref"].as_str() {
                        Some(r) => {
                            doc["components"]["parameters"][r.rsplit('/').next().unwrap()].clone()
                        }
                        None => p,
                    };
                    (p["in"].as_str() == Some("path"))
                        .then(|| p["name"].as_str().unwrap().to_owned())
                })
                .collect();
            assert_eq!(declared, path_params, "{key}: path parameters");
            assert!(
                operation["responses"]["401"].is_mapping(),
                "{key}: the 401 answer is not described"
            );
            described.insert(key, scopes);
        }
    }
    let ingest = described
        .remove(INGEST)
        .expect("the ingest route is described");
    assert!(ingest.is_empty(), "ingest takes a device key, not a token");
    assert_eq!(described, router());
}

/// The resource a `!Ref` names.
fn reference(value: &Value) -> Option<&str> {
    match value {
        Value::Tagged(tagged) if tagged.tag == "Ref" => tagged.value.as_str(),
        _ => None,
    }
}

#[test]
fn the_template_routes_are_exactly_the_router_with_the_same_scopes() {
    let template = load("template.yaml");
    let mut deployed = BTreeMap::new();
    let mut realtime = BTreeMap::new();
    for (id, resource) in template["Resources"].as_mapping().unwrap() {
        if resource["Type"].as_str() != Some("AWS::ApiGatewayV2::Route") {
            continue;
        }
        let properties = &resource["Properties"];
        match reference(&properties["ApiId"]) {
            Some("HubApi") => {}
            // The consoles' WebSocket API: only its $connect carries the token check.
            Some("RealtimeApi") => {
                realtime.insert(
                    properties["RouteKey"].as_str().unwrap().to_owned(),
                    properties["AuthorizationType"].as_str().map(str::to_owned),
                );
                continue;
            }
            other => panic!("{id:?}: a route of an unknown API {other:?}"),
        }
        let key = properties["RouteKey"].as_str().unwrap().to_owned();
        let authorization = properties["AuthorizationType"].as_str().unwrap();
        if key == INGEST {
            assert_eq!(authorization, "NONE");
            continue;
        }
        assert_eq!(
            authorization, "JWT",
            "{id:?}: {key} must be behind the authorizer"
        );
        deployed.insert(key, strings(&properties["AuthorizationScopes"]));
    }
    assert_eq!(deployed, router());
    let route = |key: &str, authorization: &str| (key.to_owned(), Some(authorization.to_owned()));
    assert_eq!(
        realtime,
        BTreeMap::from([
            route("$connect", "CUSTOM"),
            route("$default", "NONE"),
            route("$disconnect", "NONE"),
        ]),
        "the WebSocket routes"
    );
}
