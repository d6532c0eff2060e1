//! Metrics in the OpenMetrics text format, through `prometheus-client`.
//! Labels are route templates, status codes, key versions and channel ids
//! only: never a token, reference, identity or anything a caller typed.
//!
//! Counters and the latency histogram are updated as requests pass; the
//! families that describe state (seal, KEK, key versions with budget and
//! age, rewrap progress, channels, held card verifications, the audit head
//! and audited outcomes) are set from a `Snapshot` when `/metrics` is
//! scraped. Payments and bindings by outcome are the `payment.*` and
//! `binding.*` series of `audited_operations`: every flow ends in exactly
//! one audit record, so the trail is the count that cannot drift.

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
struct CloseLabels {
    reason: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct SettledLabels {
    status: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KeyVersionLabels {
    version: u32,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ChannelLabels {
    channel: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct FindingLabels {
    channel: String,
    class: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabels {
    operation: &'static str,
    outcome: &'static str,
}

/// One data-key version as the metrics show it.
pub struct KeyVersionGauge {
    pub version: u32,
    pub encryptions: u64,
    pub budget: u64,
    pub age_s: u64,
}

/// The last rewrap job's counters.
pub struct RewrapGauge {
    pub running: bool,
    pub scanned: u64,
    pub rewrapped: u64,
    pub total: u64,
}

/// Whether the KEK is assembled yet, and while not, how far the shares are.
#[derive(Default)]
pub struct SealGauge {
    pub sealed: bool,
    pub shares_submitted: usize,
    pub threshold: usize,
}

/// State read at scrape time; a sealed service fills only `seal`.
#[derive(Default)]
pub struct Snapshot {
    pub seal: SealGauge,
    pub kek_version: u32,
    pub key_versions: Vec<KeyVersionGauge>,
    pub rewrap: Option<RewrapGauge>,
    /// `(channel id, up)` for every configured channel.
    pub channels: Vec<(String, bool)>,
    pub held_card_verifications: usize,
    pub audit_head_seq: u64,
    pub audited: Vec<crate::audit::OutcomeCount>,
    /// The CRL's nextUpdate, when it names one (Unix seconds).
    pub crl_next_update: Option<i64>,
    /// The KEK's age and cryptoperiod in seconds (share custody only).
    pub kek_age: Option<(u64, u64)>,
}

pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    latency: Histogram,
    connections_open: Gauge,
    connections_refused: Counter,
    handshakes_failed: Counter,
    closed_by_service: Family<CloseLabels, Counter>,
    crl_next_update: Gauge,
    crl_seconds_left: Gauge,
    denied: Counter,
    kek_version: Gauge,
    kek_age: Gauge,
    kek_cryptoperiod: Gauge,
    kek_past_cryptoperiod: Gauge,
    key_encryptions: Family<KeyVersionLabels, Gauge>,
    key_budget: Family<KeyVersionLabels, Gauge>,
    channel_up: Family<ChannelLabels, Gauge>,
    held_verifications: Gauge,
    sealed: Gauge,
    shares_submitted: Gauge,
    share_threshold: Gauge,
    key_age: Family<KeyVersionLabels, Gauge>,
    rewrap_running: Gauge,
    rewrap_scanned: Gauge,
    rewrap_rewrapped: Gauge,
    rewrap_total: Gauge,
    audit_head_seq: Gauge,
    audited: Family<OutcomeLabels, Counter>,
    sweep_passes: Counter,
    swept: Counter,
    remembered: Gauge,
    settler_passes: Counter,
    settled: Family<SettledLabels, Counter>,
    settler_open: Gauge,
    reconciliation_runs: Family<ChannelLabels, Counter>,
    reconciliation_findings: Family<FindingLabels, Counter>,
    copies: TrailCopies,
    client_certs: super::client_cert_metrics::ClientCertGauges,
}

/// The trail's copies outside the store (`server::trail_copies`): what
/// PCI DSS 10.7 asks be watched for failure.
struct TrailCopies {
    anchors_written: Counter,
    anchor_failures: Counter,
    sink_failures: Counter,
    sink_behind: Gauge,
}

impl TrailCopies {
    fn registered(registry: &mut Registry) -> Self {
        let counter = |registry: &mut Registry, name: &str, help: &str| {
            let counter = Counter::default();
            registry.register(name, help, counter.clone());
            counter
        };
        TrailCopies {
            anchors_written: counter(
                registry,
                "audit_anchors_written",
                "Signed checkpoints of the trail written to the anchor folder",
            ),
            anchor_failures: counter(
                registry,
                "audit_anchor_failures",
                "Scheduled signed checkpoints that could not be signed or written",
            ),
            sink_failures: counter(
                registry,
                "audit_sink_failures",
                "Failed copies to the audit sink (each is retried; the sink lags meanwhile)",
            ),
            sink_behind: {
                let gauge = Gauge::default();
                registry.register(
                    "audit_sink_records_behind",
                    "Records of this node's chain committed and not yet in the audit sink",
                    gauge.clone(),
                );
                gauge
            },
        }
    }
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
        let kek_age = Gauge::default();
        registry.register(
            "kek_age_seconds",
            "Seconds since the KEK in use was put in service (share custody)",
            kek_age.clone(),
        );
        let kek_cryptoperiod = Gauge::default();
        registry.register(
            "kek_cryptoperiod_seconds",
            "The KEK's cryptoperiod (kek.cryptoperiod_s)",
            kek_cryptoperiod.clone(),
        );
        let kek_past_cryptoperiod = Gauge::default();
        registry.register(
            "kek_past_cryptoperiod",
            "1 once the KEK is older than its cryptoperiod: custodians must rotate it (keys rotate-kek)",
            kek_past_cryptoperiod.clone(),
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
        let gauge = |registry: &mut Registry, name: &str, help: &str| {
            let gauge = Gauge::default();
            registry.register(name, help, gauge.clone());
            gauge
        };
        let sealed = gauge(
            &mut registry,
            "sealed",
            "1 while the KEK awaits its custodians' shares, else 0",
        );
        let shares_submitted = gauge(
            &mut registry,
            "unseal_shares_submitted",
            "KEK shares accepted while sealed",
        );
        let share_threshold = gauge(
            &mut registry,
            "unseal_share_threshold",
            "KEK shares needed to unseal (0 until the first arrives)",
        );
        let key_age = Family::<KeyVersionLabels, Gauge>::default();
        registry.register(
            "data_key_age_seconds",
            "Seconds since each data-key version was created (compare with the cryptoperiod)",
            key_age.clone(),
        );
        let rewrap_running = gauge(
            &mut registry,
            "rewrap_running",
            "1 while a rewrap job is moving records to the current data key",
        );
        let rewrap_scanned = gauge(
            &mut registry,
            "rewrap_records_scanned",
            "Records the last rewrap job has looked at",
        );
        let rewrap_rewrapped = gauge(
            &mut registry,
            "rewrap_records_rewrapped",
            "Records the last rewrap job moved to the current key",
        );
        let rewrap_total = gauge(
            &mut registry,
            "rewrap_records_total",
            "Records the last rewrap job counted when it started",
        );
        let audit_head_seq = gauge(
            &mut registry,
            "audit_head_seq",
            "Sequence number of the newest audit record committed",
        );
        let audited = Family::<OutcomeLabels, Counter>::default();
        registry.register(
            "audited_operations",
            "Audit records committed since start, by operation and outcome (payments and bindings included)",
            audited.clone(),
        );
        let closed_by_service = Family::<CloseLabels, Counter>::default();
        registry.register(
            "connections_closed_by_service",
            "Connections the service closed: revoked (client certificate revoked or untrusted at a reload), idle, max_age",
            closed_by_service.clone(),
        );
        let crl_next_update = Gauge::default();
        registry.register(
            "tls_crl_next_update_timestamp_seconds",
            "The CRL's nextUpdate (Unix seconds); past it, handshakes fail and reloads are refused",
            crl_next_update.clone(),
        );
        let crl_seconds_left = Gauge::default();
        registry.register(
            "tls_crl_seconds_until_next_update",
            "Seconds until the CRL in use expires: alert well before 0",
            crl_seconds_left.clone(),
        );
        let sweep_passes = Counter::default();
        registry.register(
            "idempotency_sweep_passes",
            "Passes of the sweep of remembered answers past limits.idempotency_ttl_s",
            sweep_passes.clone(),
        );
        let swept = Counter::default();
        registry.register(
            "idempotency_records_swept",
            "Remembered answers the sweep deleted (each page's deletes are audited as idempotency.sweep)",
            swept.clone(),
        );
        let remembered = gauge(
            &mut registry,
            "idempotency_records",
            "Remembered answers the last sweep pass found (before it deleted the expired)",
        );
        let settler_passes = Counter::default();
        registry.register(
            "settler_passes",
            "Passes of the settler over unsettled payments",
            settler_passes.clone(),
        );
        let settled = Family::<SettledLabels, Counter>::default();
        registry.register(
            "settler_payments_settled",
            "Payments the settler ended, by the status the bank's answer gave them (succeeded commits the reservation; failed and closed release it)",
            settled.clone(),
        );
        let reconciliation_runs = Family::<ChannelLabels, Counter>::default();
        registry.register(
            "reconciliation_runs",
            "Reconciliation runs kept, by channel (a refused statement keeps none)",
            reconciliation_runs.clone(),
        );
        let reconciliation_findings = Family::<FindingLabels, Counter>::default();
        registry.register(
            "reconciliation_findings",
            "Statement lines and vault successes the runs classed, by channel and class (matched, channel_only, vault_only, amount_mismatch, status_mismatch, duplicate)",
            reconciliation_findings.clone(),
        );
        let settler_open = gauge(
            &mut registry,
            "settler_payments_open",
            "Unsettled payments the settler's last pass found (their reservations are held until the bank answers)",
        );
        let copies = TrailCopies::registered(&mut registry);
        let client_certs = super::client_cert_metrics::ClientCertGauges::registered(&mut registry);
        Metrics {
            registry,
            requests,
            latency,
            connections_open,
            connections_refused,
            handshakes_failed,
            closed_by_service,
            crl_next_update,
            crl_seconds_left,
            denied,
            kek_version,
            kek_age,
            kek_cryptoperiod,
            kek_past_cryptoperiod,
            key_encryptions,
            key_budget,
            channel_up,
            held_verifications,
            sealed,
            shares_submitted,
            share_threshold,
            key_age,
            rewrap_running,
            rewrap_scanned,
            rewrap_rewrapped,
            rewrap_total,
            audit_head_seq,
            audited,
            sweep_passes,
            swept,
            remembered,
            settler_passes,
            settled,
            settler_open,
            reconciliation_runs,
            reconciliation_findings,
            copies,
            client_certs,
        }
    }
}

/// `/metrics`'s answer: `text` as OpenMetrics.
pub fn response(text: String) -> axum::response::Response {
    use axum::http::{header, HeaderValue};
    use axum::response::IntoResponse;
    (
        [(header::CONTENT_TYPE, HeaderValue::from_static(CONTENT_TYPE))],
        text,
    )
        .into_response()
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

    /// A verified client certificate connected: its lifetime counts in
    /// the expiry gauges. Its seconds left when it is near its end and
    /// should be logged now (once a day per certificate).
    pub fn client_certificate(&self, der: &[u8]) -> Option<i64> {
        self.client_certs
            .seen
            .observe(der, crate::domain::time::Timestamp::now().seconds())
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
    pub fn connection_closed_by_service(&self, reason: &'static str) {
        self.closed_by_service
            .get_or_create(&CloseLabels { reason })
            .inc();
    }
    pub fn denied(&self) {
        self.denied.inc();
    }

    /// A pass of the idempotency sweep: records found, records deleted.
    pub fn idempotency_swept(&self, scanned: u64, swept: u64) {
        self.sweep_passes.inc();
        self.swept.inc_by(swept);
        self.remembered.set(gauge_value(scanned));
    }

    /// A pass of the settler: unsettled payments found, and the status of
    /// each it ended.
    pub fn settler_pass(&self, open: usize, settled: &[&'static str]) {
        self.settler_passes.inc();
        self.settler_open.set(gauge_value(open as u64));
        for status in settled {
            self.settled.get_or_create(&SettledLabels { status }).inc();
        }
    }

    /// A reconciliation run kept: how many of its findings ended in each class.
    pub fn reconciled(&self, channel: &str, counts: &[(&'static str, u64)]) {
        let channel = channel.to_owned();
        self.reconciliation_runs
            .get_or_create(&ChannelLabels {
                channel: channel.clone(),
            })
            .inc();
        for (class, n) in counts {
            let labels = FindingLabels {
                channel: channel.clone(),
                class,
            };
            self.reconciliation_findings.get_or_create(&labels).inc_by(*n);
        }
    }

    pub fn anchor_written(&self) {
        self.copies.anchors_written.inc();
    }

    pub fn anchor_failed(&self) {
        self.copies.anchor_failures.inc();
    }

    /// The sink holds records up to `written`; the chain's head is `head`.
    pub fn sink_written(&self, written: u64, head: u64) {
        self.copies
            .sink_behind
            .set(gauge_value(head.saturating_sub(written)));
    }

    pub fn sink_failed(&self) {
        self.copies.sink_failures.inc();
    }

    /// The OpenMetrics text, with the state families taken from `snapshot`.
    pub fn render(&self, snapshot: Snapshot) -> String {
        self.set_state(snapshot);
        let mut out = String::new();
        // Writing into a String cannot fail; an encoding error would be a
        // bug in a metric's labels, and the scrape then shows what came before.
        if let Err(e) = prometheus_client::encoding::text::encode(&mut out, &self.registry) {
            tracing::error!(error = %e, "metrics encoding failed");
        }
        out
    }
}

impl Metrics {
    fn set_state(&self, s: Snapshot) {
        self.client_certs
            .set(crate::domain::time::Timestamp::now().seconds());
        if let Some(next) = s.crl_next_update {
            self.crl_next_update.set(next);
            self.crl_seconds_left
                .set(next - crate::domain::time::Timestamp::now().seconds());
        }
        self.sealed.set(i64::from(s.seal.sealed));
        self.shares_submitted
            .set(gauge_value(s.seal.shares_submitted as u64));
        self.share_threshold.set(gauge_value(s.seal.threshold as u64));
        if s.seal.sealed {
            return;
        }
        self.kek_version.set(i64::from(s.kek_version));
        if let Some((age, period)) = s.kek_age {
            self.kek_age.set(gauge_value(age));
            self.kek_cryptoperiod.set(gauge_value(period));
            self.kek_past_cryptoperiod.set(i64::from(age >= period));
        }
        for key in s.key_versions {
            let labels = KeyVersionLabels { version: key.version };
            self.key_encryptions
                .get_or_create(&labels)
                .set(gauge_value(key.encryptions));
            self.key_budget
                .get_or_create(&labels)
                .set(gauge_value(key.budget));
            self.key_age.get_or_create(&labels).set(gauge_value(key.age_s));
        }
        if let Some(rewrap) = s.rewrap {
            self.rewrap_running.set(i64::from(rewrap.running));
            self.rewrap_scanned.set(gauge_value(rewrap.scanned));
            self.rewrap_rewrapped.set(gauge_value(rewrap.rewrapped));
            self.rewrap_total.set(gauge_value(rewrap.total));
        }
        for (channel, up) in s.channels {
            self.channel_up
                .get_or_create(&ChannelLabels { channel })
                .set(i64::from(up));
        }
        self.held_verifications
            .set(gauge_value(s.held_card_verifications as u64));
        self.audit_head_seq.set(gauge_value(s.audit_head_seq));
        for count in s.audited {
            let counter = self.audited.get_or_create(&OutcomeLabels {
                operation: count.operation,
                outcome: count.outcome,
            });
            // The tally only grows; the counter catches up with it.
            counter.inc_by(count.records.saturating_sub(counter.get()));
        }
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
        let text = m.render(Snapshot {
            kek_version: 2,
            key_versions: vec![KeyVersionGauge {
                version: 1,
                encryptions: 5,
                budget: 100,
                age_s: 86_400,
            }],
            rewrap: Some(RewrapGauge {
                running: true,
                scanned: 10,
                rewrapped: 4,
                total: 40,
            }),
            channels: vec![("icbc-quickpay".to_owned(), true)],
            audit_head_seq: 17,
            audited: vec![crate::audit::OutcomeCount {
                operation: "payment.debit",
                outcome: "success",
                records: 3,
            }],
            ..Snapshot::default()
        });
        assert!(text.contains("# TYPE tokenvault_http_requests counter"), "{text}");
        assert!(text.contains("tokenvault_http_requests_total{route=\"/v1/cards\",status=\"201\"} 2"));
        assert!(text.contains("tokenvault_connections_refused_total 1"));
        assert!(text.contains("tokenvault_data_key_encryption_budget{version=\"1\"} 100"));
        assert!(text.contains("tokenvault_channel_up{channel=\"icbc-quickpay\"} 1"));
        assert!(text.contains("tokenvault_http_request_duration_seconds_count 2"));
        assert!(text.contains("tokenvault_sealed 0"));
        assert!(text.contains("tokenvault_data_key_age_seconds{version=\"1\"} 86400"));
        assert!(text.contains("tokenvault_rewrap_records_scanned 10"));
        assert!(text.contains("tokenvault_audit_head_seq 17"));
        assert!(text.contains(
            "tokenvault_audited_operations_total{operation=\"payment.debit\",outcome=\"success\"} 3"
        ));
        assert!(text.trim_end().ends_with("# EOF"));
    }

    #[test]
    fn audited_counters_follow_the_tally_without_counting_twice() {
        let m = Metrics::default();
        let scrape = |records| {
            m.render(Snapshot {
                audited: vec![crate::audit::OutcomeCount {
                    operation: "binding.start",
                    outcome: "refused",
                    records,
                }],
                ..Snapshot::default()
            })
        };
        scrape(2);
        let text = scrape(5);
        assert!(
            text.contains(
                "tokenvault_audited_operations_total{operation=\"binding.start\",outcome=\"refused\"} 5"
            ),
            "{text}"
        );
    }

    #[test]
    fn a_sealed_service_shows_its_seal_and_share_progress() {
        let m = Metrics::default();
        let text = m.render(Snapshot {
            seal: SealGauge {
                sealed: true,
                shares_submitted: 1,
                threshold: 3,
            },
            ..Snapshot::default()
        });
        assert!(text.contains("tokenvault_sealed 1"));
        assert!(text.contains("tokenvault_unseal_shares_submitted 1"));
        assert!(text.contains("tokenvault_unseal_share_threshold 3"));
    }
}
