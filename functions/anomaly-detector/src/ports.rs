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

/// A series' state and the aggregates of the windows a batch touches.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Loaded {
    pub state: Versioned<DetectorState>,
    pub windows: BTreeMap<DateTime<Utc>, Versioned<Aggregate>>,
}

/// What to write for a series: every part conditioned on the version it was read at.
#[derive(Debug, Clone, PartialEq)]
pub struct Commit {
    pub state: Versioned<DetectorState>,
    /// Merged aggregates by window start, with the version each was read at.
    pub windows: BTreeMap<DateTime<Utc>, Versioned<Aggregate>>,
    pub window_width_ms: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Committed {
    Yes,
    /// Someone else wrote the series since it was read; read again and redo.
    Conflict,
}

pub trait SeriesStore {
    /// The state of each series and the stored aggregates of the given windows, in as few
    /// round trips as the store allows. Series never written come back empty (version 0).
    fn load_many(
        &self,
        requests: &[(String, Vec<DateTime<Utc>>)],
    ) -> impl Future<Output = Result<HashMap<String, Loaded>, PortError>> + Send;
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
