//! At most N reveals per identity in any sliding hour.

use std::collections::{HashMap, VecDeque};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

const WINDOW: Duration = Duration::from_secs(3600);

pub struct RevealLimiter {
    per_hour: usize,
    recent: Mutex<HashMap<String, VecDeque<Instant>>>,
}

impl RevealLimiter {
    pub fn new(per_hour: u32) -> Self {
        RevealLimiter {
            per_hour: per_hour as usize,
            recent: Mutex::new(HashMap::new()),
        }
    }

    /// Takes one reveal for `identity`, or says how many seconds until one frees up.
    pub fn take(&self, identity: &str) -> Result<(), u64> {
        let now = Instant::now();
        let mut recent = self.recent.lock().unwrap_or_else(PoisonError::into_inner);
        let times = recent.entry(identity.to_owned()).or_default();
        while times.front().is_some_and(|t| now.duration_since(*t) >= WINDOW) {
            times.pop_front();
        }
        if times.len() >= self.per_hour {
            let wait = times
                .front()
                .map_or(WINDOW, |t| WINDOW.saturating_sub(now.duration_since(*t)));
            return Err(wait.as_secs().max(1));
        }
        times.push_back(now);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn limits_per_identity() {
        let l = super::RevealLimiter::new(2);
        assert!(l.take("a").is_ok());
        assert!(l.take("a").is_ok());
        assert!(l.take("a").is_err());
        assert!(l.take("b").is_ok());
        assert!(super::RevealLimiter::new(0).take("a").is_err());
    }
}
