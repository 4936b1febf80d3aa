//! What the normalizer needs from the outside world, as narrow traits. The AWS adapters
//! are in `crate::aws`; the tests use in-memory fakes.

use std::{collections::HashMap, future::Future};

use hub_events::DeviceContext;
pub use hub_runtime::dead_letter::DeadLetter;

pub use hub_runtime::PortError;

/// What the registry knows about a device.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DeviceRecord {
    pub quarantined: bool,
    pub context: DeviceContext,
}

pub trait Registry {
    /// Registry rows for these devices; devices without a row are absent from the map.
    fn devices(
        &self,
        ids: &[String],
    ) -> impl Future<Output = Result<HashMap<String, DeviceRecord>, PortError>> + Send;
}

/// Per-device state the normalizer keeps between batches.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeviceState {
    pub last_seq: Option<u64>,
    /// Device time (epoch ms) of the reading that set `last_seq`: a lower seq with a newer
    /// time is a restarted counter, not a late reading.
    pub last_seq_ts_ms: Option<i64>,
    /// Sequence numbers skipped and not (yet) received late: the device's missing readings.
    pub gaps: u64,
    /// Start (epoch minute) of the current rate-limit window and messages admitted in it.
    pub window_minute: i64,
    pub window_count: u64,
}

pub trait DeviceStates {
    fn load(
        &self,
        ids: &[String],
    ) -> impl Future<Output = Result<HashMap<String, DeviceState>, PortError>> + Send;
    fn save(
        &self,
        states: &HashMap<String, DeviceState>,
    ) -> impl Future<Output = Result<(), PortError>> + Send;
}

/// `(device, seq)` of a message, and the stream record that first carried it.
pub trait DedupStore {
    /// For each key already claimed, the stream position that claimed it.
    fn claimed(
        &self,
        keys: &[String],
    ) -> impl Future<Output = Result<HashMap<String, String>, PortError>> + Send;
    fn claim(
        &self,
        claims: &[(String, String)],
    ) -> impl Future<Output = Result<(), PortError>> + Send;
}

pub trait Outputs {
    /// Puts normalized events (partition key, bytes) on the normalized stream.
    fn emit(
        &self,
        events: Vec<(String, Vec<u8>)>,
    ) -> impl Future<Output = Result<(), PortError>> + Send;
    fn dead_letter(
        &self,
        letters: &[DeadLetter],
    ) -> impl Future<Output = Result<(), PortError>> + Send;
}
