//! What the anomaly detector and the alert dispatcher decide, as pure functions over plain
//! state, so every rule is tested without AWS. The Lambdas load the state from DynamoDB,
//! call these, and write it back under optimistic concurrency.

pub mod adaptive;
pub mod alert;
pub mod detector;
pub mod hysteresis;
pub mod rule;
#[cfg(feature = "dynamodb")]
pub mod rules_table;
pub mod webhook;
#[cfg(feature = "dynamodb")]
pub mod webhooks_table;
pub mod welford;
pub mod window;

pub use adaptive::{AdaptiveConfig, AdaptiveState, AdaptiveVerdict};
pub use alert::{AlertAction, TransitionError};
pub use detector::{
    observe, ClosedWindow, Detection, DetectorConfig, DetectorState, DeviceState, OpenWindow,
    Outcome, Point, StateFormatError,
};
pub use hysteresis::{Episode, Hysteresis, Transition};
pub use rule::{Comparison, RuleError, RuleScope, ThresholdRule};
pub use welford::Welford;
pub use window::{window_of, Aggregate, WindowStats};
