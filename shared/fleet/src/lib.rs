//! Fleet operations that more than one function handles: device commands and firmware
//! artifacts.

pub mod command;
#[cfg(feature = "dynamodb")]
pub mod commands_table;
pub mod firmware;
#[cfg(feature = "dynamodb")]
pub mod firmware_table;
