//! The alert lifecycle: open → acknowledged → resolved (or open → resolved, by an operator
//! or automatically when the episode clears), and the key that makes one alert of many
//! triggers.

use chrono::{DateTime, Utc};
use hub_events::AlertState;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AlertAction {
    Acknowledge,
    Resolve,
    /// The detector saw the episode clear.
    AutoResolve,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("cannot {action:?} an alert that is {state:?}")]
pub struct TransitionError {
    pub state: AlertState,
    pub action: AlertAction,
}

/// The state after `action`. Repeating what already holds (acknowledging an acknowledged
/// alert, resolving a resolved one) is allowed and changes nothing, so retried API calls
/// and redelivered clear events are harmless; going back is refused.
pub fn transition(state: AlertState, action: AlertAction) -> Result<AlertState, TransitionError> {
    use AlertAction::*;
    use AlertState::*;
    match (state, action) {
        (Open | Acknowledged, Acknowledge) => Ok(Acknowledged),
        (_, Resolve | AutoResolve) => Ok(Resolved),
        (Resolved, Acknowledge) => Err(TransitionError { state, action }),
    }
}

/// One alert per device, rule and episode window: every trigger with this key after the
/// first only increments the alert's counter.
pub fn dedup_key(device_id: &str, rule_id: &str, window_start: DateTime<Utc>) -> String {
    format!("{device_id}#{rule_id}#{}", window_start.timestamp_millis())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use AlertAction::*;
    use AlertState::*;

    #[test]
    fn the_lifecycle() {
        assert_eq!(transition(Open, Acknowledge), Ok(Acknowledged));
        assert_eq!(transition(Acknowledged, Resolve), Ok(Resolved));
        assert_eq!(transition(Open, AutoResolve), Ok(Resolved));
        assert_eq!(transition(Acknowledged, AutoResolve), Ok(Resolved));
        assert_eq!(transition(Acknowledged, Acknowledge), Ok(Acknowledged));
        assert_eq!(transition(Resolved, Resolve), Ok(Resolved));
        assert_eq!(
            transition(Resolved, Acknowledge),
            Err(TransitionError {
                state: Resolved,
                action: Acknowledge
            })
        );
    }

    #[test]
    fn keys_differ_by_device_rule_and_window() {
        let t: DateTime<Utc> = "2026-11-23T10:05:00Z".parse().unwrap();
        let key = dedup_key("d1", "r1", t);
        assert_eq!(key, format!("d1#r1#{}", t.timestamp_millis()));
        assert_ne!(key, dedup_key("d2", "r1", t));
        assert_ne!(key, dedup_key("d1", "r2", t));
        assert_ne!(key, dedup_key("d1", "r1", t + chrono::Duration::minutes(5)));
    }

    fn state() -> impl Strategy<Value = AlertState> {
        prop_oneof![Just(Open), Just(Acknowledged), Just(Resolved)]
    }
    fn action() -> impl Strategy<Value = AlertAction> {
        prop_oneof![Just(Acknowledge), Just(Resolve), Just(AutoResolve)]
    }

    proptest! {
        #[test]
        fn never_goes_back_and_resolved_is_final(start in state(), actions in prop::collection::vec(action(), 0..20)) {
            let rank = |s: AlertState| match s { Open => 0, Acknowledged => 1, Resolved => 2 };
            let mut s = start;
            for a in actions {
                match transition(s, a) {
                    Ok(next) => {
                        prop_assert!(rank(next) >= rank(s));
                        if s == Resolved { prop_assert_eq!(next, Resolved); }
                        s = next;
                    }
                    Err(e) => prop_assert_eq!(e.state, Resolved),
                }
            }
        }
    }
}
