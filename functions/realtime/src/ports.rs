//! What the socket handlers and the pusher need from outside: where connections and
//! their subscriptions are kept (DynamoDB, with TTL), and a way to send to a socket
//! (API Gateway's `@connections`).

use std::{collections::BTreeMap, future::Future};

pub use hub_runtime::PortError;

use crate::{channel::Channel, token::Role};

/// One open socket, as `$connect` recorded it.
#[derive(Clone, Debug, PartialEq)]
pub struct Connection {
    pub connection_id: String,
    pub subject: String,
    pub role: Role,
    pub connected_at: chrono::DateTime<chrono::Utc>,
}

/// What a subscription came to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Subscribed {
    /// Every channel the connection now holds.
    Holding(Vec<Channel>),
    /// The connection would hold more than it may; nothing changed.
    TooMany { limit: usize },
    /// No such connection (it closed, or its record expired).
    Unknown,
}

pub trait Connections {
    fn open(&self, connection: &Connection) -> impl Future<Output = Result<(), PortError>> + Send;
    fn subscribe(
        &self,
        connection_id: &str,
        channels: &[Channel],
        limit: usize,
    ) -> impl Future<Output = Result<Subscribed, PortError>> + Send;
    /// The channels still held.
    fn unsubscribe(
        &self,
        connection_id: &str,
        channels: &[Channel],
    ) -> impl Future<Output = Result<Vec<Channel>, PortError>> + Send;
    /// Forgets the connection and every subscription of it; harmless when already gone.
    fn close(&self, connection_id: &str) -> impl Future<Output = Result<(), PortError>> + Send;
    /// The connections subscribed to each of `channels`.
    fn subscribers(
        &self,
        channels: &[Channel],
    ) -> impl Future<Output = Result<BTreeMap<Channel, Vec<String>>, PortError>> + Send;
}

/// What a send to one socket came to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Sent {
    Delivered,
    /// The socket is gone (410): its records are to be removed.
    Gone,
}

pub trait Sockets {
    fn send(
        &self,
        connection_id: &str,
        payload: &[u8],
    ) -> impl Future<Output = Result<Sent, PortError>> + Send;
}
