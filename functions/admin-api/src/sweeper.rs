//! Ends the grace of rotated certificates, on a schedule: a retiring certificate whose
//! grace is over is deactivated; on the next sweep an inactive one is revoked and
//! detached. Each step is recorded, so a failed sweep resumes where it stopped.

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::{
    credentials::revoke_now,
    ports::{CertificateState, Credentials, IotCertificateStatus, PortError, Things},
};

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct SweepReport {
    pub deactivated: usize,
    pub revoked: usize,
    pub failed: usize,
}

pub async fn sweep<B: Things + Credentials>(
    b: &B,
    now: DateTime<Utc>,
) -> Result<SweepReport, PortError> {
    let mut report = SweepReport::default();
    for mut record in b.retirements_due(now).await? {
        let result = match record.state {
            CertificateState::Retiring => {
                let deactivated = b
                    .set_certificate_status(&record.certificate_id, IotCertificateStatus::Inactive)
                    .await;
                match deactivated {
                    Ok(()) => {
                        record.state = CertificateState::Inactive;
                        b.put_certificate(&record)
                            .await
                            .map(|()| report.deactivated += 1)
                    }
                    Err(err) => Err(err),
                }
            }
            CertificateState::Inactive => revoke_now(b, &mut record, now)
                .await
                .map(|()| report.revoked += 1)
                .map_err(|e| PortError::new("revoke", e.message)),
            CertificateState::Active | CertificateState::Revoked => Ok(()),
        };
        if let Err(err) = result {
            report.failed += 1;
            tracing::warn!(
                certificate_id = %record.certificate_id,
                error = %err,
                "retiring a certificate failed; the next sweep tries again"
            );
        }
    }
    Ok(report)
}
