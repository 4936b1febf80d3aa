//! Device credentials other than certificates: API keys for `POST /v1/telemetry`.
//!
//! A key is `{device_id}.{key_id}.{secret}`. The device id and key id say which stored
//! record to check; the secret (256 random bits) is never stored, only its SHA-256. A
//! fast hash is right here: the secret is random, not a password, so there is nothing
//! to brute-force from the digest. Digests are compared in constant time.

pub mod api_key;
#[cfg(feature = "dynamodb")]
pub mod dynamodb;

pub use api_key::{ApiKey, IssuedKey, KeyError, PresentedKey, StoredKey};
