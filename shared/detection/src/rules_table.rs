//! Threshold rules in the alert rules table, one item per rule, shared by the detector
//! (which reads them all) and the API (which writes them).

use aws_sdk_dynamodb::Client;
use hub_events::Severity;
use hub_runtime::dynamodb::{n, s, sdk_error, string, Item, TableError};

use crate::{RuleScope, ThresholdRule};

#[derive(Clone, Debug)]
pub struct DynamoRules {
    pub client: Client,
    pub table: String,
}

/// A row that is not a valid rule: reported, never silently used.
#[derive(Debug, Clone, PartialEq)]
pub struct BadRule {
    pub rule_id: String,
    pub problem: String,
}

impl DynamoRules {
    /// Every rule, and the rows that could not be read as one.
    pub async fn all(&self) -> Result<(Vec<ThresholdRule>, Vec<BadRule>), TableError> {
        let mut rules = Vec::new();
        let mut bad = Vec::new();
        let mut pages = self
            .client
            .scan()
            .table_name(&self.table)
            .consistent_read(true)
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(sdk_error("rules read"))?;
            for item in page.items() {
                match from_item(item) {
                    Ok(rule) => rules.push(rule),
                    Err(problem) => bad.push(BadRule {
                        rule_id: string(item, "rule_id").unwrap_or_default(),
                        problem,
                    }),
                }
            }
        }
        Ok((rules, bad))
    }

    pub async fn put(&self, rule: &ThresholdRule) -> Result<(), TableError> {
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(to_item(rule)))
            .send()
            .await
            .map_err(sdk_error("rule write"))?;
        Ok(())
    }

    pub async fn delete(&self, rule_id: &str) -> Result<(), TableError> {
        self.client
            .delete_item()
            .table_name(&self.table)
            .key("rule_id", s(rule_id))
            .send()
            .await
            .map_err(sdk_error("rule delete"))?;
        Ok(())
    }
}

pub fn to_item(rule: &ThresholdRule) -> Item {
    let (scope, target) = match &rule.scope {
        RuleScope::Device(id) => ("device", id),
        RuleScope::DeviceType(t) => ("device_type", t),
    };
    Item::from([
        ("rule_id".to_owned(), s(&rule.id)),
        ("scope".to_owned(), s(scope)),
        ("target".to_owned(), s(target)),
        ("condition".to_owned(), s(rule.condition())),
        ("metric".to_owned(), s(&rule.metric)),
        ("threshold".to_owned(), n(rule.threshold)),
        ("severity".to_owned(), s(rule.severity.as_str())),
    ])
}

pub fn from_item(item: &Item) -> Result<ThresholdRule, String> {
    let field = |name: &str| string(item, name).ok_or_else(|| format!("missing {name}"));
    let target = field("target")?;
    let scope = match field("scope")?.as_str() {
        "device" => RuleScope::Device(target),
        "device_type" => RuleScope::DeviceType(target),
        other => return Err(format!("unknown scope {other:?}")),
    };
    let severity = field("severity")?;
    let severity =
        Severity::from_name(&severity).ok_or_else(|| format!("unknown severity {severity:?}"))?;
    ThresholdRule::new(field("rule_id")?, scope, &field("condition")?, severity)
        .map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_round_trip_through_items() {
        for rule in [
            ThresholdRule::new(
                "r1".into(),
                RuleScope::Device("d1".into()),
                "temperature > 80",
                Severity::Critical,
            )
            .unwrap(),
            ThresholdRule::new(
                "r2".into(),
                RuleScope::DeviceType("ac-meter".into()),
                "voltage <= 207",
                Severity::Warning,
            )
            .unwrap(),
        ] {
            assert_eq!(from_item(&to_item(&rule)).unwrap(), rule);
        }
    }

    #[test]
    fn bad_rows_say_what_is_wrong() {
        let rule = ThresholdRule::new(
            "r1".into(),
            RuleScope::Device("d1".into()),
            "temperature > 80",
            Severity::Info,
        )
        .unwrap();
        let mut item = to_item(&rule);
        item.insert("scope".into(), s("planet"));
        assert!(from_item(&item).unwrap_err().contains("planet"));
        let mut item = to_item(&rule);
        item.remove("condition");
        assert_eq!(from_item(&item).unwrap_err(), "missing condition");
    }
}
