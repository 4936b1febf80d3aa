//! The fan-out: each event goes once to every connection subscribed to any of its
//! channels; a connection found gone is forgotten. Sends run a few at a time.

use std::collections::BTreeSet;

use futures::{stream, StreamExt as _};
use serde_json::Value;

use crate::{
    channel::Channel,
    ports::{Connections, PortError, Sent, Sockets},
};

/// Sends in flight at once.
pub const CONCURRENCY: usize = 16;

/// One event for consoles, and the channels it belongs to.
#[derive(Clone, Debug, PartialEq)]
pub struct Outgoing {
    pub channels: Vec<Channel>,
    pub message: Value,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PushSummary {
    pub events: usize,
    pub sent: usize,
    pub gone: usize,
    /// Sends that failed otherwise (logged; the event is not retried: a console that
    /// misses a push catches up from the API on its next read).
    pub failed: usize,
}

pub async fn push<C: Connections + Sync, S: Sockets + Sync>(
    connections: &C,
    sockets: &S,
    events: &[Outgoing],
) -> Result<PushSummary, PortError> {
    let channels: Vec<Channel> = events
        .iter()
        .flat_map(|e| e.channels.iter().cloned())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let subscribers = connections.subscribers(&channels).await?;
    let mut deliveries: Vec<(String, Vec<u8>)> = Vec::new();
    for event in events {
        let targets: BTreeSet<&String> = event
            .channels
            .iter()
            .filter_map(|c| subscribers.get(c))
            .flatten()
            .collect();
        if targets.is_empty() {
            continue;
        }
        let payload = event.message.to_string().into_bytes();
        deliveries.extend(targets.into_iter().map(|t| (t.clone(), payload.clone())));
    }
    let results: Vec<(String, Result<Sent, PortError>)> = stream::iter(deliveries)
        .map(|(connection, payload)| async move {
            let result = sockets.send(&connection, &payload).await;
            (connection, result)
        })
        .buffer_unordered(CONCURRENCY)
        .collect()
        .await;
    let mut summary = PushSummary {
        events: events.len(),
        ..PushSummary::default()
    };
    let mut gone = BTreeSet::new();
    for (connection, result) in results {
        match result {
            Ok(Sent::Delivered) => summary.sent += 1,
            Ok(Sent::Gone) => {
                gone.insert(connection);
            }
            Err(err) => {
                summary.failed += 1;
                tracing::warn!(%connection, error = %err, "push failed");
            }
        }
    }
    summary.gone = gone.len();
    for connection in gone {
        connections.close(&connection).await?;
    }
    Ok(summary)
}
