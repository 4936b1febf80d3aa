//! Deploys `template.yaml` into the emulator's CloudFormation, where the SAM transform
//! runs, and records the stack outputs for the scripts and tests.

use std::{collections::BTreeMap, path::Path, time::Duration};

use anyhow::{bail, Context, Result};
use aws_sdk_cloudformation::types::{Capability, Parameter, StackStatus};
use tracing::info;

pub struct DeployRequest<'a> {
    pub stack_name: &'a str,
    /// Where the packaged template is (an S3 URL in the emulator).
    pub template_url: &'a str,
    pub parameters: &'a [(String, String)],
    pub outputs_file: &'a Path,
}

pub async fn deploy(
    cfn: &aws_sdk_cloudformation::Client,
    request: &DeployRequest<'_>,
) -> Result<()> {
    let parameters: Vec<Parameter> = request
        .parameters
        .iter()
        .map(|(k, v)| {
            Parameter::builder()
                .parameter_key(k)
                .parameter_value(v)
                .build()
        })
        .collect();
    let capabilities = [
        Capability::CapabilityIam,
        Capability::CapabilityNamedIam,
        Capability::CapabilityAutoExpand,
    ];
    let started = std::time::Instant::now();
    match stack_status(cfn, request.stack_name).await? {
        Some(_) => {
            let result = cfn
                .update_stack()
                .stack_name(request.stack_name)
                .template_url(request.template_url)
                .set_parameters(Some(parameters))
                .set_capabilities(Some(capabilities.to_vec()))
                .send()
                .await;
            if let Err(err) = result {
                let err = aws_sdk_cloudformation::error::DisplayErrorContext(&err).to_string();
                if !err.contains("No updates are to be performed") {
                    bail!("update of stack {} failed: {err}", request.stack_name);
                }
            }
        }
        None => {
            cfn.create_stack()
                .stack_name(request.stack_name)
                .template_url(request.template_url)
                .set_parameters(Some(parameters))
                .set_capabilities(Some(capabilities.to_vec()))
                .send()
                .await
                .map_err(|e| {
                    anyhow::anyhow!(
                        aws_sdk_cloudformation::error::DisplayErrorContext(e).to_string()
                    )
                })
                .context("create_stack")?;
        }
    }
    let status = wait(cfn, request.stack_name).await?;
    if !matches!(
        status,
        StackStatus::CreateComplete | StackStatus::UpdateComplete
    ) {
        let events = cfn
            .describe_stack_events()
            .stack_name(request.stack_name)
            .send()
            .await?;
        let failures: Vec<String> = events
            .stack_events()
            .iter()
            .filter(|e| {
                e.resource_status()
                    .is_some_and(|s| s.as_str().ends_with("FAILED"))
            })
            .map(|e| {
                format!(
                    "{}: {}",
                    e.logical_resource_id().unwrap_or("?"),
                    e.resource_status_reason().unwrap_or("")
                )
            })
            .collect();
        bail!(
            "stack {} ended {status:?}:\n{}",
            request.stack_name,
            failures.join("\n")
        );
    }
    let outputs = outputs(cfn, request.stack_name).await?;
    std::fs::write(
        request.outputs_file,
        serde_json::to_string_pretty(&outputs)?,
    )?;
    info!(
        stack = request.stack_name,
        status = status.as_str(),
        seconds = started.elapsed().as_secs_f32(),
        outputs = outputs.len(),
        "stack deployed"
    );
    Ok(())
}

async fn stack_status(
    cfn: &aws_sdk_cloudformation::Client,
    name: &str,
) -> Result<Option<StackStatus>> {
    match cfn.describe_stacks().stack_name(name).send().await {
        Ok(out) => Ok(out
            .stacks()
            .first()
            .and_then(|s| s.stack_status().cloned())
            .filter(|s| *s != StackStatus::DeleteComplete)),
        Err(err) => {
            let text = aws_sdk_cloudformation::error::DisplayErrorContext(&err).to_string();
            if text.contains("does not exist") {
                Ok(None)
            } else {
                bail!("describe_stacks {name}: {text}")
            }
        }
    }
}

async fn wait(cfn: &aws_sdk_cloudformation::Client, name: &str) -> Result<StackStatus> {
    let deadline = std::time::Instant::now() + Duration::from_secs(600);
    loop {
        let status = stack_status(cfn, name)
            .await?
            .with_context(|| format!("stack {name} disappeared"))?;
        if !status.as_str().ends_with("_IN_PROGRESS") {
            return Ok(status);
        }
        if std::time::Instant::now() > deadline {
            bail!("stack {name} still {status:?} after 10 minutes");
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

async fn outputs(
    cfn: &aws_sdk_cloudformation::Client,
    name: &str,
) -> Result<BTreeMap<String, String>> {
    let out = cfn.describe_stacks().stack_name(name).send().await?;
    Ok(out
        .stacks()
        .first()
        .map(|s| {
            s.outputs()
                .iter()
                .filter_map(|o| Some((o.output_key()?.to_owned(), o.output_value()?.to_owned())))
                .collect()
        })
        .unwrap_or_default())
}
