//! The telemetry normalizer: raw stream records in, normalized events out, everything
//! else dead-lettered or dropped with a reason and counted.
//!
//! `process` is the batch logic over the narrow traits in `ports`; `aws` holds the
//! DynamoDB, Kinesis and S3 adapters; `handler` turns a Kinesis event into a batch and
//! the batch result into a partial batch response and metrics.

pub mod aws;
pub mod handler;
pub mod memory;
pub mod ports;
pub mod process;
