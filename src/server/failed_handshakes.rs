//! Failed TLS handshakes in the audit trail (PCI DSS 10.2.1.4: invalid
//! logical access attempts). A handshake fails before any identity is
//! known, and a flood of them must not become a flood of audited writes,
//! so they are counted by source address and cause and written as one
//! record per interval (`tls.handshake_failed`, by `local:listener`);
//! while sealed they wait for the trail to open.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::{Mutex, PoisonError};

/// Distinct (source, cause) pairs kept between two records; further
/// sources are counted together as `others`.
const MAX_SOURCES: usize = 256;

/// Why a handshake failed: read from rustls's typed error, or the
/// listener's own time-out and shedding.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Cause {
    NoCertificate,
    UnknownIssuer,
    Expired,
    Revoked,
    BadCertificate,
    TimedOut,
    Shed,
    Protocol,
}

impl Cause {
    /// The cause of a failed TLS accept: the rustls error inside the I/O
    /// error when there is one; anything else (a reset, bad bytes) is
    /// the protocol's.
    pub fn of(error: &std::io::Error) -> Cause {
        use rustls::{CertificateError, Error};
        match error.get_ref().and_then(|inner| inner.downcast_ref::<Error>()) {
            Some(Error::NoCertificatesPresented) => Cause::NoCertificate,
            Some(Error::InvalidCertificate(certificate)) => match certificate {
                CertificateError::Revoked => Cause::Revoked,
                CertificateError::Expired | CertificateError::ExpiredContext { .. } => Cause::Expired,
                CertificateError::UnknownIssuer => Cause::UnknownIssuer,
                _ => Cause::BadCertificate,
            },
            _ => Cause::Protocol,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Cause::NoCertificate => "no_certificate",
            Cause::UnknownIssuer => "unknown_issuer",
            Cause::Expired => "expired",
            Cause::Revoked => "revoked",
            Cause::BadCertificate => "bad_certificate",
            Cause::TimedOut => "timed_out",
            Cause::Shed => "shed",
            Cause::Protocol => "protocol",
        }
    }
}

#[derive(Default)]
struct Counts {
    by_source: BTreeMap<(IpAddr, Cause), u64>,
    others: u64,
    total: u64,
    first_ms: Option<i64>,
}

#[derive(Default)]
pub struct FailedHandshakes {
    counts: Mutex<Counts>,
}

/// One interval's failures, ready for the trail.
#[derive(Debug, PartialEq, Eq)]
pub struct Report {
    pub total: u64,
    pub detail: String,
}

impl FailedHandshakes {
    pub fn record(&self, source: IpAddr, cause: Cause, at_ms: i64) {
        let mut counts = self.counts.lock().unwrap_or_else(PoisonError::into_inner);
        counts.total += 1;
        counts.first_ms.get_or_insert(at_ms);
        let known = counts.by_source.len() < MAX_SOURCES || counts.by_source.contains_key(&(source, cause));
        if known {
            *counts.by_source.entry((source, cause)).or_insert(0) += 1;
        } else {
            counts.others += 1;
        }
    }

    /// The failures since the last report, and clears them; `None` when
    /// there were none.
    pub fn take(&self, now_ms: i64) -> Option<Report> {
        let counts = std::mem::take(&mut *self.counts.lock().unwrap_or_else(PoisonError::into_inner));
        if counts.total == 0 {
            return None;
        }
        let mut detail = format!(
            "failed={} since_ms={} until_ms={now_ms}",
            counts.total,
            counts.first_ms.unwrap_or(now_ms)
        );
        let mut source: Option<IpAddr> = None;
        for ((ip, cause), n) in &counts.by_source {
            if source != Some(*ip) {
                detail.push_str(&format!(" {ip}"));
                source = Some(*ip);
            }
            detail.push_str(&format!(" {}={n}", cause.as_str()));
        }
        if counts.others > 0 {
            detail.push_str(&format!(" others={}", counts.others));
        }
        Some(Report {
            total: counts.total,
            detail,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn causes_are_read_from_the_errors_rustls_gives() {
        use rustls::{CertificateError, Error, PeerIncompatible};
        let io = |e: Error| std::io::Error::new(std::io::ErrorKind::InvalidData, e);
        for (error, cause) in [
            (io(Error::NoCertificatesPresented), Cause::NoCertificate),
            (
                io(Error::InvalidCertificate(CertificateError::UnknownIssuer)),
                Cause::UnknownIssuer,
            ),
            (
                io(Error::InvalidCertificate(CertificateError::Expired)),
                Cause::Expired,
            ),
            (
                io(Error::InvalidCertificate(CertificateError::Revoked)),
                Cause::Revoked,
            ),
            (
                io(Error::InvalidCertificate(CertificateError::BadSignature)),
                Cause::BadCertificate,
            ),
            (
                io(Error::PeerIncompatible(PeerIncompatible::Tls12NotOffered)),
                Cause::Protocol,
            ),
            (
                std::io::Error::from(std::io::ErrorKind::ConnectionReset),
                Cause::Protocol,
            ),
        ] {
            assert_eq!(Cause::of(&error), cause, "{error}");
        }
    }

    #[test]
    fn failures_are_counted_by_source_and_cause_and_reported_once() {
        let failed = FailedHandshakes::default();
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let b: IpAddr = "10.0.0.2".parse().unwrap();
        failed.record(a, Cause::TimedOut, 5);
        failed.record(a, Cause::TimedOut, 6);
        failed.record(a, Cause::NoCertificate, 7);
        failed.record(b, Cause::Revoked, 8);
        let report = failed.take(9).unwrap();
        assert_eq!(report.total, 4);
        assert_eq!(
            report.detail,
            "failed=4 since_ms=5 until_ms=9 10.0.0.1 no_certificate=1 timed_out=2 10.0.0.2 revoked=1"
        );
        assert_eq!(failed.take(10), None);
    }

    #[test]
    fn sources_past_the_bound_are_counted_together() {
        let failed = FailedHandshakes::default();
        for i in 0..(MAX_SOURCES as u32 + 10) {
            failed.record(IpAddr::from(i.to_be_bytes()), Cause::TimedOut, 1);
        }
        let report = failed.take(2).unwrap();
        assert_eq!(report.total, MAX_SOURCES as u64 + 10);
        assert!(report.detail.ends_with(" others=10"), "{}", report.detail);
    }
}
