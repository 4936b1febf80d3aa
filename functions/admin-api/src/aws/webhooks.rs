use hub_detection::webhook::Webhook;

use super::AwsBackend;
use crate::ports::*;

impl WebhookStore for AwsBackend {
    async fn put_webhook(&self, hook: &Webhook) -> Result<(), PortError> {
        Ok(self.hooks.put(hook).await?)
    }

    async fn webhooks(&self) -> Result<Vec<Webhook>, PortError> {
        Ok(self
            .hooks
            .all(hub_detection::webhooks_table::Secrets::Closed)
            .await?)
    }

    async fn delete_webhook(&self, webhook_id: &str) -> Result<bool, PortError> {
        Ok(self.hooks.delete(webhook_id).await?)
    }
}
