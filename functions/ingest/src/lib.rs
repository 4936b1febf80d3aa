//! `POST /v1/telemetry`: a device that cannot hold an MQTT connection sends the same
//! payloads over HTTPS with its API key. Each accepted message goes onto the raw stream as
//! the same `iot.telemetry.raw.v1` event the IoT rule writes, so it takes the same path
//! (deduplication, skew correction, rate limit, quarantine) from there.
//!
//! Messages are checked here with the very parser the normalizer uses, so a client hears
//! at once what is wrong with its request instead of finding it in the dead-letter store.
//! A request is all or nothing: either every message is accepted or none is.

pub mod aws;
pub mod handler;
pub mod ports;
pub mod process;

pub use ports::{KeyStore, RawSink};
pub use process::{Ingest, IngestRequest, Reply};
