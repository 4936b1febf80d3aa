//! Fleet operations that more than one function handles: device commands, firmware
//! artifacts and firmware rollouts.

pub mod body;
pub mod command;
#[cfg(feature = "dynamodb")]
pub mod commands_table;
pub mod firmware;
#[cfg(feature = "dynamodb")]
pub mod firmware_table;
#[cfg(feature = "jobs")]
pub mod jobs;
#[cfg(any(test, feature = "memory"))]
pub mod memory;
pub mod ota;
pub mod rollout;
#[cfg(feature = "dynamodb")]
pub mod rollouts_table;
pub mod tables;

pub use tables::{CommandsTable, FirmwareTable, RolloutsTable, TableError};
