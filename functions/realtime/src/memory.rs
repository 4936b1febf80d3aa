//! The ports in memory, for tests of the handlers.

use std::{
    collections::{BTreeMap, BTreeSet},
    sync::Mutex,
};

use crate::{
    channel::Channel,
    ports::{Connection, Connections, PortError, Sent, Sockets, Subscribed},
};

#[derive(Default)]
pub struct MemoryConnections {
    pub connections: Mutex<BTreeMap<String, (Connection, BTreeSet<Channel>)>>,
}

impl Connections for MemoryConnections {
    async fn open(&self, connection: &Connection) -> Result<(), PortError> {
        self.connections.lock().unwrap().insert(
            connection.connection_id.clone(),
            (connection.clone(), BTreeSet::new()),
        );
        Ok(())
    }

    async fn subscribe(
        &self,
        connection_id: &str,
        channels: &[Channel],
        limit: usize,
    ) -> Result<Subscribed, PortError> {
        let mut connections = self.connections.lock().unwrap();
        let Some((_, held)) = connections.get_mut(connection_id) else {
            return Ok(Subscribed::Unknown);
        };
        let after: BTreeSet<Channel> = held.iter().chain(channels).cloned().collect();
        if after.len() > limit {
            return Ok(Subscribed::TooMany { limit });
        }
        *held = after;
        Ok(Subscribed::Holding(held.iter().cloned().collect()))
    }

    async fn unsubscribe(
        &self,
        connection_id: &str,
        channels: &[Channel],
    ) -> Result<Vec<Channel>, PortError> {
        let mut connections = self.connections.lock().unwrap();
        let Some((_, held)) = connections.get_mut(connection_id) else {
            return Ok(Vec::new());
        };
        for channel in channels {
            held.remove(channel);
        }
        Ok(held.iter().cloned().collect())
    }

    async fn close(&self, connection_id: &str) -> Result<(), PortError> {
        self.connections.lock().unwrap().remove(connection_id);
        Ok(())
    }

    async fn subscribers(
        &self,
        channels: &[Channel],
    ) -> Result<BTreeMap<Channel, Vec<String>>, PortError> {
        let connections = self.connections.lock().unwrap();
        let mut found: BTreeMap<Channel, Vec<String>> = BTreeMap::new();
        for (id, (_, held)) in connections.iter() {
            for channel in channels.iter().filter(|c| held.contains(c)) {
                found.entry(channel.clone()).or_default().push(id.clone());
            }
        }
        Ok(found)
    }
}

/// Sockets that record what each connection was sent; those in `gone` answer 410.
#[derive(Default)]
pub struct MemorySockets {
    pub sent: Mutex<Vec<(String, serde_json::Value)>>,
    pub gone: Mutex<BTreeSet<String>>,
}

impl MemorySockets {
    /// What `connection_id` was sent, in order.
    pub fn received(&self, connection_id: &str) -> Vec<serde_json::Value> {
        self.sent
            .lock()
            .unwrap()
            .iter()
            .filter(|(c, _)| c == connection_id)
            .map(|(_, m)| m.clone())
            .collect()
    }
}

impl Sockets for MemorySockets {
    async fn send(&self, connection_id: &str, payload: &[u8]) -> Result<Sent, PortError> {
        if self.gone.lock().unwrap().contains(connection_id) {
            return Ok(Sent::Gone);
        }
        let message = serde_json::from_slice(payload).map_err(|e| PortError::new("send", e))?;
        self.sent
            .lock()
            .unwrap()
            .push((connection_id.to_owned(), message));
        Ok(Sent::Delivered)
    }
}
