use chrono::NaiveDate;
use hub_runtime::dynamodb::{n, number, s, string, Item};

use super::{describe, AwsBackend};
use crate::ports::*;

/// The row key: one partition per UTC day, sorted by time then request id.
fn key(entry: &AuditEntry) -> Item {
    Item::from([
        ("day".to_owned(), s(entry.at.format("%Y-%m-%d").to_string())),
        (
            "event_key".to_owned(),
            s(format!(
                "{}#{}",
                entry
                    .at
                    .to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
                entry.request_id
            )),
        ),
    ])
}

fn record(item: &Item) -> Option<AuditRecord> {
    Some(AuditRecord {
        at: string(item, "at")?,
        request_id: string(item, "request_id")?,
        actor: string(item, "actor")?,
        role: string(item, "role")?,
        action: string(item, "action")?,
        target: string(item, "target"),
        outcome: string(item, "outcome")?,
        status: number(item, "status"),
    })
}

impl AuditLog for AwsBackend {
    async fn day(
        &self,
        day: NaiveDate,
        limit: usize,
        after: Option<&str>,
    ) -> Result<Page<AuditRecord>, PortError> {
        let day = s(day.format("%Y-%m-%d").to_string());
        let start = after.map(|event_key| {
            Item::from([
                ("day".to_owned(), day.clone()),
                ("event_key".to_owned(), s(event_key)),
            ])
        });
        let output = self
            .dynamodb
            .query()
            .table_name(&self.tables.audit)
            .key_condition_expression("#day = :day")
            .expression_attribute_names("#day", "day")
            .expression_attribute_values(":day", day)
            .scan_index_forward(false)
            .set_exclusive_start_key(start)
            .limit(i32::try_from(limit).unwrap_or(i32::MAX))
            .send()
            .await
            .map_err(|e| PortError::new("audit read", describe(e)))?;
        let items: Vec<AuditRecord> = output.items().iter().filter_map(record).collect();
        let next = output
            .last_evaluated_key()
            .and_then(|key| string(key, "event_key"));
        Ok(Page { items, next })
    }

    async fn begin(&self, entry: &AuditEntry) -> Result<(), PortError> {
        let mut item = key(entry);
        item.extend([
            ("at".to_owned(), s(entry.at.to_rfc3339())),
            ("request_id".to_owned(), s(&entry.request_id)),
            ("actor".to_owned(), s(&entry.actor)),
            ("role".to_owned(), s(entry.role)),
            ("action".to_owned(), s(&entry.action)),
            ("outcome".to_owned(), s("pending")),
        ]);
        if let Some(target) = &entry.target {
            item.insert("target".into(), s(target));
        }
        if self.audit_retention_days > 0 {
            let expires = entry.at + chrono::Duration::days(self.audit_retention_days);
            item.insert("expires_at".into(), n(expires.timestamp()));
        }
        self.dynamodb
            .put_item()
            .table_name(&self.tables.audit)
            .set_item(Some(item))
            // An audit row is written once: a second begin for the same key is refused.
            .condition_expression("attribute_not_exists(event_key)")
            .send()
            .await
            .map_err(|e| PortError::new("audit write", describe(e)))?;
        Ok(())
    }

    async fn finish(&self, entry: &AuditEntry, status: u16) -> Result<(), PortError> {
        let outcome = if status < 400 { "done" } else { "refused" };
        self.dynamodb
            .update_item()
            .table_name(&self.tables.audit)
            .set_key(Some(key(entry)))
            .update_expression("SET #outcome = :outcome, #status = :status")
            // Only a pending row gets its outcome, once; a finished row is never rewritten
            // and a missing one is not made up.
            .condition_expression("#outcome = :pending")
            .expression_attribute_names("#status", "status")
            .expression_attribute_names("#outcome", "outcome")
            .expression_attribute_values(":outcome", s(outcome))
            .expression_attribute_values(":pending", s("pending"))
            .expression_attribute_values(":status", n(status))
            .send()
            .await
            .map_err(|e| PortError::new("audit outcome", describe(e)))?;
        Ok(())
    }
}
