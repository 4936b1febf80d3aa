//! Firmware artifacts: their table, and presigned uploads to the firmware bucket.

use aws_sdk_s3::presigning::PresigningConfig;

use super::AwsBackend;
use crate::ports::*;

impl FirmwareStore for AwsBackend {
    async fn put_artifact(&self, artifact: &Artifact) -> Result<bool, PortError> {
        self.firmware
            .put(artifact)
            .await
            .map_err(|e| PortError::new("firmware write", e))
    }

    async fn artifact(&self, version: &str) -> Result<Option<Artifact>, PortError> {
        self.firmware
            .get(version)
            .await
            .map_err(|e| PortError::new("firmware read", e))
    }

    async fn artifacts(&self) -> Result<Vec<Artifact>, PortError> {
        self.firmware
            .all()
            .await
            .map_err(|e| PortError::new("firmware read", e))
    }

    async fn upload_url(&self, key: &str, expires: chrono::Duration) -> Result<String, PortError> {
        let expires = expires
            .to_std()
            .map_err(|e| PortError::new("upload presign", e))?;
        let config = PresigningConfig::expires_in(expires)
            .map_err(|e| PortError::new("upload presign", e))?;
        let request = self
            .s3
            .put_object()
            .bucket(&self.tables.firmware_bucket)
            .key(key)
            .presigned(config)
            .await
            .map_err(|e| {
                PortError::new("upload presign", aws_sdk_s3::error::DisplayErrorContext(e))
            })?;
        Ok(request.uri().to_owned())
    }
}
