//! Password brute-force brake: each failed login locks its user name and its client
//! address for a time that doubles with every further failure (1 s, 2 s, 4 s, ... up to
//! 5 minutes). A locked name or address is answered `429` before any password is checked,
//! so guessing costs wall-clock time, not just CPU. A success clears the user's count; an
//! address's count fades after 15 minutes without failures.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// First lock after one failure.
const BASE: Duration = Duration::from_secs(1);
/// The longest lock.
const MAX: Duration = Duration::from_secs(300);
/// A key with no failure for this long is forgotten.
const FORGET: Duration = Duration::from_secs(900);
/// Most keys tracked: beyond this, forgotten ones are pruned; if all are live, a new key
/// is not tracked (so an attacker with many addresses cannot grow memory without bound).
const MAX_KEYS: usize = 100_000;

#[derive(Debug, Clone, Copy)]
struct Entry {
    failures: u32,
    until: Instant,
    last: Instant,
}

/// Failure counts per user and per address.
#[derive(Debug, Default)]
pub struct Backoff {
    entries: Mutex<HashMap<String, Entry>>,
}

impl Backoff {
    /// How much longer the first locked key stays locked, if any is.
    pub fn locked(&self, keys: &[String], now: Instant) -> Option<Duration> {
        let map = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        keys.iter()
            .filter_map(|k| map.get(k))
            .filter(|e| e.until > now)
            .map(|e| e.until - now)
            .max()
    }

    /// Records a failed attempt against every key.
    pub fn failed(&self, keys: &[String], now: Instant) {
        let mut map = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        if map.len() >= MAX_KEYS {
            map.retain(|_, e| now.duration_since(e.last) < FORGET);
        }
        for k in keys {
            if map.len() >= MAX_KEYS && !map.contains_key(k) {
                continue;
            }
            let e = map.entry(k.clone()).or_insert(Entry {
                failures: 0,
                until: now,
                last: now,
            });
            if now.duration_since(e.last) >= FORGET {
                e.failures = 0;
            }
            e.failures = e.failures.saturating_add(1);
            let lock = BASE
                .saturating_mul(1u32 << (e.failures - 1).min(16))
                .min(MAX);
            e.until = now + lock;
            e.last = now;
        }
    }

    /// Forgets `key`'s failures (a successful login).
    pub fn succeeded(&self, key: &str) {
        let mut map = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        map.remove(key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locks_double_and_success_clears_the_user() {
        let b = Backoff::default();
        let t = Instant::now();
        let keys = ["user:a".to_owned(), "addr:x".to_owned()];
        assert_eq!(b.locked(&keys, t), None);
        b.failed(&keys, t);
        assert_eq!(b.locked(&keys, t), Some(BASE));
        assert_eq!(b.locked(&keys, t + BASE), None);
        b.failed(&keys, t + BASE);
        assert_eq!(b.locked(&keys, t + BASE), Some(BASE * 2));
        for _ in 0..20 {
            b.failed(&keys, t + BASE);
        }
        assert_eq!(b.locked(&keys, t + BASE), Some(MAX));
        b.succeeded("user:a");
        assert_eq!(b.locked(&keys[..1], t + BASE), None);
        assert_eq!(b.locked(&keys[1..], t + BASE), Some(MAX));
        b.failed(&keys[1..], t + BASE + FORGET);
        assert_eq!(b.locked(&keys[1..], t + BASE + FORGET), Some(BASE));
    }
}
