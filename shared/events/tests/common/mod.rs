//! Schema lookup and validation shared by the event tests.

use hub_events::SCHEMAS;
use serde_json::Value;

pub fn schema_for(name: &str) -> Value {
    let (_, text) = SCHEMAS
        .iter()
        .find(|(n, _)| *n == name)
        .unwrap_or_else(|| panic!("no schema named {name}"));
    serde_json::from_str(text).expect("schema is JSON")
}

/// A validator for one event type's schema, with the envelope schema it references.
pub fn validator(name: &str) -> jsonschema::Validator {
    let envelope = schema_for("envelope");
    let id = envelope["$id"]
        .as_str()
        .expect("envelope has $id")
        .to_owned();
    let registry = jsonschema::Registry::new()
        .add(id, &envelope)
        .expect("envelope id is a URI")
        .prepare()
        .expect("registry builds");
    jsonschema::options()
        .should_validate_formats(true)
        .with_registry(&registry)
        .build(&schema_for(name))
        .expect("schema compiles")
}
