//! The topic rules declared in template.yaml run locally: a device's telemetry lands on
//! the raw Kinesis stream as an `iot.telemetry.raw.v1` event partitioned by device id,
//! and a message an action cannot deliver reaches the rule's error action.

use std::time::Duration;

use base64::Engine as _;
use hub_e2e::{drive, find_record, unique, Stack};
use hub_events::{Envelope, IngestChannel, RawTelemetry};
use rumqttc::QoS;

#[tokio::test(flavor = "multi_thread")]
async fn telemetry_lands_on_the_raw_stream_partitioned_by_device() {
    let stack = Stack::from_env().await.unwrap();
    let device = stack.register_device(&unique("sensor")).await.unwrap();
    let (client, events) = stack
        .connect(&device.id, Some(&device.identity))
        .await
        .unwrap();
    let _rx = drive(events);
    let marker = uuid::Uuid::new_v4().to_string();
    let payload = serde_json::json!({
        "v": 2, "seq": 1, "msg_type": "telemetry", "ts": "2026-11-23T10:00:00Z",
        "metrics": {"temperature": 21.5}, "status": "OK", "marker": marker,
    })
    .to_string();
    client
        .publish(
            format!("devices/{}/telemetry", device.id),
            QoS::AtLeastOnce,
            false,
            payload.clone(),
        )
        .await
        .unwrap();

    let record = find_record(
        &stack.kinesis(),
        stack.output("RawStreamName"),
        Duration::from_secs(20),
        |r| r.partition_key == device.id,
    )
    .await
    .expect("telemetry reached the raw stream");

    let event = Envelope::<RawTelemetry>::from_slice(&record.data).expect("a raw telemetry event");
    assert_eq!(event.subject, device.id);
    assert_eq!(event.source, "iot-core/telemetry-rule");
    assert_eq!(event.data.channel, IngestChannel::Mqtt);
    assert_eq!(event.data.topic, format!("devices/{}/telemetry", device.id));
    assert_eq!(event.data.client_id.as_deref(), Some(device.id.as_str()));
    let original = base64::engine::general_purpose::STANDARD
        .decode(&event.data.payload)
        .unwrap();
    assert_eq!(
        original,
        payload.as_bytes(),
        "payload bytes changed on the way"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn malformed_payload_still_reaches_the_stream_intact() {
    // The normalizer, not the rule, decides what is invalid; the rule must carry anything.
    let stack = Stack::from_env().await.unwrap();
    let device = stack.register_device(&unique("broken")).await.unwrap();
    let (client, events) = stack
        .connect(&device.id, Some(&device.identity))
        .await
        .unwrap();
    let _rx = drive(events);
    let garbage = vec![0xff, 0x00, b'{', b'"', 0x80];
    client
        .publish(
            format!("devices/{}/telemetry", device.id),
            QoS::AtLeastOnce,
            false,
            garbage.clone(),
        )
        .await
        .unwrap();
    let record = find_record(
        &stack.kinesis(),
        stack.output("RawStreamName"),
        Duration::from_secs(20),
        |r| r.partition_key == device.id,
    )
    .await
    .unwrap();
    let event = Envelope::<RawTelemetry>::from_slice(&record.data).unwrap();
    let original = base64::engine::general_purpose::STANDARD
        .decode(&event.data.payload)
        .unwrap();
    assert_eq!(original, garbage);
}

#[tokio::test(flavor = "multi_thread")]
async fn undeliverable_message_reaches_the_error_action() {
    let stack = Stack::from_env().await.unwrap();
    let iot = stack.iot();
    let sqs = stack.sqs();
    let device = stack.register_device(&unique("errs")).await.unwrap();

    // A rule of this test's own whose Kinesis action names a stream that does not exist,
    // with an SQS error action, exactly as template.yaml wires the telemetry rule.
    let queue_url = sqs
        .create_queue()
        .queue_name(unique("rule-errors"))
        .send()
        .await
        .unwrap()
        .queue_url
        .unwrap();
    let rule_name = unique("errtest").replace('-', "_");
    let missing_stream = unique("no-such-stream");
    let topic = format!("devices/{}/diagnostics", device.id);
    let role = "arn:aws:iam::000000000000:role/test-rule";
    iot.create_topic_rule()
        .rule_name(&rule_name)
        .topic_rule_payload(
            aws_sdk_iot::types::TopicRulePayload::builder()
                .sql(format!("SELECT * FROM '{topic}'"))
                .aws_iot_sql_version("2016-03-23")
                .actions(
                    aws_sdk_iot::types::Action::builder()
                        .kinesis(
                            aws_sdk_iot::types::KinesisAction::builder()
                                .stream_name(&missing_stream)
                                .partition_key("${topic(2)}")
                                .role_arn(role)
                                .build()
                                .unwrap(),
                        )
                        .build(),
                )
                .error_action(
                    aws_sdk_iot::types::Action::builder()
                        .sqs(
                            aws_sdk_iot::types::SqsAction::builder()
                                .queue_url(&queue_url)
                                .role_arn(role)
                                .use_base64(false)
                                .build()
                                .unwrap(),
                        )
                        .build(),
                )
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    // The bridge picks up new rules within its refresh interval (1 s).
    tokio::time::sleep(Duration::from_secs(3)).await;

    let (client, events) = stack
        .connect(&device.id, Some(&device.identity))
        .await
        .unwrap();
    let _rx = drive(events);
    client
        .publish(
            &topic,
            QoS::AtLeastOnce,
            false,
            b"{\"probe\":true}".to_vec(),
        )
        .await
        .unwrap();

    let mut body = None;
    for _ in 0..10 {
        let out = sqs
            .receive_message()
            .queue_url(&queue_url)
            .wait_time_seconds(2)
            .send()
            .await
            .unwrap();
        if let Some(message) = out.messages().first() {
            body = message.body().map(str::to_owned);
            break;
        }
    }
    iot.delete_topic_rule()
        .rule_name(&rule_name)
        .send()
        .await
        .unwrap();

    let body: serde_json::Value =
        serde_json::from_str(&body.expect("error action message")).unwrap();
    assert_eq!(body["ruleName"], rule_name.as_str());
    assert_eq!(body["topic"], topic.as_str());
    assert_eq!(body["clientId"], device.id.as_str());
    assert_eq!(body["base64OriginalPayload"], "eyJwcm9iZSI6dHJ1ZX0=");
    assert_eq!(body["failures"][0]["failedAction"], "KinesisAction");
    assert_eq!(
        body["failures"][0]["failedResource"],
        missing_stream.as_str()
    );
    assert!(!body["failures"][0]["errorMessage"]
        .as_str()
        .unwrap()
        .is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn template_rule_has_an_error_action() {
    let stack = Stack::from_env().await.unwrap();
    let rule = stack
        .iot()
        .get_topic_rule()
        .rule_name(stack.output("TelemetryRuleName"))
        .send()
        .await
        .unwrap();
    let rule = rule.rule().unwrap();
    let sqs = rule
        .error_action()
        .and_then(|a| a.sqs())
        .expect("SQS error action");
    assert_eq!(sqs.queue_url(), stack.output("IotRuleErrorQueueUrl"));
    let kinesis = rule.actions()[0].kinesis().expect("Kinesis action");
    assert_eq!(kinesis.stream_name(), stack.output("RawStreamName"));
    assert_eq!(kinesis.partition_key(), Some("${topic(2)}"));
}
