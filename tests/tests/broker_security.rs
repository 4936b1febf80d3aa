//! Mosquitto in the local stack refuses what AWS IoT Core refuses: clients without a
//! certificate, certificates from another CA, revoked certificates, and devices reaching
//! for another device's topics.

use std::time::{Duration, Instant};

use hub_e2e::{drive, unique, Stack};
use hub_mqtt::ClientIdentity;
use rumqttc::QoS;

#[tokio::test(flavor = "multi_thread")]
async fn client_without_certificate_cannot_connect() {
    let stack = Stack::from_env().await.unwrap();
    let result = stack.connect(&unique("anon"), None).await;
    assert!(result.is_err(), "a client without a certificate connected");
}

#[tokio::test(flavor = "multi_thread")]
async fn certificate_from_unknown_ca_cannot_connect() {
    let stack = Stack::from_env().await.unwrap();
    // A CA the stack has never seen, issuing a certificate with a plausible device CN.
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca_params = rcgen::CertificateParams::default();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "Rogue CA");
    let issuer = rcgen::Issuer::new(ca_params, ca_key);
    let device_id = unique("rogue");
    let key = rcgen::KeyPair::generate().unwrap();
    let mut params = rcgen::CertificateParams::default();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, device_id.as_str());
    let cert = params.signed_by(&key, &issuer).unwrap();
    let identity = ClientIdentity {
        cert_pem: cert.pem().into_bytes(),
        key_pem: key.serialize_pem().into_bytes(),
    };
    let result = stack.connect(&device_id, Some(&identity)).await;
    assert!(
        result.is_err(),
        "a certificate from an unknown CA connected"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn revoked_certificate_cannot_connect() {
    let stack = Stack::from_env().await.unwrap();
    let device = stack.register_device(&unique("revoked")).await.unwrap();
    let (client, _events) = stack
        .connect(&device.id, Some(&device.identity))
        .await
        .expect("an active certificate connects");
    client.disconnect().await.ok();

    stack
        .iot()
        .update_certificate()
        .certificate_id(&device.certificate_id)
        .new_status(aws_sdk_iot::types::CertificateStatus::Revoked)
        .send()
        .await
        .unwrap();

    // The bridge turns the new status into a CRL within about a second.
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        match stack.connect(&device.id, Some(&device.identity)).await {
            Err(_) => break,
            Ok((client, _)) => {
                client.disconnect().await.ok();
                assert!(
                    Instant::now() < deadline,
                    "revoked certificate still accepted after 15 s"
                );
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
        }
    }
    // And it stays refused.
    assert!(stack
        .connect(&device.id, Some(&device.identity))
        .await
        .is_err());
}

#[tokio::test(flavor = "multi_thread")]
async fn inactive_certificate_cannot_connect() {
    let stack = Stack::from_env().await.unwrap();
    let device = stack.register_device(&unique("inactive")).await.unwrap();
    stack
        .iot()
        .update_certificate()
        .certificate_id(&device.certificate_id)
        .new_status(aws_sdk_iot::types::CertificateStatus::Inactive)
        .send()
        .await
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(15);
    while let Ok((client, _)) = stack.connect(&device.id, Some(&device.identity)).await {
        client.disconnect().await.ok();
        assert!(
            Instant::now() < deadline,
            "inactive certificate still accepted after 15 s"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn device_cannot_publish_on_another_devices_topic() {
    let stack = Stack::from_env().await.unwrap();
    let victim = stack.register_device(&unique("victim")).await.unwrap();
    let intruder = stack.register_device(&unique("intruder")).await.unwrap();

    let (victim_client, victim_events) = stack
        .connect(&victim.id, Some(&victim.identity))
        .await
        .unwrap();
    let topic = format!("devices/{}/telemetry", victim.id);
    victim_client
        .subscribe(&topic, QoS::AtLeastOnce)
        .await
        .unwrap();
    let mut received = drive(victim_events);
    tokio::time::sleep(Duration::from_millis(300)).await;

    let (intruder_client, intruder_events) = stack
        .connect(&intruder.id, Some(&intruder.identity))
        .await
        .unwrap();
    let _intruder_rx = drive(intruder_events);
    intruder_client
        .publish(&topic, QoS::AtLeastOnce, false, b"forged".to_vec())
        .await
        .unwrap();
    // Then the victim's own message, as a positive control that delivery works.
    victim_client
        .publish(&topic, QoS::AtLeastOnce, false, b"genuine".to_vec())
        .await
        .unwrap();

    let mut payloads = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(3);
    while let Ok(Some(publish)) = tokio::time::timeout_at(deadline, received.recv()).await {
        payloads.push(String::from_utf8_lossy(&publish.payload).into_owned());
    }
    assert!(
        payloads.contains(&"genuine".to_owned()),
        "control message missing: {payloads:?}"
    );
    assert!(
        !payloads.contains(&"forged".to_owned()),
        "forged message delivered: {payloads:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn device_cannot_receive_another_devices_messages() {
    // AWS answers such a SUBSCRIBE with a failure code; Mosquitto 2.0 accepts it and then
    // withholds every message the read ACL denies. Either way nothing may arrive.
    let stack = Stack::from_env().await.unwrap();
    let victim = stack.register_device(&unique("victim")).await.unwrap();
    let snoop = stack.register_device(&unique("snoop")).await.unwrap();

    let (snoop_client, snoop_events) = stack
        .connect(&snoop.id, Some(&snoop.identity))
        .await
        .unwrap();
    snoop_client
        .subscribe(format!("devices/{}/#", victim.id), QoS::AtLeastOnce)
        .await
        .unwrap();
    snoop_client
        .subscribe(format!("devices/{}/#", snoop.id), QoS::AtLeastOnce)
        .await
        .unwrap();
    let mut received = drive(snoop_events);
    tokio::time::sleep(Duration::from_millis(300)).await;

    let (victim_client, victim_events) = stack
        .connect(&victim.id, Some(&victim.identity))
        .await
        .unwrap();
    let _victim_rx = drive(victim_events);
    victim_client
        .publish(
            format!("devices/{}/telemetry", victim.id),
            QoS::AtLeastOnce,
            false,
            b"private".to_vec(),
        )
        .await
        .unwrap();
    // Positive control: the snoop's own topic does deliver.
    snoop_client
        .publish(
            format!("devices/{}/telemetry", snoop.id),
            QoS::AtLeastOnce,
            false,
            b"own".to_vec(),
        )
        .await
        .unwrap();

    let mut topics = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(3);
    while let Ok(Some(publish)) = tokio::time::timeout_at(deadline, received.recv()).await {
        topics.push(publish.topic);
    }
    assert!(
        topics.contains(&format!("devices/{}/telemetry", snoop.id)),
        "control missing: {topics:?}"
    );
    assert!(
        !topics.iter().any(|t| t.contains(&victim.id)),
        "received another device's message: {topics:?}"
    );
}

/// Waits for `received` to close (the broker ended the connection) within `within`.
async fn ended(
    received: &mut tokio::sync::mpsc::UnboundedReceiver<rumqttc::Publish>,
    within: Duration,
) -> bool {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        match tokio::time::timeout_at(deadline, received.recv()).await {
            Ok(None) => return true,
            Ok(Some(_)) => continue,
            Err(_) => return false,
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_live_session_ends_when_its_certificate_is_revoked_or_deactivated() {
    use aws_sdk_iot::types::CertificateStatus;
    let stack = Stack::from_env().await.unwrap();
    for status in [CertificateStatus::Revoked, CertificateStatus::Inactive] {
        let device = stack.register_device(&unique("live")).await.unwrap();
        let (client, events) = stack
            .connect(&device.id, Some(&device.identity))
            .await
            .unwrap();
        let topic = format!("devices/{}/state", device.id);
        client.subscribe(&topic, QoS::AtLeastOnce).await.unwrap();
        let mut received = drive(events);
        tokio::time::sleep(Duration::from_millis(300)).await;
        // Positive control: the session is up and delivers its own messages.
        client
            .publish(&topic, QoS::AtLeastOnce, false, b"up".to_vec())
            .await
            .unwrap();
        let first = tokio::time::timeout(Duration::from_secs(3), received.recv())
            .await
            .expect("the live session delivers")
            .expect("the connection is open");
        assert_eq!(&first.payload[..], b"up");
        // A bystander on another certificate stays connected throughout.
        let bystander = stack.register_device(&unique("bystander")).await.unwrap();
        let (_b_client, b_events) = stack
            .connect(&bystander.id, Some(&bystander.identity))
            .await
            .unwrap();
        let mut b_received = drive(b_events);

        stack
            .iot()
            .update_certificate()
            .certificate_id(&device.certificate_id)
            .new_status(status.clone())
            .send()
            .await
            .unwrap();
        assert!(
            ended(&mut received, Duration::from_secs(15)).await,
            "a {status:?} certificate's live session is still up after 15 s"
        );
        assert!(
            !ended(&mut b_received, Duration::from_millis(500)).await,
            "another device's session was ended too"
        );
        assert!(stack
            .connect(&device.id, Some(&device.identity))
            .await
            .is_err());
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn payloads_over_iot_core_s_128_kb_are_not_delivered() {
    let stack = Stack::from_env().await.unwrap();
    let device = stack.register_device(&unique("big")).await.unwrap();
    let (client, events) = stack
        .connect(&device.id, Some(&device.identity))
        .await
        .unwrap();
    let _rx = drive(events);
    let topic = format!("devices/{}/telemetry", device.id);
    let too_big = vec![b'x'; 128 * 1024 + 1];
    let largest = vec![b'y'; 128 * 1024];
    client
        .publish(&topic, QoS::AtLeastOnce, false, too_big)
        .await
        .unwrap();
    client
        .publish(&topic, QoS::AtLeastOnce, false, largest)
        .await
        .unwrap();
    let raw = stack.output("RawStreamName").to_owned();
    let kinesis = stack.kinesis();
    let payload_len = |record: &hub_e2e::StreamRecord| {
        let event: serde_json::Value = serde_json::from_slice(&record.data).unwrap_or_default();
        base64_len(event["data"]["payload"].as_str().unwrap_or_default())
    };
    // Positive control: a payload of exactly 128 KB arrives.
    hub_e2e::find_record(&kinesis, &raw, Duration::from_secs(20), |r| {
        r.partition_key == device.id && payload_len(r) == 128 * 1024
    })
    .await
    .expect("a 128 KB payload reaches the stream");
    let over = hub_e2e::find_record(&kinesis, &raw, Duration::from_secs(3), |r| {
        r.partition_key == device.id && payload_len(r) > 128 * 1024
    })
    .await;
    assert!(over.is_err(), "a payload over 128 KB reached the stream");
}

/// The decoded length of standard base64 text.
fn base64_len(text: &str) -> usize {
    let padding = text.bytes().rev().take_while(|&b| b == b'=').count();
    text.len() / 4 * 3 - padding
}

#[tokio::test(flavor = "multi_thread")]
async fn a_subscription_the_policy_forbids_is_refused_in_the_suback() {
    use rumqttc::{Event, Packet, SubscribeReasonCode};
    let stack = Stack::from_env().await.unwrap();
    let device = stack.register_device(&unique("suback")).await.unwrap();
    let other = unique("someone-else");
    // The broker learns of a new certificate's thing within a pass of the bridge; until
    // then the ACL file alone applies. Ask again until it answers as IoT Core does.
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let (client, mut events) = stack
            .connect(&device.id, Some(&device.identity))
            .await
            .unwrap();
        client
            .subscribe(format!("devices/{}/commands", device.id), QoS::AtLeastOnce)
            .await
            .unwrap();
        client
            .subscribe(format!("devices/{other}/commands"), QoS::AtLeastOnce)
            .await
            .unwrap();
        client
            .subscribe("devices/#", QoS::AtLeastOnce)
            .await
            .unwrap();
        let mut codes = Vec::new();
        while codes.len() < 3 {
            match tokio::time::timeout(Duration::from_secs(5), events.poll()).await {
                Ok(Ok(Event::Incoming(Packet::SubAck(ack)))) => codes.extend(ack.return_codes),
                Ok(Ok(_)) => {}
                other => panic!("no SUBACK: {other:?}"),
            }
        }
        client.disconnect().await.ok();
        // Positive control: its own topic is granted, whatever else happens.
        assert!(
            matches!(codes[0], SubscribeReasonCode::Success(_)),
            "{codes:?}"
        );
        if codes[1..]
            .iter()
            .all(|c| matches!(c, SubscribeReasonCode::Failure))
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "forbidden filters still granted after 15 s: {codes:?}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}
