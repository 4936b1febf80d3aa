//! Alerting on the local stack. Readings go in over HTTP ingest with chosen values and
//! times; the normalizer, the anomaly detector and the alert dispatcher run as Lambdas in
//! the emulator; alerts are read from an SQS queue subscribed to the alert topic (filtered
//! by device type, as an operator's subscription would be).

use std::{collections::BTreeMap, sync::Arc, time::Duration};

use alert_dispatcher::{
    aws::{DynamoAlerts, DynamoClaims, SnsNotifier},
    process::{dispatch, trigger, Ports},
};
use chrono::{DateTime, DurationRound, TimeDelta, Utc};
use hub_detection::{rules_table::DynamoRules, RuleScope, ThresholdRule};
use hub_e2e::{alert_inbox::AlertInbox, http_device::HttpDevice, unique, Stack};
use hub_events::{AlertState, AnomalyDetected, DetectionKind, Envelope, Severity, Window};
use serde_json::{json, Value};

fn reading(seq: u64, ts: DateTime<Utc>, temperature: f64) -> Value {
    json!({"v": 2, "seq": seq, "msg_type": "telemetry", "ts": ts.to_rfc3339(),
           "metrics": {"temperature": temperature}, "status": "OK", "simulated": true})
}

async fn alert_row(stack: &Stack, alert_id: &str) -> BTreeMap<String, String> {
    let item = aws_sdk_dynamodb::Client::new(&stack.aws.sdk)
        .get_item()
        .table_name(stack.output("AlertsTableName"))
        .key(
            "alert_id",
            aws_sdk_dynamodb::types::AttributeValue::S(alert_id.into()),
        )
        .consistent_read(true)
        .send()
        .await
        .unwrap()
        .item
        .unwrap_or_default();
    item.into_iter()
        .map(|(k, v)| {
            let text = v
                .as_s()
                .cloned()
                .or_else(|_| v.as_n().cloned())
                .unwrap_or_default();
            (k, text)
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn each_episode_arrives_once_as_an_alert_and_resolves_itself() {
    let stack = Stack::from_env().await.unwrap();
    let device_type = unique("env-e2e");
    let inbox = AlertInbox::subscribe(
        &stack,
        &unique("alerts"),
        Some(json!({ "device_type": [device_type] })),
    )
    .await
    .unwrap();
    let rule = ThresholdRule::new(
        unique("hot"),
        RuleScope::DeviceType(device_type.clone()),
        "temperature > 80",
        Severity::Critical,
    )
    .unwrap();
    DynamoRules {
        client: aws_sdk_dynamodb::Client::new(&stack.aws.sdk),
        table: stack.output("AlertRulesTableName").to_owned(),
    }
    .put(&rule)
    .await
    .unwrap();
    let device = HttpDevice::register(&stack, &unique("hot-sensor"), &device_type)
        .await
        .unwrap();
    // The local stack's detector reads rules at most every 2 s.
    tokio::time::sleep(Duration::from_secs(3)).await;

    // Two episodes on either side of the window boundary nearest to now (device times stay
    // within the clock-skew threshold, so they are kept): 120 normal readings to warm up the
    // model (its deployed warm-up is 100), then per episode 4 hot readings and 4 normal ones.
    let width = TimeDelta::minutes(5);
    let boundary = (Utc::now() + width / 2).duration_trunc(width).unwrap();
    let mut readings = Vec::new();
    let mut seq = 0u64;
    let mut push = |ts: DateTime<Utc>, t: f64, readings: &mut Vec<Value>| {
        seq += 1;
        readings.push(reading(seq, ts, t));
    };
    let first = boundary - TimeDelta::seconds(110);
    for i in 0..120 {
        push(
            first + TimeDelta::milliseconds(400 * i),
            20.0 + (i % 5) as f64 * 0.3,
            &mut readings,
        );
    }
    let episodes = [
        boundary - TimeDelta::seconds(60),
        boundary + TimeDelta::seconds(20),
    ];
    for start in episodes {
        for i in 0..4 {
            push(
                start + TimeDelta::seconds(i),
                91.0 + i as f64,
                &mut readings,
            );
        }
        for i in 4..8 {
            push(start + TimeDelta::seconds(i), 20.3, &mut readings);
        }
    }
    let (status, body) = device
        .post(serde_json::to_vec(&readings).unwrap())
        .await
        .unwrap();
    assert_eq!(status, 202, "{body}");

    // Per episode one alert for the rule; one for the model, whose episode ends only after
    // 50 normal readings, so the second hot spell is part of the first one's alert.
    let alerts = inbox
        .receive(3, Duration::from_secs(120), Duration::from_secs(8))
        .await
        .unwrap();
    let mut seen: Vec<(String, DateTime<Utc>)> = alerts
        .iter()
        .map(|a| (a.data.rule_id.clone(), a.data.window.start))
        .collect();
    seen.sort();
    let mut expected: Vec<(String, DateTime<Utc>)> = episodes
        .iter()
        .map(|start| (rule.id.clone(), start.duration_trunc(width).unwrap()))
        .collect();
    expected.push((
        "z_score:temperature".to_owned(),
        episodes[0].duration_trunc(width).unwrap(),
    ));
    expected.sort();
    assert_eq!(seen, expected, "{alerts:#?}");
    for alert in &alerts {
        assert_eq!(alert.data.device_id, device.id);
        assert_eq!(
            alert.data.device_type.as_deref(),
            Some(device_type.as_str())
        );
        assert_eq!(alert.data.state, AlertState::Open);
        assert!(alert.simulated);
    }
    let threshold = alerts.iter().find(|a| a.data.rule_id == rule.id).unwrap();
    assert_eq!(threshold.data.severity, Severity::Critical);
    assert!(
        threshold.data.summary.starts_with("temperature > 80"),
        "{}",
        threshold.data.summary
    );

    // Each alert counted its episode's detections (raised on the 2nd hot reading: 3) and
    // was resolved when the episode cleared.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    for alert in alerts.iter().filter(|a| a.data.rule_id == rule.id) {
        loop {
            let row = alert_row(&stack, &alert.data.alert_id).await;
            if row.get("state").map(String::as_str) == Some("resolved") {
                assert_eq!(row["count"], "3", "{row:?}");
                assert_eq!(row["resolved_by"], "auto");
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "alert not resolved: {row:?}"
            );
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }

    // Every reading sent is in the aggregates: the window before the boundary was stored
    // when the series moved past it, the one after rides in the detector's state.
    let sent = readings.len() as u64;
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let (count, windows) = aggregated_count(&stack, &device.id, boundary).await;
        if count == sent {
            assert_eq!(windows, 2);
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{count} of {sent} readings aggregated"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// Window aggregates of a series as the admin API serves them: the windows the series has
/// moved past from the aggregates table, the one it is in from the detector's state.
async fn aggregated_count(stack: &Stack, device_id: &str, around: DateTime<Utc>) -> (u64, usize) {
    let viewer = stack.admin_client(hub_e2e::admin::Role::Viewer).unwrap();
    let (start, end) = (around - TimeDelta::hours(1), around + TimeDelta::hours(1));
    let reply = viewer
        .get(&format!(
            "/v1/query?device_id={device_id}&metric=temperature&start={}&end={}&source=aggregates",
            start.timestamp_millis(),
            end.timestamp_millis()
        ))
        .await
        .unwrap();
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.body["source"], "aggregates", "{}", reply.body);
    (
        reply.body["points_in_range"].as_u64().unwrap(),
        reply.body["points"].as_array().unwrap().len(),
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn racing_triggers_for_one_window_make_one_alert_with_every_trigger_counted() {
    let stack = Stack::from_env().await.unwrap();
    let device_type = unique("race");
    let inbox = AlertInbox::subscribe(
        &stack,
        &unique("race-alerts"),
        Some(json!({ "device_type": [device_type] })),
    )
    .await
    .unwrap();
    let dynamodb = aws_sdk_dynamodb::Client::new(&stack.aws.sdk);
    let claims = Arc::new(DynamoClaims {
        client: dynamodb.clone(),
        table: stack.output("AlertDedupTableName").to_owned(),
        keep: chrono::Duration::hours(1),
    });
    let alerts = Arc::new(DynamoAlerts {
        client: dynamodb,
        table: stack.output("AlertsTableName").to_owned(),
    });
    let notifier = Arc::new(SnsNotifier {
        client: aws_sdk_sns::Client::new(&stack.aws.sdk),
        topic_arn: stack.output("AlertTopicArn").to_owned(),
    });
    let device_id = unique("racer");
    let window_start = Utc::now().duration_trunc(TimeDelta::minutes(5)).unwrap();
    const TRIGGERS: usize = 40;
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..TRIGGERS {
        let (claims, alerts, notifier) = (claims.clone(), alerts.clone(), notifier.clone());
        let event = Envelope::new(
            "anomaly-detector",
            device_id.clone(),
            Utc::now(),
            AnomalyDetected {
                device_id: device_id.clone(),
                device_type: Some(device_type.clone()),
                metric: "temperature".into(),
                value: 90.0 + i as f64,
                kind: DetectionKind::Threshold,
                score: None,
                model: None,
                baseline: None,
                rule_id: Some("hot".into()),
                rule: Some("temperature > 80".into()),
                severity: Severity::Warning,
                ts: Utc::now(),
                window: Window {
                    start: window_start,
                    end: window_start + TimeDelta::minutes(5),
                },
            },
        );
        tasks.spawn(async move {
            let ports = Ports {
                claims: claims.as_ref(),
                alerts: alerts.as_ref(),
                notifier: notifier.as_ref(),
            };
            dispatch(&ports, &trigger(&event)).await.unwrap()
        });
    }
    let outcomes = tasks.join_all().await;
    let raised: Vec<_> = outcomes.iter().filter(|o| o.raised).collect();
    assert_eq!(raised.len(), 1, "exactly one trigger raises the alert");
    let alert_id = &raised[0].alert.alert_id;
    assert!(outcomes.iter().all(|o| &o.alert.alert_id == alert_id));

    let row = alert_row(&stack, alert_id).await;
    assert_eq!(row["count"], TRIGGERS.to_string(), "{row:?}");
    assert_eq!(row["state"], "open");
    let received = inbox
        .receive(1, Duration::from_secs(30), Duration::from_secs(5))
        .await
        .unwrap();
    assert_eq!(received.len(), 1, "{received:#?}");
    assert_eq!(&received[0].data.alert_id, alert_id);
}

#[tokio::test(flavor = "multi_thread")]
async fn simulated_anomaly_episodes_arrive_as_one_alert_per_device_rule_and_window() {
    use hub_e2e::{alert_inbox::match_episodes, run_fleet};
    use hub_sim::script::{device_type_for, Faults};

    let stack = Stack::from_env().await.unwrap();
    let prefix = unique("anom");
    let devices = 12;
    // A rule per device that its injected anomalies break and its normal readings never do.
    let rules = DynamoRules {
        client: aws_sdk_dynamodb::Client::new(&stack.aws.sdk),
        table: stack.output("AlertRulesTableName").to_owned(),
    };
    for index in 0..devices {
        let device_type = device_type_for(index);
        let rule = ThresholdRule::new(
            format!("{prefix}-rule-{index:02}"),
            RuleScope::Device(format!("{prefix}-{index:02}")),
            device_type.anomaly_condition(),
            Severity::Warning,
        )
        .unwrap();
        rules.put(&rule).await.unwrap();
    }
    let inbox = AlertInbox::subscribe(&stack, &unique("sim-alerts"), None)
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_secs(3)).await;

    let faults = Faults {
        anomaly: 0.03,
        heartbeat_every: 10,
        ..Faults::default()
    };
    let run = run_fleet(
        &stack,
        &prefix,
        devices,
        100,
        300.0,
        &faults,
        indicatif::ProgressBar::hidden(),
    )
    .await
    .unwrap();
    assert!(
        run.labels.len() >= 10,
        "too few episodes: {}",
        run.labels.len()
    );

    let alerts: Vec<_> = inbox
        .receive_until_quiet(Duration::from_secs(10), Duration::from_secs(180))
        .await
        .unwrap()
        .into_iter()
        .filter(|a| a.data.device_id.starts_with(&prefix))
        .collect();
    let rule_prefix = format!("{prefix}-rule-");
    let threshold = match_episodes(
        &run.labels,
        &alerts,
        |rule| rule.starts_with(&rule_prefix),
        2,
        chrono::Duration::minutes(5),
    );
    println!(
        "{} labelled episodes; threshold alerts: {threshold:?}; z-score alerts: {}",
        run.labels.len(),
        alerts
            .iter()
            .filter(|a| a.data.rule_id.starts_with("z_score:"))
            .count()
    );
    assert_eq!(threshold.duplicates, 0, "a device and window alerted twice");
    assert_eq!(threshold.outside, 0, "an alert outside every episode");
    assert_eq!(
        threshold.alerted_once, threshold.windows,
        "a device and window with an episode but no alert"
    );
    // Whatever the rule, no (device, rule, window) is alerted twice.
    let mut keys: Vec<_> = alerts
        .iter()
        .map(|a| {
            (
                a.data.device_id.clone(),
                a.data.rule_id.clone(),
                a.data.window.start,
            )
        })
        .collect();
    let all = keys.len();
    keys.sort();
    keys.dedup();
    assert_eq!(keys.len(), all, "duplicate alerts");
}
