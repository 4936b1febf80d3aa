//! Device credentials through the IoT API, as on AWS: a thing, a certificate signed from
//! the device's own CSR (CN = device id; the private key never leaves the device), the
//! device policy attached to the certificate and the certificate to the thing.

use std::path::Path;

use anyhow::{Context, Result};
use hub_mqtt::ClientIdentity;

/// A registered device and the credentials it holds.
#[derive(Clone)]
pub struct Device {
    pub id: String,
    pub certificate_id: String,
    pub identity: ClientIdentity,
}

pub async fn register_device(
    iot: &aws_sdk_iot::Client,
    policy_name: &str,
    device_id: &str,
) -> Result<Device> {
    iot.create_thing()
        .thing_name(device_id)
        .send()
        .await
        .context("CreateThing")?;
    let (key_pem, csr) = hub_mqtt::key_and_csr(device_id)?;
    let cert = iot
        .create_certificate_from_csr()
        .certificate_signing_request(csr)
        .set_as_active(true)
        .send()
        .await
        .context("CreateCertificateFromCsr")?;
    let arn = cert.certificate_arn().context("certificate ARN")?;
    iot.attach_policy()
        .policy_name(policy_name)
        .target(arn)
        .send()
        .await
        .context("AttachPolicy")?;
    iot.attach_thing_principal()
        .thing_name(device_id)
        .principal(arn)
        .send()
        .await
        .context("AttachThingPrincipal")?;
    Ok(Device {
        id: device_id.to_owned(),
        certificate_id: cert.certificate_id().context("certificate id")?.to_owned(),
        identity: ClientIdentity {
            cert_pem: cert
                .certificate_pem()
                .context("certificate PEM")?
                .as_bytes()
                .to_vec(),
            key_pem: key_pem.into_bytes(),
        },
    })
}

/// Writes the device's registry row (type, simulated), which the pipeline enriches its
/// readings with; alert rules by device type and subscriptions filtered by type rely on it.
pub async fn register_in_registry(
    dynamodb: &aws_sdk_dynamodb::Client,
    table: &str,
    device_id: &str,
    device_type: &str,
) -> Result<()> {
    put_registry_row(dynamodb, table, device_id, device_type, None).await
}

/// The registry row of a device in thing group `group` (see [`add_to_thing_group`]),
/// with the firmware version it starts with, which rollouts read.
pub async fn register_in_registry_with_group(
    dynamodb: &aws_sdk_dynamodb::Client,
    table: &str,
    device_id: &str,
    device_type: &str,
    group: &str,
    firmware_version: &str,
) -> Result<()> {
    put_registry_row(
        dynamodb,
        table,
        device_id,
        device_type,
        Some((group, firmware_version)),
    )
    .await
}

async fn put_registry_row(
    dynamodb: &aws_sdk_dynamodb::Client,
    table: &str,
    device_id: &str,
    device_type: &str,
    group_and_firmware: Option<(&str, &str)>,
) -> Result<()> {
    use aws_sdk_dynamodb::types::AttributeValue;
    let mut put = dynamodb
        .put_item()
        .table_name(table)
        .item("device_id", AttributeValue::S(device_id.to_owned()))
        .item("device_type", AttributeValue::S(device_type.to_owned()))
        .item("status", AttributeValue::S("active".into()))
        .item("simulated", AttributeValue::Bool(true));
    if let Some((group, firmware_version)) = group_and_firmware {
        put = put.item("group", AttributeValue::S(group.to_owned())).item(
            "firmware_version",
            AttributeValue::S(firmware_version.to_owned()),
        );
    }
    put.send().await.context("writing the registry row")?;
    Ok(())
}

/// Creates thing group `group` unless it exists.
pub async fn ensure_thing_group(iot: &aws_sdk_iot::Client, group: &str) -> Result<()> {
    match iot
        .create_thing_group()
        .thing_group_name(group)
        .send()
        .await
    {
        Ok(_) => Ok(()),
        Err(err)
            if err
                .as_service_error()
                .is_some_and(|e| e.is_resource_already_exists_exception()) =>
        {
            Ok(())
        }
        Err(err) => Err(err).with_context(|| format!("CreateThingGroup {group}")),
    }
}

/// Puts the device's thing in `group` (which must exist: [`ensure_thing_group`]); jobs
/// that target the group reach it. Adding a member twice is harmless.
pub async fn add_to_thing_group(
    iot: &aws_sdk_iot::Client,
    group: &str,
    device_id: &str,
) -> Result<()> {
    iot.add_thing_to_thing_group()
        .thing_group_name(group)
        .thing_name(device_id)
        .send()
        .await
        .with_context(|| format!("AddThingToThingGroup {group} {device_id}"))?;
    Ok(())
}

/// A device's credentials from `dir/{id}/`, registering the device first if they are not
/// there yet, so repeated runs reuse their fleet.
pub async fn device_with_saved_credentials(
    iot: &aws_sdk_iot::Client,
    policy_name: &str,
    device_id: &str,
    dir: &Path,
) -> Result<Device> {
    let device_dir = dir.join(device_id);
    let (cert, key, id) = (
        device_dir.join("cert.pem"),
        device_dir.join("key.pem"),
        device_dir.join("certificate-id"),
    );
    if let (Ok(cert_pem), Ok(key_pem), Ok(certificate_id)) = (
        std::fs::read(&cert),
        std::fs::read(&key),
        std::fs::read_to_string(&id),
    ) {
        return Ok(Device {
            id: device_id.to_owned(),
            certificate_id: certificate_id.trim().to_owned(),
            identity: ClientIdentity { cert_pem, key_pem },
        });
    }
    let device = register_device(iot, policy_name, device_id).await?;
    std::fs::create_dir_all(&device_dir)?;
    std::fs::write(&cert, &device.identity.cert_pem)?;
    hub_mqtt::write_private(&key, &device.identity.key_pem)?;
    std::fs::write(&id, &device.certificate_id)?;
    Ok(device)
}
