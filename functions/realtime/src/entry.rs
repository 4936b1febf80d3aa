//! The three Lambda entries over API Gateway's and the event sources' shapes: the
//! `$connect` authorizer's answer, the socket route events, and the pusher's batches.

use aws_lambda_events::{
    apigw::{
        ApiGatewayCustomAuthorizerPolicy, ApiGatewayCustomAuthorizerRequestTypeRequest,
        ApiGatewayCustomAuthorizerResponse, ApiGatewayWebsocketProxyRequest,
    },
    iam::{IamPolicyEffect, IamPolicyStatement},
    kinesis::KinesisEvent,
};
use serde_json::{json, Value};

use crate::{
    events::{self, Source, Sources, Translated},
    ports::{Connection, Connections, PortError, Sockets},
    push::{push, PushSummary},
    socket::SocketEvent,
    token::{Caller, Refusal, Role, Verifier},
};

/// The query-string parameter a browser passes its access token in (a browser's
/// WebSocket cannot set headers).
pub const TOKEN_PARAMETER: &str = "token";

/// The authorizer's answer: allow with the caller in the context, or deny (API Gateway
/// answers 403 and opens no socket). Why a token was refused goes to the log only.
pub fn authorize(
    verifier: &Verifier,
    request: &ApiGatewayCustomAuthorizerRequestTypeRequest,
) -> ApiGatewayCustomAuthorizerResponse {
    let token = request
        .query_string_parameters
        .first(TOKEN_PARAMETER)
        .map(str::to_owned);
    let verdict = verifier.verify(token.as_deref());
    let method_arn = request.method_arn.clone().unwrap_or_default();
    policy(&method_arn, verdict)
}

fn policy(
    method_arn: &str,
    verdict: Result<Caller, Refusal>,
) -> ApiGatewayCustomAuthorizerResponse {
    let (effect, principal, context) = match verdict {
        Ok(caller) => {
            tracing::info!(subject = %caller.subject, role = caller.role.as_str(), "connection allowed");
            (
                IamPolicyEffect::Allow,
                caller.subject.clone(),
                json!({"subject": caller.subject, "role": caller.role.as_str()}),
            )
        }
        Err(refusal) => {
            tracing::warn!(reason = %refusal, "connection refused");
            (IamPolicyEffect::Deny, "refused".to_owned(), json!({}))
        }
    };
    let mut statement = IamPolicyStatement::default();
    statement.action = vec!["execute-api:Invoke".to_owned()];
    statement.effect = effect;
    statement.resource = vec![method_arn.to_owned()];
    let mut document = ApiGatewayCustomAuthorizerPolicy::default();
    document.version = Some("2012-10-17".to_owned());
    document.statement = vec![statement];
    let mut response = ApiGatewayCustomAuthorizerResponse::default();
    response.principal_id = Some(principal);
    response.policy_document = document;
    response.context = context;
    response
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{0}")]
pub struct BadSocketEvent(pub String);

/// A socket route event as the socket handler takes it. `$connect` only arrives after the
/// authorizer allowed it, with the caller in the authorizer context.
pub fn socket_event(
    request: &ApiGatewayWebsocketProxyRequest,
) -> Result<SocketEvent, BadSocketEvent> {
    let context = &request.request_context;
    let connection_id = context
        .connection_id
        .clone()
        .ok_or_else(|| BadSocketEvent("no connection id".into()))?;
    match context.route_key.as_deref() {
        Some("$connect") => {
            let field = |name: &str| {
                context
                    .authorizer
                    .fields
                    .get(name)
                    .and_then(Value::as_str)
                    .map(str::to_owned)
            };
            let subject = field("subject")
                .ok_or_else(|| BadSocketEvent("$connect without an authorized subject".into()))?;
            let role = field("role")
                .and_then(|r| Role::from_name(&r))
                .ok_or_else(|| BadSocketEvent("$connect without an authorized role".into()))?;
            let connected_at = chrono::DateTime::from_timestamp_millis(context.connected_at)
                .filter(|_| context.connected_at > 0)
                .unwrap_or_else(chrono::Utc::now);
            Ok(SocketEvent::Connect(Connection {
                connection_id,
                subject,
                role,
                connected_at,
            }))
        }
        Some("$disconnect") => Ok(SocketEvent::Disconnect { connection_id }),
        Some(_) => Ok(SocketEvent::Message {
            connection_id,
            body: request.body.clone().unwrap_or_default(),
        }),
        None => Err(BadSocketEvent("no route key".into())),
    }
}

/// The `@connections` endpoint of a WebSocket API stage: API Gateway's on AWS, the
/// emulator's path on it locally.
pub fn connections_endpoint(
    api_id: &str,
    stage: &str,
    region: &str,
    local_endpoint: Option<&str>,
) -> String {
    match local_endpoint {
        Some(base) => format!(
            "{}/_aws/execute-api/{api_id}/{stage}",
            base.trim_end_matches('/')
        ),
        None => format!("https://{api_id}.execute-api.{region}.amazonaws.com/{stage}"),
    }
}

/// What one pusher batch came to.
#[derive(Debug, Default, PartialEq)]
pub struct BatchOutcome {
    pub source: Option<&'static str>,
    pub records: usize,
    pub coalesced: usize,
    pub unreadable: usize,
    /// Records from a source the pusher is not wired to (skipped).
    pub foreign: usize,
    pub push: PushSummary,
}

#[derive(Debug, thiserror::Error)]
pub enum BatchError {
    #[error("not an event source batch: {0}")]
    Shape(String),
    #[error(transparent)]
    Port(#[from] PortError),
}

fn source_name(source: Source) -> &'static str {
    match source {
        Source::Readings => "readings",
        Source::Events => "events",
        Source::Table(events::Table::Alerts) => "alerts",
        Source::Table(events::Table::Devices) => "devices",
        Source::Table(events::Table::Commands) => "commands",
        Source::Table(events::Table::RolloutDevices) => "rollout_devices",
    }
}

/// One pusher batch (Kinesis or DynamoDB stream): translated by where it came from and
/// sent. Only a failure to read the connections fails it (and it comes again); a send
/// that fails is counted, not retried.
pub async fn pusher_batch<C: Connections + Sync, S: Sockets + Sync>(
    sources: &Sources,
    connections: &C,
    sockets: &S,
    payload: Value,
) -> Result<BatchOutcome, BatchError> {
    let records = payload
        .get("Records")
        .and_then(Value::as_array)
        .ok_or_else(|| BatchError::Shape("no Records".into()))?;
    let mut outcome = BatchOutcome {
        records: records.len(),
        ..BatchOutcome::default()
    };
    let Some(first) = records.first() else {
        return Ok(outcome);
    };
    let source_arn = |r: &Value| {
        r.get("eventSourceARN")
            .and_then(Value::as_str)
            .map(str::to_owned)
    };
    let arn = source_arn(first).unwrap_or_default();
    let Some(source) = sources.of(&arn) else {
        tracing::warn!(event_source_arn = %arn, "batch from a source the pusher is not wired to");
        outcome.foreign = records.len();
        return Ok(outcome);
    };
    outcome.source = Some(source_name(source));
    // One event source mapping sends one source's records; anything else is skipped.
    let (ours, foreign): (Vec<&Value>, Vec<&Value>) = records
        .iter()
        .partition(|r| source_arn(r).as_deref() == Some(arn.as_str()));
    outcome.foreign = foreign.len();
    let translated: Translated = match source {
        Source::Readings | Source::Events => {
            let event: KinesisEvent = serde_json::from_value(json!({ "Records": ours }))
                .map_err(|e| BatchError::Shape(e.to_string()))?;
            let data: Vec<Vec<u8>> = event
                .records
                .into_iter()
                .map(|r| r.kinesis.data.0)
                .collect();
            let slices = data.iter().map(Vec::as_slice);
            if source == Source::Readings {
                events::readings(slices)
            } else {
                events::events(slices)
            }
        }
        Source::Table(table) => {
            let ours: Vec<Value> = ours.into_iter().cloned().collect();
            events::table_changes(table, &ours)
        }
    };
    outcome.coalesced = translated.coalesced;
    outcome.unreadable = translated.unreadable;
    if translated.unreadable > 0 {
        tracing::warn!(
            unreadable = translated.unreadable,
            source = outcome.source,
            "records skipped"
        );
    }
    outcome.push = push(connections, sockets, &translated.outgoing).await?;
    Ok(outcome)
}

/// Where the pool's signing keys are: beside the issuer on AWS; on the emulator, under
/// its endpoint by pool id (the issuer still names AWS's host).
pub fn jwks_url(issuer: &str, local_endpoint: Option<&str>) -> String {
    let issuer = issuer.trim_end_matches('/');
    match local_endpoint {
        Some(base) => format!(
            "{}/{}/.well-known/jwks.json",
            base.trim_end_matches('/'),
            issuer.rsplit('/').next().unwrap_or_default()
        ),
        None => format!("{issuer}/.well-known/jwks.json"),
    }
}
