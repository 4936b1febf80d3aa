//! The local stack's certificate authority.
//!
//! The emulator signs device certificates with its own CA but never exposes the CA's key,
//! and Mosquitto can only refuse a revoked certificate through a CRL signed by that key.
//! So the local stack generates the CA itself and seeds the emulator with it (through the
//! emulator's persisted IoT state): certificates issued through the IoT API are then
//! signed by a key we hold, and revocation in the IoT API becomes a CRL for Mosquitto.

use std::{fs, path::Path};

use anyhow::{Context, Result};
use rcgen::{
    BasicConstraints, CertificateParams, CertificateRevocationListParams, DistinguishedName,
    DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyIdMethod, KeyPair, KeyUsagePurpose,
    RevocationReason, RevokedCertParams, SanType, SerialNumber,
};
use time::{Duration, OffsetDateTime};

pub const CA_CERT: &str = "ca.pem";
pub const CA_KEY: &str = "ca.key";
pub const SERVER_CERT: &str = "mosquitto.pem";
pub const SERVER_KEY: &str = "mosquitto.key";
pub const BRIDGE_CERT: &str = "bridge.pem";
pub const BRIDGE_KEY: &str = "bridge.key";
pub const CRL: &str = "crl.pem";
/// The local stack's firmware signing key (PKCS#8 DER) and its public half (base64 of
/// the raw 32 bytes, the template's `FirmwareSigningPublicKey`).
pub const FIRMWARE_SIGNING_KEY: &str = "firmware-signing.pk8";
pub const FIRMWARE_SIGNING_PUBLIC_KEY: &str = "firmware-signing.pub";

/// Creates the CA, the broker's server certificate, the bridge's client certificate, an
/// empty CRL and the firmware signing key in `pki_dir`, and writes the emulator's IoT state seed to `seed_file`.
pub fn init(pki_dir: &Path, seed_file: &Path, bridge_username: &str) -> Result<()> {
    fs::create_dir_all(pki_dir)?;
    let ca_key = KeyPair::generate()?;
    let mut ca_params = CertificateParams::default();
    ca_params.distinguished_name = name("IoT Control Hub Local CA");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    ca_params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    ca_params.key_identifier_method = KeyIdMethod::PreSpecified(key_identifier(&ca_key));
    validity(&mut ca_params, 3650);
    let ca_cert = ca_params.self_signed(&ca_key)?;
    write_private(&pki_dir.join(CA_KEY), &ca_key.serialize_pem())?;
    fs::write(pki_dir.join(CA_CERT), ca_cert.pem())?;
    let issuer = Issuer::new(ca_params, ca_key);

    let mut server = CertificateParams::default();
    server.distinguished_name = name("localhost");
    server.subject_alt_names = vec![
        SanType::DnsName("localhost".try_into()?),
        SanType::IpAddress(std::net::Ipv4Addr::LOCALHOST.into()),
    ];
    server.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    leaf(&issuer, server, pki_dir, SERVER_CERT, SERVER_KEY)?;

    let mut bridge = CertificateParams::default();
    bridge.distinguished_name = name(bridge_username);
    bridge.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    leaf(&issuer, bridge, pki_dir, BRIDGE_CERT, BRIDGE_KEY)?;

    write_crl(pki_dir, 1, &[])?;

    let signing = ring::signature::Ed25519KeyPair::generate_pkcs8(&ring::rand::SystemRandom::new())
        .map_err(|_| anyhow::anyhow!("generating the firmware signing key"))?;
    let pair = ring::signature::Ed25519KeyPair::from_pkcs8(signing.as_ref())
        .map_err(|_| anyhow::anyhow!("reading the firmware signing key"))?;
    hub_mqtt::write_private(&pki_dir.join(FIRMWARE_SIGNING_KEY), signing.as_ref())?;
    {
        use base64::Engine as _;
        use ring::signature::KeyPair as _;
        fs::write(
            pki_dir.join(FIRMWARE_SIGNING_PUBLIC_KEY),
            base64::engine::general_purpose::STANDARD.encode(pair.public_key().as_ref()),
        )?;
    }

    // The emulator restores its IoT CA from this file at start (PERSIST_STATE=1).
    let seed = serde_json::json!({
        "ca": {
            "ca_cert_pem": fs::read_to_string(pki_dir.join(CA_CERT))?,
            "ca_key_pem": fs::read_to_string(pki_dir.join(CA_KEY))?,
        }
    });
    if let Some(parent) = seed_file.parent() {
        fs::create_dir_all(parent)?;
    }
    write_private(seed_file, &seed.to_string())?;
    Ok(())
}

/// A certificate the IoT API says must not connect.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Refused {
    /// Serial number, big-endian bytes without leading zeros.
    pub serial: Vec<u8>,
    /// The IoT status (REVOKED, INACTIVE, ...).
    pub status: String,
}

/// Writes a CRL listing `refused`, signed by the local CA, atomically.
pub fn write_crl(pki_dir: &Path, number: u64, refused: &[Refused]) -> Result<()> {
    let ca_pem = fs::read_to_string(pki_dir.join(CA_CERT))?;
    let ca_key = KeyPair::from_pem(&fs::read_to_string(pki_dir.join(CA_KEY))?)?;
    let issuer = Issuer::from_ca_cert_pem(&ca_pem, ca_key)?;
    let now = OffsetDateTime::now_utc();
    let params = CertificateRevocationListParams {
        this_update: now - Duration::minutes(1),
        next_update: now + Duration::days(30),
        crl_number: SerialNumber::from(number),
        issuing_distribution_point: None,
        revoked_certs: refused
            .iter()
            .map(|r| RevokedCertParams {
                serial_number: SerialNumber::from_slice(&r.serial),
                revocation_time: now - Duration::minutes(1),
                // INACTIVE can become ACTIVE again: that is what a certificate hold means.
                reason_code: Some(if r.status == "REVOKED" {
                    RevocationReason::Unspecified
                } else {
                    RevocationReason::CertificateHold
                }),
                invalidity_date: None,
            })
            .collect(),
        key_identifier_method: KeyIdMethod::PreSpecified(key_identifier(issuer.key())),
    };
    let crl = params.signed_by(&issuer)?.pem()?;
    let tmp = pki_dir.join(format!("{CRL}.tmp"));
    fs::write(&tmp, crl)?;
    fs::rename(&tmp, pki_dir.join(CRL))?;
    Ok(())
}

/// The serial number of a PEM certificate, as the CRL needs it.
/// A certificate's serial (minimal big-endian bytes) and subject CN (the thing name
/// Mosquitto takes as username; empty if there is none).
pub fn identity_of(cert_pem: &str) -> Result<(Vec<u8>, String)> {
    let (_, pem) = x509_parser::pem::parse_x509_pem(cert_pem.as_bytes())
        .map_err(|e| anyhow::anyhow!("certificate PEM: {e}"))?;
    let cert = pem
        .parse_x509()
        .map_err(|e| anyhow::anyhow!("certificate DER: {e}"))?;
    let raw = cert.tbs_certificate.raw_serial();
    let first = raw
        .iter()
        .position(|&b| b != 0)
        .unwrap_or(raw.len().saturating_sub(1));
    let common_name = cert
        .subject()
        .iter_common_name()
        .next()
        .and_then(|cn| cn.as_str().ok())
        .unwrap_or_default()
        .to_owned();
    Ok((raw[first..].to_vec(), common_name))
}

/// RFC 5280 key identifier, method 1: SHA-1 of the subject public key. The emulator
/// writes the Authority Key Identifier of the certificates it signs this way, and OpenSSL
/// (Mosquitto) matches it against the CA's Subject Key Identifier to find the issuer.
fn key_identifier(key: &KeyPair) -> Vec<u8> {
    use rcgen::PublicKeyData;
    ring::digest::digest(&ring::digest::SHA1_FOR_LEGACY_USE_ONLY, key.der_bytes())
        .as_ref()
        .to_vec()
}

fn name(common_name: &str) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::OrganizationName, "IoT Control Hub (local)");
    dn.push(DnType::CommonName, common_name);
    dn
}

fn validity(params: &mut CertificateParams, days: i64) {
    let now = OffsetDateTime::now_utc();
    params.not_before = now - Duration::hours(1);
    params.not_after = now + Duration::days(days);
}

fn leaf(
    issuer: &Issuer<'_, KeyPair>,
    mut params: CertificateParams,
    dir: &Path,
    cert_file: &str,
    key_file: &str,
) -> Result<()> {
    validity(&mut params, 825);
    params.use_authority_key_identifier_extension = true;
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    let key = KeyPair::generate()?;
    let cert = params.signed_by(&key, issuer)?;
    fs::write(dir.join(cert_file), cert.pem())?;
    write_private(&dir.join(key_file), &key.serialize_pem())
}

fn write_private(path: &Path, contents: &str) -> Result<()> {
    hub_mqtt::write_private(path, contents.as_bytes())
        .with_context(|| format!("writing {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use x509_parser::prelude::FromDer;

    #[test]
    fn init_issues_a_chain_and_the_crl_lists_refused_serials() {
        let dir = std::env::temp_dir().join(format!("hub-pki-{}", uuid::Uuid::new_v4()));
        let seed = dir.join("state/iot.json");
        init(&dir, &seed, "bridge").unwrap();
        let seed: serde_json::Value = serde_json::from_slice(&fs::read(&seed).unwrap()).unwrap();
        assert!(seed["ca"]["ca_key_pem"]
            .as_str()
            .unwrap()
            .contains("PRIVATE KEY"));

        let (serial, common_name) =
            identity_of(&fs::read_to_string(dir.join(BRIDGE_CERT)).unwrap()).unwrap();
        assert!(!serial.is_empty() && serial[0] != 0);
        assert_eq!(common_name, "bridge");
        write_crl(
            &dir,
            2,
            &[Refused {
                serial: serial.clone(),
                status: "REVOKED".into(),
            }],
        )
        .unwrap();
        let crl_pem = fs::read_to_string(dir.join(CRL)).unwrap();
        let (_, pem) = x509_parser::pem::parse_x509_pem(crl_pem.as_bytes()).unwrap();
        let (_, crl) =
            x509_parser::revocation_list::CertificateRevocationList::from_der(&pem.contents)
                .unwrap();
        let listed: Vec<Vec<u8>> = crl
            .iter_revoked_certificates()
            .map(|r| {
                r.raw_serial()
                    .iter()
                    .copied()
                    .skip_while(|&b| b == 0)
                    .collect()
            })
            .collect();
        assert_eq!(listed, vec![serial]);
        fs::remove_dir_all(dir).unwrap();
    }
}
