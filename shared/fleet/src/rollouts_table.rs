//! Rollouts and their device rows in DynamoDB. The rollout item carries a counter per
//! device status; a device row changes in one transaction with those counters, on the
//! condition that the row is still the revision the change was computed from, so the
//! counts always equal the rows.

use aws_sdk_dynamodb::{
    types::{AttributeValue, Put, TransactWriteItem, Update},
    Client,
};
use chrono::{DateTime, Utc};
use hub_runtime::dynamodb::{flag, is_condition_failure, n, number, put, s, string, time, Item};

use crate::{
    rollout::{
        Counts, DeviceRow, DeviceStatus, RollbackStatus, Rollout, RolloutPolicy, RolloutStatus,
    },
    tables::{sdk_error, RolloutsTable, TableError},
};

#[derive(Clone, Debug)]
pub struct DynamoRollouts {
    pub client: Client,
    /// The rollouts table (one item per rollout, with the counters).
    pub rollouts: String,
    /// The rollout devices table (rollout_id, device_id).
    pub devices: String,
}

fn counter_name(status: DeviceStatus) -> String {
    format!("n_{}", status.as_str())
}

const ROLLED_BACK: &str = "n_rolled_back";

pub fn rollout_from_item(item: &Item) -> Option<(Rollout, Counts)> {
    let rollout = Rollout {
        rollout_id: string(item, "rollout_id")?,
        firmware_version: string(item, "firmware_version")?,
        target: string(item, "target")?,
        policy: serde_json::from_str::<RolloutPolicy>(&string(item, "policy")?).ok()?,
        status: RolloutStatus::from_name(&string(item, "status")?)?,
        job_id: string(item, "job_id")?,
        device_count: number(item, "device_count")?,
        canary_size: number(item, "canary_size").unwrap_or(0),
        job_done: flag(item, "job_done"),
        created_at: time(item, "created_at")?,
        created_by: string(item, "created_by").unwrap_or_default(),
        updated_at: time(item, "updated_at")?,
        finished_at: time(item, "finished_at"),
        reason: string(item, "reason"),
    };
    let mut counts = Counts::default();
    for status in DeviceStatus::ALL {
        *counts.get_mut(status) = number::<i64>(item, &counter_name(status))
            .unwrap_or(0)
            .max(0) as u64;
    }
    counts.rolled_back = number::<i64>(item, ROLLED_BACK).unwrap_or(0).max(0) as u64;
    Some((rollout, counts))
}

pub fn rollout_to_item(rollout: &Rollout, counts: &Counts) -> Item {
    let mut item = Item::from([
        ("rollout_id".to_owned(), s(&rollout.rollout_id)),
        ("firmware_version".to_owned(), s(&rollout.firmware_version)),
        ("target".to_owned(), s(&rollout.target)),
        (
            "policy".to_owned(),
            s(serde_json::to_string(&rollout.policy).expect("policies serialize")),
        ),
        ("status".to_owned(), s(rollout.status.as_str())),
        ("job_id".to_owned(), s(&rollout.job_id)),
        ("device_count".to_owned(), n(rollout.device_count)),
        ("canary_size".to_owned(), n(rollout.canary_size)),
        (
            "job_done".to_owned(),
            AttributeValue::Bool(rollout.job_done),
        ),
        ("created_at".to_owned(), s(rollout.created_at.to_rfc3339())),
        ("created_by".to_owned(), s(&rollout.created_by)),
        ("updated_at".to_owned(), s(rollout.updated_at.to_rfc3339())),
    ]);
    for status in DeviceStatus::ALL {
        item.insert(counter_name(status), n(counts.get(status)));
    }
    item.insert(ROLLED_BACK.into(), n(counts.rolled_back));
    if let Some(reason) = &rollout.reason {
        item.insert("reason".into(), s(reason));
    }
    if let Some(at) = rollout.finished_at {
        item.insert("finished_at".into(), s(at.to_rfc3339()));
    }
    item
}

pub fn device_from_item(item: &Item) -> Option<DeviceRow> {
    Some(DeviceRow {
        device_id: string(item, "device_id")?,
        status: DeviceStatus::from_name(&string(item, "status")?)?,
        attempts: number(item, "attempts")?,
        updated_at: time(item, "updated_at")?,
        previous_version: string(item, "previous_version"),
        reason: string(item, "reason"),
        retry_at: time(item, "retry_at"),
        rollback: string(item, "rollback").and_then(|r| RollbackStatus::from_name(&r)),
        revision: number(item, "revision").unwrap_or(0),
    })
}

pub fn device_to_item(rollout_id: &str, row: &DeviceRow) -> Item {
    let mut item = Item::from([
        ("rollout_id".to_owned(), s(rollout_id)),
        ("device_id".to_owned(), s(&row.device_id)),
        ("status".to_owned(), s(row.status.as_str())),
        ("attempts".to_owned(), n(row.attempts)),
        ("updated_at".to_owned(), s(row.updated_at.to_rfc3339())),
        ("revision".to_owned(), n(row.revision)),
    ]);
    if let Some(v) = &row.previous_version {
        item.insert("previous_version".into(), s(v));
    }
    if let Some(reason) = &row.reason {
        item.insert("reason".into(), s(reason));
    }
    if let Some(at) = row.retry_at {
        item.insert("retry_at".into(), s(at.to_rfc3339()));
    }
    if let Some(rollback) = row.rollback {
        item.insert("rollback".into(), s(rollback.as_str()));
    }
    item
}

impl RolloutsTable for DynamoRollouts {
    async fn create(&self, rollout: &Rollout, rows: &[DeviceRow]) -> Result<bool, TableError> {
        // Rows first: the rollout is visible only once all of its devices are.
        let requests = rows
            .iter()
            .map(|row| put(device_to_item(&rollout.rollout_id, row)))
            .collect();
        hub_runtime::dynamodb::batch_write(&self.client, &self.devices, requests)
            .await
            .map_err(|e| TableError::new("rollout devices write", e))?;
        let counts = Counts::of_rows(rows);
        match self
            .client
            .put_item()
            .table_name(&self.rollouts)
            .set_item(Some(rollout_to_item(rollout, &counts)))
            .condition_expression("attribute_not_exists(rollout_id)")
            .send()
            .await
        {
            Ok(_) => Ok(true),
            Err(err) if is_condition_failure(&err) => Ok(false),
            Err(err) => Err(sdk_error("rollout write")(err)),
        }
    }

    async fn get(&self, rollout_id: &str) -> Result<Option<(Rollout, Counts)>, TableError> {
        let output = self
            .client
            .get_item()
            .table_name(&self.rollouts)
            .key("rollout_id", s(rollout_id))
            .consistent_read(true)
            .send()
            .await
            .map_err(sdk_error("rollout read"))?;
        Ok(output.item.as_ref().and_then(rollout_from_item))
    }

    async fn all(&self) -> Result<Vec<(Rollout, Counts)>, TableError> {
        let mut rollouts = Vec::new();
        let mut items = self
            .client
            .scan()
            .table_name(&self.rollouts)
            .into_paginator()
            .items()
            .send();
        while let Some(item) = items.next().await {
            rollouts.extend(rollout_from_item(&item.map_err(sdk_error("rollout read"))?));
        }
        Ok(rollouts)
    }

    async fn device(
        &self,
        rollout_id: &str,
        device_id: &str,
    ) -> Result<Option<DeviceRow>, TableError> {
        let output = self
            .client
            .get_item()
            .table_name(&self.devices)
            .key("rollout_id", s(rollout_id))
            .key("device_id", s(device_id))
            .consistent_read(true)
            .send()
            .await
            .map_err(sdk_error("rollout device read"))?;
        Ok(output.item.as_ref().and_then(device_from_item))
    }

    async fn devices(&self, rollout_id: &str) -> Result<Vec<DeviceRow>, TableError> {
        let mut rows = Vec::new();
        let mut items = self
            .client
            .query()
            .table_name(&self.devices)
            .key_condition_expression("rollout_id = :id")
            .expression_attribute_values(":id", s(rollout_id))
            .consistent_read(true)
            .into_paginator()
            .items()
            .send();
        while let Some(item) = items.next().await {
            rows.extend(device_from_item(
                &item.map_err(sdk_error("rollout devices read"))?,
            ));
        }
        Ok(rows)
    }

    /// One transaction: the row on its revision, and the counters it moves.
    async fn save_device(
        &self,
        rollout_id: &str,
        old: &DeviceRow,
        new: &DeviceRow,
    ) -> Result<bool, TableError> {
        let mut next = new.clone();
        next.revision = old.revision + 1;
        let row = Put::builder()
            .table_name(&self.devices)
            .set_item(Some(device_to_item(rollout_id, &next)))
            .condition_expression("revision = :revision")
            .expression_attribute_values(":revision", n(old.revision))
            .build()
            .map_err(|e| TableError::new("rollout device write", e))?;
        let mut items = vec![TransactWriteItem::builder().put(row).build()];
        let mut moves: Vec<(String, i64)> = Vec::new();
        if old.status != new.status {
            moves.push((counter_name(old.status), -1));
            moves.push((counter_name(new.status), 1));
        }
        let rolled_back = |row: &DeviceRow| row.rollback == Some(RollbackStatus::RolledBack);
        if rolled_back(old) != rolled_back(new) {
            moves.push((ROLLED_BACK.into(), if rolled_back(new) { 1 } else { -1 }));
        }
        if !moves.is_empty() {
            let mut update = Update::builder()
                .table_name(&self.rollouts)
                .key("rollout_id", s(rollout_id));
            let mut parts = Vec::new();
            for (i, (name, delta)) in moves.iter().enumerate() {
                parts.push(format!("#c{i} :d{i}"));
                update = update
                    .expression_attribute_names(format!("#c{i}"), name)
                    .expression_attribute_values(format!(":d{i}"), n(delta));
            }
            let update = update
                .update_expression(format!("ADD {}", parts.join(", ")))
                .build()
                .map_err(|e| TableError::new("rollout device write", e))?;
            items.push(TransactWriteItem::builder().update(update).build());
        }
        match self
            .client
            .transact_write_items()
            .set_transact_items(Some(items))
            .send()
            .await
        {
            Ok(_) => Ok(true),
            Err(err) if is_condition_failure(&err) => Ok(false),
            Err(err) => Err(sdk_error("rollout device write")(err)),
        }
    }

    async fn set_status(
        &self,
        rollout_id: &str,
        from: RolloutStatus,
        to: RolloutStatus,
        reason: Option<&str>,
        at: DateTime<Utc>,
    ) -> Result<bool, TableError> {
        let mut update = self
            .client
            .update_item()
            .table_name(&self.rollouts)
            .key("rollout_id", s(rollout_id))
            .condition_expression("#status = :from")
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":from", s(from.as_str()))
            .expression_attribute_values(":to", s(to.as_str()))
            .expression_attribute_values(":at", s(at.to_rfc3339()));
        let finished = if to == RolloutStatus::InProgress {
            ""
        } else {
            ", finished_at = :at"
        };
        update = match reason {
            Some(reason) => update
                .update_expression(format!(
                    "SET #status = :to, updated_at = :at, reason = :reason{finished}"
                ))
                .expression_attribute_values(":reason", s(reason)),
            None => {
                update.update_expression(format!("SET #status = :to, updated_at = :at{finished}"))
            }
        };
        match update.send().await {
            Ok(_) => Ok(true),
            Err(err) if is_condition_failure(&err) => Ok(false),
            Err(err) => Err(sdk_error("rollout write")(err)),
        }
    }

    async fn set_job_done(&self, rollout_id: &str, at: DateTime<Utc>) -> Result<(), TableError> {
        self.client
            .update_item()
            .table_name(&self.rollouts)
            .key("rollout_id", s(rollout_id))
            .update_expression("SET job_done = :done, updated_at = :at")
            .condition_expression("attribute_exists(rollout_id)")
            .expression_attribute_values(":done", AttributeValue::Bool(true))
            .expression_attribute_values(":at", s(at.to_rfc3339()))
            .send()
            .await
            .map(|_| ())
            .map_err(sdk_error("rollout write"))
    }
}
