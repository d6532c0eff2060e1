//! Client certificates' lifetimes as the service sees them connect, so an
//! identity's certificate that is about to expire shows before it does
//! (metrics; a log line names the identity). Each node knows the
//! certificates that connected to it within the last day; the metrics carry
//! counts and the soonest expiry only, never an identity.

use std::collections::HashMap;
use std::sync::Mutex;

/// How long a certificate counts after it last connected.
const REMEMBERED_S: i64 = 86_400;
/// Certificates remembered at most (a bound, far above any real fleet).
const MAX_REMEMBERED: usize = 10_000;
/// A connecting certificate this close to its end is logged, once a day.
pub const WARN_WITHIN_S: i64 = 30 * 86_400;

struct Seen {
    not_after_s: i64,
    last_seen_s: i64,
    last_warned_s: Option<i64>,
}

/// What the metrics show of the certificates seen.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ExpirySummary {
    pub certificates: usize,
    /// Seconds until the soonest expiry (negative once past).
    pub soonest_s: Option<i64>,
    pub within_7_days: usize,
    pub within_30_days: usize,
}

#[derive(Default)]
pub struct ClientCertificates {
    seen: Mutex<HashMap<Vec<u8>, Seen>>,
}

/// A certificate's serial number and notAfter (Unix seconds).
fn serial_and_end(der: &[u8]) -> Option<(Vec<u8>, i64)> {
    let (_, cert) = x509_parser::parse_x509_certificate(der).ok()?;
    Some((cert.raw_serial().to_vec(), cert.validity().not_after.timestamp()))
}

impl ClientCertificates {
    /// Notes a verified client certificate connecting at `now_s`. Returns
    /// its seconds left when it should be warned about now: within
    /// `WARN_WITHIN_S` and not warned about in the last day.
    pub fn observe(&self, der: &[u8], now_s: i64) -> Option<i64> {
        let (serial, not_after_s) = serial_and_end(der)?;
        let mut seen = self
            .seen
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if seen.len() >= MAX_REMEMBERED && !seen.contains_key(&serial) {
            seen.retain(|_, s| now_s - s.last_seen_s < REMEMBERED_S);
            if seen.len() >= MAX_REMEMBERED {
                return None;
            }
        }
        let entry = seen.entry(serial).or_insert(Seen {
            not_after_s,
            last_seen_s: now_s,
            last_warned_s: None,
        });
        entry.last_seen_s = now_s;
        let left = not_after_s - now_s;
        let due = entry.last_warned_s.is_none_or(|at| now_s - at >= REMEMBERED_S);
        (left < WARN_WITHIN_S && due).then(|| {
            entry.last_warned_s = Some(now_s);
            left
        })
    }

    /// The certificates seen within the last day, at `now_s`.
    pub fn summary(&self, now_s: i64) -> ExpirySummary {
        let mut seen = self
            .seen
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        seen.retain(|_, s| now_s - s.last_seen_s < REMEMBERED_S);
        let lefts: Vec<i64> = seen.values().map(|s| s.not_after_s - now_s).collect();
        ExpirySummary {
            certificates: lefts.len(),
            soonest_s: lefts.iter().copied().min(),
            within_7_days: lefts.iter().filter(|&&l| l < 7 * 86_400).count(),
            within_30_days: lefts.iter().filter(|&&l| l < 30 * 86_400).count(),
        }
    }
}

#[cfg(all(test, feature = "dev-pki"))]
mod tests {
    use super::*;
    use crate::tls::pki::{DevCa, Validity};
    use rustls::pki_types::pem::PemObject;

    fn certificate(ca: &DevCa, days: i64) -> Vec<u8> {
        let (pem, _) = ca
            .issue_client(
                Some("spiffe://tokenvault/orchestrator"),
                "orchestrator",
                Validity::days_from_now(days),
            )
            .unwrap();
        rustls::pki_types::CertificateDer::from_pem_slice(pem.as_bytes())
            .unwrap()
            .to_vec()
    }

    #[test]
    fn the_soonest_expiry_shows_and_a_certificate_near_its_end_is_warned_once_a_day() {
        let dir = tempfile::tempdir().unwrap();
        let layout = crate::tls::layout::PkiLayout::new(dir.path());
        crate::tls::pki::init(&layout, false).unwrap();
        let ca = DevCa::load(&layout).unwrap();
        let (long, soon) = (certificate(&ca, 365), certificate(&ca, 5));
        let certs = ClientCertificates::default();
        let now = crate::domain::time::Timestamp::now().seconds();
        assert_eq!(certs.observe(&long, now), None, "a year left: nothing to say");
        let left = certs.observe(&soon, now).expect("five days left: warned");
        assert!((4 * 86_400..=5 * 86_400).contains(&left), "{left}");
        assert_eq!(certs.observe(&soon, now + 60), None, "once a day");
        assert!(certs.observe(&soon, now + 86_400).is_some(), "again the next day");

        let summary = certs.summary(now);
        assert_eq!(
            (
                summary.certificates,
                summary.within_7_days,
                summary.within_30_days
            ),
            (2, 1, 1)
        );
        assert!(summary.soonest_s.is_some_and(|s| s <= 5 * 86_400));
        let summary = certs.summary(now + 86_400);
        assert_eq!(summary.certificates, 1, "the long one was last seen a day ago");
        assert_eq!(
            certs.summary(now + 3 * 86_400).certificates,
            0,
            "forgotten a day after last seen"
        );
    }
}
