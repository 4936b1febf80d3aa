//! Fleet operations that more than one function handles.

pub mod command;
#[cfg(feature = "dynamodb")]
pub mod commands_table;
