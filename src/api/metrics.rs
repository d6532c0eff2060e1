//! Metrics in the OpenMetrics text format, through `prometheus-client`.
//! Labels are route templates, status codes, key versions and channel ids
//! only: never a token, reference, identity or anything a caller typed.
//!
//! Counters and the latency histogram are updated as requests pass; the
//! gauges that describe state (key versions, KEK, channels, held card
//! verifications) are set from the vault when `/metrics` is scraped.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use std::time::Duration;

/// The content type of `render`'s output.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

const LATENCY_BUCKETS_S: [f64; 10] = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0, 5.0];

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    route: String,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KeyVersionLabels {
    version: u32,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ChannelLabels {
    channel: String,
}

/// One data-key version as the metrics show it.
pub struct KeyVersionGauge {
    pub version: u32,
    pub encryptions: u64,
    pub budget: u64,
}

/// State read from the vault at scrape time.
pub struct Snapshot {
    pub kek_version: u32,
    pub key_versions: Vec<KeyVersionGauge>,
    /// `(channel id, up)` for every configured channel.
    pub channels: Vec<(String, bool)>,
    pub held_card_verifications: usize,
}

pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    latency: Histogram,
    connections_open: Gauge,
    connections_refused: Counter,
    handshakes_failed: Counter,
    denied: Counter,
    kek_version: Gauge,
    key_encryptions: Family<KeyVersionLabels, Gauge>,
    key_budget: Family<KeyVersionLabels, Gauge>,
    channel_up: Family<ChannelLabels, Gauge>,
    held_verifications: Gauge,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("tokenvault");
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register(
            "http_requests",
            "Requests by route template and status",
            requests.clone(),
        );
        let latency = Histogram::new(LATENCY_BUCKETS_S);
        registry.register(
            "http_request_duration_seconds",
            "Request latency",
            latency.clone(),
        );
        let connections_open = Gauge::default();
        registry.register(
            "connections_open",
            "Open client connections",
            connections_open.clone(),
        );
        let connections_refused = Counter::default();
        registry.register(
            "connections_refused",
            "Connections closed at once because the cap was reached",
            connections_refused.clone(),
        );
        let handshakes_failed = Counter::default();
        registry.register(
            "tls_handshakes_failed",
            "Handshakes that failed or timed out (bad or revoked certificates included)",
            handshakes_failed.clone(),
        );
        let denied = Counter::default();
        registry.register("policy_denials", "Requests denied by policy", denied.clone());
        let kek_version = Gauge::default();
        registry.register(
            "kek_version",
            "Version of the key-encrypting key in use",
            kek_version.clone(),
        );
        let key_encryptions = Family::<KeyVersionLabels, Gauge>::default();
        registry.register(
            "data_key_encryptions",
            "Encryptions reserved under each data-key version (upper bound)",
            key_encryptions.clone(),
        );
        let key_budget = Family::<KeyVersionLabels, Gauge>::default();
        registry.register(
            "data_key_encryption_budget",
            "Encryptions each data-key version may perform before rotation",
            key_budget.clone(),
        );
        let channel_up = Family::<ChannelLabels, Gauge>::default();
        registry.register(
            "channel_up",
            "1 when a bank channel takes debits, 0 when down",
            channel_up.clone(),
        );
        let held_verifications = Gauge::default();
        registry.register(
            "held_card_verifications",
            "Credit-card CVN/expiry pairs waiting in memory for a signing call",
            held_verifications.clone(),
        );
        Metrics {
            registry,
            requests,
            latency,
            connections_open,
            connections_refused,
            handshakes_failed,
            denied,
            kek_version,
            key_encryptions,
            key_budget,
            channel_up,
            held_verifications,
        }
    }
}

/// A count as a gauge value: counts past i64::MAX (never reached) saturate.
fn gauge_value(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

impl Metrics {
    pub fn request(&self, route: &str, status: u16, took: Duration) {
        self.requests
            .get_or_create(&RequestLabels {
                route: route.to_owned(),
                status,
            })
            .inc();
        self.latency.observe(took.as_secs_f64());
    }

    pub fn connection_opened(&self) {
        self.connections_open.inc();
    }
    pub fn connection_closed(&self) {
        self.connections_open.dec();
    }
    pub fn connection_refused(&self) {
        self.connections_refused.inc();
    }
    pub fn handshake_failed(&self) {
        self.handshakes_failed.inc();
    }
    pub fn denied(&self) {
        self.denied.inc();
    }

    /// The OpenMetrics text, with the state gauges taken from `snapshot`.
    pub fn render(&self, snapshot: Option<Snapshot>) -> String {
        if let Some(s) = snapshot {
            self.kek_version.set(i64::from(s.kek_version));
            for key in s.key_versions {
                let labels = KeyVersionLabels { version: key.version };
                self.key_encryptions
                    .get_or_create(&labels)
                    .set(gauge_value(key.encryptions));
                self.key_budget
                    .get_or_create(&labels)
                    .set(gauge_value(key.budget));
            }
            for (channel, up) in s.channels {
                self.channel_up
                    .get_or_create(&ChannelLabels { channel })
                    .set(i64::from(up));
            }
            self.held_verifications
                .set(gauge_value(s.held_card_verifications as u64));
        }
        let mut out = String::new();
        // Writing into a String cannot fail; an encoding error would be a
        // bug in a metric's labels, and the scrape then shows what came before.
        if let Err(e) = prometheus_client::encoding::text::encode(&mut out, &self.registry) {
            tracing::error!(error = %e, "metrics encoding failed");
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn families_are_named_once_and_end_with_eof() {
        let m = Metrics::default();
        m.request("/v1/cards", 201, Duration::from_millis(3));
        m.request("/v1/cards", 201, Duration::from_millis(7));
        m.connection_refused();
        let text = m.render(Some(Snapshot {
            kek_version: 2,
            key_versions: vec![KeyVersionGauge {
                version: 1,
                encryptions: 5,
                budget: 100,
            }],
            channels: vec![("icbc-quickpay".to_owned(), true)],
            held_card_verifications: 0,
        }));
        assert!(text.contains("# TYPE tokenvault_http_requests counter"), "{text}");
        assert!(text.contains("tokenvault_http_requests_total{route=\"/v1/cards\",status=\"201\"} 2"));
        assert!(text.contains("tokenvault_connections_refused_total 1"));
        assert!(text.contains("tokenvault_data_key_encryption_budget{version=\"1\"} 100"));
        assert!(text.contains("tokenvault_channel_up{channel=\"icbc-quickpay\"} 1"));
        assert!(text.contains("tokenvault_http_request_duration_seconds_count 2"));
        assert!(text.trim_end().ends_with("# EOF"));
    }
}
