//! Reads topic rules from the IoT API (CloudFormation created them from template.yaml)
//! and turns them into rules the local engine runs.

use anyhow::{Context, Result};
use aws_sdk_iot::types::TopicRule;

use crate::rules::{sql::Statement, Action, Rule, RuleError, Template};

/// A rule the emulator holds but the local engine cannot run, and why.
#[derive(Debug, Clone, PartialEq)]
pub struct Skipped {
    pub rule: String,
    pub reason: String,
}

pub async fn load(iot: &aws_sdk_iot::Client) -> Result<(Vec<Rule>, Vec<Skipped>)> {
    let mut names = Vec::new();
    let mut token = None;
    loop {
        let page = iot
            .list_topic_rules()
            .set_next_token(token)
            .send()
            .await
            .context("list_topic_rules")?;
        names.extend(
            page.rules()
                .iter()
                .filter(|r| r.rule_disabled() != Some(true))
                .filter_map(|r| r.rule_name().map(str::to_owned)),
        );
        token = page.next_token().map(str::to_owned);
        if token.is_none() {
            break;
        }
    }
    let mut rules = Vec::new();
    let mut skipped = Vec::new();
    for name in names {
        let out = iot
            .get_topic_rule()
            .rule_name(&name)
            .send()
            .await
            .with_context(|| format!("get_topic_rule {name}"))?;
        let Some(rule) = out.rule() else { continue };
        match convert(&name, rule) {
            Ok(rule) => rules.push(rule),
            Err(reason) => skipped.push(Skipped { rule: name, reason }),
        }
    }
    Ok((rules, skipped))
}

fn convert(name: &str, rule: &TopicRule) -> Result<Rule, String> {
    let statement = Statement::parse(rule.sql().unwrap_or_default()).map_err(|e| e.to_string())?;
    let actions = rule
        .actions()
        .iter()
        .map(action)
        .collect::<Result<Vec<_>, _>>()?;
    let error_action = rule.error_action().map(action).transpose()?;
    Ok(Rule {
        name: name.to_owned(),
        statement,
        actions,
        error_action,
    })
}

fn action(action: &aws_sdk_iot::types::Action) -> Result<Action, String> {
    if let Some(kinesis) = action.kinesis() {
        // Without a partition key AWS picks a random one.
        let key = kinesis.partition_key().unwrap_or("${newuuid()}");
        return Ok(Action::Kinesis {
            stream_name: kinesis.stream_name().to_owned(),
            partition_key: Template::parse(key).map_err(|e: RuleError| e.to_string())?,
        });
    }
    if let Some(sqs) = action.sqs() {
        return Ok(Action::Sqs {
            queue_url: sqs.queue_url().to_owned(),
            use_base64: sqs.use_base64().unwrap_or(false),
        });
    }
    if let Some(lambda) = action.lambda() {
        return Ok(Action::Lambda {
            function_arn: lambda.function_arn().to_owned(),
        });
    }
    Err(format!(
        "action {action:?} is not supported by the local rule engine (Kinesis, SQS and Lambda are)"
    ))
}
