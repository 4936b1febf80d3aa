//! MQTT over mutual TLS, the way devices reach IoT Core and the local Mosquitto alike.
//!
//! One place builds the rustls configuration (ring provider, the broker's CA as the only
//! root, the client's X.509 identity), so the bridge, the simulator and the tests cannot
//! drift apart in how they authenticate.

use std::{sync::Arc, time::Duration};

use rumqttc::{MqttOptions, TlsConfiguration, Transport};
use rustls::{
    pki_types::{pem::PemObject, CertificateDer, PrivateKeyDer},
    ClientConfig, RootCertStore,
};

#[derive(Debug, thiserror::Error)]
pub enum TlsSetupError {
    #[error("CA bundle holds no certificate")]
    NoCaCertificate,
    #[error("client certificate PEM holds no certificate")]
    NoClientCertificate,
    #[error("PEM could not be read: {0}")]
    Pem(#[from] rustls::pki_types::pem::Error),
    #[error("TLS configuration refused: {0}")]
    Rustls(#[from] rustls::Error),
}

/// A client's X.509 identity: certificate chain and private key, both PEM.
#[derive(Clone)]
pub struct ClientIdentity {
    pub cert_pem: Vec<u8>,
    pub key_pem: Vec<u8>,
}

impl std::fmt::Debug for ClientIdentity {
    // Never print the private key.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientIdentity").finish_non_exhaustive()
    }
}

/// Writes a private key (or any secret) readable by its owner only (mode 0600).
pub fn write_private(path: &std::path::Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::{io::Write, os::unix::fs::OpenOptionsExt};
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    file.write_all(bytes)
}

/// A new device key (ECDSA P-256) and a certificate signing request for it with the device
/// id as common name, both PEM: what a device makes before asking for its certificate.
/// The key stays with the caller; only the CSR is sent.
pub fn key_and_csr(device_id: &str) -> Result<(String, String), rcgen::Error> {
    let key = rcgen::KeyPair::generate()?;
    let mut params = rcgen::CertificateParams::default();
    params.distinguished_name = rcgen::DistinguishedName::new();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, device_id);
    let csr = params.serialize_request(&key)?.pem()?;
    Ok((key.serialize_pem(), csr))
}

/// TLS client configuration trusting only `ca_pem`, presenting `identity` when given.
pub fn tls_config(
    ca_pem: &[u8],
    identity: Option<&ClientIdentity>,
) -> Result<Arc<ClientConfig>, TlsSetupError> {
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(ca_pem) {
        roots.add(cert?)?;
    }
    if roots.is_empty() {
        return Err(TlsSetupError::NoCaCertificate);
    }
    let builder =
        ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()?
            .with_root_certificates(roots);
    let config = match identity {
        Some(identity) => {
            let chain = CertificateDer::pem_slice_iter(&identity.cert_pem)
                .collect::<Result<Vec<_>, _>>()?;
            if chain.is_empty() {
                return Err(TlsSetupError::NoClientCertificate);
            }
            let key = PrivateKeyDer::from_pem_slice(&identity.key_pem)?;
            builder.with_client_auth_cert(chain, key)?
        }
        None => builder.with_no_client_auth(),
    };
    Ok(Arc::new(config))
}

/// MQTT 3.1.1 options for a TLS connection to `host:port` as `client_id`.
pub fn mqtt_options(client_id: &str, host: &str, port: u16, tls: Arc<ClientConfig>) -> MqttOptions {
    let mut options = MqttOptions::new(client_id, host, port);
    options
        .set_transport(Transport::tls_with_config(TlsConfiguration::Rustls(tls)))
        .set_keep_alive(Duration::from_secs(30))
        .set_max_packet_size(256 * 1024, 256 * 1024);
    options
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_ca_bundle_is_refused() {
        assert!(matches!(
            tls_config(b"", None),
            Err(TlsSetupError::NoCaCertificate)
        ));
    }

    #[test]
    fn garbage_certificate_is_an_error_not_a_panic() {
        let bad = b"-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----\n";
        assert!(tls_config(bad, None).is_err());
    }
}
