//! Keeps Mosquitto's CRL in step with certificate status in the IoT API: a certificate
//! that is not ACTIVE (revoked, inactive, pending) is listed, and Mosquitto re-reads the
//! CRL on SIGHUP, so the next handshake with it fails, as it would on AWS.

use std::{collections::HashMap, path::PathBuf, time::Duration};

use anyhow::{Context, Result};
use tracing::{info, warn};

use crate::pki::{self, Refused};

pub struct RevocationWatch {
    pub iot: aws_sdk_iot::Client,
    pub pki_dir: PathBuf,
    pub mosquitto_pid_file: Option<PathBuf>,
    pub interval: Duration,
}

impl RevocationWatch {
    pub async fn run(self) {
        let mut serials: HashMap<String, Vec<u8>> = HashMap::new();
        let mut published: Option<Vec<Refused>> = None;
        let mut number = 1u64;
        loop {
            match self.refused(&mut serials).await {
                Ok(refused) if published.as_ref() != Some(&refused) => {
                    number += 1;
                    match self.publish(number, &refused) {
                        Ok(()) => {
                            info!(refused = refused.len(), crl_number = number, "CRL updated");
                            published = Some(refused);
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

    async fn refused(&self, serials: &mut HashMap<String, Vec<u8>>) -> Result<Vec<Refused>> {
        let mut refused = Vec::new();
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
                if status.as_str() == "ACTIVE" {
                    continue;
                }
                let serial = match serials.get(id) {
                    Some(serial) => serial.clone(),
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
                        let serial = pki::serial_of(pem)?;
                        serials.insert(id.to_owned(), serial.clone());
                        serial
                    }
                };
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
        Ok(refused)
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
