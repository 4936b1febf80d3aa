//! The fan-out: each event goes once to every connection subscribed to any of its
//! channels; a connection found gone is forgotten. Sends run a few at a time.

use std::collections::{BTreeMap, BTreeSet};

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
    // Per connection, its events in order: a console must see an alert raised before it
    // sees it resolved. Connections are served concurrently.
    let mut deliveries: BTreeMap<String, Vec<Vec<u8>>> = BTreeMap::new();
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
        for target in targets {
            deliveries
                .entry(target.clone())
                .or_default()
                .push(payload.clone());
        }
    }
    let outcomes: Vec<(String, usize, usize, bool)> = stream::iter(deliveries)
        .map(|(connection, payloads)| async move {
            let (mut sent, mut failed) = (0, 0);
            for payload in &payloads {
                match sockets.send(&connection, payload).await {
                    Ok(Sent::Delivered) => sent += 1,
                    // Nothing more reaches a gone socket.
                    Ok(Sent::Gone) => return (connection, sent, failed, true),
                    Err(err) => {
                        failed += 1;
                        tracing::warn!(%connection, error = %err, "push failed");
                    }
                }
            }
            (connection, sent, failed, false)
        })
        .buffer_unordered(CONCURRENCY)
        .collect()
        .await;
    let mut summary = PushSummary {
        events: events.len(),
        ..PushSummary::default()
    };
    for (connection, sent, failed, gone) in outcomes {
        summary.sent += sent;
        summary.failed += failed;
        if !gone {
            continue;
        }
        summary.gone += 1;
        // A record left behind expires with its TTL; the batch is not sent again for it.
        if let Err(err) = connections.close(&connection).await {
            tracing::warn!(%connection, error = %err, "gone connection not removed");
        }
    }
    Ok(summary)
}
