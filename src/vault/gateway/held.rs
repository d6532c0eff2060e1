//! Credit-card verification data waiting for its signing call: in memory
//! only, for a short time-to-live, wiped (zeroized on drop) when taken,
//! when it expires, or when the process ends. A restart loses it by design:
//! the user enters it again.

use super::verification::CardVerification;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::{Duration, Instant};

pub(in crate::vault) struct HeldVerifications {
    ttl: Duration,
    entries: Mutex<HashMap<String, (Instant, CardVerification)>>,
}

impl HeldVerifications {
    pub(in crate::vault) fn new(ttl: Duration) -> Arc<Self> {
        let held = Arc::new(HeldVerifications {
            ttl,
            entries: Mutex::new(HashMap::new()),
        });
        // Expired entries are wiped within a second even if nobody asks.
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            let weak: Weak<Self> = Arc::downgrade(&held);
            runtime.spawn(async move {
                let mut tick = tokio::time::interval(Duration::from_secs(1));
                loop {
                    tick.tick().await;
                    match weak.upgrade() {
                        Some(held) => held.purge_expired(),
                        None => return,
                    }
                }
            });
        }
        held
    }

    fn entries(&self) -> std::sync::MutexGuard<'_, HashMap<String, (Instant, CardVerification)>> {
        self.entries.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(in crate::vault) fn ttl(&self) -> Duration {
        self.ttl
    }

    pub(in crate::vault) fn hold(&self, key: &str, verification: CardVerification) {
        self.entries()
            .insert(key.to_owned(), (Instant::now(), verification));
    }

    /// Removes and returns the entry (with when it was held) if it has not
    /// expired.
    pub(in crate::vault) fn take(&self, key: &str) -> Option<(Instant, CardVerification)> {
        let (since, verification) = self.entries().remove(key)?;
        (since.elapsed() <= self.ttl).then_some((since, verification))
    }

    /// Puts back an entry whose signing call did not happen, keeping its
    /// original age.
    pub(in crate::vault) fn put_back(&self, key: &str, verification: CardVerification, since: Instant) {
        if since.elapsed() <= self.ttl {
            self.entries().insert(key.to_owned(), (since, verification));
        }
    }

    pub(in crate::vault) fn forget(&self, key: &str) {
        self.entries().remove(key);
    }

    pub(in crate::vault) fn purge_expired(&self) {
        let ttl = self.ttl;
        self.entries().retain(|_, (since, _)| since.elapsed() <= ttl);
    }

    pub(in crate::vault) fn len(&self) -> usize {
        self.entries().len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::time::CivilDate;

    fn verification() -> CardVerification {
        CardVerification::parse("123", "1299", CivilDate::new(2026, 1, 1).unwrap()).unwrap()
    }

    #[test]
    fn entries_are_taken_once_and_expire() {
        let held = HeldVerifications::new(Duration::from_millis(50));
        held.hold("b1", verification());
        assert!(held.take("b1").is_some());
        assert!(held.take("b1").is_none(), "taken means gone");
        held.hold("b2", verification());
        std::thread::sleep(Duration::from_millis(80));
        assert!(held.take("b2").is_none(), "expired entries are not handed out");
        held.hold("b3", verification());
        std::thread::sleep(Duration::from_millis(80));
        held.purge_expired();
        assert_eq!(held.len(), 0);
    }
}
