//! In-memory stores for unit tests, with the same semantics as the DynamoDB/S3 ones.

use std::{
    collections::{BTreeMap, HashMap},
    sync::Mutex,
};

use hub_runtime::dead_letter::DeadLetter;

use crate::{
    ports::{StoreError, Stores},
    process::{ArchiveObject, HotRow, LatestReading},
};

#[derive(Default)]
pub struct Memory {
    pub rows: Mutex<BTreeMap<(String, String), HotRow>>,
    pub latest: Mutex<HashMap<String, LatestReading>>,
    pub objects: Mutex<BTreeMap<String, Vec<u8>>>,
    pub dead_letters: Mutex<Vec<DeadLetter>>,
    /// Fail the next archive call, to exercise retries.
    pub fail_archive: Mutex<bool>,
}

impl Stores for Memory {
    async fn put_rows(&self, rows: &[HotRow]) -> Result<(), StoreError> {
        let mut stored = self.rows.lock().unwrap();
        for row in rows {
            stored.insert((row.series.clone(), row.sort_key.clone()), row.clone());
        }
        Ok(())
    }

    async fn advance_latest(&self, readings: &[LatestReading]) -> Result<u64, StoreError> {
        let mut latest = self.latest.lock().unwrap();
        let mut moved = 0;
        for reading in readings {
            if latest
                .get(&reading.device_id)
                .is_none_or(|current| current.ts_ms < reading.ts_ms)
            {
                latest.insert(reading.device_id.clone(), reading.clone());
                moved += 1;
            }
        }
        Ok(moved)
    }

    async fn archive(&self, objects: &[ArchiveObject]) -> Result<(), StoreError> {
        if std::mem::take(&mut *self.fail_archive.lock().unwrap()) {
            return Err(StoreError::new("archive", "injected failure"));
        }
        let mut stored = self.objects.lock().unwrap();
        for object in objects {
            stored.insert(object.key.clone(), object.body.clone());
        }
        Ok(())
    }

    async fn dead_letter(&self, letters: &[DeadLetter]) -> Result<(), StoreError> {
        self.dead_letters.lock().unwrap().extend_from_slice(letters);
        Ok(())
    }
}
