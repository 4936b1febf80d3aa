//! Webhook subscriptions in their table, one item per hook: written by the API, read by
//! the webhook delivery function.

use aws_sdk_dynamodb::{error::DisplayErrorContext, types::AttributeValue, Client};
use chrono::{DateTime, Utc};
use hub_runtime::dynamodb::{s, string, Item};

use crate::webhook::Webhook;

#[derive(Clone, Debug)]
pub struct DynamoWebhooks {
    pub client: Client,
    pub table: String,
}

fn list(item: &Item, name: &str) -> Vec<String> {
    item.get(name)
        .and_then(|v| v.as_ss().ok())
        .cloned()
        .unwrap_or_default()
}

pub fn from_item(item: &Item) -> Option<Webhook> {
    Some(Webhook {
        webhook_id: string(item, "webhook_id")?,
        url: string(item, "url")?,
        secret: string(item, "secret")?,
        severities: list(item, "severities"),
        device_types: list(item, "device_types"),
        created_at: DateTime::parse_from_rfc3339(&string(item, "created_at")?)
            .ok()?
            .with_timezone(&Utc),
    })
}

pub fn to_item(hook: &Webhook) -> Item {
    let mut item = Item::from([
        ("webhook_id".to_owned(), s(&hook.webhook_id)),
        ("url".to_owned(), s(&hook.url)),
        ("secret".to_owned(), s(&hook.secret)),
        ("created_at".to_owned(), s(hook.created_at.to_rfc3339())),
    ]);
    // String sets cannot be empty (an absent attribute means "all") nor hold a value twice.
    let set = |values: &[String]| {
        let mut values = values.to_vec();
        values.sort();
        values.dedup();
        AttributeValue::Ss(values)
    };
    if !hook.severities.is_empty() {
        item.insert(
            "severities".into(),
            AttributeValue::Ss(hook.severities.clone()),
        );
    }
    if !hook.device_types.is_empty() {
        item.insert("device_types".into(), set(&hook.device_types));
    }
    item
}

impl DynamoWebhooks {
    pub async fn all(&self) -> Result<Vec<Webhook>, String> {
        let mut hooks = Vec::new();
        let mut items = self
            .client
            .scan()
            .table_name(&self.table)
            .consistent_read(true)
            .into_paginator()
            .items()
            .send();
        while let Some(item) = items.next().await {
            let item = item.map_err(|e| DisplayErrorContext(e).to_string())?;
            hooks.extend(from_item(&item));
        }
        Ok(hooks)
    }

    pub async fn put(&self, hook: &Webhook) -> Result<(), String> {
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(to_item(hook)))
            .send()
            .await
            .map_err(|e| DisplayErrorContext(e).to_string())?;
        Ok(())
    }

    /// False if there was no such hook.
    pub async fn delete(&self, webhook_id: &str) -> Result<bool, String> {
        let output = self
            .client
            .delete_item()
            .table_name(&self.table)
            .key("webhook_id", s(webhook_id))
            .return_values(aws_sdk_dynamodb::types::ReturnValue::AllOld)
            .send()
            .await
            .map_err(|e| DisplayErrorContext(e).to_string())?;
        Ok(output.attributes.is_some())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hooks_round_trip_through_items() {
        for (severities, types) in [
            (vec![], vec![]),
            (
                vec!["critical".to_owned()],
                vec!["boiler".to_owned(), "pump".to_owned()],
            ),
        ] {
            let hook = Webhook {
                webhook_id: "w1".into(),
                url: "https://example.com/h".into(),
                secret: "abc".into(),
                severities,
                device_types: types,
                created_at: DateTime::parse_from_rfc3339("2026-11-23T10:00:00Z")
                    .unwrap()
                    .with_timezone(&Utc),
            };
            assert_eq!(from_item(&to_item(&hook)), Some(hook));
        }
    }
}
