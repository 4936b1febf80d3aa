//! The ports on AWS. Connections are one DynamoDB item each (key `connection_id`) holding
//! the caller and the channels it subscribed to, expiring with the socket's longest life
//! (API Gateway closes a socket after two hours). The pusher reads them all with one
//! paginated Scan: cheap for the tens of consoles a fleet has open; thousands would want
//! an item per channel instead. Sends go through API Gateway's `@connections`.

use std::collections::{BTreeMap, BTreeSet};

use aws_sdk_apigatewaymanagement::{
    error::{DisplayErrorContext, SdkError},
    operation::post_to_connection::PostToConnectionError,
    primitives::Blob,
};
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue};
use hub_runtime::{
    config,
    dynamodb::{is_condition_failure, n, s, string, Item},
    AwsEnv,
};

use crate::{
    channel::Channel,
    entry::connections_endpoint,
    ports::{Connection, Connections, PortError, Sent, Sockets, Subscribed},
};

/// API Gateway closes a WebSocket after two hours at most; records outlive it by a little.
pub const CONNECTION_TTL_SECONDS: i64 = 2 * 3600 + 600;

pub struct DynamoConnections {
    pub client: aws_sdk_dynamodb::Client,
    pub table: String,
}

/// The connections table and `@connections` of the stage, from `CONNECTIONS_TABLE`,
/// `REALTIME_API_ID` and `REALTIME_STAGE`: what the socket and the pusher both hold.
pub fn wire(aws: &AwsEnv) -> Result<(DynamoConnections, ApiGatewaySockets), config::ConfigError> {
    let connections = DynamoConnections {
        client: aws_sdk_dynamodb::Client::new(&aws.sdk),
        table: config::required("CONNECTIONS_TABLE")?,
    };
    let endpoint = connections_endpoint(
        &config::required("REALTIME_API_ID")?,
        &config::required("REALTIME_STAGE")?,
        &aws.sdk.region().map(|r| r.to_string()).unwrap_or_default(),
        aws.endpoint_override.as_deref(),
    );
    let sockets = ApiGatewaySockets {
        client: aws_sdk_apigatewaymanagement::Client::from_conf(
            aws_sdk_apigatewaymanagement::config::Builder::from(&aws.sdk)
                .endpoint_url(endpoint)
                .build(),
        ),
    };
    Ok((connections, sockets))
}

fn describe<E: std::error::Error>(err: E) -> String {
    aws_sdk_dynamodb::error::DisplayErrorContext(err).to_string()
}

/// The channels an item holds; ones that no longer parse are left out.
fn channels(item: &Item) -> Vec<Channel> {
    let set: BTreeSet<Channel> = item
        .get("channels")
        .and_then(|v| v.as_ss().ok())
        .into_iter()
        .flatten()
        .filter_map(|c| Channel::parse(c).ok())
        .collect();
    set.into_iter().collect()
}

fn set_of(channels: &[Channel]) -> AttributeValue {
    AttributeValue::Ss(channels.iter().map(Channel::to_string).collect())
}

impl DynamoConnections {
    async fn held(&self, connection_id: &str) -> Result<Option<Vec<Channel>>, PortError> {
        let output = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("connection_id", s(connection_id))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| PortError::new("connection read", describe(e)))?;
        Ok(output.item().map(channels))
    }
}

impl Connections for DynamoConnections {
    async fn open(&self, connection: &Connection) -> Result<(), PortError> {
        let expires = connection.connected_at.timestamp() + CONNECTION_TTL_SECONDS;
        self.client
            .put_item()
            .table_name(&self.table)
            .item("connection_id", s(&connection.connection_id))
            .item("subject", s(&connection.subject))
            .item("role", s(connection.role.as_str()))
            .item("connected_at", s(connection.connected_at.to_rfc3339()))
            .item("expires_at", n(expires))
            .send()
            .await
            .map_err(|e| PortError::new("connection write", describe(e)))?;
        Ok(())
    }

    async fn subscribe(
        &self,
        connection_id: &str,
        wanted: &[Channel],
        limit: usize,
    ) -> Result<Subscribed, PortError> {
        let Some(held) = self.held(connection_id).await? else {
            return Ok(Subscribed::Unknown);
        };
        let union: BTreeSet<&Channel> = held.iter().chain(wanted).collect();
        if union.len() > limit {
            return Ok(Subscribed::TooMany { limit });
        }
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("connection_id", s(connection_id))
            .update_expression("ADD channels :wanted")
            .condition_expression("attribute_exists(connection_id)")
            .expression_attribute_values(":wanted", set_of(wanted))
            .return_values(ReturnValue::AllNew)
            .send()
            .await;
        match result {
            Ok(output) => Ok(Subscribed::Holding(
                output.attributes.as_ref().map(channels).unwrap_or_default(),
            )),
            Err(err) if is_condition_failure(&err) => Ok(Subscribed::Unknown),
            Err(err) => Err(PortError::new("subscribe", describe(err))),
        }
    }

    async fn unsubscribe(
        &self,
        connection_id: &str,
        unwanted: &[Channel],
    ) -> Result<Vec<Channel>, PortError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("connection_id", s(connection_id))
            .update_expression("DELETE channels :unwanted")
            .condition_expression("attribute_exists(connection_id)")
            .expression_attribute_values(":unwanted", set_of(unwanted))
            .return_values(ReturnValue::AllNew)
            .send()
            .await;
        match result {
            Ok(output) => Ok(output.attributes.as_ref().map(channels).unwrap_or_default()),
            Err(err) if is_condition_failure(&err) => Ok(Vec::new()),
            Err(err) => Err(PortError::new("unsubscribe", describe(err))),
        }
    }

    async fn close(&self, connection_id: &str) -> Result<(), PortError> {
        self.client
            .delete_item()
            .table_name(&self.table)
            .key("connection_id", s(connection_id))
            .send()
            .await
            .map_err(|e| PortError::new("connection delete", describe(e)))?;
        Ok(())
    }

    async fn subscribers(
        &self,
        wanted: &[Channel],
    ) -> Result<BTreeMap<Channel, Vec<String>>, PortError> {
        let wanted: BTreeSet<&Channel> = wanted.iter().collect();
        let mut found: BTreeMap<Channel, Vec<String>> = BTreeMap::new();
        let now = chrono::Utc::now().timestamp();
        let mut items = self
            .client
            .scan()
            .table_name(&self.table)
            .projection_expression("connection_id, channels, expires_at")
            .into_paginator()
            .items()
            .send();
        while let Some(item) = items.next().await {
            let item = item.map_err(|e| PortError::new("connections scan", describe(e)))?;
            // TTL deletes lag; an expired record is a socket API Gateway already closed.
            let expired = hub_runtime::dynamodb::number::<i64>(&item, "expires_at")
                .is_some_and(|at| at < now);
            let Some(id) = string(&item, "connection_id").filter(|_| !expired) else {
                continue;
            };
            for channel in channels(&item) {
                if wanted.contains(&channel) {
                    found.entry(channel).or_default().push(id.clone());
                }
            }
        }
        Ok(found)
    }
}

/// `@connections` of one API stage.
pub struct ApiGatewaySockets {
    pub client: aws_sdk_apigatewaymanagement::Client,
}

impl Sockets for ApiGatewaySockets {
    async fn send(&self, connection_id: &str, payload: &[u8]) -> Result<Sent, PortError> {
        let result = self
            .client
            .post_to_connection()
            .connection_id(connection_id)
            .data(Blob::new(payload))
            .send()
            .await;
        match result {
            Ok(_) => Ok(Sent::Delivered),
            Err(SdkError::ServiceError(err))
                if matches!(err.err(), PostToConnectionError::GoneException(_)) =>
            {
                Ok(Sent::Gone)
            }
            Err(err) => Err(PortError::new(
                "post to connection",
                DisplayErrorContext(err),
            )),
        }
    }
}
