//! CloudWatch Embedded Metric Format: one JSON line on stdout per flush, which CloudWatch
//! turns into metrics without any API call from the function.

use serde_json::{json, Map, Value};

pub const NAMESPACE: &str = "IotControlHub";

#[derive(Debug, Clone)]
pub struct Metrics {
    dimensions: Vec<(String, String)>,
    values: Vec<(String, f64, &'static str)>,
}

impl Metrics {
    /// Metrics of one component, e.g. `Metrics::new("normalizer")`.
    pub fn new(function: &str) -> Self {
        Self {
            dimensions: vec![("Function".into(), function.into())],
            values: Vec::new(),
        }
    }

    /// Adds a dimension; the metrics of this document are then split by its value.
    pub fn dimension(&mut self, name: &str, value: &str) -> &mut Self {
        self.dimensions.push((name.into(), value.into()));
        self
    }

    pub fn count(&mut self, name: &str, value: u64) -> &mut Self {
        self.values.push((name.into(), value as f64, "Count"));
        self
    }

    pub fn percent(&mut self, name: &str, value: f64) -> &mut Self {
        self.values.push((name.into(), value, "Percent"));
        self
    }

    pub fn millis(&mut self, name: &str, value: f64) -> &mut Self {
        self.values.push((name.into(), value, "Milliseconds"));
        self
    }

    pub fn to_json(&self, timestamp_ms: i64) -> Value {
        let mut root = Map::new();
        root.insert(
            "_aws".into(),
            json!({
                "Timestamp": timestamp_ms,
                "CloudWatchMetrics": [{
                    "Namespace": NAMESPACE,
                    "Dimensions": [self.dimensions.iter().map(|(k, _)| k.clone()).collect::<Vec<_>>()],
                    "Metrics": self.values.iter().map(|(name, _, unit)| json!({"Name": name, "Unit": unit})).collect::<Vec<_>>(),
                }]
            }),
        );
        for (key, value) in &self.dimensions {
            root.insert(key.clone(), Value::String(value.clone()));
        }
        for (name, value, _) in &self.values {
            root.insert(name.clone(), json!(value));
        }
        Value::Object(root)
    }

    /// Writes the EMF line to stdout.
    pub fn flush(&self) {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as i64)
            .unwrap_or_default();
        println!("{}", self.to_json(now));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emf_document_names_every_metric_once() {
        let mut metrics = Metrics::new("normalizer");
        metrics
            .count("telemetry_ingest_rate", 42)
            .millis("processing_latency", 3.5);
        let doc = metrics.to_json(1_795_428_000_000);
        let declared = &doc["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(declared["Namespace"], NAMESPACE);
        assert_eq!(declared["Dimensions"][0][0], "Function");
        assert_eq!(declared["Metrics"][1]["Unit"], "Milliseconds");
        assert_eq!(doc["Function"], "normalizer");
        assert_eq!(doc["telemetry_ingest_rate"], 42.0);
        assert_eq!(doc["_aws"]["Timestamp"], 1_795_428_000_000i64);
    }
}
