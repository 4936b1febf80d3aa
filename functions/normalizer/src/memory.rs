//! In-memory ports for unit tests of the batch logic (and for the benchmark, which
//! measures the decode, validate and normalize path without a network).

use std::{
    collections::HashMap,
    sync::{
        atomic::{AtomicBool, Ordering},
        Mutex,
    },
};

use crate::ports::{
    DeadLetter, DedupStore, DeviceRecord, DeviceState, DeviceStates, Outputs, PortError, Registry,
};

#[derive(Default)]
pub struct Memory {
    pub registry: Mutex<HashMap<String, DeviceRecord>>,
    pub states: Mutex<HashMap<String, DeviceState>>,
    pub claims: Mutex<HashMap<String, String>>,
    pub emitted: Mutex<Vec<(String, Vec<u8>)>>,
    pub letters: Mutex<Vec<DeadLetter>>,
    /// When set, emitting fails, as a stream would under throttling.
    pub fail_emit: AtomicBool,
    /// When set, saving device state fails: the last step of a batch, after the emit.
    pub fail_save: AtomicBool,
}

impl Memory {
    pub fn fail_emit(&self, fail: bool) {
        self.fail_emit.store(fail, Ordering::SeqCst);
    }
}

impl Registry for Memory {
    async fn devices(&self, ids: &[String]) -> Result<HashMap<String, DeviceRecord>, PortError> {
        let registry = self.registry.lock().unwrap();
        Ok(ids
            .iter()
            .filter_map(|id| registry.get(id).map(|r| (id.clone(), r.clone())))
            .collect())
    }
}

impl DeviceStates for Memory {
    async fn load(&self, ids: &[String]) -> Result<HashMap<String, DeviceState>, PortError> {
        let states = self.states.lock().unwrap();
        Ok(ids
            .iter()
            .filter_map(|id| states.get(id).map(|s| (id.clone(), s.clone())))
            .collect())
    }

    async fn save(&self, states: &HashMap<String, DeviceState>) -> Result<(), PortError> {
        if self.fail_save.load(Ordering::SeqCst) {
            return Err(PortError::new(
                "device state write",
                "ProvisionedThroughputExceededException",
            ));
        }
        self.states.lock().unwrap().extend(states.clone());
        Ok(())
    }
}

impl DedupStore for Memory {
    async fn claimed(&self, keys: &[String]) -> Result<HashMap<String, String>, PortError> {
        let claims = self.claims.lock().unwrap();
        Ok(keys
            .iter()
            .filter_map(|k| claims.get(k).map(|p| (k.clone(), p.clone())))
            .collect())
    }

    async fn claim(&self, claims: &[(String, String)]) -> Result<(), PortError> {
        self.claims.lock().unwrap().extend(claims.iter().cloned());
        Ok(())
    }
}

impl Outputs for Memory {
    async fn emit(&self, events: Vec<(String, Vec<u8>)>) -> Result<(), PortError> {
        if self.fail_emit.load(Ordering::SeqCst) {
            return Err(PortError::new(
                "emit",
                "ProvisionedThroughputExceededException",
            ));
        }
        self.emitted.lock().unwrap().extend(events);
        Ok(())
    }

    async fn dead_letter(&self, letters: &[DeadLetter]) -> Result<(), PortError> {
        self.letters.lock().unwrap().extend_from_slice(letters);
        Ok(())
    }
}
