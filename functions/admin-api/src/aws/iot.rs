use aws_sdk_iot::{
    error::{ProvideErrorMetadata, SdkError},
    types::{AttributePayload, CertificateStatus},
};

use super::{describe, AwsBackend};
use crate::ports::*;

fn code<E: ProvideErrorMetadata, R>(err: &SdkError<E, R>) -> Option<&str> {
    match err {
        SdkError::ServiceError(e) => e.err().code(),
        _ => None,
    }
}

/// Treats "already there" / "already gone" as done, so every step can be repeated.
fn tolerate<T, E, R>(
    result: Result<T, SdkError<E, R>>,
    harmless: &[&str],
    operation: &'static str,
) -> Result<(), PortError>
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    match result {
        Ok(_) => Ok(()),
        Err(err) if code(&err).is_some_and(|c| harmless.contains(&c)) => Ok(()),
        Err(err) => Err(PortError::new(operation, describe(err))),
    }
}

impl AwsBackend {
    async fn join_group(&self, device_id: &str, group: &str) -> Result<(), PortError> {
        tolerate(
            self.iot
                .create_thing_group()
                .thing_group_name(group)
                .send()
                .await,
            &["ResourceAlreadyExistsException"],
            "CreateThingGroup",
        )?;
        tolerate(
            self.iot
                .add_thing_to_thing_group()
                .thing_name(device_id)
                .thing_group_name(group)
                .send()
                .await,
            &[],
            "AddThingToThingGroup",
        )
    }
}

impl Things for AwsBackend {
    async fn create_thing(
        &self,
        device_id: &str,
        device_type: &str,
        group: Option<&str>,
    ) -> Result<(), PortError> {
        let attributes = AttributePayload::builder()
            .attributes("device_type", device_type)
            .build();
        let created = self
            .iot
            .create_thing()
            .thing_name(device_id)
            .attribute_payload(attributes.clone())
            .send()
            .await;
        match created {
            Ok(_) => {}
            // A retried registration: bring the existing thing in line.
            Err(err) if code(&err) == Some("ResourceAlreadyExistsException") => {
                self.iot
                    .update_thing()
                    .thing_name(device_id)
                    .attribute_payload(attributes)
                    .send()
                    .await
                    .map_err(|e| PortError::new("UpdateThing", describe(e)))?;
            }
            Err(err) => return Err(PortError::new("CreateThing", describe(err))),
        }
        if let Some(group) = group {
            self.join_group(device_id, group).await?;
        }
        Ok(())
    }

    async fn move_thing(
        &self,
        device_id: &str,
        from: Option<&str>,
        to: Option<&str>,
    ) -> Result<bool, PortError> {
        let described = self.iot.describe_thing().thing_name(device_id).send().await;
        match described {
            Ok(_) => {}
            Err(err) if code(&err) == Some("ResourceNotFoundException") => return Ok(false),
            Err(err) => return Err(PortError::new("DescribeThing", describe(err))),
        }
        if let Some(from) = from {
            tolerate(
                self.iot
                    .remove_thing_from_thing_group()
                    .thing_name(device_id)
                    .thing_group_name(from)
                    .send()
                    .await,
                &["ResourceNotFoundException"],
                "RemoveThingFromThingGroup",
            )?;
        }
        if let Some(to) = to {
            self.join_group(device_id, to).await?;
        }
        Ok(true)
    }

    async fn delete_thing(&self, device_id: &str) -> Result<(), PortError> {
        tolerate(
            self.iot.delete_thing().thing_name(device_id).send().await,
            &["ResourceNotFoundException"],
            "DeleteThing",
        )
    }

    async fn issue_certificate(
        &self,
        device_id: &str,
        csr_pem: &str,
    ) -> Result<SignedCertificate, PortError> {
        let output = self
            .iot
            .create_certificate_from_csr()
            .certificate_signing_request(csr_pem)
            .set_as_active(true)
            .send()
            .await
            .map_err(|e| PortError::new("CreateCertificateFromCsr", describe(e)))?;
        let missing = |what| {
            PortError::new(
                "CreateCertificateFromCsr",
                format!("no {what} in the answer"),
            )
        };
        let certificate = SignedCertificate {
            certificate_id: output
                .certificate_id
                .ok_or_else(|| missing("certificate id"))?,
            certificate_arn: output
                .certificate_arn
                .ok_or_else(|| missing("certificate ARN"))?,
            certificate_pem: output
                .certificate_pem
                .ok_or_else(|| missing("certificate PEM"))?,
        };
        tolerate(
            self.iot
                .attach_policy()
                .policy_name(&self.device_policy)
                .target(&certificate.certificate_arn)
                .send()
                .await,
            &[],
            "AttachPolicy",
        )?;
        tolerate(
            self.iot
                .attach_thing_principal()
                .thing_name(device_id)
                .principal(&certificate.certificate_arn)
                .send()
                .await,
            &[],
            "AttachThingPrincipal",
        )?;
        Ok(certificate)
    }

    async fn set_certificate_status(
        &self,
        certificate_id: &str,
        status: IotCertificateStatus,
    ) -> Result<(), PortError> {
        let status = match status {
            IotCertificateStatus::Inactive => CertificateStatus::Inactive,
            IotCertificateStatus::Revoked => CertificateStatus::Revoked,
        };
        tolerate(
            self.iot
                .update_certificate()
                .certificate_id(certificate_id)
                .new_status(status)
                .send()
                .await,
            &[],
            "UpdateCertificate",
        )
    }

    async fn attached_certificates(&self, device_id: &str) -> Result<Vec<String>, PortError> {
        let mut arns = Vec::new();
        let mut token = None;
        loop {
            let page = self
                .iot
                .list_thing_principals()
                .thing_name(device_id)
                .set_next_token(token)
                .send()
                .await;
            let page = match page {
                Ok(page) => page,
                Err(err) if code(&err) == Some("ResourceNotFoundException") => return Ok(arns),
                Err(err) => return Err(PortError::new("ListThingPrincipals", describe(err))),
            };
            arns.extend(
                page.principals()
                    .iter()
                    .filter(|arn| arn.contains(":cert/"))
                    .cloned(),
            );
            token = page.next_token;
            if token.is_none() {
                return Ok(arns);
            }
        }
    }

    async fn detach_certificate(
        &self,
        device_id: &str,
        certificate_arn: &str,
    ) -> Result<(), PortError> {
        tolerate(
            self.iot
                .detach_thing_principal()
                .thing_name(device_id)
                .principal(certificate_arn)
                .send()
                .await,
            &["ResourceNotFoundException"],
            "DetachThingPrincipal",
        )?;
        tolerate(
            self.iot
                .detach_policy()
                .policy_name(&self.device_policy)
                .target(certificate_arn)
                .send()
                .await,
            &["ResourceNotFoundException"],
            "DetachPolicy",
        )
    }
}
