//! The detector's ports over DynamoDB and Kinesis.

use std::{
    collections::{BTreeMap, HashMap},
    sync::Mutex,
    time::{Duration, Instant},
};

use aws_sdk_dynamodb::{
    error::DisplayErrorContext,
    primitives::Blob,
    types::{AttributeValue, Put, TransactWriteItem},
};
use chrono::{DateTime, TimeZone, Utc};
use hub_detection::{
    rules_table::DynamoRules, Aggregate, ClosedWindow, DeviceState, ThresholdRule, Welford,
};
use hub_runtime::dynamodb::{batch_get, is_condition_failure, key, n, number, s, string, Item};
use tracing::warn;

use crate::ports::{Commit, Committed, Detections, PortError, Rules, SeriesStore, Versioned};

/// The rules table, read at most once per `ttl`; the cache lives across invocations.
pub struct CachedRules {
    pub table: DynamoRules,
    pub ttl: Duration,
    pub cache: Mutex<Option<(Instant, Vec<ThresholdRule>)>>,
}

impl CachedRules {
    pub fn new(table: DynamoRules, ttl: Duration) -> Self {
        Self {
            table,
            ttl,
            cache: Mutex::new(None),
        }
    }
}

impl Rules for CachedRules {
    async fn rules(&self) -> Result<Vec<ThresholdRule>, PortError> {
        if let Some((at, rules)) = &*self.cache.lock().expect("rules cache lock") {
            if at.elapsed() < self.ttl {
                return Ok(rules.clone());
            }
        }
        let (rules, bad) = self.table.all().await?;
        for rule in bad {
            warn!(rule_id = %rule.rule_id, problem = %rule.problem, "alert rule ignored");
        }
        *self.cache.lock().expect("rules cache lock") = Some((Instant::now(), rules.clone()));
        Ok(rules)
    }
}

pub struct DynamoSeries {
    pub client: aws_sdk_dynamodb::Client,
    pub state_table: String,
    pub aggregates_table: String,
    /// How long a window's aggregate is kept after the window ends (its TTL).
    pub aggregates_retention: chrono::Duration,
}

fn window_key(series: &str, start: DateTime<Utc>) -> Item {
    Item::from([
        ("series".to_owned(), s(series)),
        ("window_start".to_owned(), n(start.timestamp_millis())),
    ])
}

fn aggregate_of(item: &Item) -> Option<(DateTime<Utc>, Versioned<Aggregate>)> {
    let start = Utc
        .timestamp_millis_opt(number(item, "window_start")?)
        .single()?;
    Some((
        start,
        Versioned {
            value: Aggregate {
                stats: Welford {
                    count: number(item, "count")?,
                    mean: number(item, "mean")?,
                    m2: number(item, "m2")?,
                },
                min: number(item, "min")?,
                max: number(item, "max")?,
            },
            version: number(item, "version")?,
        },
    ))
}

/// The condition that `item` is still at `version` (0: absent): expression and values.
fn at_version(key_name: &str, version: u64) -> (String, Option<Item>) {
    if version == 0 {
        (format!("attribute_not_exists({key_name})"), None)
    } else {
        (
            "version = :read".to_owned(),
            Some(Item::from([(":read".to_owned(), n(version))])),
        )
    }
}

/// A transaction put that succeeds only if the item is still at `version`.
fn versioned_put(table: &str, key_name: &str, mut item: Item, version: u64) -> TransactWriteItem {
    item.insert("version".into(), n(version + 1));
    let (condition, values) = at_version(key_name, version);
    let put = Put::builder()
        .table_name(table)
        .set_item(Some(item))
        .condition_expression(condition)
        .set_expression_attribute_values(values)
        .build()
        .expect("table and item are set");
    TransactWriteItem::builder().put(put).build()
}

impl DynamoSeries {
    fn window_item(
        &self,
        series: &str,
        start: DateTime<Utc>,
        aggregate: &Aggregate,
        width_ms: i64,
    ) -> Item {
        let mut item = window_key(series, start);
        if let Some(stats) = aggregate.summary() {
            item.insert("avg".to_owned(), n(stats.avg));
            item.insert("stddev".to_owned(), n(stats.stddev));
        }
        let end_ms = start.timestamp_millis() + width_ms;
        let expires_at = end_ms / 1000 + self.aggregates_retention.num_seconds();
        item.extend(HashMap::from([
            ("window_end".to_owned(), n(end_ms)),
            ("expires_at".to_owned(), n(expires_at)),
            ("count".to_owned(), n(aggregate.stats.count)),
            ("mean".to_owned(), n(aggregate.stats.mean)),
            ("m2".to_owned(), n(aggregate.stats.m2)),
            ("min".to_owned(), n(aggregate.min)),
            ("max".to_owned(), n(aggregate.max)),
        ]));
        item
    }

    fn state_item(device_id: &str, state: &DeviceState) -> Item {
        Item::from([
            ("device_id".to_owned(), s(device_id)),
            (
                "state".to_owned(),
                AttributeValue::B(Blob::new(state.encode())),
            ),
            ("updated_at".to_owned(), s(Utc::now().to_rfc3339())),
        ])
    }
}

/// A stored state; one that is not readable (another format) is re-learned from scratch,
/// loudly: it is derived from the readings, which are kept elsewhere.
fn state_of(device_id: &str, item: &Item) -> DeviceState {
    let decoded = match item.get("state") {
        Some(AttributeValue::B(bytes)) => {
            DeviceState::decode(bytes.as_ref()).map_err(|e| e.to_string())
        }
        _ => Err("no binary state attribute".to_owned()),
    };
    decoded.unwrap_or_else(|problem| {
        warn!(%device_id, %problem, "detector state re-learned");
        DeviceState::default()
    })
}

impl SeriesStore for DynamoSeries {
    async fn load_many(
        &self,
        devices: &[String],
    ) -> Result<HashMap<String, Versioned<DeviceState>>, PortError> {
        let keys = devices.iter().map(|id| key("device_id", id)).collect();
        let items = batch_get(&self.client, &self.state_table, keys)
            .await
            .map_err(|e| PortError::new("detector state read", e))?;
        Ok(items
            .iter()
            .filter_map(|item| {
                let device_id = string(item, "device_id")?;
                let value = state_of(&device_id, item);
                let version = number(item, "version").unwrap_or(0);
                Some((device_id, Versioned { value, version }))
            })
            .collect())
    }

    async fn load_windows(
        &self,
        series: &str,
        starts: &[DateTime<Utc>],
    ) -> Result<BTreeMap<DateTime<Utc>, Versioned<Aggregate>>, PortError> {
        let keys = starts
            .iter()
            .map(|start| window_key(series, *start))
            .collect();
        let items = batch_get(&self.client, &self.aggregates_table, keys)
            .await
            .map_err(|e| PortError::new("aggregates read", e))?;
        Ok(items.iter().filter_map(aggregate_of).collect())
    }

    async fn store_closed(
        &self,
        series: &str,
        closed: &[ClosedWindow],
        state_version: u64,
        window_width_ms: i64,
    ) -> Result<Vec<DateTime<Utc>>, PortError> {
        let mut refused = Vec::new();
        // A window closes once per `WindowSeconds` per series: one put each is cheap.
        for window in closed {
            let mut item =
                self.window_item(series, window.start, &window.aggregate, window_width_ms);
            item.insert("version".to_owned(), n(1));
            item.insert("closed_by".to_owned(), s(&window.closed_by));
            item.insert("from_version".to_owned(), n(state_version));
            let stored = self
                .client
                .put_item()
                .table_name(&self.aggregates_table)
                .set_item(Some(item))
                .condition_expression(
                    "attribute_not_exists(window_start) \
                     OR (version = :one AND (closed_by = :by OR from_version = :from))",
                )
                .expression_attribute_values(":by", s(&window.closed_by))
                .expression_attribute_values(":from", n(state_version))
                .expression_attribute_values(":one", n(1))
                .send()
                .await;
            match stored {
                Ok(_) => {}
                Err(e) if is_condition_failure(&e) => refused.push(window.start),
                Err(e) => return Err(PortError::new("aggregates write", DisplayErrorContext(e))),
            }
        }
        Ok(refused)
    }

    async fn commit(&self, device_id: &str, commit: &Commit) -> Result<Committed, PortError> {
        let state = Self::state_item(device_id, &commit.state.value);
        let version = commit.state.version;
        let written = if commit.late.is_empty() {
            // The usual case: one conditional put of one item.
            let mut item = state;
            item.insert("version".into(), n(version + 1));
            let (condition, values) = at_version("device_id", version);
            self.client
                .put_item()
                .table_name(&self.state_table)
                .set_item(Some(item))
                .condition_expression(condition)
                .set_expression_attribute_values(values)
                .send()
                .await
                .map(drop)
                .map_err(|e| (is_condition_failure(&e), DisplayErrorContext(e).to_string()))
        } else {
            let mut writes = vec![versioned_put(
                &self.state_table,
                "device_id",
                state,
                version,
            )];
            for ((series, start), window) in &commit.late {
                let item = self.window_item(series, *start, &window.value, commit.window_width_ms);
                writes.push(versioned_put(
                    &self.aggregates_table,
                    "window_start",
                    item,
                    window.version,
                ));
            }
            self.client
                .transact_write_items()
                .set_transact_items(Some(writes))
                .send()
                .await
                .map(drop)
                .map_err(|e| (is_condition_failure(&e), DisplayErrorContext(e).to_string()))
        };
        match written {
            Ok(()) => Ok(Committed::Yes),
            Err((true, _)) => Ok(Committed::Conflict),
            Err((false, error)) => Err(PortError::new("detector state write", error)),
        }
    }
}

pub struct KinesisDetections {
    pub client: aws_sdk_kinesis::Client,
    pub stream: String,
}

impl Detections for KinesisDetections {
    async fn emit(&self, events: Vec<(String, Vec<u8>)>) -> Result<(), PortError> {
        hub_runtime::kinesis::put_all(&self.client, &self.stream, events)
            .await
            .map_err(|e| PortError::new("anomaly stream put", e))
    }
}
