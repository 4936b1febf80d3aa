//! The registry's connectivity columns in memory, for tests.

use std::{collections::HashMap, sync::Mutex};

use hub_runtime::PortError;

use crate::{Applied, ConnectivityStore, PresenceChange};

#[derive(Default)]
pub struct MemoryRegistry {
    /// Device id -> the last applied change (None: registered, never seen).
    pub rows: Mutex<HashMap<String, Option<PresenceChange>>>,
}

impl MemoryRegistry {
    pub fn with_devices(ids: &[&str]) -> Self {
        Self {
            rows: Mutex::new(ids.iter().map(|id| (id.to_string(), None)).collect()),
        }
    }
}

impl ConnectivityStore for MemoryRegistry {
    async fn apply(&self, change: &PresenceChange) -> Result<Applied, PortError> {
        let mut rows = self.rows.lock().unwrap();
        let Some(row) = rows.get_mut(&change.device_id) else {
            return Ok(Applied::NotADevice);
        };
        if row.as_ref().is_some_and(|held| held.order > change.order) {
            return Ok(Applied::Stale);
        }
        *row = Some(change.clone());
        Ok(Applied::Applied)
    }
}
