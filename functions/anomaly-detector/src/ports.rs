//! What the detector needs from outside, as narrow traits; AWS adapters in `crate::aws`,
//! in-memory ones in `crate::memory`.

use std::{
    collections::{BTreeMap, HashMap},
    future::Future,
};

use chrono::{DateTime, Utc};
use hub_detection::{Aggregate, ClosedWindow, DeviceState, ThresholdRule};

pub use hub_runtime::PortError;

pub trait Rules {
    fn rules(&self) -> impl Future<Output = Result<Vec<ThresholdRule>, PortError>> + Send;
}

/// A stored value and the version it was read at (0: not stored yet).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Versioned<T> {
    pub value: T,
    pub version: u64,
}

/// What to write for a device once a batch has been applied to its series.
#[derive(Debug, Clone, PartialEq)]
pub struct Commit {
    /// The device's new state (each series' open window with it), conditioned on the
    /// version it was read at.
    pub state: Versioned<DeviceState>,
    /// Stored windows, by series key and start, with a device's late readings merged in
    /// and the version each was read at: written together with the state, or not at all.
    pub late: BTreeMap<(String, DateTime<Utc>), Versioned<Aggregate>>,
    pub window_width_ms: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Committed {
    Yes,
    /// Someone else wrote the series since it was read; read again and redo.
    Conflict,
}

pub trait SeriesStore {
    /// The state of each device in as few round trips as the store allows. Devices never
    /// written are left out (version 0).
    fn load_many(
        &self,
        devices: &[String],
    ) -> impl Future<Output = Result<HashMap<String, Versioned<DeviceState>>, PortError>> + Send;
    /// Stored aggregates of the given windows (absent ones are left out).
    fn load_windows(
        &self,
        series: &str,
        starts: &[DateTime<Utc>],
    ) -> impl Future<Output = Result<BTreeMap<DateTime<Utc>, Versioned<Aggregate>>, PortError>> + Send;
    /// Stores windows the series has moved past, complete, before the state that moved
    /// past them: each where it is absent, or where it is as some attempt from the same
    /// readings stored it (closed by the same reading, or derived from the same state
    /// version: a redo, or a batch that failed for good) and nothing merged into it since.
    /// Returns the windows refused: they hold readings from elsewhere (a state re-learned,
    /// a slower writer), and are to be merged into instead.
    fn store_closed(
        &self,
        series: &str,
        closed: &[ClosedWindow],
        state_version: u64,
        window_width_ms: i64,
    ) -> impl Future<Output = Result<Vec<DateTime<Utc>>, PortError>> + Send;
    fn commit(
        &self,
        device_id: &str,
        commit: &Commit,
    ) -> impl Future<Output = Result<Committed, PortError>> + Send;
}

/// The anomaly stream: `(partition key, event bytes)`.
pub trait Detections {
    fn emit(
        &self,
        events: Vec<(String, Vec<u8>)>,
    ) -> impl Future<Output = Result<(), PortError>> + Send;
}
