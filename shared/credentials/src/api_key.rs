use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine as _};
use chrono::{DateTime, Utc};
use ring::{
    digest,
    rand::{SecureRandom, SystemRandom},
};
use subtle::ConstantTimeEq as _;

const SECRET_BYTES: usize = 32;
const KEY_ID_BYTES: usize = 8;
/// Longest key accepted from a request; anything longer is refused before parsing.
pub const MAX_KEY_LEN: usize = 256;

/// Why a presented key does not authenticate. Callers answer every variant with the same
/// 401 so that a client cannot learn which part was wrong; the variant is for logs.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    #[error("key is not of the form device_id.key_id.secret")]
    Malformed,
    #[error("no such key")]
    Unknown,
    #[error("key secret does not match")]
    Mismatch,
    #[error("key is revoked")]
    Revoked,
    #[error("key expired at {0}")]
    Expired(DateTime<Utc>),
    #[error("device id {0:?} is not a thing name (letters, digits, ':', '_', '-')")]
    BadDeviceId(String),
    #[error("the system random number generator failed")]
    NoRandomness,
}

/// What a request presented, split into its parts. The secret stays in memory only as
/// long as the check takes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PresentedKey {
    pub device_id: String,
    pub key_id: String,
    secret: String,
}

impl PresentedKey {
    pub fn parse(key: &str) -> Result<Self, KeyError> {
        if key.len() > MAX_KEY_LEN {
            return Err(KeyError::Malformed);
        }
        let mut parts = key.trim().split('.');
        let (Some(device_id), Some(key_id), Some(secret), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(KeyError::Malformed);
        };
        if !is_thing_name(device_id) || !is_base64url(key_id) || !is_base64url(secret) {
            return Err(KeyError::Malformed);
        }
        Ok(Self {
            device_id: device_id.to_owned(),
            key_id: key_id.to_owned(),
            secret: secret.to_owned(),
        })
    }

    /// Checks this key against the record stored for its device and key id.
    pub fn verify(&self, stored: &StoredKey, now: DateTime<Utc>) -> Result<(), KeyError> {
        // Compare first and decide after, so a revoked or expired key costs the same time
        // as a good one.
        let matches: bool = hash_secret(&self.secret)
            .as_bytes()
            .ct_eq(stored.secret_hash.as_bytes())
            .into();
        if !matches {
            return Err(KeyError::Mismatch);
        }
        if stored.revoked {
            return Err(KeyError::Revoked);
        }
        if let Some(expires_at) = stored.expires_at {
            if now >= expires_at {
                return Err(KeyError::Expired(expires_at));
            }
        }
        Ok(())
    }
}

/// What the hub keeps of a key: never the secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredKey {
    pub device_id: String,
    pub key_id: String,
    /// Lowercase hex SHA-256 of the secret.
    pub secret_hash: String,
    pub created_at: DateTime<Utc>,
    /// Set when a rotation gives the old key a grace period.
    pub expires_at: Option<DateTime<Utc>>,
    pub revoked: bool,
}

/// A freshly issued key: the full key is shown to its owner once; `stored` is kept.
#[derive(Debug, Clone)]
pub struct IssuedKey {
    pub key: String,
    pub stored: StoredKey,
}

pub struct ApiKey;

impl ApiKey {
    /// Issues a new key for `device_id` (a thing name: letters, digits, `_`, `-`, `:`).
    pub fn issue(device_id: &str, now: DateTime<Utc>) -> Result<IssuedKey, KeyError> {
        if !is_thing_name(device_id) {
            return Err(KeyError::BadDeviceId(device_id.to_owned()));
        }
        let random = SystemRandom::new();
        let mut key_id = [0u8; KEY_ID_BYTES];
        let mut secret = [0u8; SECRET_BYTES];
        random
            .fill(&mut key_id)
            .map_err(|_| KeyError::NoRandomness)?;
        random
            .fill(&mut secret)
            .map_err(|_| KeyError::NoRandomness)?;
        let key_id = URL_SAFE_NO_PAD.encode(key_id);
        let secret = URL_SAFE_NO_PAD.encode(secret);
        Ok(IssuedKey {
            key: format!("{device_id}.{key_id}.{secret}"),
            stored: StoredKey {
                device_id: device_id.to_owned(),
                key_id,
                secret_hash: hash_secret(&secret),
                created_at: now,
                expires_at: None,
                revoked: false,
            },
        })
    }
}

fn hash_secret(secret: &str) -> String {
    digest::digest(&digest::SHA256, secret.as_bytes())
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// AWS IoT thing names: `[a-zA-Z0-9:_-]+`, at most 128 characters. No `.`, which is what
/// lets the key use it as a separator.
pub fn is_thing_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 128
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b':' | b'_' | b'-'))
}

fn is_base64url(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-'))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn now() -> DateTime<Utc> {
        "2026-11-23T10:00:00Z".parse().unwrap()
    }

    #[test]
    fn an_issued_key_verifies_and_its_secret_is_not_stored() {
        let issued = ApiKey::issue("sensor-0001", now()).unwrap();
        let presented = PresentedKey::parse(&issued.key).unwrap();
        assert_eq!(presented.device_id, "sensor-0001");
        assert_eq!(presented.key_id, issued.stored.key_id);
        assert_eq!(presented.verify(&issued.stored, now()), Ok(()));
        let secret = issued.key.rsplit('.').next().unwrap();
        assert!(!issued.stored.secret_hash.contains(secret));
        assert_eq!(issued.stored.secret_hash.len(), 64);
    }

    #[test]
    fn two_keys_differ() {
        let a = ApiKey::issue("d1", now()).unwrap();
        let b = ApiKey::issue("d1", now()).unwrap();
        assert_ne!(a.key, b.key);
        assert_ne!(a.stored.key_id, b.stored.key_id);
    }

    #[test]
    fn a_wrong_secret_is_a_mismatch() {
        let issued = ApiKey::issue("d1", now()).unwrap();
        let other = ApiKey::issue("d1", now()).unwrap();
        let secret = other.key.rsplit('.').next().unwrap();
        let forged = format!("d1.{}.{secret}", issued.stored.key_id);
        let presented = PresentedKey::parse(&forged).unwrap();
        assert_eq!(
            presented.verify(&issued.stored, now()),
            Err(KeyError::Mismatch)
        );
    }

    #[test]
    fn revoked_and_expired_keys_are_refused() {
        let issued = ApiKey::issue("d1", now()).unwrap();
        let presented = PresentedKey::parse(&issued.key).unwrap();
        let revoked = StoredKey {
            revoked: true,
            ..issued.stored.clone()
        };
        assert_eq!(presented.verify(&revoked, now()), Err(KeyError::Revoked));
        let expires_at = now() - chrono::Duration::seconds(1);
        let expired = StoredKey {
            expires_at: Some(expires_at),
            ..issued.stored.clone()
        };
        assert_eq!(
            presented.verify(&expired, now()),
            Err(KeyError::Expired(expires_at))
        );
        let in_grace = StoredKey {
            expires_at: Some(now() + chrono::Duration::hours(1)),
            ..issued.stored
        };
        assert_eq!(presented.verify(&in_grace, now()), Ok(()));
    }

    #[test]
    fn malformed_keys_are_refused() {
        for key in [
            "",
            "d1",
            "d1.abc",
            "d1.abc.def.ghi",
            "d.1.abc.def",
            "d1..def",
            "d1.abc.",
            "dev ice.abc.def",
            "d1.a+c.def",
            "d1.abc.d/f",
            &format!("d1.abc.{}", "x".repeat(MAX_KEY_LEN)),
        ] {
            assert_eq!(
                PresentedKey::parse(key),
                Err(KeyError::Malformed),
                "{key:?}"
            );
        }
        assert!(ApiKey::issue("has.dot", now()).is_err());
        assert!(ApiKey::issue("", now()).is_err());
    }

    proptest! {
        #[test]
        fn parsing_never_panics(key in ".{0,300}") {
            let _ = PresentedKey::parse(&key);
        }

        #[test]
        fn any_thing_name_round_trips(device in "[a-zA-Z0-9:_-]{1,128}") {
            let issued = ApiKey::issue(&device, now()).unwrap();
            let presented = PresentedKey::parse(&issued.key).unwrap();
            prop_assert_eq!(&presented.device_id, &device);
            prop_assert_eq!(presented.verify(&issued.stored, now()), Ok(()));
        }
    }
}
