use hub_detection::webhook::Webhook;

use super::AwsBackend;
use crate::ports::*;

impl WebhookStore for AwsBackend {
    async fn put_webhook(&self, hook: &Webhook) -> Result<(), PortError> {
        self.hooks
            .put(hook)
            .await
            .map_err(|e| PortError::new("webhook write", e))
    }

    async fn webhooks(&self) -> Result<Vec<Webhook>, PortError> {
        self.hooks
            .all(hub_detection::webhooks_table::Secrets::Closed)
            .await
            .map_err(|e| PortError::new("webhooks read", e))
    }

    async fn delete_webhook(&self, webhook_id: &str) -> Result<bool, PortError> {
        self.hooks
            .delete(webhook_id)
            .await
            .map_err(|e| PortError::new("webhook delete", e))
    }
}
