//! One connection's standing after its handshake: the peer's verified
//! chain, re-checked against the trust anchors and CRL whenever they are
//! reloaded, and how long the connection has been idle. The listener asks
//! `trusted` before every request (so no request is served on a revoked
//! certificate once the reload has returned) and watches reloads to close
//! connections that fall out of trust, idle ones and old ones.

use crate::tls::ReloadableTls;
use rustls::pki_types::CertificateDer;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

pub(super) struct Standing {
    tls: Arc<ReloadableTls>,
    chain: Vec<CertificateDer<'static>>,
    /// The reload generation `chain` was last checked against.
    checked: AtomicU64,
    revoked: AtomicBool,
    active: AtomicUsize,
    last_active: Mutex<Instant>,
}

impl Standing {
    pub(super) fn new(tls: Arc<ReloadableTls>, chain: Vec<CertificateDer<'static>>, generation: u64) -> Self {
        Standing {
            tls,
            chain,
            checked: AtomicU64::new(generation),
            revoked: AtomicBool::new(false),
            active: AtomicUsize::new(0),
            last_active: Mutex::new(Instant::now()),
        }
    }

    /// Whether the peer is still trusted, re-checking its chain once per
    /// reload. Once revoked, it stays revoked for this connection.
    pub(super) fn trusted(&self) -> bool {
        if self.revoked.load(Ordering::Acquire) {
            return false;
        }
        let generation = self.tls.generation();
        if self.checked.swap(generation, Ordering::AcqRel) == generation {
            return true;
        }
        if self.tls.still_trusts(&self.chain) {
            return true;
        }
        self.revoked.store(true, Ordering::Release);
        false
    }

    /// Marks a request in flight until the guard drops.
    pub(super) fn begin(self: &Arc<Self>) -> InFlight {
        self.active.fetch_add(1, Ordering::AcqRel);
        InFlight(Arc::clone(self))
    }

    /// How long no request has been in flight (zero while one is).
    pub(super) fn idle_for(&self) -> Duration {
        if self.active.load(Ordering::Acquire) > 0 {
            return Duration::ZERO;
        }
        self.last_active
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .elapsed()
    }
}

pub(super) struct InFlight(Arc<Standing>);

impl Drop for InFlight {
    fn drop(&mut self) {
        *self.0.last_active.lock().unwrap_or_else(PoisonError::into_inner) = Instant::now();
        self.0.active.fetch_sub(1, Ordering::AcqRel);
    }
}
