//! What the detector needs from outside, as narrow traits; AWS adapters in `crate::aws`,
//! in-memory ones in `crate::memory`.

use std::{
    collections::{BTreeMap, HashMap},
    future::Future,
};

use chrono::{DateTime, Utc};
use hub_detection::{Aggregate, DetectorState, ThresholdRule};

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

/// What to write for a series once a batch has been applied to it.
#[derive(Debug, Clone, PartialEq)]
pub struct Commit {
    /// The new state (its open window with it), conditioned on the version it was read at.
    pub state: Versioned<DetectorState>,
    /// Windows the series moved past, complete: stored as they are before the state, so a
    /// redo after a failed state write stores the same values again.
    pub closed: Vec<(DateTime<Utc>, Aggregate)>,
    /// Stored windows with a device's late readings merged in, with the version each was
    /// read at: written together with the state, or not at all.
    pub late: BTreeMap<DateTime<Utc>, Versioned<Aggregate>>,
    pub window_width_ms: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Committed {
    Yes,
    /// Someone else wrote the series since it was read; read again and redo.
    Conflict,
}

pub trait SeriesStore {
    /// The state of each series in as few round trips as the store allows. Series never
    /// written come back empty (version 0).
    fn load_many(
        &self,
        series: &[String],
    ) -> impl Future<Output = Result<HashMap<String, Versioned<DetectorState>>, PortError>> + Send;
    /// Stored aggregates of the given windows (absent ones are left out).
    fn load_windows(
        &self,
        series: &str,
        starts: &[DateTime<Utc>],
    ) -> impl Future<Output = Result<BTreeMap<DateTime<Utc>, Versioned<Aggregate>>, PortError>> + Send;
    fn commit(
        &self,
        series: &str,
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
