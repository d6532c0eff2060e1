//! `[limits]`: what one client may cost the service.

use super::{invalid, within, ConfigError};
use crate::domain::amount::AmountCeiling;
use serde::Deserialize;

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LimitsSection {
    /// Authenticated connections at most; one more is closed once its
    /// handshake ends. Default 1024.
    pub max_connections: usize,
    /// Connections still in their TLS handshake, a budget apart from the
    /// authenticated ones: when it is full, a new connection sheds the
    /// oldest unfinished handshake (if pending 250 ms or more), so idle
    /// sockets without a certificate cannot lock clients out. Default 1024.
    pub max_handshakes: usize,
    /// Connections (in handshake or authenticated) from one source address
    /// at most; 0 is no limit. Default 0.
    pub per_source_connections: usize,
    /// A TLS handshake must finish within this. Default 5000 ms.
    pub handshake_timeout_ms: u64,
    /// Largest request body accepted. Default 16384 bytes.
    pub body_limit_bytes: usize,
    /// A request must finish within this. Default 15000 ms.
    pub request_timeout_ms: u64,
    /// Reveals one identity may make in any hour, counted in the store
    /// over every node and across restarts. Default 10.
    pub reveals_per_hour: u32,
    /// Dual control of reveals: a reveal needs a request by the
    /// break-glass identity and an approval by a different identity
    /// granted `reveal.approve`. Default true.
    pub reveal_dual_control: bool,
    /// A reveal request must be approved within this long, and an approved
    /// one used within this long of its approval. Default 900 s.
    pub reveal_approval_window_s: u64,
    /// A connection with no request in flight for this long is closed
    /// (HTTP/1.1 and HTTP/2). Default 60000 ms.
    pub idle_timeout_ms: u64,
    /// Every connection is closed gracefully at this age. Default 3600000 ms.
    pub max_connection_age_ms: u64,
    /// After a reload finds a connection's client certificate revoked or
    /// untrusted, the connection takes no new request and is closed within
    /// this. Default 2000 ms.
    pub revoked_close_ms: u64,
    /// HTTP/2 PING interval and the answer's deadline. Defaults 20000 and
    /// 10000 ms.
    pub http2_keepalive_interval_ms: u64,
    pub http2_keepalive_timeout_ms: u64,
    /// The largest amount, and amount limit of a token, a caller may send
    /// (minor units): 1 to 10^12, the hard bound and the default.
    pub max_amount_minor_units: AmountCeiling,
    /// How long an answer is remembered for replay under its
    /// Idempotency-Key; past it, the key starts a new request. Default
    /// 86400 s (a day), at most 2592000 (30 days).
    pub idempotency_ttl_s: u64,
    /// How often the background sweep deletes expired answers. Default
    /// 600 s.
    pub idempotency_sweep_interval_s: u64,
}

impl Default for LimitsSection {
    fn default() -> Self {
        LimitsSection {
            max_connections: 1024,
            max_handshakes: 1024,
            per_source_connections: 0,
            handshake_timeout_ms: 5_000,
            body_limit_bytes: 16 * 1024,
            request_timeout_ms: 15_000,
            reveals_per_hour: 10,
            reveal_dual_control: true,
            reveal_approval_window_s: 900,
            idle_timeout_ms: 60_000,
            max_connection_age_ms: 3_600_000,
            revoked_close_ms: 2_000,
            http2_keepalive_interval_ms: 20_000,
            http2_keepalive_timeout_ms: 10_000,
            max_amount_minor_units: AmountCeiling::MAX,
            idempotency_ttl_s: 86_400,
            idempotency_sweep_interval_s: 600,
        }
    }
}

impl LimitsSection {
    pub(super) fn check(&self) -> Result<(), ConfigError> {
        within("limits.max_connections", self.max_connections, 1..=100_000)?;
        within("limits.max_handshakes", self.max_handshakes, 1..=100_000)?;
        if self.per_source_connections > 100_000 {
            return Err(invalid(
                "limits.per_source_connections",
                "must be 0 (no limit) to 100000",
            ));
        }
        within(
            "limits.handshake_timeout_ms",
            self.handshake_timeout_ms,
            100..=60_000,
        )?;
        within(
            "limits.body_limit_bytes",
            self.body_limit_bytes,
            1024..=1024 * 1024,
        )?;
        within(
            "limits.request_timeout_ms",
            self.request_timeout_ms,
            100..=300_000,
        )?;
        within("limits.reveals_per_hour", self.reveals_per_hour, 0..=1000)?;
        within(
            "limits.reveal_approval_window_s",
            self.reveal_approval_window_s,
            60..=86_400,
        )?;
        within("limits.idle_timeout_ms", self.idle_timeout_ms, 100..=3_600_000)?;
        within(
            "limits.max_connection_age_ms",
            self.max_connection_age_ms,
            1_000..=86_400_000,
        )?;
        within("limits.revoked_close_ms", self.revoked_close_ms, 0..=60_000)?;
        within(
            "limits.http2_keepalive_interval_ms",
            self.http2_keepalive_interval_ms,
            1_000..=600_000,
        )?;
        within(
            "limits.http2_keepalive_timeout_ms",
            self.http2_keepalive_timeout_ms,
            1_000..=600_000,
        )?;
        within("limits.idempotency_ttl_s", self.idempotency_ttl_s, 1..=2_592_000)?;
        within(
            "limits.idempotency_sweep_interval_s",
            self.idempotency_sweep_interval_s,
            1..=86_400,
        )?;
        Ok(())
    }

    pub fn idempotency_ttl(&self) -> std::time::Duration {
        std::time::Duration::from_secs(self.idempotency_ttl_s)
    }
}
