//! The stores the storage stage writes, as narrow traits.

use std::future::Future;

use hub_runtime::dead_letter::DeadLetter;

use crate::process::{ArchiveObject, HotRow, LatestReading};

#[derive(Debug, Clone, thiserror::Error)]
#[error("{operation}: {message}")]
pub struct StoreError {
    pub operation: &'static str,
    pub message: String,
}

impl StoreError {
    pub fn new(operation: &'static str, message: impl std::fmt::Display) -> Self {
        Self {
            operation,
            message: message.to_string(),
        }
    }
}

pub trait Stores {
    fn put_rows(&self, rows: &[HotRow]) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// Replaces each device's latest reading unless the stored one is as new or newer.
    /// Returns how many moved forward.
    fn advance_latest(
        &self,
        readings: &[LatestReading],
    ) -> impl Future<Output = Result<u64, StoreError>> + Send;
    fn archive(
        &self,
        objects: &[ArchiveObject],
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
    fn dead_letter(
        &self,
        letters: &[DeadLetter],
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
}
