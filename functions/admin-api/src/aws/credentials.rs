use chrono::{DateTime, TimeZone, Utc};
use hub_credentials::StoredKey;
use hub_runtime::dynamodb::{n, number, s, string, Item};

use super::{describe, AwsBackend};
use crate::ports::*;

const PREFIX: &str = "cert#";

fn record(item: &Item) -> Option<CertificateRecord> {
    let epoch = |name| number::<i64>(item, name).and_then(|t| Utc.timestamp_opt(t, 0).single());
    Some(CertificateRecord {
        device_id: string(item, "device_id")?,
        certificate_id: string(item, "credential_id")?
            .strip_prefix(PREFIX)?
            .to_owned(),
        certificate_arn: string(item, "certificate_arn")?,
        state: CertificateState::from_name(&string(item, "status")?)?,
        created_at: epoch("created_at")?,
        retire_at: epoch("retire_at"),
        revoked_at: epoch("revoked_at"),
    })
}

fn store_error(err: hub_credentials::dynamodb::StoreError) -> PortError {
    PortError::new("credentials table", err)
}

impl Credentials for AwsBackend {
    async fn put_certificate(&self, r: &CertificateRecord) -> Result<(), PortError> {
        let mut item = Item::from([
            ("device_id".to_owned(), s(&r.device_id)),
            (
                "credential_id".to_owned(),
                s(format!("{PREFIX}{}", r.certificate_id)),
            ),
            ("kind".to_owned(), s("certificate")),
            ("certificate_arn".to_owned(), s(&r.certificate_arn)),
            ("status".to_owned(), s(r.state.as_str())),
            ("created_at".to_owned(), n(r.created_at.timestamp())),
        ]);
        if let Some(t) = r.retire_at {
            item.insert("retire_at".into(), n(t.timestamp()));
        }
        if let Some(t) = r.revoked_at {
            item.insert("revoked_at".into(), n(t.timestamp()));
        }
        self.dynamodb
            .put_item()
            .table_name(&self.tables.credentials)
            .set_item(Some(item))
            .send()
            .await
            .map_err(|e| PortError::new("certificate write", describe(e)))?;
        Ok(())
    }

    async fn certificates(&self, device_id: &str) -> Result<Vec<CertificateRecord>, PortError> {
        let mut records = Vec::new();
        let mut items = self
            .dynamodb
            .query()
            .table_name(&self.tables.credentials)
            .key_condition_expression("device_id = :d AND begins_with(credential_id, :p)")
            .expression_attribute_values(":d", s(device_id))
            .expression_attribute_values(":p", s(PREFIX))
            .consistent_read(true)
            .into_paginator()
            .items()
            .send();
        while let Some(item) = items.next().await {
            let item = item.map_err(|e| PortError::new("certificate read", describe(e)))?;
            if let Some(r) = record(&item) {
                records.push(r);
            }
        }
        records.sort_by_key(|r| r.created_at);
        Ok(records)
    }

    async fn retirements_due(
        &self,
        now: DateTime<Utc>,
    ) -> Result<Vec<CertificateRecord>, PortError> {
        // Rotations are rare and the table is one row per credential: a filtered scan.
        let mut records = Vec::new();
        let mut items = self
            .dynamodb
            .scan()
            .table_name(&self.tables.credentials)
            .filter_expression(
                "kind = :certificate AND #status IN (:retiring, :inactive) AND retire_at <= :now",
            )
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":certificate", s("certificate"))
            .expression_attribute_values(":retiring", s("retiring"))
            .expression_attribute_values(":inactive", s("inactive"))
            .expression_attribute_values(":now", n(now.timestamp()))
            .into_paginator()
            .items()
            .send();
        while let Some(item) = items.next().await {
            let item = item.map_err(|e| PortError::new("certificate scan", describe(e)))?;
            if let Some(r) = record(&item) {
                records.push(r);
            }
        }
        Ok(records)
    }

    async fn put_api_key(&self, key: &StoredKey) -> Result<(), PortError> {
        self.api_keys.put(key).await.map_err(store_error)
    }

    async fn api_keys(&self, device_id: &str) -> Result<Vec<StoredKey>, PortError> {
        self.api_keys.list(device_id).await.map_err(store_error)
    }

    async fn revoke_api_key(
        &self,
        device_id: &str,
        key_id: &str,
        at: DateTime<Utc>,
    ) -> Result<(), PortError> {
        self.api_keys
            .revoke(device_id, key_id, at)
            .await
            .map_err(store_error)
    }

    async fn expire_api_key(
        &self,
        device_id: &str,
        key_id: &str,
        at: DateTime<Utc>,
    ) -> Result<(), PortError> {
        self.api_keys
            .expire(device_id, key_id, at)
            .await
            .map_err(store_error)
    }
}
