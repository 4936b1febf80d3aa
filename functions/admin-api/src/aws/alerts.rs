use chrono::{DateTime, Utc};
use hub_detection::rule::ThresholdRule;
use hub_events::AlertState;
use hub_runtime::dynamodb::{number, s, string, Item};

use super::{describe, is_condition_failure, AwsBackend};
use crate::ports::*;

fn alert(item: &Item) -> Option<AlertRecord> {
    Some(AlertRecord {
        alert_id: string(item, "alert_id")?,
        device_id: string(item, "device_id")?,
        rule_id: string(item, "rule_id").unwrap_or_default(),
        metric: string(item, "metric").unwrap_or_default(),
        severity: string(item, "severity").unwrap_or_default(),
        state: AlertState::from_name(&string(item, "state")?)?,
        count: number(item, "count").unwrap_or(0),
        summary: string(item, "summary").unwrap_or_default(),
        raised_at: string(item, "raised_at"),
        window_start: string(item, "window_start"),
        window_end: string(item, "window_end"),
        device_type: string(item, "device_type"),
        acknowledged_at: string(item, "acknowledged_at"),
        acknowledged_by: string(item, "acknowledged_by"),
        resolved_at: string(item, "resolved_at"),
        resolved_by: string(item, "resolved_by"),
    })
}

impl Alerts for AwsBackend {
    async fn put_rule(&self, rule: &ThresholdRule) -> Result<(), PortError> {
        Ok(self.rules.put(rule).await?)
    }

    async fn rules(&self) -> Result<Vec<ThresholdRule>, PortError> {
        let (rules, bad) = self.rules.all().await?;
        for b in bad {
            tracing::warn!(rule_id = %b.rule_id, problem = %b.problem, "unreadable rule row");
        }
        Ok(rules)
    }

    async fn delete_rule(&self, rule_id: &str) -> Result<bool, PortError> {
        let result = self
            .dynamodb
            .delete_item()
            .table_name(&self.tables.alert_rules)
            .key("rule_id", s(rule_id))
            .condition_expression("attribute_exists(rule_id)")
            .send()
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(err) if is_condition_failure(&err) => Ok(false),
            Err(err) => Err(PortError::new("rule delete", describe(err))),
        }
    }

    async fn get_alert(&self, alert_id: &str) -> Result<Option<AlertRecord>, PortError> {
        let output = self
            .dynamodb
            .get_item()
            .table_name(&self.tables.alerts)
            .key("alert_id", s(alert_id))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| PortError::new("alert read", describe(e)))?;
        Ok(output.item.as_ref().and_then(alert))
    }

    async fn list_alerts(
        &self,
        filter: &AlertFilter,
        limit: usize,
        after: Option<&str>,
    ) -> Result<Page<AlertRecord>, PortError> {
        let mut items = Vec::new();
        let mut start = after.map(|id| Item::from([("alert_id".to_owned(), s(id))]));
        loop {
            let page = self
                .dynamodb
                .scan()
                .table_name(&self.tables.alerts)
                .set_exclusive_start_key(start.take())
                .limit(100)
                .send()
                .await
                .map_err(|e| PortError::new("alerts scan", describe(e)))?;
            let rows = page.items();
            for (i, row) in rows.iter().enumerate() {
                let Some(a) = alert(row) else { continue };
                if !filter.admits(&a) {
                    continue;
                }
                items.push(a);
                if items.len() == limit {
                    let more = i + 1 < rows.len() || page.last_evaluated_key().is_some();
                    let next = more.then(|| items[limit - 1].alert_id.clone());
                    return Ok(Page { items, next });
                }
            }
            match page.last_evaluated_key() {
                Some(key) => start = Some(key.clone()),
                None => return Ok(Page { items, next: None }),
            }
        }
    }

    async fn set_alert_state(
        &self,
        alert_id: &str,
        from: AlertState,
        to: AlertState,
        at: DateTime<Utc>,
        by: &str,
    ) -> Result<bool, PortError> {
        let (at_name, by_name) = match to {
            AlertState::Acknowledged => ("acknowledged_at", "acknowledged_by"),
            AlertState::Resolved => ("resolved_at", "resolved_by"),
            AlertState::Open => {
                return Err(PortError::new("alert update", "alerts are never reopened"))
            }
        };
        let result = self
            .dynamodb
            .update_item()
            .table_name(&self.tables.alerts)
            .key("alert_id", s(alert_id))
            .update_expression(format!(
                "SET #state = :to, {at_name} = :at, {by_name} = :by"
            ))
            .condition_expression("#state = :from")
            .expression_attribute_names("#state", "state")
            .expression_attribute_values(":to", s(to.as_str()))
            .expression_attribute_values(":from", s(from.as_str()))
            .expression_attribute_values(":at", s(at.to_rfc3339()))
            .expression_attribute_values(":by", s(by))
            .send()
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(err) if is_condition_failure(&err) => Ok(false),
            Err(err) => Err(PortError::new("alert update", describe(err))),
        }
    }
}
