//! Fleet events delivered by IoT rules. Presence: IoT Core publishes a lifecycle event on
//! `$aws/events/presence/{connected|disconnected}/{clientId}` whenever a client connects
//! or goes; a rule hands it here, and the device's registry row gets `connectivity` and
//! `last_seen`. Events can arrive late or twice (the rule invokes asynchronously), so an
//! event only applies if it is newer than the one the row holds.
//!
//! Firmware uploads: the firmware bucket's notifications; see [`firmware`].
//!
//! Firmware rollouts: IoT Jobs' job and job-execution events, and retries coming back
//! from the delay queue; see [`rollout`].
//!
//! Command answers: a device answers a command on `devices/{id}/commands/ack`; the ack
//! rule selects the answer fields, adds the device id from the topic and hands them here
//! to be recorded ([`hub_fleet::command`] says which answers count).
//!
//! What an event is comes from where it came from, never from its contents: see
//! [`source`].

pub mod aws;
pub mod firmware;
pub mod handler;
#[cfg(any(test, feature = "memory"))]
pub mod memory;
pub mod ports;
pub mod presence;
pub mod rollout;
pub mod source;

pub use handler::{dispatch, Fleet, Outcome};
pub use ports::{ConnectivityStore, FirmwareChecks, RolloutPorts};
pub use presence::{
    handle, handle_batch, Applied, BatchOutcome, Connectivity, PresenceChange, PresenceEvent,
};
pub use source::{Origins, Source};

use hub_runtime::PortError;

#[derive(Debug, thiserror::Error)]
pub enum FleetError {
    #[error("not an event of a source this function takes: {0}")]
    Source(#[from] source::SourceError),
    #[error("not a presence event: {0}")]
    NotPresence(String),
    #[error(transparent)]
    Store(#[from] PortError),
    #[error(transparent)]
    Table(#[from] hub_fleet::TableError),
    #[error(transparent)]
    Rollout(#[from] rollout::RolloutError),
}
