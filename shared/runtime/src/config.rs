//! Function settings from environment variables, with errors that name the variable.

use std::str::FromStr;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("environment variable {0} is not set")]
    Missing(String),
    #[error("environment variable {name}={value:?} is not valid")]
    Invalid { name: String, value: String },
}

/// A variable that must be set.
pub fn required(name: &str) -> Result<String, ConfigError> {
    std::env::var(name).map_err(|_| ConfigError::Missing(name.to_owned()))
}

/// A variable with a default, parsed.
pub fn or<T: FromStr>(name: &str, default: T) -> Result<T, ConfigError> {
    match std::env::var(name) {
        Err(_) => Ok(default),
        Ok(value) => value.parse().map_err(|_| ConfigError::Invalid {
            name: name.to_owned(),
            value,
        }),
    }
}
