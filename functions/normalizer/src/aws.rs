//! The ports over DynamoDB, Kinesis and S3. Thin: each is one batched call shape.

use std::{
    collections::HashMap,
    sync::Mutex,
    time::{Duration, Instant},
};

use aws_sdk_dynamodb::types::AttributeValue;
use hub_events::DeviceContext;
use hub_runtime::dynamodb::{batch_get, batch_write, key, n, number, put, string, Item};

use crate::ports::{
    DeadLetter, DedupStore, DeviceRecord, DeviceState, DeviceStates, Outputs, PortError, Registry,
};

/// The device registry, with a cache that lives as long as the execution environment, so
/// a warm function reads a device's row once per `ttl`, not once per batch. The cache
/// holds at most `capacity` devices (least recently used go first): device ids come
/// from the stream, so their number is not the function's to choose.
pub struct DynamoRegistry {
    pub client: aws_sdk_dynamodb::Client,
    pub table: String,
    pub ttl: Duration,
    cache: Mutex<lru::LruCache<String, (Instant, DeviceRecord)>>,
}

impl DynamoRegistry {
    pub fn new(
        client: aws_sdk_dynamodb::Client,
        table: String,
        ttl: Duration,
        capacity: std::num::NonZeroUsize,
    ) -> Self {
        Self {
            client,
            table,
            ttl,
            cache: Mutex::new(lru::LruCache::new(capacity)),
        }
    }
}

impl Registry for DynamoRegistry {
    async fn devices(&self, ids: &[String]) -> Result<HashMap<String, DeviceRecord>, PortError> {
        let now = Instant::now();
        let mut found = HashMap::new();
        let mut missing = Vec::new();
        {
            let mut cache = self.cache.lock().expect("registry cache lock");
            for id in ids {
                match cache.get(id) {
                    Some((at, record)) if now.duration_since(*at) < self.ttl => {
                        found.insert(id.clone(), record.clone());
                    }
                    _ => missing.push(id.clone()),
                }
            }
        }
        if missing.is_empty() {
            return Ok(found);
        }
        let keys = missing.iter().map(|id| key("device_id", id)).collect();
        let items = batch_get(&self.client, &self.table, keys)
            .await
            .map_err(|e| PortError::new("registry read", e))?;
        let mut fetched: HashMap<String, DeviceRecord> = items
            .iter()
            .filter_map(|item| Some((string(item, "device_id")?, device_record(item))))
            .collect();
        let mut cache = self.cache.lock().expect("registry cache lock");
        for id in missing {
            // Devices without a row are cached too, as "no registry data".
            let record = fetched.remove(&id).unwrap_or_default();
            cache.put(id.clone(), (now, record.clone()));
            found.insert(id, record);
        }
        Ok(found)
    }
}

fn device_record(item: &Item) -> DeviceRecord {
    DeviceRecord {
        quarantined: matches!(item.get("quarantined"), Some(AttributeValue::Bool(true))),
        context: DeviceContext {
            device_type: string(item, "device_type"),
            group: string(item, "group"),
            location: string(item, "location"),
            firmware_version: string(item, "firmware_version"),
        },
    }
}

/// Per-device sequence tracking and rate-limit window, one item per device.
pub struct DynamoDeviceStates {
    pub client: aws_sdk_dynamodb::Client,
    pub table: String,
}

impl DeviceStates for DynamoDeviceStates {
    async fn load(&self, ids: &[String]) -> Result<HashMap<String, DeviceState>, PortError> {
        let keys = ids.iter().map(|id| key("device_id", id)).collect();
        let items = batch_get(&self.client, &self.table, keys)
            .await
            .map_err(|e| PortError::new("device state read", e))?;
        Ok(items
            .iter()
            .filter_map(|item| {
                Some((
                    string(item, "device_id")?,
                    DeviceState {
                        last_seq: number(item, "last_seq"),
                        last_seq_ts_ms: number(item, "last_seq_ts_ms"),
                        gaps: number(item, "gaps").unwrap_or(0),
                        window_minute: number::<i64>(item, "window_minute").unwrap_or(0),
                        window_count: number(item, "window_count").unwrap_or(0),
                    },
                ))
            })
            .collect())
    }

    async fn save(&self, states: &HashMap<String, DeviceState>) -> Result<(), PortError> {
        let requests = states
            .iter()
            .map(|(id, state)| {
                let mut item = key("device_id", id);
                if let Some(seq) = state.last_seq {
                    item.insert("last_seq".into(), n(seq));
                }
                if let Some(ts) = state.last_seq_ts_ms {
                    item.insert("last_seq_ts_ms".into(), n(ts));
                }
                item.insert("gaps".into(), n(state.gaps));
                item.insert("window_minute".into(), n(state.window_minute));
                item.insert("window_count".into(), n(state.window_count));
                put(item)
            })
            .collect();
        batch_write(&self.client, &self.table, requests)
            .await
            .map_err(|e| PortError::new("device state write", e))
    }
}

/// `device#seq` -> the stream position that first carried it, expiring after `ttl`.
pub struct DynamoDedup {
    pub client: aws_sdk_dynamodb::Client,
    pub table: String,
    pub ttl: Duration,
}

impl DedupStore for DynamoDedup {
    async fn claimed(&self, keys: &[String]) -> Result<HashMap<String, String>, PortError> {
        let keys = keys.iter().map(|k| key("dedup_key", k)).collect();
        let items = batch_get(&self.client, &self.table, keys)
            .await
            .map_err(|e| PortError::new("dedup read", e))?;
        Ok(items
            .iter()
            .filter_map(|item| Some((string(item, "dedup_key")?, string(item, "position")?)))
            .collect())
    }

    async fn claim(&self, claims: &[(String, String)]) -> Result<(), PortError> {
        let expires_at = chrono::Utc::now().timestamp() + self.ttl.as_secs() as i64;
        let requests = claims
            .iter()
            .map(|(dedup_key, position)| {
                let mut item = key("dedup_key", dedup_key);
                item.insert("position".into(), AttributeValue::S(position.clone()));
                item.insert("expires_at".into(), n(expires_at));
                put(item)
            })
            .collect();
        batch_write(&self.client, &self.table, requests)
            .await
            .map_err(|e| PortError::new("dedup write", e))
    }
}

/// The normalized stream and the dead-letter bucket.
pub struct AwsOutputs {
    pub kinesis: aws_sdk_kinesis::Client,
    pub normalized_stream: String,
    pub s3: aws_sdk_s3::Client,
    pub dead_letter_bucket: String,
}

impl Outputs for AwsOutputs {
    async fn emit(&self, events: Vec<(String, Vec<u8>)>) -> Result<(), PortError> {
        let results =
            hub_runtime::kinesis::put_records(&self.kinesis, &self.normalized_stream, events).await;
        let failed: Vec<_> = results.iter().filter_map(|r| r.as_ref().err()).collect();
        match failed.first() {
            None => Ok(()),
            Some(first) => Err(PortError::new(
                "emit",
                format!(
                    "{} of {} records refused, first: {first}",
                    failed.len(),
                    results.len()
                ),
            )),
        }
    }

    async fn dead_letter(&self, letters: &[DeadLetter]) -> Result<(), PortError> {
        hub_runtime::dead_letter::write(&self.s3, &self.dead_letter_bucket, "normalizer", letters)
            .await
            .map_err(|e| PortError::new("dead letter", e))
    }
}
