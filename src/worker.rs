//! What the background workers (lifecycle, scrub) share.

use std::time::{Duration, Instant};

/// Spreads work so that at most `rate` units are done per second.
pub struct Throttle {
    rate: u32,
    start: Instant,
    done: u64,
}

impl Throttle {
    pub fn new(rate: u32) -> Self {
        Self {
            rate: rate.max(1),
            start: Instant::now(),
            done: 0,
        }
    }

    pub fn wait(&mut self, units: u64) {
        self.done += units;
        let due = Duration::from_secs_f64(self.done as f64 / f64::from(self.rate));
        if let Some(ahead) = due.checked_sub(self.start.elapsed()) {
            std::thread::sleep(ahead.min(Duration::from_secs(1)));
        }
    }
}
