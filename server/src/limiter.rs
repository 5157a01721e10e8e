//! Failed authentications are rate-limited per access key and per source address: after
//! too many failures in a window, further attempts are refused without being checked, so
//! a stolen key id cannot be brute-forced and one address cannot spray keys.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

pub struct AuthLimiter {
    window: Duration,
    per_key: u32,
    per_addr: u32,
    failures: Mutex<HashMap<String, (Instant, u32)>>,
}

impl Default for AuthLimiter {
    fn default() -> Self {
        Self::new(Duration::from_secs(60), 10, 30)
    }
}

impl AuthLimiter {
    pub fn new(window: Duration, per_key: u32, per_addr: u32) -> Self {
        Self {
            window,
            per_key,
            per_addr,
            failures: Mutex::new(HashMap::new()),
        }
    }

    fn slots(key: Option<&str>, addr: Option<IpAddr>) -> Vec<String> {
        let mut v = Vec::new();
        if let Some(k) = key {
            v.push(format!("key:{k}"));
        }
        if let Some(a) = addr {
            v.push(format!("addr:{a}"));
        }
        v
    }

    /// Whether attempts for `key` or from `addr` are refused for now.
    pub fn blocked(&self, key: Option<&str>, addr: Option<IpAddr>) -> bool {
        let now = Instant::now();
        let map = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        Self::slots(key, addr).iter().any(|slot| {
            let limit = if slot.starts_with("key:") {
                self.per_key
            } else {
                self.per_addr
            };
            map.get(slot)
                .is_some_and(|(start, n)| now.duration_since(*start) < self.window && *n >= limit)
        })
    }

    /// Counts a failed authentication.
    pub fn failed(&self, key: Option<&str>, addr: Option<IpAddr>) {
        let now = Instant::now();
        let mut map = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        if map.len() > 100_000 {
            map.retain(|_, (start, _)| now.duration_since(*start) < self.window);
        }
        for slot in Self::slots(key, addr) {
            let e = map.entry(slot).or_insert((now, 0));
            if now.duration_since(e.0) >= self.window {
                *e = (now, 0);
            }
            e.1 += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_a_key_after_its_limit_and_not_others() {
        let l = AuthLimiter::new(Duration::from_secs(60), 3, 100);
        let addr = Some("127.0.0.1".parse().expect("ip"));
        for _ in 0..3 {
            assert!(!l.blocked(Some("K"), addr));
            l.failed(Some("K"), addr);
        }
        assert!(l.blocked(Some("K"), addr));
        assert!(!l.blocked(Some("OTHER"), addr));
    }
}
