//! Real-time events for consoles over an API Gateway WebSocket API: the `$connect`
//! authorizer's token check, the socket's subscribe protocol, and the pusher's fan-out of
//! readings, detections, alert changes and rollout events to subscribed connections.

pub mod aws;
pub mod channel;
pub mod coalesce;
pub mod entry;
pub mod events;
#[cfg(any(test, feature = "memory"))]
pub mod memory;
pub mod ports;
pub mod protocol;
pub mod push;
pub mod socket;
pub mod token;
