//! Reading the local stack's description (`localstack/up.sh` writes `stack.env` and
//! `outputs.json` into the stack directory), so tools need no flags on a laptop.

use std::{
    collections::{BTreeMap, HashMap},
    path::Path,
};

use anyhow::{Context, Result};

/// `export KEY=value` lines of a shell env file.
pub fn read_env_file(path: &Path) -> Result<HashMap<String, String>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    Ok(text
        .lines()
        .filter(|l| !l.trim_start().starts_with('#'))
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| {
            (
                k.trim().trim_start_matches("export ").to_owned(),
                // Values may be single-quoted for the shell (`$default` in a URL).
                v.trim().trim_matches('\'').to_owned(),
            )
        })
        .collect())
}

/// The deployed stack's outputs (name -> value).
pub fn read_outputs(stack_dir: &Path) -> Result<BTreeMap<String, String>> {
    let path = stack_dir.join("outputs.json");
    serde_json::from_slice(
        &std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?,
    )
    .with_context(|| format!("parsing {}", path.display()))
}

/// Points the AWS SDK at the stack's emulator: the settings from `stack.env`, set before
/// any client exists (the SDK's configuration chain reads them from the environment).
pub fn export_aws_settings(stack_dir: &Path) -> Result<HashMap<String, String>> {
    let env = read_env_file(&stack_dir.join("stack.env"))?;
    for key in [
        "AWS_ENDPOINT_URL",
        "AWS_REGION",
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
    ] {
        let value = env
            .get(key)
            .with_context(|| format!("{key} missing from stack.env"))?;
        std::env::set_var(key, value);
    }
    Ok(env)
}
