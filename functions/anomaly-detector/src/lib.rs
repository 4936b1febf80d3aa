//! The anomaly detector: each batch of the normalized stream is split into device#metric
//! series; each series is run through its z-score and the threshold rules that watch it
//! (`hub_detection::detector`), its detections go onto the anomaly stream, and its state
//! and window aggregates are written back in one transaction conditioned on the version
//! that was read, so two invocations can never both apply their view of a series.

pub mod aws;
pub mod handler;
pub mod memory;
pub mod ports;
pub mod process;
