//! The IoT data plane (shadows, publish).

use aws_sdk_iotdataplane::{
    error::{DisplayErrorContext, ProvideErrorMetadata, SdkError},
    primitives::Blob,
};
use serde_json::Value;

use super::AwsBackend;
use crate::ports::*;

fn code<E: ProvideErrorMetadata, R>(err: &SdkError<E, R>) -> Option<&str> {
    match err {
        SdkError::ServiceError(e) => e.err().code(),
        _ => None,
    }
}

impl DeviceData for AwsBackend {
    async fn shadow(&self, device_id: &str) -> Result<Option<Value>, PortError> {
        match self
            .data
            .get_thing_shadow()
            .thing_name(device_id)
            .send()
            .await
        {
            Ok(output) => {
                let payload = output.payload.map(Blob::into_inner).unwrap_or_default();
                serde_json::from_slice(&payload)
                    .map(Some)
                    .map_err(|e| PortError::new("shadow read", e))
            }
            Err(err) if code(&err) == Some("ResourceNotFoundException") => Ok(None),
            Err(err) => Err(PortError::new("shadow read", DisplayErrorContext(err))),
        }
    }

    async fn update_shadow(
        &self,
        device_id: &str,
        document: &Value,
    ) -> Result<ShadowWrite, PortError> {
        let result = self
            .data
            .update_thing_shadow()
            .thing_name(device_id)
            .payload(Blob::new(document.to_string()))
            .send()
            .await;
        match result {
            Ok(output) => {
                let payload = output.payload.map(Blob::into_inner).unwrap_or_default();
                Ok(ShadowWrite::Written(
                    serde_json::from_slice(&payload).unwrap_or(Value::Null),
                ))
            }
            Err(err) => match code(&err) {
                Some("ConflictException") => Ok(ShadowWrite::VersionConflict),
                Some("InvalidRequestException" | "RequestEntityTooLargeException") => {
                    Ok(ShadowWrite::Rejected(err.as_service_error().map_or_else(
                        || "refused by the shadow service".to_owned(),
                        |e| e.message().unwrap_or("refused").to_owned(),
                    )))
                }
                _ => Err(PortError::new("shadow update", DisplayErrorContext(err))),
            },
        }
    }

    async fn publish(&self, topic: &str, payload: Vec<u8>) -> Result<(), PortError> {
        self.data
            .publish()
            .topic(topic)
            .qos(1)
            .payload(Blob::new(payload))
            .send()
            .await
            .map(|_| ())
            .map_err(|e| PortError::new("publish", DisplayErrorContext(e)))
    }
}
