//! What ingest needs from outside: the stored API keys and the raw stream.

use std::future::Future;

use hub_credentials::StoredKey;

/// Where stored API keys are looked up.
pub trait KeyStore {
    fn get(
        &self,
        device_id: &str,
        key_id: &str,
    ) -> impl Future<Output = Result<Option<StoredKey>, String>> + Send;
}

/// The raw stream. Records are put with the device id as partition key; an error means
/// some may not have been written, and the client should retry the request.
pub trait RawSink {
    fn put(
        &self,
        device_id: &str,
        records: Vec<Vec<u8>>,
    ) -> impl Future<Output = Result<(), String>> + Send;
}
