//! Presigned uploads to the firmware bucket.

use aws_sdk_s3::presigning::PresigningConfig;
use base64::Engine as _;

use super::AwsBackend;
use crate::ports::*;

impl FirmwareUploads for AwsBackend {
    async fn upload_url(
        &self,
        key: &str,
        sha256: &str,
        size: u64,
        expires: chrono::Duration,
    ) -> Result<PresignedUpload, PortError> {
        let digest = hub_fleet::firmware::digest_bytes(sha256)
            .map_err(|e| PortError::new("upload presign", e))?;
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
            // Signed into the URL: S3 refuses any other body, so a checked image cannot be
            // replaced through the same URL.
            .checksum_sha256(base64::engine::general_purpose::STANDARD.encode(digest))
            .content_length(size as i64)
            .presigned(config)
            .await
            .map_err(|e| {
                PortError::new("upload presign", aws_sdk_s3::error::DisplayErrorContext(e))
            })?;
        Ok(PresignedUpload {
            url: request.uri().to_owned(),
            headers: request
                .headers()
                .map(|(name, value)| (name.to_ascii_lowercase(), value.to_owned()))
                .collect(),
        })
    }
}
