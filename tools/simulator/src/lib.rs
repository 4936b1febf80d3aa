//! The device simulator: a fleet of devices of a few realistic types, each with its own
//! X.509 certificate, speaking the hub's MQTT protocol with the faults real fleets have,
//! answering commands, following their shadows and taking firmware updates (`ota`).
//! `serve` brings up answering-only devices for end-to-end tests.

pub mod agent;
pub mod evaluate;
pub mod local;
pub mod nab;
pub mod ota;
pub mod provision;
pub mod run;
pub mod script;
pub mod serve;
