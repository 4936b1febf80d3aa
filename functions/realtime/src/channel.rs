//! What a console subscribes to: `device:{id}`, `type:{device_type}`, `group:{group}`,
//! `fleet` (every device's registry changes, not its readings), `alerts`, `rollouts`,
//! `rollout:{id}`. A channel's text is its key in the subscriptions
//! table, so parsing and printing are exact inverses.

use std::fmt;

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Channel {
    Device(String),
    DeviceType(String),
    Group(String),
    Fleet,
    Alerts,
    Rollouts,
    Rollout(String),
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{0}")]
pub struct ChannelError(String);

/// Ids as the registry allows them: `[A-Za-z0-9:_-]`, 1 to 128.
fn id(kind: &str, value: &str) -> Result<String, ChannelError> {
    let ok = !value.is_empty()
        && value.len() <= 128
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b':' | b'_' | b'-'));
    if ok {
        Ok(value.to_owned())
    } else {
        Err(ChannelError(format!(
            "a {kind} channel names 1 to 128 of letters, digits, ':', '_' and '-'"
        )))
    }
}

impl Channel {
    pub fn parse(text: &str) -> Result<Self, ChannelError> {
        match text {
            "fleet" => return Ok(Self::Fleet),
            "alerts" => return Ok(Self::Alerts),
            "rollouts" => return Ok(Self::Rollouts),
            _ => {}
        }
        let Some((kind, value)) = text.split_once(':') else {
            return Err(ChannelError(format!(
                "unknown channel {:?}: one of device:ID, type:TYPE, group:GROUP, fleet, alerts, rollouts, rollout:ID",
                truncated(text)
            )));
        };
        match kind {
            "device" => Ok(Self::Device(id("device", value)?)),
            "type" => Ok(Self::DeviceType(id("type", value)?)),
            "group" => Ok(Self::Group(id("group", value)?)),
            "rollout" => Ok(Self::Rollout(id("rollout", value)?)),
            _ => Err(ChannelError(format!(
                "unknown channel kind {:?}: one of device, type, group, rollout",
                truncated(kind)
            ))),
        }
    }
}

/// What of a refused value an error quotes back.
fn truncated(text: &str) -> String {
    text.chars().take(64).collect()
}

impl fmt::Display for Channel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Device(id) => write!(f, "device:{id}"),
            Self::DeviceType(t) => write!(f, "type:{t}"),
            Self::Group(g) => write!(f, "group:{g}"),
            Self::Fleet => f.write_str("fleet"),
            Self::Alerts => f.write_str("alerts"),
            Self::Rollouts => f.write_str("rollouts"),
            Self::Rollout(id) => write!(f, "rollout:{id}"),
        }
    }
}

/// The channels an event about a device goes to.
pub fn device_channels(
    device_id: &str,
    device_type: Option<&str>,
    group: Option<&str>,
) -> Vec<Channel> {
    let mut channels = vec![Channel::Device(device_id.to_owned())];
    channels.extend(device_type.map(|t| Channel::DeviceType(t.to_owned())));
    channels.extend(group.map(|g| Channel::Group(g.to_owned())));
    channels
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn channels_print_as_they_parse() {
        for text in [
            "device:sensor-1",
            "type:env-sensor",
            "group:plant-a",
            "fleet",
            "alerts",
            "rollouts",
            "rollout:ota-0123",
        ] {
            assert_eq!(Channel::parse(text).unwrap().to_string(), text);
        }
    }

    #[test]
    fn unknown_or_malformed_channels_are_refused_saying_why() {
        for text in [
            "",
            "devices:x",
            "device:",
            "device:a b",
            "alerts:x",
            "type",
            &format!("device:{}", "x".repeat(129)),
        ] {
            let err = Channel::parse(text).unwrap_err();
            assert!(!err.0.is_empty(), "{text}");
        }
        assert!(Channel::parse("alert")
            .unwrap_err()
            .0
            .contains("unknown channel"));
    }
}
