//! Keeps Mosquitto's CRL in step with certificate status in the IoT API: a certificate
//! that is not ACTIVE (revoked, inactive, pending) is listed, and Mosquitto re-reads the
//! CRL on SIGHUP, so the next handshake with it fails, as it would on AWS. Mosquitto
//! checks the CRL at handshake only, so the live sessions of a newly refused
//! certificate's thing are then ended through its dynamic-security plugin, as IoT Core
//! disconnects a revoked or deactivated certificate.
//!
//! The same plugin makes the broker refuse a SUBSCRIBE the device policy does not grant
//! (IoT Core answers it with a SUBACK failure; an ACL file cannot): the thing of every
//! active certificate gets a role with the policy's topic filters for it and a deny of
//! everything else. Until its first pass has seen a new certificate, the ACL file alone
//! applies (the subscription is granted but delivers nothing it should not).

use std::{
    collections::{BTreeSet, HashMap},
    path::PathBuf,
    time::Duration,
};

use anyhow::{Context, Result};
use rumqttc::{AsyncClient, QoS};
use tracing::{info, warn};

use crate::{
    acl::DYNSEC_TOPIC,
    pki::{self, Refused},
};

pub struct RevocationWatch {
    pub iot: aws_sdk_iot::Client,
    pub pki_dir: PathBuf,
    pub mosquitto_pid_file: Option<PathBuf>,
    pub interval: Duration,
    /// The bridge's own broker connection, to send the plugin its commands on (a second
    /// connection with the bridge's certificate would take over the bridge's client id).
    pub broker: Option<AsyncClient>,
    /// The device policy's subscribe filters (`%u` for the thing name), allowed or
    /// denied; empty registers nobody.
    pub subscribe_filters: Vec<(String, bool)>,
}

/// The plugin's commands that give `thing` a role of its own: the policy's filters for
/// it, and below them a deny of every other filter.
pub fn register_command(thing: &str, filters: &[(String, bool)]) -> Vec<u8> {
    let mut acls: Vec<serde_json::Value> = filters
        .iter()
        .map(|(filter, allow)| {
            serde_json::json!({"acltype": "subscribePattern", "topic": filter.replace("%u", thing),
                // Denies in the policy win over its allows, as in IAM.
                "priority": if *allow { 1 } else { 2 }, "allow": allow})
        })
        .collect();
    for everything in ["#", "$aws/#", "$SYS/#"] {
        acls.push(
            serde_json::json!({"acltype": "subscribePattern", "topic": everything,
            "priority": 0, "allow": false}),
        );
    }
    serde_json::json!({"commands": [
        {"command": "createRole", "rolename": thing, "acls": acls},
        {"command": "createClient", "username": thing, "roles": [{"rolename": thing}]},
    ]})
    .to_string()
    .into_bytes()
}

/// A certificate's serial and the thing name (CN) it connects as.
type Identity = (Vec<u8>, String);

/// The plugin's command that ends every live session of `username`: made known, then
/// deleted (deleting a known client disconnects it; it holds no registration here).
pub fn kick_command(username: &str) -> Vec<u8> {
    serde_json::json!({"commands": [
        {"command": "createClient", "username": username},
        {"command": "deleteClient", "username": username},
    ]})
    .to_string()
    .into_bytes()
}

impl RevocationWatch {
    pub async fn run(self) {
        let mut identities: HashMap<String, Identity> = HashMap::new();
        let mut published: Option<Vec<Refused>> = None;
        let mut kicked: BTreeSet<String> = BTreeSet::new();
        let mut registered: BTreeSet<String> = BTreeSet::new();
        let mut number = 1u64;
        loop {
            let listed = self.certificates(&mut identities).await;
            if let Ok((_, _, active)) = &listed {
                for id in active {
                    let thing = identities[id].1.clone();
                    if !thing.is_empty()
                        && !registered.contains(&thing)
                        && self
                            .send(register_command(&thing, &self.subscribe_filters))
                            .await
                    {
                        registered.insert(thing);
                    }
                }
            }
            match listed.map(|(refused, ids, _)| (refused, ids)) {
                Ok((refused, ids)) if published.as_ref() != Some(&refused) => {
                    number += 1;
                    match self.publish(number, &refused) {
                        Ok(()) => {
                            info!(refused = refused.len(), crl_number = number, "CRL updated");
                            published = Some(refused);
                            // Only after the CRL is in force, so the kicked client
                            // cannot come straight back with the same certificate.
                            let fresh: Vec<String> =
                                ids.into_iter().filter(|id| !kicked.contains(id)).collect();
                            for id in fresh {
                                let thing = identities[&id].1.clone();
                                if self.kick(&thing).await {
                                    kicked.insert(id);
                                    // The kick removed its registration; a still active
                                    // certificate of the same thing registers it again.
                                    registered.remove(&thing);
                                }
                            }
                        }
                        Err(err) => warn!(error = %format!("{err:#}"), "CRL update failed"),
                    }
                }
                Ok(_) => {}
                Err(err) => warn!(error = %format!("{err:#}"), "reading certificate status failed"),
            }
            tokio::time::sleep(self.interval).await;
        }
    }

    /// Ends the live sessions of `thing`; false if the command could not be sent (it is
    /// tried again on the next pass).
    async fn kick(&self, thing: &str) -> bool {
        if thing.is_empty() {
            return true;
        }
        let sent = self.send(kick_command(thing)).await;
        if sent {
            info!(thing, "live sessions of a refused certificate ended");
        }
        sent
    }

    /// Sends the plugin a command; false if it could not be sent.
    async fn send(&self, command: Vec<u8>) -> bool {
        let Some(broker) = &self.broker else {
            return true;
        };
        let topic = format!("{DYNSEC_TOPIC}/v1");
        match broker
            .publish(topic, QoS::AtLeastOnce, false, command)
            .await
        {
            Ok(()) => true,
            Err(err) => {
                warn!(error = %err, "a dynamic-security command could not be sent");
                false
            }
        }
    }

    /// The refused certificates (for the CRL) and their ids, and the active ones' ids.
    async fn certificates(
        &self,
        identities: &mut HashMap<String, Identity>,
    ) -> Result<(Vec<Refused>, Vec<String>, Vec<String>)> {
        let mut refused = Vec::new();
        let mut ids = Vec::new();
        let mut active = Vec::new();
        let mut marker = None;
        loop {
            let page = self
                .iot
                .list_certificates()
                .page_size(250)
                .set_marker(marker)
                .send()
                .await
                .context("list_certificates")?;
            for cert in page.certificates() {
                let (Some(id), Some(status)) = (cert.certificate_id(), cert.status()) else {
                    continue;
                };
                let registering = !self.subscribe_filters.is_empty();
                if status.as_str() == "ACTIVE" && !registering {
                    continue;
                }
                let serial = match identities.get(id) {
                    Some((serial, _)) => serial.clone(),
                    None => {
                        let described = self
                            .iot
                            .describe_certificate()
                            .certificate_id(id)
                            .send()
                            .await
                            .with_context(|| format!("describe_certificate {id}"))?;
                        let pem = described
                            .certificate_description()
                            .and_then(|d| d.certificate_pem())
                            .unwrap_or_default();
                        let (serial, thing) = pki::identity_of(pem)?;
                        identities.insert(id.to_owned(), (serial.clone(), thing));
                        serial
                    }
                };
                if status.as_str() == "ACTIVE" {
                    active.push(id.to_owned());
                    continue;
                }
                ids.push(id.to_owned());
                refused.push(Refused {
                    serial,
                    status: status.as_str().to_owned(),
                });
            }
            marker = page.next_marker().map(str::to_owned);
            if marker.is_none() {
                break;
            }
        }
        refused.sort();
        Ok((refused, ids, active))
    }

    fn publish(&self, number: u64, refused: &[Refused]) -> Result<()> {
        pki::write_crl(&self.pki_dir, number, refused)?;
        if let Some(pid_file) = &self.mosquitto_pid_file {
            let pid = std::fs::read_to_string(pid_file)
                .with_context(|| format!("reading {}", pid_file.display()))?;
            let status = std::process::Command::new("kill")
                .args(["-HUP", pid.trim()])
                .status()?;
            anyhow::ensure!(status.success(), "kill -HUP {} failed", pid.trim());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_kick_makes_the_client_known_then_deletes_it() {
        let command: serde_json::Value = serde_json::from_slice(&kick_command("d-7")).unwrap();
        let commands = command["commands"].as_array().unwrap();
        assert_eq!(commands[0]["command"], "createClient");
        assert_eq!(commands[1]["command"], "deleteClient");
        assert!(commands.iter().all(|c| c["username"] == "d-7"));
    }

    #[test]
    fn a_thing_s_role_allows_its_own_filters_and_denies_the_rest() {
        let filters = vec![
            ("devices/%u/#".to_owned(), true),
            ("$aws/things/%u/shadow/#".to_owned(), true),
            ("devices/%u/locked".to_owned(), false),
        ];
        let command: serde_json::Value =
            serde_json::from_slice(&register_command("d-7", &filters)).unwrap();
        let acls = command["commands"][0]["acls"].as_array().unwrap();
        let find = |topic: &str| acls.iter().find(|a| a["topic"] == topic).unwrap().clone();
        assert_eq!(find("devices/d-7/#")["allow"], true);
        assert_eq!(find("$aws/things/d-7/shadow/#")["allow"], true);
        assert_eq!(find("devices/d-7/locked")["allow"], false);
        assert!(
            find("devices/d-7/locked")["priority"].as_i64()
                > find("devices/d-7/#")["priority"].as_i64()
        );
        for everything in ["#", "$aws/#"] {
            assert_eq!(find(everything)["allow"], false);
            assert_eq!(find(everything)["priority"], 0);
        }
        assert_eq!(command["commands"][1]["username"], "d-7");
        assert_eq!(command["commands"][1]["roles"][0]["rolename"], "d-7");
    }
}
