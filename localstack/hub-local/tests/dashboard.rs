//! The template's dashboard is valid CloudWatch dashboard JSON once its `!Sub` is applied,
//! and every hub metric it charts is one the code emits: renaming a metric without the
//! dashboard (or the other way round) fails here, not on an empty chart in production.

use std::path::{Path, PathBuf};

use serde_json::Value as Json;
use serde_norway::Value;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The dashboard body with every `${...}` of its `!Sub` replaced by a placeholder.
fn dashboard() -> Json {
    let text = std::fs::read_to_string(root().join("template.yaml")).unwrap();
    let template: Value = serde_norway::from_str(&text).unwrap();
    let body = &template["Resources"]["HubDashboard"]["Properties"]["DashboardBody"];
    let Value::Tagged(sub) = body else {
        panic!("DashboardBody is not a !Sub: {body:?}")
    };
    assert_eq!(sub.tag, "Sub");
    let text = match &sub.value {
        Value::Sequence(parts) => parts[0].as_str().unwrap().to_owned(),
        other => other.as_str().unwrap().to_owned(),
    };
    let mut substituted = String::new();
    let mut rest = text.as_str();
    while let Some(start) = rest.find("${") {
        substituted.push_str(&rest[..start]);
        let end = rest[start..].find('}').unwrap() + start;
        substituted.push_str("placeholder");
        rest = &rest[end + 1..];
    }
    substituted.push_str(rest);
    serde_json::from_str(&substituted).unwrap_or_else(|e| panic!("{e}: {substituted}"))
}

fn sources(dir: &Path, out: &mut String) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            if !path.ends_with("target") && !path.ends_with("tests") {
                sources(&path, out);
            }
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push_str(&std::fs::read_to_string(&path).unwrap());
        }
    }
}

#[test]
fn every_charted_hub_metric_is_emitted_by_the_code() {
    let dashboard = dashboard();
    let widgets = dashboard["widgets"].as_array().unwrap();
    assert!(widgets.len() >= 5);
    let mut code = String::new();
    sources(&root().join("functions"), &mut code);
    sources(&root().join("shared"), &mut code);
    let mut charted = Vec::new();
    for widget in widgets {
        for row in widget["properties"]["metrics"].as_array().unwrap() {
            let row = row.as_array().unwrap();
            if let Some(expression) = row[0]["expression"].as_str() {
                // SEARCH('{Namespace,Dims} MetricName="name"', ...)
                let name = expression.split("MetricName=\"").nth(1).unwrap();
                charted.push(name.split('"').next().unwrap().to_owned());
            } else if row[0] == "IotControlHub" || (row[0] == "." && !charted.is_empty()) {
                charted.push(row[1].as_str().unwrap().to_owned());
            }
        }
    }
    assert!(charted.contains(&"firmware_rollout_progress".to_owned()));
    for name in &charted {
        assert!(
            code.contains(&format!("\"{name}\"")),
            "the dashboard charts {name}, which no function emits"
        );
    }
}
