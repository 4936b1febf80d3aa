//! Firmware artifacts. An operator registers a version with the SHA-256 of its image and
//! an Ed25519 signature over that digest; the hub answers with an upload URL. The upload
//! is checked against the registration (size, SHA-256) before the artifact becomes
//! `ready`; anything else leaves it `rejected` with the reason, never usable. Devices
//! check the same digest and signature before they install.

use base64::{engine::general_purpose::STANDARD, Engine as _};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// Largest image accepted (S3's single PUT allows 5 GiB; devices here are small).
pub const MAX_SIZE: u64 = 256 * 1024 * 1024;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ArtifactStatus {
    /// Registered; the image has not arrived (or not been checked) yet.
    PendingUpload,
    /// The image matches its registration: rollouts may use it.
    Ready,
    /// The image did not match; `reason` says how.
    Rejected,
}

impl ArtifactStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::PendingUpload => "pending_upload",
            Self::Ready => "ready",
            Self::Rejected => "rejected",
        }
    }

    pub fn from_name(name: &str) -> Option<Self> {
        [Self::PendingUpload, Self::Ready, Self::Rejected]
            .into_iter()
            .find(|s| s.as_str() == name)
    }
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Artifact {
    pub version: String,
    pub device_type: String,
    /// Lowercase hex.
    pub sha256: String,
    pub size: u64,
    /// Base64 Ed25519 signature over the 32 digest bytes.
    pub signature: String,
    /// Whether the hub checked the signature against its configured public key.
    pub signature_verified: bool,
    pub status: ArtifactStatus,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    pub s3_key: String,
    pub created_at: DateTime<Utc>,
    pub created_by: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub checked_at: Option<DateTime<Utc>>,
}

/// Where an artifact's image lives in the firmware bucket; the digest in the key makes
/// an image immutable once registered.
pub fn object_key(version: &str, sha256: &str) -> String {
    format!("firmware/{version}/{sha256}.bin")
}

/// The version an object key belongs to, for the upload check.
pub fn version_of_key(key: &str) -> Option<&str> {
    let rest = key.strip_prefix("firmware/")?;
    let (version, file) = rest.split_once('/')?;
    (!version.is_empty() && file.ends_with(".bin") && !file.contains('/')).then_some(version)
}

#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum DigestError {
    #[error("sha256 must be 64 hexadecimal characters")]
    BadDigest,
    #[error("version and device_type must be non-empty and free of control characters")]
    BadManifest,
    #[error("signature must be base64 of 64 bytes")]
    BadSignature,
    #[error("the key is not a base64 32-byte Ed25519 public key (or a PKCS#8 private key)")]
    BadPublicKey,
    #[error("the signature does not verify with the hub's firmware signing key")]
    SignatureMismatch,
}

/// The digest's bytes from its hex form.
pub fn digest_bytes(sha256_hex: &str) -> Result<[u8; 32], DigestError> {
    let hex = sha256_hex.as_bytes();
    if hex.len() != 64 {
        return Err(DigestError::BadDigest);
    }
    let mut out = [0u8; 32];
    for (i, pair) in hex.chunks(2).enumerate() {
        let text = std::str::from_utf8(pair).map_err(|_| DigestError::BadDigest)?;
        out[i] = u8::from_str_radix(text, 16).map_err(|_| DigestError::BadDigest)?;
    }
    Ok(out)
}

/// Lowercase hex of bytes.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// What a firmware signature covers: the image (its digest and size) and what it is
/// for (its version and device type). Signing the digest alone would let a valid old
/// image be sent labelled as a new version, or to another type of device.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Manifest<'a> {
    pub version: &'a str,
    pub device_type: &'a str,
    /// Hex SHA-256 of the image (either case; signed lowercase).
    pub sha256: &'a str,
    pub size: u64,
}

impl Manifest<'_> {
    /// The bytes the Ed25519 signature is made over: one field a line, in this order,
    /// after a line naming the format (so a signature of something else never fits).
    pub fn signed_bytes(&self) -> Result<Vec<u8>, DigestError> {
        digest_bytes(self.sha256)?;
        let field_ok = |v: &str| !v.is_empty() && !v.chars().any(char::is_control);
        if !field_ok(self.version) || !field_ok(self.device_type) {
            return Err(DigestError::BadManifest);
        }
        Ok(format!(
            "iot-control-hub firmware manifest v1\nversion {}\ndevice_type {}\nsha256 {}\nsize {}\n",
            self.version,
            self.device_type,
            self.sha256.to_ascii_lowercase(),
            self.size
        )
        .into_bytes())
    }
}

/// Checks an Ed25519 `signature` (base64) over the manifest with `public_key` (base64 of
/// the raw 32-byte key).
pub fn verify_manifest(
    public_key: &str,
    manifest: &Manifest<'_>,
    signature: &str,
) -> Result<(), DigestError> {
    let signed = manifest.signed_bytes()?;
    let signature = STANDARD
        .decode(signature)
        .ok()
        .filter(|s| s.len() == 64)
        .ok_or(DigestError::BadSignature)?;
    let key = STANDARD
        .decode(public_key)
        .ok()
        .filter(|k| k.len() == 32)
        .ok_or(DigestError::BadPublicKey)?;
    ring::signature::UnparsedPublicKey::new(&ring::signature::ED25519, key)
        .verify(&signed, &signature)
        .map_err(|_| DigestError::SignatureMismatch)
}

/// The SHA-256 (hex) and size of an image.
pub fn digest_of(image: &[u8]) -> (String, u64) {
    (
        hex(ring::digest::digest(&ring::digest::SHA256, image).as_ref()),
        image.len() as u64,
    )
}

/// Signs the manifest with a PKCS#8 Ed25519 key: the signature a registration carries.
pub fn sign_manifest(pkcs8: &[u8], manifest: &Manifest<'_>) -> Result<String, DigestError> {
    let pair = ring::signature::Ed25519KeyPair::from_pkcs8(pkcs8)
        .map_err(|_| DigestError::BadPublicKey)?;
    Ok(STANDARD.encode(pair.sign(&manifest.signed_bytes()?).as_ref()))
}

/// The numeric release of a version: its leading dot-separated numbers
/// (`2.10.1-rc1` -> [2, 10, 1]).
fn release(version: &str) -> Vec<u64> {
    version
        .split(['-', '+'])
        .next()
        .unwrap_or_default()
        .split('.')
        .map_while(|part| part.parse().ok())
        .collect()
}

/// Whether going from `running` to `offered` goes back to an earlier release, which a
/// device takes only as an explicit rollback. Versions without numbers never compare
/// as a downgrade.
pub fn is_downgrade(running: &str, offered: &str) -> bool {
    let (running, offered) = (release(running), release(offered));
    !running.is_empty() && !offered.is_empty() && offered < running
}

/// What an uploaded image was found to be, against what was registered.
pub fn check_upload(artifact: &Artifact, size: u64, sha256_hex: &str) -> Result<(), String> {
    if size != artifact.size {
        return Err(format!(
            "uploaded {size} bytes; {} were registered",
            artifact.size
        ));
    }
    if !sha256_hex.eq_ignore_ascii_case(&artifact.sha256) {
        return Err(format!(
            "uploaded image has SHA-256 {sha256_hex}; {} was registered",
            artifact.sha256
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use ring::signature::{Ed25519KeyPair, KeyPair};

    fn key_pair() -> Ed25519KeyPair {
        let pkcs8 = Ed25519KeyPair::generate_pkcs8(&ring::rand::SystemRandom::new()).unwrap();
        Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).unwrap()
    }

    fn manifest(sha: &str) -> Manifest<'_> {
        Manifest {
            version: "2.1.0",
            device_type: "env-sensor",
            sha256: sha,
            size: 14,
        }
    }

    #[test]
    fn signatures_over_the_manifest_verify_and_any_changed_field_does_not() {
        let pkcs8 = Ed25519KeyPair::generate_pkcs8(&ring::rand::SystemRandom::new()).unwrap();
        let pair = Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).unwrap();
        let public = STANDARD.encode(pair.public_key().as_ref());
        let (sha, _) = digest_of(b"firmware image");
        let signed = manifest(&sha);
        let signature = sign_manifest(pkcs8.as_ref(), &signed).unwrap();
        assert_eq!(verify_manifest(&public, &signed, &signature), Ok(()));
        // Case of the digest does not matter: it is signed lowercase.
        let upper = sha.to_uppercase();
        assert_eq!(
            verify_manifest(&public, &manifest(&upper), &signature),
            Ok(())
        );
        let other = digest_of(b"tampered").0;
        for changed in [
            Manifest {
                version: "3.0.0",
                ..signed
            },
            Manifest {
                device_type: "dc-meter",
                ..signed
            },
            Manifest { size: 15, ..signed },
            Manifest {
                sha256: &other,
                ..signed
            },
        ] {
            assert_eq!(
                verify_manifest(&public, &changed, &signature),
                Err(DigestError::SignatureMismatch),
                "{changed:?}"
            );
        }
        // A signature over the bare digest (the old scheme) is not one over the manifest.
        let digest_only = STANDARD.encode(pair.sign(&digest_bytes(&sha).unwrap()).as_ref());
        assert_eq!(
            verify_manifest(&public, &signed, &digest_only),
            Err(DigestError::SignatureMismatch)
        );
        let stranger = STANDARD.encode(key_pair().public_key().as_ref());
        assert_eq!(
            verify_manifest(&stranger, &signed, &signature),
            Err(DigestError::SignatureMismatch)
        );
        assert_eq!(
            verify_manifest(&public, &manifest("abc"), &signature),
            Err(DigestError::BadDigest)
        );
        assert_eq!(
            verify_manifest(
                &public,
                &Manifest {
                    version: "a\nb",
                    ..signed
                },
                &signature
            ),
            Err(DigestError::BadManifest)
        );
        assert_eq!(
            verify_manifest(&public, &signed, "bm90IDY0IGJ5dGVz"),
            Err(DigestError::BadSignature)
        );
        assert_eq!(
            verify_manifest("!!", &signed, &signature),
            Err(DigestError::BadPublicKey)
        );
        assert!(sign_manifest(b"not a key", &signed).is_err());
    }

    #[test]
    fn downgrades_are_to_an_earlier_release() {
        assert!(is_downgrade("2.0.0", "1.9.9"));
        assert!(is_downgrade("2.10.0", "2.9.0"));
        assert!(is_downgrade("2.0.0-held-x", "1.0.0-base-y"));
        assert!(!is_downgrade("1.0.0", "2.0.0"));
        assert!(!is_downgrade("2.0.0", "2.0.0-rc1"));
        assert!(!is_downgrade("2.0", "2.0.0"));
        assert!(!is_downgrade("nightly", "1.0.0"));
    }

    #[test]
    fn keys_and_digests() {
        assert_eq!(object_key("2.1.0", "ab"), "firmware/2.1.0/ab.bin");
        assert_eq!(version_of_key("firmware/2.1.0/ab.bin"), Some("2.1.0"));
        assert_eq!(version_of_key("firmware/2.1.0/x/ab.bin"), None);
        assert_eq!(version_of_key("other/2.1.0/ab.bin"), None);
        let bytes = digest_bytes(&"0f".repeat(32)).unwrap();
        assert_eq!(bytes, [0x0f; 32]);
        assert_eq!(hex(&bytes), "0f".repeat(32));
        assert!(digest_bytes(&"zz".repeat(32)).is_err());
    }
}
