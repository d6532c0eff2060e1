//! The client-certificate lifetime gauges of `/metrics` (PCI DSS 8.x for
//! service identities): what `tls::expiry` saw connect within the last
//! day, as counts and the soonest expiry, never an identity (the log line
//! at connection names it).

use crate::tls::expiry::{ClientCertificates, ExpirySummary};
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

pub(super) struct ClientCertGauges {
    pub(super) seen: ClientCertificates,
    certificates: Gauge,
    soonest: Gauge,
    within_7_days: Gauge,
    within_30_days: Gauge,
}

impl ClientCertGauges {
    pub(super) fn registered(registry: &mut Registry) -> Self {
        let mut gauge = |name: &str, help: &str| {
            let gauge = Gauge::default();
            registry.register(name, help, gauge.clone());
            gauge
        };
        ClientCertGauges {
            seen: ClientCertificates::default(),
            certificates: gauge(
                "tls_client_certificates_seen",
                "Distinct client certificates that connected to this node within the last day",
            ),
            soonest: gauge(
                "tls_client_certificate_soonest_expiry_seconds",
                "Seconds until the soonest-expiring of those certificates ends (alert well before 0; the log names the identity)",
            ),
            within_7_days: gauge(
                "tls_client_certificates_expiring_7d",
                "Of those certificates, how many end within 7 days",
            ),
            within_30_days: gauge(
                "tls_client_certificates_expiring_30d",
                "Of those certificates, how many end within 30 days",
            ),
        }
    }

    pub(super) fn set(&self, now_s: i64) {
        let ExpirySummary {
            certificates,
            soonest_s,
            within_7_days,
            within_30_days,
        } = self.seen.summary(now_s);
        let count = |n: usize| i64::try_from(n).unwrap_or(i64::MAX);
        self.certificates.set(count(certificates));
        // With none seen, a year: no alert fires on a node nobody called.
        self.soonest.set(soonest_s.unwrap_or(365 * 86_400));
        self.within_7_days.set(count(within_7_days));
        self.within_30_days.set(count(within_30_days));
    }
}
