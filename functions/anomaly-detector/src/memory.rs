//! In-memory ports for unit tests of the batch logic, with the same version checks as the
//! DynamoDB writes.

use std::{
    collections::{BTreeMap, HashMap},
    sync::{
        atomic::{AtomicU32, Ordering},
        Mutex,
    },
};

use chrono::{DateTime, Utc};
use hub_detection::{Aggregate, ClosedWindow, DeviceState, ThresholdRule};

use crate::ports::{Commit, Committed, Detections, PortError, Rules, SeriesStore, Versioned};

#[derive(Default)]
pub struct MemoryRules(pub Vec<ThresholdRule>);

impl Rules for MemoryRules {
    async fn rules(&self) -> Result<Vec<ThresholdRule>, PortError> {
        Ok(self.0.clone())
    }
}

/// Series key and window start.
pub type WindowKey = (String, DateTime<Utc>);

#[derive(Default)]
pub struct MemorySeries {
    /// By device id.
    pub states: Mutex<HashMap<String, Versioned<DeviceState>>>,
    pub windows: Mutex<HashMap<WindowKey, Versioned<Aggregate>>>,
    /// The reading that closed each window stored closed, and the state version it was
    /// derived from.
    pub closed_by: Mutex<HashMap<WindowKey, (String, u64)>>,
    /// Commits to refuse as conflicts before accepting, as if another writer got there.
    pub conflicts_to_inject: AtomicU32,
    /// Commits to fail outright (nothing written), as a batch that never lands.
    pub failures_to_inject: AtomicU32,
}

impl SeriesStore for MemorySeries {
    async fn load_many(
        &self,
        devices: &[String],
    ) -> Result<HashMap<String, Versioned<DeviceState>>, PortError> {
        let states = self.states.lock().unwrap();
        Ok(devices
            .iter()
            .filter_map(|id| Some((id.clone(), states.get(id)?.clone())))
            .collect())
    }

    async fn load_windows(
        &self,
        series: &str,
        starts: &[DateTime<Utc>],
    ) -> Result<BTreeMap<DateTime<Utc>, Versioned<Aggregate>>, PortError> {
        let stored = self.windows.lock().unwrap();
        Ok(starts
            .iter()
            .filter_map(|start| Some((*start, stored.get(&(series.to_owned(), *start))?.clone())))
            .collect())
    }

    async fn store_closed(
        &self,
        series: &str,
        closed: &[ClosedWindow],
        state_version: u64,
        _: i64,
    ) -> Result<Vec<DateTime<Utc>>, PortError> {
        let mut windows = self.windows.lock().unwrap();
        let mut closed_by = self.closed_by.lock().unwrap();
        let mut refused = Vec::new();
        for window in closed {
            let key = (series.to_owned(), window.start);
            let same_readings = closed_by
                .get(&key)
                .is_some_and(|(by, from)| by == &window.closed_by || *from == state_version);
            let redo = same_readings && windows.get(&key).map(|w| w.version) == Some(1);
            if windows.contains_key(&key) && !redo {
                refused.push(window.start);
                continue;
            }
            windows.insert(
                key.clone(),
                Versioned {
                    value: window.aggregate,
                    version: 1,
                },
            );
            closed_by.insert(key, (window.closed_by.clone(), state_version));
        }
        Ok(refused)
    }

    async fn commit(&self, device_id: &str, commit: &Commit) -> Result<Committed, PortError> {
        if self
            .failures_to_inject
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok()
        {
            return Err(PortError::new("detector state write", "injected failure"));
        }
        if self
            .conflicts_to_inject
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok()
        {
            // Another writer advanced the state meanwhile.
            let mut states = self.states.lock().unwrap();
            let state = states.entry(device_id.to_owned()).or_default();
            state.version += 1;
            return Ok(Committed::Conflict);
        }
        let mut states = self.states.lock().unwrap();
        let mut windows = self.windows.lock().unwrap();
        let current = states.get(device_id).map_or(0, |s| s.version);
        let late_match = commit
            .late
            .iter()
            .all(|(key, w)| windows.get(key).map_or(0, |s| s.version) == w.version);
        if current != commit.state.version || !late_match {
            return Ok(Committed::Conflict);
        }
        states.insert(
            device_id.to_owned(),
            Versioned {
                value: commit.state.value.clone(),
                version: current + 1,
            },
        );
        for (key, w) in &commit.late {
            windows.insert(
                key.clone(),
                Versioned {
                    value: w.value,
                    version: w.version + 1,
                },
            );
        }
        Ok(Committed::Yes)
    }
}

#[derive(Default)]
pub struct MemoryDetections {
    pub events: Mutex<Vec<(String, Vec<u8>)>>,
}

impl Detections for MemoryDetections {
    async fn emit(&self, events: Vec<(String, Vec<u8>)>) -> Result<(), PortError> {
        self.events.lock().unwrap().extend(events);
        Ok(())
    }
}
