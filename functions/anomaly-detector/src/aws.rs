//! The detector's ports over DynamoDB and Kinesis.

use std::{
    collections::HashMap,
    sync::Mutex,
    time::{Duration, Instant},
};

use aws_sdk_dynamodb::{
    error::{DisplayErrorContext, SdkError},
    operation::transact_write_items::TransactWriteItemsError,
    types::{Put, TransactWriteItem},
};
use chrono::{DateTime, TimeZone, Utc};
use hub_detection::{rules_table::DynamoRules, Aggregate, DetectorState, ThresholdRule, Welford};
use hub_runtime::dynamodb::{batch_get, key, n, number, s, string, Item};
use tracing::warn;

use crate::ports::{
    Commit, Committed, Detections, Loaded, PortError, Rules, SeriesStore, Versioned,
};

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

/// A put that succeeds only if the item is still at `version` (0: absent).
fn versioned_put(table: &str, key_name: &str, mut item: Item, version: u64) -> TransactWriteItem {
    item.insert("version".into(), n(version + 1));
    let put = Put::builder().table_name(table).set_item(Some(item));
    let put = if version == 0 {
        put.condition_expression(format!("attribute_not_exists({key_name})"))
    } else {
        put.condition_expression("version = :read")
            .expression_attribute_values(":read", n(version))
    };
    TransactWriteItem::builder()
        .put(put.build().expect("table and item are set"))
        .build()
}

impl SeriesStore for DynamoSeries {
    async fn load_many(
        &self,
        requests: &[(String, Vec<DateTime<Utc>>)],
    ) -> Result<HashMap<String, Loaded>, PortError> {
        let state_keys = requests
            .iter()
            .map(|(series, _)| key("series", series))
            .collect();
        let window_keys = requests
            .iter()
            .flat_map(|(series, windows)| windows.iter().map(|start| window_key(series, *start)))
            .collect();
        let (states, windows) = futures::try_join!(
            batch_get(&self.client, &self.state_table, state_keys),
            batch_get(&self.client, &self.aggregates_table, window_keys),
        )
        .map_err(|e| PortError::new("detector state read", e))?;
        let mut loaded: HashMap<String, Loaded> = requests
            .iter()
            .map(|(series, _)| (series.clone(), Loaded::default()))
            .collect();
        for item in &states {
            let Some(series) = string(item, "series") else {
                continue;
            };
            let value = string(item, "state")
                .and_then(|json| serde_json::from_str::<DetectorState>(&json).ok())
                .ok_or_else(|| {
                    PortError::new(
                        "detector state read",
                        format!("{series}: state is not readable"),
                    )
                })?;
            if let Some(entry) = loaded.get_mut(&series) {
                entry.state = Versioned {
                    value,
                    version: number(item, "version").unwrap_or(0),
                };
            }
        }
        for item in &windows {
            let (Some(series), Some((start, aggregate))) =
                (string(item, "series"), aggregate_of(item))
            else {
                continue;
            };
            if let Some(entry) = loaded.get_mut(&series) {
                entry.windows.insert(start, aggregate);
            }
        }
        Ok(loaded)
    }

    async fn commit(&self, series: &str, commit: &Commit) -> Result<Committed, PortError> {
        let state_json = serde_json::to_string(&commit.state.value)
            .map_err(|e| PortError::new("detector state write", e))?;
        let mut writes = vec![versioned_put(
            &self.state_table,
            "series",
            Item::from([
                ("series".to_owned(), s(series)),
                ("state".to_owned(), s(state_json)),
                ("updated_at".to_owned(), s(Utc::now().to_rfc3339())),
            ]),
            commit.state.version,
        )];
        for (start, window) in &commit.windows {
            let mut item = window_key(series, *start);
            let aggregate = &window.value;
            if let Some(stats) = aggregate.summary() {
                item.insert("avg".to_owned(), n(stats.avg));
                item.insert("stddev".to_owned(), n(stats.stddev));
            }
            item.extend(HashMap::from([
                (
                    "window_end".to_owned(),
                    n(start.timestamp_millis() + commit.window_width_ms),
                ),
                ("count".to_owned(), n(aggregate.stats.count)),
                ("mean".to_owned(), n(aggregate.stats.mean)),
                ("m2".to_owned(), n(aggregate.stats.m2)),
                ("min".to_owned(), n(aggregate.min)),
                ("max".to_owned(), n(aggregate.max)),
            ]));
            writes.push(versioned_put(
                &self.aggregates_table,
                "window_start",
                item,
                window.version,
            ));
        }
        match self
            .client
            .transact_write_items()
            .set_transact_items(Some(writes))
            .send()
            .await
        {
            Ok(_) => Ok(Committed::Yes),
            Err(SdkError::ServiceError(e))
                if matches!(e.err(), TransactWriteItemsError::TransactionCanceledException(c)
                    if c.cancellation_reasons().iter().any(|r| r.code() == Some("ConditionalCheckFailed"))) =>
            {
                Ok(Committed::Conflict)
            }
            Err(e) => Err(PortError::new(
                "detector state write",
                DisplayErrorContext(e),
            )),
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
