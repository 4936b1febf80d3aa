//! The ingest ports on AWS: API keys in DynamoDB, the raw Kinesis stream.

use hub_credentials::{dynamodb::DynamoApiKeys, StoredKey};

use crate::{KeyStore, RawSink};

impl KeyStore for DynamoApiKeys {
    async fn get(&self, device_id: &str, key_id: &str) -> Result<Option<StoredKey>, String> {
        DynamoApiKeys::get(self, device_id, key_id)
            .await
            .map_err(|e| e.to_string())
    }
}

pub struct KinesisRawSink {
    pub client: aws_sdk_kinesis::Client,
    pub stream: String,
}

impl RawSink for KinesisRawSink {
    async fn put(&self, device_id: &str, records: Vec<Vec<u8>>) -> Result<(), String> {
        let records = records
            .into_iter()
            .map(|data| (device_id.to_owned(), data))
            .collect();
        hub_runtime::kinesis::put_all(&self.client, &self.stream, records).await
    }
}
