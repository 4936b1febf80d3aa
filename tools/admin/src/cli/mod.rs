//! The subcommands, one module each, every one a `run(self, &client)`.

pub mod alerts;
pub mod console;
pub mod devices;
pub mod firmware;
pub mod rollouts;
pub mod users;

use serde_json::Value;

pub fn print(value: &Value) {
    use std::io::Write;
    let text = serde_json::to_string_pretty(value).unwrap_or_default();
    // A reader that stops early (`| head`) closes the pipe: nothing left to tell it.
    let _ = writeln!(std::io::stdout().lock(), "{text}");
}

/// Query strings from pairs; values are percent-encoded.
pub fn query_string(pairs: &[(&str, Option<&str>)]) -> String {
    let url = reqwest::Url::parse_with_params(
        "http://x/",
        pairs.iter().filter_map(|(k, v)| v.map(|v| (*k, v))),
    )
    .expect("a static base URL");
    url.query()
        .filter(|q| !q.is_empty())
        .map(|q| format!("?{q}"))
        .unwrap_or_default()
}
