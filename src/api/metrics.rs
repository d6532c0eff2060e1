//! Prometheus metrics, in the text exposition format. Labels are route
//! templates and status codes only: never a token, reference or identity.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

const BUCKETS_MS: [f64; 10] = [1.0, 2.5, 5.0, 10.0, 25.0, 50.0, 100.0, 250.0, 1000.0, 5000.0];

#[derive(Default)]
pub struct Metrics {
    requests: Mutex<BTreeMap<(String, u16), u64>>,
    duration_buckets: [AtomicU64; 10],
    duration_count: AtomicU64,
    duration_sum_us: AtomicU64,
    connections_open: AtomicU64,
    connections_refused_cap: AtomicU64,
    handshakes_failed: AtomicU64,
    denied: AtomicU64,
}

impl Metrics {
    pub fn request(&self, route: &str, status: u16, took: Duration) {
        *self
            .requests
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .entry((route.to_owned(), status))
            .or_default() += 1;
        let ms = took.as_secs_f64() * 1e3;
        for (bucket, bound) in self.duration_buckets.iter().zip(BUCKETS_MS) {
            if ms <= bound {
                bucket.fetch_add(1, Ordering::Relaxed);
            }
        }
        self.duration_count.fetch_add(1, Ordering::Relaxed);
        self.duration_sum_us
            .fetch_add(took.as_micros() as u64, Ordering::Relaxed);
    }

    pub fn connection_opened(&self) {
        self.connections_open.fetch_add(1, Ordering::Relaxed);
    }
    pub fn connection_closed(&self) {
        self.connections_open.fetch_sub(1, Ordering::Relaxed);
    }
    pub fn connection_refused(&self) {
        self.connections_refused_cap.fetch_add(1, Ordering::Relaxed);
    }
    pub fn handshake_failed(&self) {
        self.handshakes_failed.fetch_add(1, Ordering::Relaxed);
    }
    pub fn denied(&self) {
        self.denied.fetch_add(1, Ordering::Relaxed);
    }

    pub fn render(&self) -> String {
        let mut out = String::new();
        let g = |o: &AtomicU64| o.load(Ordering::Relaxed);
        let _ = writeln!(
            out,
            "# HELP tokenvault_http_requests_total Requests by route template and status."
        );
        let _ = writeln!(out, "# TYPE tokenvault_http_requests_total counter");
        for ((route, status), n) in self
            .requests
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
        {
            let _ = writeln!(
                out,
                "tokenvault_http_requests_total{{route=\"{route}\",status=\"{status}\"}} {n}"
            );
        }
        let _ = writeln!(
            out,
            "# HELP tokenvault_http_request_duration_seconds Request latency."
        );
        let _ = writeln!(out, "# TYPE tokenvault_http_request_duration_seconds histogram");
        for (bucket, bound) in self.duration_buckets.iter().zip(BUCKETS_MS) {
            let _ = writeln!(
                out,
                "tokenvault_http_request_duration_seconds_bucket{{le=\"{}\"}} {}",
                bound / 1e3,
                g(bucket)
            );
        }
        let count = g(&self.duration_count);
        let _ = writeln!(
            out,
            "tokenvault_http_request_duration_seconds_bucket{{le=\"+Inf\"}} {count}"
        );
        let _ = writeln!(
            out,
            "tokenvault_http_request_duration_seconds_sum {}",
            g(&self.duration_sum_us) as f64 / 1e6
        );
        let _ = writeln!(out, "tokenvault_http_request_duration_seconds_count {count}");
        for (name, help, kind, value) in [
            (
                "tokenvault_connections_open",
                "Open client connections.",
                "gauge",
                g(&self.connections_open),
            ),
            (
                "tokenvault_connections_refused_total",
                "Connections closed at once because the cap was reached.",
                "counter",
                g(&self.connections_refused_cap),
            ),
            (
                "tokenvault_tls_handshakes_failed_total",
                "Handshakes that failed or timed out (bad or revoked certificates included).",
                "counter",
                g(&self.handshakes_failed),
            ),
            (
                "tokenvault_policy_denials_total",
                "Requests denied by policy.",
                "counter",
                g(&self.denied),
            ),
        ] {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}");
        }
        out
    }
}
