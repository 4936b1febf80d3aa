//! Every asynchronous path of the template has somewhere its failures wait, and nothing
//! that waits outlives what it points to. Read from `template.yaml` itself, so a new
//! function, queue or rule without its failure path fails here.

use std::{collections::BTreeSet, path::Path};

use serde_norway::Value;

fn template() -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../template.yaml");
    serde_norway::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// The logical id a `!GetAtt X.Arn` / `!Ref X` names.
fn target(value: &Value) -> Option<String> {
    let Value::Tagged(tagged) = value else {
        return None;
    };
    let text = match &tagged.value {
        Value::String(s) => s.clone(),
        Value::Sequence(parts) => parts.first()?.as_str()?.to_owned(),
        _ => return None,
    };
    Some(text.split('.').next()?.to_owned())
}

fn resources(template: &Value) -> impl Iterator<Item = (&str, &Value)> {
    template["Resources"]
        .as_mapping()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.as_str().unwrap(), v))
}

/// Functions invoked asynchronously: IoT rule Lambda actions, bucket notifications and
/// schedules.
fn invoked_asynchronously(template: &Value) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for (id, resource) in resources(template) {
        let props = &resource["Properties"];
        match resource["Type"].as_str().unwrap() {
            "AWS::IoT::TopicRule" => {
                for action in props["TopicRulePayload"]["Actions"].as_sequence().unwrap() {
                    if let Some(f) = target(&action["Lambda"]["FunctionArn"]) {
                        out.insert(f);
                    }
                }
            }
            "AWS::S3::Bucket" => {
                for config in props["NotificationConfiguration"]["LambdaConfigurations"]
                    .as_sequence()
                    .into_iter()
                    .flatten()
                {
                    out.extend(target(&config["Function"]));
                }
            }
            "AWS::Serverless::Function" => {
                let scheduled =
                    props["Events"]
                        .as_mapping()
                        .into_iter()
                        .flatten()
                        .any(|(_, event)| {
                            matches!(event["Type"].as_str(), Some("Schedule" | "ScheduleV2"))
                        });
                if scheduled {
                    out.insert(id.to_owned());
                }
            }
            _ => {}
        }
    }
    out
}

#[test]
fn every_asynchronously_invoked_function_has_an_on_failure_destination_with_an_alarm() {
    let template = template();
    let functions = invoked_asynchronously(&template);
    assert!(functions.contains("FleetFunction"), "{functions:?}");
    assert!(
        functions.contains("CredentialSweeperFunction"),
        "{functions:?}"
    );
    let alarmed: BTreeSet<String> = resources(&template)
        .filter(|(_, r)| r["Type"] == "AWS::CloudWatch::Alarm")
        .filter_map(|(_, r)| target(&r["Properties"]["Dimensions"][0]["Value"]))
        .collect();
    for function in functions {
        let config = &template["Resources"][function.as_str()]["Properties"]["EventInvokeConfig"];
        let destination = &config["DestinationConfig"]["OnFailure"];
        assert_eq!(
            destination["Type"], "SQS",
            "{function} has no on-failure queue"
        );
        let queue = target(&destination["Destination"]).unwrap();
        assert!(
            alarmed.contains(&queue),
            "{queue} of {function} has no alarm"
        );
    }
}

#[test]
fn every_queue_a_function_reads_reports_failures_per_message_and_has_a_dead_letter_queue() {
    let template = template();
    let mut sources = 0;
    for (id, resource) in resources(&template) {
        for (name, event) in resource["Properties"]["Events"]
            .as_mapping()
            .into_iter()
            .flatten()
        {
            if event["Type"] != "SQS" {
                continue;
            }
            sources += 1;
            let props = &event["Properties"];
            assert!(
                props["FunctionResponseTypes"]
                    .as_sequence()
                    .is_some_and(|t| t.iter().any(|t| t == "ReportBatchItemFailures")),
                "{id}.{name:?}: one bad message fails its whole batch"
            );
            let queue = target(&props["Queue"]).unwrap();
            let redrive = &template["Resources"][queue.as_str()]["Properties"]["RedrivePolicy"];
            assert!(
                target(&redrive["deadLetterTargetArn"]).is_some(),
                "{queue} (read by {id}) loops: no redrive policy"
            );
        }
    }
    assert!(sources >= 3, "{sources}");
}

#[test]
fn streams_keep_their_records_longer_than_the_failure_queue_keeps_pointers_to_them() {
    let template = template();
    let rows = template["Mappings"]["FailureRetention"]
        .as_mapping()
        .unwrap();
    let allowed = template["Parameters"]["FailureRetentionDays"]["AllowedValues"]
        .as_sequence()
        .unwrap();
    assert_eq!(rows.len(), allowed.len());
    for (days, row) in rows {
        let queue_seconds = row["QueueSeconds"].as_u64().unwrap();
        let stream_hours = row["StreamHours"].as_u64().unwrap();
        assert_eq!(
            queue_seconds,
            days.as_str().unwrap().parse::<u64>().unwrap() * 86_400
        );
        assert!(stream_hours * 3600 > queue_seconds, "{days:?}");
    }
    let default = template["Parameters"]["FailureRetentionDays"]["Default"]
        .as_u64()
        .unwrap();
    assert!(default >= 7);
    for (id, resource) in resources(&template) {
        let props = &resource["Properties"];
        match resource["Type"].as_str().unwrap() {
            "AWS::Kinesis::Stream" => {
                let Value::Tagged(find) = &props["RetentionPeriodHours"] else {
                    panic!("{id}: retention is not the mapping's")
                };
                assert_eq!(find.tag, "FindInMap", "{id}");
                assert_eq!(find.value[2], "StreamHours", "{id}");
            }
            "AWS::SQS::Queue" if id == "StreamFailureQueue" => {
                let Value::Tagged(find) = &props["MessageRetentionPeriod"] else {
                    panic!("{id}: retention is not the mapping's")
                };
                assert_eq!(find.value[2], "QueueSeconds", "{id}");
            }
            _ => {}
        }
    }
}

#[test]
fn the_topic_alarms_publish_to_is_encrypted_with_a_key_cloudwatch_may_use() {
    let template = template();
    let topic = &template["Resources"]["OperationsTopic"]["Properties"];
    let key = target(&topic["KmsMasterKeyId"]).expect("a key of the template's own");
    let policy = &template["Resources"][key.as_str()]["Properties"]["KeyPolicy"];
    let allows_cloudwatch =
        policy["Statement"].as_sequence().unwrap().iter().any(|s| {
            s["Principal"]["Service"] == "cloudwatch.amazonaws.com" && s["Effect"] == "Allow"
        });
    assert!(allows_cloudwatch);
}

#[test]
fn unauthenticated_ingest_is_throttled_apart_from_the_admin_api() {
    let template = template();
    let stage = &template["Resources"]["HubApiDefaultStage"]["Properties"];
    let ingest = &stage["RouteSettings"]["POST /v1/telemetry"];
    let parameter = |value: &Value| {
        let name = target(value).expect("a parameter");
        template["Parameters"][name.as_str()]["Default"]
            .as_u64()
            .unwrap()
    };
    let default_rate = stage["DefaultRouteSettings"]["ThrottlingRateLimit"]
        .as_u64()
        .unwrap();
    assert!(parameter(&ingest["ThrottlingRateLimit"]) < default_rate);
    assert!(parameter(&ingest["ThrottlingBurstLimit"]) > 0);
}
