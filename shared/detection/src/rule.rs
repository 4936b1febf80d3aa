//! Threshold rules such as `temperature > 80`, for one device or every device of a type.
//! Metric names and thresholds go through the same normalization as readings, so a rule
//! written as `temp_f > 176` compares against the stored °C values correctly.

use hub_events::Severity;
use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Comparison {
    #[serde(rename = ">")]
    Above,
    #[serde(rename = ">=")]
    AtLeast,
    #[serde(rename = "<")]
    Below,
    #[serde(rename = "<=")]
    AtMost,
}

impl Comparison {
    pub fn symbol(self) -> &'static str {
        match self {
            Comparison::Above => ">",
            Comparison::AtLeast => ">=",
            Comparison::Below => "<",
            Comparison::AtMost => "<=",
        }
    }

    fn holds(self, value: f64, threshold: f64) -> bool {
        match self {
            Comparison::Above => value > threshold,
            Comparison::AtLeast => value >= threshold,
            Comparison::Below => value < threshold,
            Comparison::AtMost => value <= threshold,
        }
    }
}

/// Which devices a rule watches.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RuleScope {
    Device(String),
    DeviceType(String),
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ThresholdRule {
    pub id: String,
    pub scope: RuleScope,
    /// Canonical metric name.
    pub metric: String,
    pub comparison: Comparison,
    /// In the metric's canonical unit.
    pub threshold: f64,
    pub severity: Severity,
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum RuleError {
    #[error("rule {0:?} is not of the form `<metric> <op> <number>` with op one of > >= < <=")]
    Syntax(String),
    #[error("rule threshold: {0}")]
    Threshold(#[from] hub_telemetry::units::MetricError),
}

/// The parsed condition of a rule.
#[derive(Clone, Debug, PartialEq)]
pub struct Condition {
    pub metric: String,
    pub comparison: Comparison,
    pub threshold: f64,
}

impl Condition {
    pub fn parse(text: &str) -> Result<Self, RuleError> {
        let syntax = || RuleError::Syntax(text.chars().take(200).collect());
        let text = text.trim();
        // Two-character operators first, so `>=` is not read as `>` and `=5`.
        let (at, symbol, comparison) = [
            (">=", Comparison::AtLeast),
            ("<=", Comparison::AtMost),
            (">", Comparison::Above),
            ("<", Comparison::Below),
        ]
        .into_iter()
        .find_map(|(symbol, c)| text.find(symbol).map(|at| (at, symbol, c)))
        .ok_or_else(syntax)?;
        let name = text[..at].trim();
        let number: f64 = text[at + symbol.len()..]
            .trim()
            .parse()
            .map_err(|_| syntax())?;
        if name.is_empty() || !number.is_finite() {
            return Err(syntax());
        }
        let (metric, threshold) = hub_telemetry::units::normalize(name, number)?;
        Ok(Self {
            metric,
            comparison,
            threshold,
        })
    }
}

impl ThresholdRule {
    pub fn new(
        id: String,
        scope: RuleScope,
        condition: &str,
        severity: Severity,
    ) -> Result<Self, RuleError> {
        let Condition {
            metric,
            comparison,
            threshold,
        } = Condition::parse(condition)?;
        Ok(Self {
            id,
            scope,
            metric,
            comparison,
            threshold,
            severity,
        })
    }

    pub fn applies_to(&self, device_id: &str, device_type: Option<&str>) -> bool {
        match &self.scope {
            RuleScope::Device(id) => id == device_id,
            RuleScope::DeviceType(t) => device_type == Some(t.as_str()),
        }
    }

    /// Whether a reading of `metric` (canonical) breaks the rule.
    pub fn fires(&self, metric: &str, value: f64) -> bool {
        metric == self.metric && self.comparison.holds(value, self.threshold)
    }

    /// The rule as people write it, e.g. `temperature > 80`.
    pub fn condition(&self) -> String {
        format!(
            "{} {} {}",
            self.metric,
            self.comparison.symbol(),
            self.threshold
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(condition: &str) -> ThresholdRule {
        ThresholdRule::new(
            "r1".into(),
            RuleScope::DeviceType("env-sensor".into()),
            condition,
            Severity::Warning,
        )
        .unwrap()
    }

    #[test]
    fn parses_every_operator() {
        for (text, comparison, fires_at_80, fires_at_81) in [
            ("temperature > 80", Comparison::Above, false, true),
            ("temperature>=80", Comparison::AtLeast, true, true),
            (" temperature <  80 ", Comparison::Below, false, false),
            ("temperature <= 80", Comparison::AtMost, true, false),
        ] {
            let r = rule(text);
            assert_eq!(r.comparison, comparison, "{text}");
            assert_eq!(r.fires("temperature", 80.0), fires_at_80, "{text}");
            assert_eq!(r.fires("temperature", 81.0), fires_at_81, "{text}");
            assert!(!r.fires("voltage", 81.0), "{text}");
        }
        assert_eq!(rule("temperature > 80").condition(), "temperature > 80");
    }

    #[test]
    fn names_and_units_are_normalized_like_readings() {
        let r = rule("Temperature > 80");
        assert_eq!(r.metric, "temperature");
        let f = rule("temp_f > 176");
        assert_eq!(f.metric, "temperature");
        assert!((f.threshold - 80.0).abs() < 1e-9, "{}", f.threshold);
    }

    #[test]
    fn bad_rules_are_refused_with_a_reason() {
        for text in [
            "",
            "temperature",
            "temperature > ",
            "> 80",
            "temperature = 80",
            "temperature > hot",
            "temperature > NaN",
            "temperature > inf",
            "tem perature > 1",
        ] {
            assert!(
                ThresholdRule::new(
                    "r".into(),
                    RuleScope::Device("d".into()),
                    text,
                    Severity::Info
                )
                .is_err(),
                "{text:?}"
            );
        }
        // Beyond what any sensor can report: a rule that could never fire.
        assert!(matches!(
            Condition::parse("temperature > 100000"),
            Err(RuleError::Threshold(_))
        ));
    }

    #[test]
    fn scope_selects_devices() {
        let by_type = rule("temperature > 80");
        assert!(by_type.applies_to("any", Some("env-sensor")));
        assert!(!by_type.applies_to("any", Some("dc-meter")));
        assert!(!by_type.applies_to("any", None));
        let one = ThresholdRule::new(
            "r".into(),
            RuleScope::Device("d1".into()),
            "voltage < 3",
            Severity::Critical,
        )
        .unwrap();
        assert!(one.applies_to("d1", None));
        assert!(!one.applies_to("d2", Some("env-sensor")));
    }
}
