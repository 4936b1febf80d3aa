//! Fan-out, signing, retries with backoff and dead letters against in-memory hooks, queue
//! and receivers.

use std::{collections::VecDeque, sync::Mutex};

use chrono::{TimeZone, Utc};
use hub_detection::webhook::{verify, Webhook, MAX_ATTEMPTS};
use hub_events::{AlertRaised, AlertState, Envelope, Severity, Window};
use hub_runtime::PortError;
use serde_json::Value;
use webhooks::{
    alert_event, Delivery, Hooks, PostError, Poster, Queue, Tally, Undelivered, Webhooks,
};

struct FixedHooks(Vec<Webhook>);

impl Hooks for FixedHooks {
    async fn hooks(&self) -> Result<Vec<Webhook>, PortError> {
        Ok(self.0.clone())
    }
}

#[derive(Default)]
struct MemoryQueue {
    queued: Mutex<Vec<(Delivery, u32)>>,
    dead: Mutex<Vec<Undelivered>>,
}

impl Queue for MemoryQueue {
    async fn enqueue(&self, delivery: &Delivery, delay: u32) -> Result<(), PortError> {
        self.queued.lock().unwrap().push((delivery.clone(), delay));
        Ok(())
    }
    async fn dead_letter(&self, undelivered: &Undelivered) -> Result<(), PortError> {
        self.dead.lock().unwrap().push(undelivered.clone());
        Ok(())
    }
}

/// URL, headers and body of one request.
type Request = (String, Vec<(String, String)>, Vec<u8>);

/// Answers from a script, then 200; records what it received.
#[derive(Default)]
struct Receiver {
    script: Mutex<VecDeque<Result<u16, PostError>>>,
    received: Mutex<Vec<Request>>,
}

impl Poster for Receiver {
    async fn post(
        &self,
        url: &str,
        headers: &[(&str, String)],
        body: Vec<u8>,
    ) -> Result<u16, PostError> {
        self.received.lock().unwrap().push((
            url.to_owned(),
            headers
                .iter()
                .map(|(k, v)| (k.to_string(), v.clone()))
                .collect(),
            body,
        ));
        self.script.lock().unwrap().pop_front().unwrap_or(Ok(200))
    }
}

fn hook(id: &str, url: &str, severities: &[&str], types: &[&str]) -> Webhook {
    Webhook {
        webhook_id: id.into(),
        url: url.into(),
        secret: format!("secret-{id}"),
        severities: severities.iter().map(|s| s.to_string()).collect(),
        device_types: types.iter().map(|s| s.to_string()).collect(),
        created_at: Utc::now(),
    }
}

fn alert(severity: Severity, device_type: &str) -> Value {
    let start = Utc.with_ymd_and_hms(2026, 11, 23, 10, 0, 0).unwrap();
    let event = Envelope::new(
        "alert-dispatcher",
        "boiler-7",
        start,
        AlertRaised {
            alert_id: "a-1".into(),
            device_id: "boiler-7".into(),
            rule_id: "r-1".into(),
            severity,
            state: AlertState::Open,
            count: 1,
            raised_at: start,
            window: Window {
                start,
                end: start + chrono::Duration::minutes(5),
            },
            device_type: Some(device_type.into()),
            summary: "temperature > 80 (value 95)".into(),
        },
    );
    serde_json::from_slice(&event.to_vec()).unwrap()
}

fn service(hooks: Vec<Webhook>) -> Webhooks<FixedHooks, MemoryQueue, Receiver> {
    Webhooks {
        hooks: FixedHooks(hooks),
        queue: MemoryQueue::default(),
        poster: Receiver::default(),
        allow_http: false,
    }
}

#[tokio::test]
async fn an_alert_goes_to_every_hook_that_wants_it() {
    let s = service(vec![
        hook("all", "https://a.example/h", &[], &[]),
        hook("crit", "https://b.example/h", &["critical"], &[]),
        hook("pumps", "https://c.example/h", &[], &["pump"]),
    ]);
    let mut tally = Tally::default();
    s.fan_out(alert(Severity::Critical, "boiler"), &mut tally)
        .await
        .unwrap();
    let queued: Vec<String> = s
        .queue
        .queued
        .lock()
        .unwrap()
        .iter()
        .map(|(d, _)| d.webhook_id.clone())
        .collect();
    assert_eq!(queued, ["all", "crit"]);
    assert_eq!(tally.fanned_out, 2);
}

#[tokio::test]
async fn a_delivery_is_signed_and_the_receiver_can_verify_it() {
    let s = service(vec![hook("h", "https://a.example/h", &[], &[])]);
    let event = alert(Severity::Warning, "boiler");
    let delivery = Delivery {
        webhook_id: "h".into(),
        event_id: "e-1".into(),
        attempt: 0,
        event: event.clone(),
    };
    let mut tally = Tally::default();
    s.deliver(delivery, Utc::now(), &mut tally).await.unwrap();
    assert_eq!(tally.delivered, 1);
    let received = s.poster.received.lock().unwrap();
    let (url, headers, body) = &received[0];
    assert_eq!(url, "https://a.example/h");
    let header = |name: &str| {
        headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
            .unwrap()
    };
    assert!(verify("secret-h", &header("x-hub-signature"), body));
    assert!(!verify("secret-other", &header("x-hub-signature"), body));
    assert_eq!(header("x-hub-event-id"), "e-1");
    assert_eq!(serde_json::from_slice::<Value>(body).unwrap(), event);
}

#[tokio::test]
async fn failures_are_retried_with_growing_delays_then_dead_lettered() {
    let s = service(vec![hook("h", "https://a.example/h", &[], &[])]);
    *s.poster.script.lock().unwrap() = (0..MAX_ATTEMPTS)
        .map(|i| {
            if i % 2 == 0 {
                Ok(503)
            } else {
                Err(PostError::Failed("connection refused".into()))
            }
        })
        .collect();
    let mut delivery = Delivery {
        webhook_id: "h".into(),
        event_id: "e".into(),
        attempt: 0,
        event: alert(Severity::Info, "x"),
    };
    let mut tally = Tally::default();
    let mut delays = Vec::new();
    loop {
        s.deliver(delivery.clone(), Utc::now(), &mut tally)
            .await
            .unwrap();
        let Some((next, delay)) = s.queue.queued.lock().unwrap().pop() else {
            break;
        };
        delays.push(delay);
        assert_eq!(next.attempt, delivery.attempt + 1);
        delivery = next;
    }
    assert_eq!(delays, [2, 4, 8, 16, 32, 64, 128]);
    let dead = s.queue.dead.lock().unwrap();
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].delivery.attempt, MAX_ATTEMPTS);
    assert!(
        dead[0].reason.contains("after 8 tries"),
        "{}",
        dead[0].reason
    );
    assert_eq!(
        (tally.retried, tally.dead_lettered, tally.delivered),
        (7, 1, 0)
    );
}

#[tokio::test]
async fn a_refusal_that_will_not_change_is_not_retried_and_plain_http_is_refused() {
    let s = service(vec![
        hook("h", "https://a.example/h", &[], &[]),
        hook("plain", "http://a.example/h", &[], &[]),
    ]);
    *s.poster.script.lock().unwrap() = VecDeque::from([Ok(404)]);
    let mut tally = Tally::default();
    let delivery = |id: &str| Delivery {
        webhook_id: id.into(),
        event_id: "e".into(),
        attempt: 0,
        event: alert(Severity::Info, "x"),
    };
    s.deliver(delivery("h"), Utc::now(), &mut tally)
        .await
        .unwrap();
    s.deliver(delivery("plain"), Utc::now(), &mut tally)
        .await
        .unwrap();
    s.deliver(delivery("gone"), Utc::now(), &mut tally)
        .await
        .unwrap();
    assert!(s.queue.queued.lock().unwrap().is_empty());
    let reasons: Vec<String> = s
        .queue
        .dead
        .lock()
        .unwrap()
        .iter()
        .map(|u| u.reason.clone())
        .collect();
    assert_eq!(reasons, ["HTTP 404 after 1 tries", "the URL is not https"]);
    assert_eq!(
        s.poster.received.lock().unwrap().len(),
        1,
        "plain http is never called"
    );
    assert_eq!(tally.skipped, 1);
}

#[test]
fn fan_out_messages_are_alert_events_raw_or_in_an_sns_notification() {
    let event = alert(Severity::Info, "x");
    assert_eq!(alert_event(&event.to_string()).unwrap(), event);
    let notification =
        serde_json::json!({"Type": "Notification", "MessageId": "m", "Message": event.to_string()});
    assert_eq!(alert_event(&notification.to_string()).unwrap(), event);
    assert!(alert_event("{\"type\":\"iot.telemetry.raw.v1\"}").is_err());
    assert!(alert_event("nope").is_err());
}

#[tokio::test]
async fn a_delivery_to_an_internal_address_is_dead_lettered_at_once() {
    let s = service(vec![hook("h", "https://metadata.example/h", &[], &[])]);
    *s.poster.script.lock().unwrap() = VecDeque::from([Err(PostError::Refused(
        "metadata.example is 169.254.169.254 (link-local)".into(),
    ))]);
    let delivery = Delivery {
        webhook_id: "h".into(),
        event_id: "e".into(),
        attempt: 0,
        event: alert(Severity::Info, "x"),
    };
    let mut tally = Tally::default();
    s.deliver(delivery, Utc::now(), &mut tally).await.unwrap();
    assert!(s.queue.queued.lock().unwrap().is_empty(), "retried");
    let dead = s.queue.dead.lock().unwrap();
    assert_eq!(dead.len(), 1);
    assert!(
        dead[0].reason.contains("169.254.169.254"),
        "{}",
        dead[0].reason
    );
}
