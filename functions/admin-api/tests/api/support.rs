//! The test API: the admin API over the in-memory backend, called as a role.

use std::ops::Deref;

use admin_api::{
    auth::{Principal, Role},
    memory::MemoryBackend,
    routes, Api, ApiConfig, ApiRequest, ApiResponse,
};
use serde_json::{json, Value};

/// The API with a fresh in-memory backend; `api.backend` is what it changed.
pub struct TestApi(Api<MemoryBackend>);

impl Deref for TestApi {
    type Target = Api<MemoryBackend>;

    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

pub fn api() -> TestApi {
    api_with(ApiConfig::default())
}

pub fn api_with(config: ApiConfig) -> TestApi {
    TestApi(Api::new(MemoryBackend::default(), config))
}

impl TestApi {
    pub fn viewer(&self) -> Caller<'_> {
        self.as_role(Role::Viewer)
    }

    pub fn operator(&self) -> Caller<'_> {
        self.as_role(Role::Operator)
    }

    pub fn admin(&self) -> Caller<'_> {
        self.as_role(Role::Admin)
    }

    /// A client whose token carries `role` (subject `{role}-client`).
    pub fn as_role(&self, role: Role) -> Caller<'_> {
        Caller { api: &self.0, role }
    }
}

/// Requests as one role, routed and authenticated as API Gateway would hand them over.
pub struct Caller<'a> {
    api: &'a Api<MemoryBackend>,
    role: Role,
}

impl Caller<'_> {
    pub async fn get(&self, target: &str) -> ApiResponse {
        self.send("GET", target, Value::Null).await
    }

    pub async fn delete(&self, target: &str) -> ApiResponse {
        self.send("DELETE", target, Value::Null).await
    }

    pub async fn post(&self, target: &str, body: Value) -> ApiResponse {
        self.send("POST", target, body).await
    }

    pub async fn put(&self, target: &str, body: Value) -> ApiResponse {
        self.send("PUT", target, body).await
    }

    pub async fn patch(&self, target: &str, body: Value) -> ApiResponse {
        self.send("PATCH", target, body).await
    }

    /// `target` is the path with its query; a null body is no body.
    pub async fn send(&self, method: &str, target: &str, body: Value) -> ApiResponse {
        let role = self.role;
        let (path, query) = target.split_once('?').unwrap_or((target, ""));
        let (route, params) = routes::resolve(method, path).expect("a route");
        let request = ApiRequest {
            route,
            params: params.into_iter().collect(),
            query: query
                .split('&')
                .filter(|p| !p.is_empty())
                .map(|p| {
                    let (k, v) = p.split_once('=').unwrap_or((p, ""));
                    (k.to_owned(), v.to_owned())
                })
                .collect(),
            body: if body.is_null() {
                Vec::new()
            } else {
                body.to_string().into_bytes()
            },
            principal: Principal {
                subject: format!("{role:?}-client").to_lowercase(),
                role,
            },
            request_id: uuid::Uuid::new_v4().to_string(),
        };
        self.api.handle(&request).await
    }
}

pub trait Expect {
    /// Asserts the status (the body in the message) and hands the response on.
    fn expect_status(self, status: u16) -> Self;
}

impl Expect for ApiResponse {
    fn expect_status(self, status: u16) -> Self {
        assert_eq!(self.status, status, "{}", self.body);
        self
    }
}

pub fn csr(cn: &str) -> String {
    let key = rcgen::KeyPair::generate().unwrap();
    let mut params = rcgen::CertificateParams::default();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, cn);
    params.serialize_request(&key).unwrap().pem().unwrap()
}

pub fn assert_error(response: &ApiResponse, status: u16, field: Option<&str>) {
    assert_eq!(response.status, status, "{}", response.body);
    assert!(
        response.body["error"]["message"].as_str().is_some(),
        "{}",
        response.body
    );
    if let Some(field) = field {
        assert_eq!(
            response.body["error"]["field"],
            json!(field),
            "{}",
            response.body
        );
    }
}

pub async fn register(api: &TestApi, id: &str) -> ApiResponse {
    api.operator().post("/v1/devices", json!({"device_id": id, "device_type": "env-sensor", "group": "plant-a", "location": "hall 3"}))
    .await
}
