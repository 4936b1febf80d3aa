//! The device simulator: a fleet of devices of a few realistic types, each with its own
//! X.509 certificate, speaking the hub's MQTT protocol with the faults real fleets have.

pub mod agent;
pub mod evaluate;
pub mod local;
pub mod provision;
pub mod run;
pub mod script;
