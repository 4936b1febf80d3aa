//! Webhook subscriptions in their table, one item per hook: written by the API, read by
//! the webhook delivery function. Signing secrets are stored sealed: encrypted with KMS
//! under the stack's webhook-secrets key, bound to the hook's id (encryption context),
//! so the table alone (a backup, a scan by someone with read access) gives none away.

use aws_sdk_dynamodb::{primitives::Blob, types::AttributeValue, Client};
use chrono::{DateTime, Utc};
use hub_runtime::dynamodb::{s, sdk_error, string, Item, TableError};

use crate::webhook::Webhook;

#[derive(Clone, Debug)]
pub struct DynamoWebhooks {
    pub client: Client,
    pub table: String,
    /// None where hooks are only listed (their secrets are never needed there).
    pub secrets: Option<SecretSeal>,
}

/// KMS encryption of signing secrets under one key.
#[derive(Clone, Debug)]
pub struct SecretSeal {
    pub kms: aws_sdk_kms::Client,
    pub key_id: String,
}

/// What an item holds of a hook's secret.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StoredSecret {
    Sealed(Vec<u8>),
    /// Written before secrets were sealed; read as it is.
    Plain(String),
}

/// Whether reading hooks opens their secrets (deliveries need them; listings do not).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Secrets {
    Open,
    Closed,
}

impl SecretSeal {
    pub async fn seal(&self, webhook_id: &str, secret: &str) -> Result<Vec<u8>, TableError> {
        let sealed = self
            .kms
            .encrypt()
            .key_id(&self.key_id)
            .plaintext(aws_sdk_kms::primitives::Blob::new(secret.as_bytes()))
            .encryption_context("webhook_id", webhook_id)
            .send()
            .await
            .map_err(|e| {
                TableError::new("secret seal", aws_sdk_kms::error::DisplayErrorContext(e))
            })?;
        sealed
            .ciphertext_blob
            .map(|b| b.into_inner())
            .ok_or_else(|| TableError::new("secret seal", "KMS returned no ciphertext"))
    }

    pub async fn open(&self, webhook_id: &str, sealed: &[u8]) -> Result<String, TableError> {
        let opened = self
            .kms
            .decrypt()
            .key_id(&self.key_id)
            .ciphertext_blob(aws_sdk_kms::primitives::Blob::new(sealed))
            .encryption_context("webhook_id", webhook_id)
            .send()
            .await
            .map_err(|e| {
                TableError::new("secret open", aws_sdk_kms::error::DisplayErrorContext(e))
            })?;
        let plaintext = opened
            .plaintext
            .ok_or_else(|| TableError::new("secret open", "KMS returned no plaintext"))?;
        String::from_utf8(plaintext.into_inner()).map_err(|e| TableError::new("secret open", e))
    }
}

fn list(item: &Item, name: &str) -> Vec<String> {
    item.get(name)
        .and_then(|v| v.as_ss().ok())
        .cloned()
        .unwrap_or_default()
}

/// The hook an item holds, its secret left empty, and what the item holds of the secret.
pub fn from_item(item: &Item) -> Option<(Webhook, StoredSecret)> {
    let stored = match (item.get("secret_sealed"), string(item, "secret")) {
        (Some(AttributeValue::B(sealed)), _) => StoredSecret::Sealed(sealed.as_ref().to_vec()),
        (_, Some(plain)) => StoredSecret::Plain(plain),
        _ => return None,
    };
    let hook = Webhook {
        webhook_id: string(item, "webhook_id")?,
        url: string(item, "url")?,
        secret: String::new(),
        severities: list(item, "severities"),
        device_types: list(item, "device_types"),
        created_at: DateTime::parse_from_rfc3339(&string(item, "created_at")?)
            .ok()?
            .with_timezone(&Utc),
    };
    Some((hook, stored))
}

/// The item of `hook`, with its secret as `sealed` (never the plain secret).
pub fn to_item(hook: &Webhook, sealed: &[u8]) -> Item {
    let mut item = Item::from([
        ("webhook_id".to_owned(), s(&hook.webhook_id)),
        ("url".to_owned(), s(&hook.url)),
        (
            "secret_sealed".to_owned(),
            AttributeValue::B(Blob::new(sealed)),
        ),
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
    fn seal(&self) -> Result<&SecretSeal, TableError> {
        self.secrets.as_ref().ok_or_else(|| {
            TableError::new(
                "webhook secrets",
                "no key for webhook secrets is configured",
            )
        })
    }

    /// Every hook; with `Secrets::Open` their secrets too (one KMS call each).
    pub async fn all(&self, secrets: Secrets) -> Result<Vec<Webhook>, TableError> {
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
            let item = item.map_err(sdk_error("webhooks read"))?;
            let Some((mut hook, stored)) = from_item(&item) else {
                continue;
            };
            if secrets == Secrets::Open {
                hook.secret = match stored {
                    StoredSecret::Sealed(sealed) => {
                        self.seal()?.open(&hook.webhook_id, &sealed).await?
                    }
                    StoredSecret::Plain(plain) => plain,
                };
            }
            hooks.push(hook);
        }
        Ok(hooks)
    }

    pub async fn put(&self, hook: &Webhook) -> Result<(), TableError> {
        let sealed = self.seal()?.seal(&hook.webhook_id, &hook.secret).await?;
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(to_item(hook, &sealed)))
            .send()
            .await
            .map_err(sdk_error("webhook write"))?;
        Ok(())
    }

    /// False if there was no such hook.
    pub async fn delete(&self, webhook_id: &str) -> Result<bool, TableError> {
        let output = self
            .client
            .delete_item()
            .table_name(&self.table)
            .key("webhook_id", s(webhook_id))
            .return_values(aws_sdk_dynamodb::types::ReturnValue::AllOld)
            .send()
            .await
            .map_err(sdk_error("webhook delete"))?;
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
                secret: String::new(),
                severities,
                device_types: types,
                created_at: DateTime::parse_from_rfc3339("2026-11-23T10:00:00Z")
                    .unwrap()
                    .with_timezone(&Utc),
            };
            let item = to_item(&hook, b"sealed");
            assert!(!item.contains_key("secret"), "a plain secret is stored");
            assert_eq!(
                from_item(&item),
                Some((hook, StoredSecret::Sealed(b"sealed".to_vec())))
            );
        }
    }
}
