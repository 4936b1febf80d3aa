//! The storage stage: every normalized reading becomes one hot-store row per metric,
//! moves the device's latest value forward (never back), and lands in the archive.
//!
//! Every write is idempotent, so a redelivered batch changes nothing: rows are keyed by
//! series and measurement time, the latest value is a conditional write on time, and an
//! archive object's key comes from the batch's first stream position.

pub mod aws;
pub mod handler;
pub mod memory;
pub mod ports;
pub mod process;
