//! The socket's own events: `$connect` (after the authorizer let it in) records the
//! connection, a frame subscribes or unsubscribes, `$disconnect` forgets it. Answers go
//! back over `@connections`, never as the route's return value (which API Gateway only
//! sends for routes with a route response).

use serde_json::json;

use crate::{
    channel::Channel,
    ports::{Connection, Connections, PortError, Sockets, Subscribed},
    protocol::{self, Request, MAX_CHANNELS},
};

#[derive(Clone, Debug, PartialEq)]
pub enum SocketEvent {
    Connect(Connection),
    Message { connection_id: String, body: String },
    Disconnect { connection_id: String },
}

fn names(channels: &[Channel]) -> Vec<String> {
    channels.iter().map(Channel::to_string).collect()
}

pub async fn handle<C: Connections + Sync, S: Sockets + Sync>(
    connections: &C,
    sockets: &S,
    event: SocketEvent,
) -> Result<(), PortError> {
    match event {
        SocketEvent::Connect(connection) => connections.open(&connection).await,
        SocketEvent::Disconnect { connection_id } => connections.close(&connection_id).await,
        SocketEvent::Message {
            connection_id,
            body,
        } => {
            let answer = match protocol::parse(&body) {
                Err(error) => error,
                Ok(Request::Subscribe(channels)) => {
                    match connections
                        .subscribe(&connection_id, &channels, MAX_CHANNELS)
                        .await?
                    {
                        Subscribed::Holding(held) => {
                            json!({"type": "subscribed", "channels": names(&held)})
                        }
                        Subscribed::TooMany { limit } => protocol::error(
                            "too_many_channels",
                            format!("a connection holds at most {limit} channels"),
                        ),
                        Subscribed::Unknown => protocol::error(
                            "unknown_connection",
                            "this connection is not known (it expired): connect again",
                        ),
                    }
                }
                Ok(Request::Unsubscribe(channels)) => {
                    let held = connections.unsubscribe(&connection_id, &channels).await?;
                    json!({"type": "unsubscribed", "channels": names(&held)})
                }
            };
            // A socket that closed before its answer has nothing to hear it.
            sockets
                .send(&connection_id, answer.to_string().as_bytes())
                .await
                .map(|_| ())
        }
    }
}
