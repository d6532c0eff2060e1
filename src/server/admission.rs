//! Who gets a socket. A connection still in its TLS handshake has shown no
//! certificate yet, so it counts against a budget of its own
//! (`limits.max_handshakes`), apart from the authenticated connections
//! (`limits.max_connections`). When the handshake budget is full, a new
//! connection sheds the oldest unfinished handshake instead of being
//! refused: sockets held open without a certificate cannot lock clients
//! out, however many there are, because a real client finishes its
//! handshake in milliseconds and an idle one is always the oldest. Only a
//! handshake pending for `SHED_AFTER` or more is shed; while all are
//! younger (a burst of real clients) the newcomer is refused instead. A
//! per-source-address cap (`limits.per_source_connections`) bounds what one
//! address can hold at all.

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};
use tokio::sync::oneshot;

/// A handshake younger than this is not shed: a real client's takes a few
/// milliseconds, so one still pending after this is idle or very slow.
const SHED_AFTER: Duration = Duration::from_millis(250);

pub(super) struct Admission {
    handshakes: usize,
    /// 0: no limit.
    per_source: usize,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    next: u64,
    /// Unfinished handshakes by age; dropping a sender sheds its connection.
    pending: BTreeMap<u64, (Instant, oneshot::Sender<()>)>,
    by_source: HashMap<IpAddr, usize>,
}

/// Why a connection was not admitted.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Refused {
    PerSource,
    /// The budget is full of handshakes too young to shed.
    HandshakesBusy,
}

/// One admitted connection; dropping it gives its place back.
pub(super) struct Ticket {
    admission: Arc<Admission>,
    id: u64,
    source: IpAddr,
    /// Resolves (with an error) when the connection is shed.
    pub(super) shed: oneshot::Receiver<()>,
}

impl Admission {
    pub(super) fn new(handshakes: usize, per_source: usize) -> Arc<Self> {
        Arc::new(Admission {
            handshakes: handshakes.max(1),
            per_source,
            state: Mutex::new(State::default()),
        })
    }

    /// Admits a connection from `source` into the handshake budget;
    /// `Ok((ticket, shed_one))` says whether an older handshake was shed.
    pub(super) fn admit(self: &Arc<Self>, source: IpAddr) -> Result<(Ticket, bool), Refused> {
        let mut state = self.lock();
        let from_source = state.by_source.get(&source).copied().unwrap_or(0);
        if self.per_source > 0 && from_source >= self.per_source {
            return Err(Refused::PerSource);
        }
        let full = state.pending.len() >= self.handshakes;
        let shed_one = full
            && match state.pending.first_key_value() {
                Some((_, (since, _))) if since.elapsed() >= SHED_AFTER => state.pending.pop_first().is_some(),
                _ => return Err(Refused::HandshakesBusy),
            };
        let id = state.next;
        state.next += 1;
        let (tx, shed) = oneshot::channel();
        state.pending.insert(id, (Instant::now(), tx));
        *state.by_source.entry(source).or_default() += 1;
        drop(state);
        Ok((
            Ticket {
                admission: Arc::clone(self),
                id,
                source,
                shed,
            },
            shed_one,
        ))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Ticket {
    /// The handshake finished: this connection can no longer be shed.
    pub(super) fn authenticated(&self) {
        self.admission.lock().pending.remove(&self.id);
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        let mut state = self.admission.lock();
        state.pending.remove(&self.id);
        if let Some(count) = state.by_source.get_mut(&self.source) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                state.by_source.remove(&self.source);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(last: u8) -> IpAddr {
        IpAddr::from([127, 0, 0, last])
    }

    #[test]
    fn a_full_handshake_budget_sheds_the_oldest_not_the_newest() {
        let admission = Admission::new(2, 0);
        let (mut first, shed) = admission.admit(ip(2)).unwrap();
        assert!(!shed);
        let (mut second, _) = admission.admit(ip(2)).unwrap();
        assert_eq!(
            admission.admit(ip(1)).err(),
            Some(Refused::HandshakesBusy),
            "none old enough to shed"
        );
        std::thread::sleep(SHED_AFTER);
        let (third, shed) = admission.admit(ip(1)).unwrap();
        assert!(shed, "the third sheds one");
        use tokio::sync::oneshot::error::TryRecvError;
        assert_eq!(
            first.shed.try_recv(),
            Err(TryRecvError::Closed),
            "and it is the oldest"
        );
        assert_eq!(second.shed.try_recv(), Err(TryRecvError::Empty));
        // Authenticated connections leave the budget: nothing more is shed.
        third.authenticated();
        let (_fourth, shed) = admission.admit(ip(1)).unwrap();
        assert!(!shed);
    }

    #[test]
    fn one_source_is_capped_and_gets_its_places_back() {
        let admission = Admission::new(100, 2);
        let a = admission.admit(ip(2)).unwrap();
        let _b = admission.admit(ip(2)).unwrap();
        assert_eq!(admission.admit(ip(2)).err(), Some(Refused::PerSource));
        assert!(admission.admit(ip(1)).is_ok(), "another address is not affected");
        drop(a);
        assert!(admission.admit(ip(2)).is_ok());
    }
}
