//! At most N events per key in any sliding window: reveals per identity
//! per hour, share submissions per identity and per node while sealed.

use std::collections::{HashMap, VecDeque};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

pub struct SlidingLimiter {
    limit: usize,
    window: Duration,
    recent: Mutex<HashMap<String, VecDeque<Instant>>>,
}

impl SlidingLimiter {
    pub fn new(limit: u32, window: Duration) -> Self {
        SlidingLimiter {
            limit: limit as usize,
            window,
            recent: Mutex::new(HashMap::new()),
        }
    }

    /// Takes one event for `key`, or says how many seconds until one frees up.
    pub fn take(&self, key: &str) -> Result<(), u64> {
        let now = Instant::now();
        let mut recent = self.recent.lock().unwrap_or_else(PoisonError::into_inner);
        let times = recent.entry(key.to_owned()).or_default();
        while times
            .front()
            .is_some_and(|t| now.duration_since(*t) >= self.window)
        {
            times.pop_front();
        }
        if times.len() >= self.limit {
            let wait = times.front().map_or(self.window, |t| {
                self.window.saturating_sub(now.duration_since(*t))
            });
            return Err(wait.as_secs().max(1));
        }
        times.push_back(now);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::SlidingLimiter;
    use std::time::Duration;

    #[test]
    fn limits_per_key_within_the_window() {
        let l = SlidingLimiter::new(2, Duration::from_secs(3600));
        assert!(l.take("a").is_ok());
        assert!(l.take("a").is_ok());
        let wait = l.take("a").unwrap_err();
        assert!((3599..=3600).contains(&wait), "{wait}");
        assert!(l.take("b").is_ok());
        assert!(SlidingLimiter::new(0, Duration::from_secs(1)).take("a").is_err());
    }

    #[test]
    fn events_leave_the_window_as_it_slides() {
        let l = SlidingLimiter::new(1, Duration::from_millis(50));
        assert!(l.take("a").is_ok());
        assert!(l.take("a").is_err());
        std::thread::sleep(Duration::from_millis(60));
        assert!(l.take("a").is_ok());
    }
}
