//! API Gateway (HTTP API, payload 2.0) in and out: the route from the route key, the
//! caller from the JWT authorizer's claims and scopes, JSON responses, one EMF line per
//! request.

use std::collections::HashMap;

use hub_runtime::emf::Metrics;
use lambda_http::{
    aws_lambda_events::apigw::ApiGatewayV2httpRequestContext,
    http::header::{CACHE_CONTROL, CONTENT_TYPE},
    request::RequestContext,
    Body, Request, RequestExt, Response,
};

use crate::{
    auth::{Principal, Role},
    error::ApiError,
    request::{ApiRequest, ApiResponse, MAX_BODY_BYTES},
    routes, Api, Backend,
};

impl<B: Backend> Api<B> {
    pub async fn handle_http(&self, request: Request) -> Response<Body> {
        let started = std::time::Instant::now();
        let (route, response) = match api_request(&request) {
            Ok(api_request) => (api_request.route.key(), self.handle(&api_request).await),
            Err(err) => ("unrouted".to_owned(), err.into()),
        };
        Metrics::new("admin-api")
            .dimension("Route", &route)
            .dimension("Status", &(response.status / 100 * 100).to_string())
            .count("admin_api_requests_total", 1)
            .millis(
                "admin_api_latency",
                started.elapsed().as_secs_f64() * 1000.0,
            )
            .flush();
        to_response(response)
    }
}

/// The header that marks answers holding simulated devices' data.
pub const DATA_SOURCE: &str = "x-data-source";

pub fn to_response(response: ApiResponse) -> Response<Body> {
    let mut builder = Response::builder()
        .status(response.status)
        .header(CONTENT_TYPE, "application/json")
        .header(CACHE_CONTROL, "no-store");
    if response.simulated {
        builder = builder.header(DATA_SOURCE, "simulation");
    }
    builder
        .body(Body::from(response.body.to_string()))
        .expect("status and headers are valid")
}

fn context(request: &Request) -> Option<ApiGatewayV2httpRequestContext> {
    match request.request_context_ref()? {
        RequestContext::ApiGatewayV2(context) => Some(context.clone()),
        _ => None,
    }
}

/// Routes and authenticates a request; 401 without verified claims, 404 for no route,
/// 413 for an oversized body.
pub fn api_request(request: &Request) -> Result<ApiRequest, ApiError> {
    let context = context(request);
    let method = request.method().as_str();
    let (route, mut params) = match context
        .as_ref()
        .and_then(|c| c.route_key.as_deref())
        .and_then(routes::by_key)
    {
        Some(route) => (route, HashMap::new()),
        None => {
            let path = request.raw_http_path();
            let (route, params) = routes::resolve(method, path)
                .ok_or_else(|| ApiError::route_not_found(method, path))?;
            (route, params.into_iter().collect())
        }
    };
    for (name, value) in request.path_parameters().iter() {
        params.insert(name.to_owned(), value.to_owned());
    }
    let principal = context
        .as_ref()
        .and_then(principal)
        .ok_or_else(ApiError::unauthorized)?;
    let body = request.body().as_ref();
    if body.len() > MAX_BODY_BYTES {
        return Err(ApiError::too_large(MAX_BODY_BYTES));
    }
    let query = request
        .query_string_parameters()
        .iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
    Ok(ApiRequest {
        route,
        params,
        query,
        body: body.to_vec(),
        principal,
        request_id: context
            .and_then(|c| c.request_id)
            .unwrap_or_else(|| uuid::Uuid::new_v4().to_string()),
    })
}

/// The caller, from what the JWT authorizer verified; None without an authorizer block
/// or without a hub scope.
fn principal(context: &ApiGatewayV2httpRequestContext) -> Option<Principal> {
    let jwt = context.authorizer.as_ref()?.jwt.as_ref()?;
    let mut scopes: Vec<&str> = jwt.scopes.iter().flatten().map(String::as_str).collect();
    if let Some(scope) = jwt.claims.get("scope") {
        scopes.extend(scope.split_whitespace());
    }
    let role = Role::from_scopes(scopes)?;
    let subject = ["username", "client_id", "sub"]
        .iter()
        .find_map(|claim| jwt.claims.get(*claim).filter(|v| !v.is_empty()))?;
    Some(Principal {
        subject: subject.chars().take(256).collect(),
        role,
    })
}
