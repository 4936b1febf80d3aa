use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue};
use chrono::{DateTime, Utc};
use hub_runtime::dynamodb::{flag, s, string, time, Item};

use super::{describe, is_condition_failure, AwsBackend};
use crate::ports::*;

/// A registry row; rows written by other tools (no status, no times) read with defaults.
fn device(item: &Item) -> Option<Device> {
    let created_at = time(item, "created_at").unwrap_or_default();
    Some(Device {
        device_id: string(item, "device_id")?,
        device_type: string(item, "device_type").unwrap_or_default(),
        status: string(item, "status")
            .and_then(|s| DeviceStatus::from_name(&s))
            .unwrap_or(DeviceStatus::Registered),
        serial: string(item, "serial"),
        group: string(item, "group"),
        location: string(item, "location"),
        tenant: string(item, "tenant"),
        firmware_version: string(item, "firmware_version"),
        quarantined: flag(item, "quarantined"),
        simulated: flag(item, "simulated"),
        created_at,
        updated_at: time(item, "updated_at").unwrap_or(created_at),
        decommissioned_at: time(item, "decommissioned_at"),
        connectivity: string(item, "connectivity"),
        last_seen: string(item, "last_seen"),
    })
}

fn item(d: &Device) -> Item {
    let mut item = Item::from([
        ("device_id".to_owned(), s(&d.device_id)),
        ("device_type".to_owned(), s(&d.device_type)),
        ("status".to_owned(), s(d.status.as_str())),
        (
            "quarantined".to_owned(),
            AttributeValue::Bool(d.quarantined),
        ),
        ("simulated".to_owned(), AttributeValue::Bool(d.simulated)),
        ("created_at".to_owned(), s(d.created_at.to_rfc3339())),
        ("updated_at".to_owned(), s(d.updated_at.to_rfc3339())),
    ]);
    for (name, value) in [
        ("serial", &d.serial),
        ("group", &d.group),
        ("location", &d.location),
        ("tenant", &d.tenant),
        ("firmware_version", &d.firmware_version),
    ] {
        if let Some(value) = value {
            item.insert(name.to_owned(), s(value));
        }
    }
    item
}

impl Registry for AwsBackend {
    async fn create(&self, device: &Device) -> Result<bool, PortError> {
        let result = self
            .dynamodb
            .put_item()
            .table_name(&self.tables.devices)
            .set_item(Some(item(device)))
            .condition_expression("attribute_not_exists(device_id)")
            .send()
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(err) if is_condition_failure(&err) => Ok(false),
            Err(err) => Err(PortError::new("registry write", describe(err))),
        }
    }

    async fn get(&self, device_id: &str) -> Result<Option<Device>, PortError> {
        let output = self
            .dynamodb
            .get_item()
            .table_name(&self.tables.devices)
            .key("device_id", s(device_id))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| PortError::new("registry read", describe(e)))?;
        Ok(output.item.as_ref().and_then(device))
    }

    async fn update(
        &self,
        device_id: &str,
        changes: &DeviceChanges,
        at: DateTime<Utc>,
    ) -> Result<Option<Device>, PortError> {
        // Every attribute goes through a name placeholder: status, group and location
        // are DynamoDB reserved words.
        let mut sets: Vec<(&str, AttributeValue)> = vec![("updated_at", s(at.to_rfc3339()))];
        for (name, value) in [
            ("device_type", &changes.device_type),
            ("serial", &changes.serial),
            ("group", &changes.group),
            ("location", &changes.location),
            ("tenant", &changes.tenant),
            ("firmware_version", &changes.firmware_version),
        ] {
            if let Some(value) = value {
                sets.push((name, s(value)));
            }
        }
        if let Some(q) = changes.quarantined {
            sets.push(("quarantined", AttributeValue::Bool(q)));
            sets.push((
                if q { "quarantined_at" } else { "released_at" },
                s(at.to_rfc3339()),
            ));
        }
        if let Some(status) = changes.status {
            sets.push(("status", s(status.as_str())));
        }
        if let Some(t) = changes.decommissioned_at {
            sets.push(("decommissioned_at", s(t.to_rfc3339())));
        }
        let mut request = self
            .dynamodb
            .update_item()
            .table_name(&self.tables.devices)
            .key("device_id", s(device_id))
            .return_values(ReturnValue::AllNew);
        let mut expression = Vec::new();
        for (i, (name, value)) in sets.into_iter().enumerate() {
            expression.push(format!("#a{i} = :v{i}"));
            request = request
                .expression_attribute_names(format!("#a{i}"), name)
                .expression_attribute_values(format!(":v{i}"), value);
        }
        // A decommissioned device never comes back to life.
        let condition = match changes.status {
            Some(status) if status != DeviceStatus::Decommissioned => {
                request = request
                    .expression_attribute_names("#status", "status")
                    .expression_attribute_values(":decommissioned", s("decommissioned"));
                "attribute_exists(device_id) AND #status <> :decommissioned"
            }
            _ => "attribute_exists(device_id)",
        };
        let result = request
            .update_expression(format!("SET {}", expression.join(", ")))
            .condition_expression(condition)
            .send()
            .await;
        match result {
            Ok(output) => Ok(output.attributes.as_ref().and_then(device)),
            Err(err) if is_condition_failure(&err) => self.get(device_id).await,
            Err(err) => Err(PortError::new("registry update", describe(err))),
        }
    }

    async fn list(
        &self,
        filter: &DeviceFilter,
        limit: usize,
        after: Option<&str>,
    ) -> Result<Page<Device>, PortError> {
        let mut items = Vec::new();
        let mut start = after.map(|id| Item::from([("device_id".to_owned(), s(id))]));
        loop {
            let page = self
                .dynamodb
                .scan()
                .table_name(&self.tables.devices)
                .set_exclusive_start_key(start.take())
                .limit(100)
                .send()
                .await
                .map_err(|e| PortError::new("registry scan", describe(e)))?;
            let rows = page.items();
            for (i, row) in rows.iter().enumerate() {
                let Some(d) = device(row) else { continue };
                if !filter.admits(&d) {
                    continue;
                }
                items.push(d);
                if items.len() == limit {
                    // Resuming the scan after this row's key continues exactly here.
                    let more = i + 1 < rows.len() || page.last_evaluated_key().is_some();
                    let next = more.then(|| items[limit - 1].device_id.clone());
                    return Ok(Page { items, next });
                }
            }
            match page.last_evaluated_key() {
                Some(key) => start = Some(key.clone()),
                None => return Ok(Page { items, next: None }),
            }
        }
    }
}
