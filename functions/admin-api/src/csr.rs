//! Checks a device's certificate signing request before IoT signs it: PEM, a valid
//! self-signature (the requester holds the key), and the device id as the only common
//! name, since the broker maps the certificate CN to the device's topics.

use x509_parser::{certification_request::X509CertificationRequest, prelude::FromDer};

use crate::error::ApiError;

pub const MAX_CSR_BYTES: usize = 16 * 1024;

pub fn check(csr_pem: &str, device_id: &str) -> Result<(), ApiError> {
    let bad = |message: String| ApiError::invalid("csr", message);
    if csr_pem.len() > MAX_CSR_BYTES {
        return Err(bad(format!("csr is larger than {MAX_CSR_BYTES} bytes")));
    }
    let (_, pem) = x509_parser::pem::parse_x509_pem(csr_pem.trim_start().as_bytes())
        .map_err(|_| bad("csr is not a PEM block".into()))?;
    if pem.label != "CERTIFICATE REQUEST" && pem.label != "NEW CERTIFICATE REQUEST" {
        return Err(bad(format!(
            "csr is a PEM {:?}, not a CERTIFICATE REQUEST (send the CSR, never the private key)",
            pem.label
        )));
    }
    let (_, request) = X509CertificationRequest::from_der(&pem.contents)
        .map_err(|e| bad(format!("csr is not a PKCS#10 request: {e}")))?;
    request
        .verify_signature()
        .map_err(|_| bad("csr signature does not verify".into()))?;
    let names: Vec<&str> = request
        .certification_request_info
        .subject
        .iter_common_name()
        .filter_map(|cn| cn.as_str().ok())
        .collect();
    match names.as_slice() {
        [cn] if *cn == device_id => Ok(()),
        [cn] => Err(bad(format!(
            "csr common name is {cn:?}; it must be the device id {device_id:?}"
        ))),
        [] => Err(bad(format!(
            "csr has no common name; it must be the device id {device_id:?}"
        ))),
        _ => Err(bad("csr has more than one common name".into())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn csr(cn: Option<&str>) -> String {
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::default();
        params.distinguished_name = rcgen::DistinguishedName::new();
        if let Some(cn) = cn {
            params
                .distinguished_name
                .push(rcgen::DnType::CommonName, cn);
        }
        params.serialize_request(&key).unwrap().pem().unwrap()
    }

    #[test]
    fn a_request_for_the_device_passes() {
        check(&csr(Some("dev-1")), "dev-1").unwrap();
    }

    #[test]
    fn wrong_or_missing_names_and_garbage_are_refused_naming_the_field() {
        let cases = [
            (csr(Some("dev-2")), "must be the device id"),
            (csr(None), "no common name"),
            ("hello".to_owned(), "not a PEM block"),
            (
                "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n".to_owned(),
                "never the private key",
            ),
            (
                "-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n"
                    .to_owned(),
                "not a PKCS#10 request",
            ),
            ("x".repeat(MAX_CSR_BYTES + 1), "larger than"),
        ];
        for (pem, expected) in cases {
            let err = check(&pem, "dev-1").unwrap_err();
            assert_eq!(err.status, 400);
            assert_eq!(err.field.as_deref(), Some("csr"));
            assert!(err.message.contains(expected), "{}", err.message);
        }
    }

    #[test]
    fn a_tampered_request_does_not_verify() {
        let pem = csr(Some("dev-1"));
        let (_, block) = x509_parser::pem::parse_x509_pem(pem.as_bytes()).unwrap();
        let mut der = block.contents.clone();
        // Flip a bit in the last byte: inside the signature.
        *der.last_mut().unwrap() ^= 1;
        use base64::{engine::general_purpose::STANDARD, Engine as _};
        let tampered = format!(
            "-----BEGIN CERTIFICATE REQUEST-----\n{}\n-----END CERTIFICATE REQUEST-----\n",
            STANDARD.encode(der)
        );
        let err = check(&tampered, "dev-1").unwrap_err();
        assert!(err.message.contains("does not verify"), "{}", err.message);
    }
}
