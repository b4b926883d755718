//! Caps on open upload sessions, so a client cannot fill the store with abandoned ones.
//!
//! Sessions live in the store, where any process can continue them; counting them there
//! would cost a listing per `POST`. So each process counts the sessions *it* started and
//! has not seen finished or cancelled, by client address, and forgets one after the
//! upload age limit, when garbage collection removes it from the store anyway. A session
//! finished through another process sharing the store stays counted here until then.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use index_format::UploadId;

use crate::error::{ApiError, OciCode};

/// How many sessions may be open at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionLimits {
    /// In all, in this process.
    pub total: usize,
    /// Per client address.
    pub per_client: usize,
}

/// The open sessions this process started; cloning shares them.
#[derive(Clone)]
pub struct OpenSessions(Arc<Mutex<Counts>>);

struct Counts {
    limits: SessionLimits,
    max_age: Duration,
    /// Sessions and reservations (monolithic pushes in flight) per client.
    per_client: HashMap<IpAddr, usize>,
    total: usize,
    sessions: HashMap<UploadId, (IpAddr, Instant)>,
}

/// A slot taken for one session of one client, given back when dropped unless
/// [`Reservation::opened`] handed it to a session that outlives the request.
pub struct Reservation {
    sessions: OpenSessions,
    client: IpAddr,
    held: bool,
}

impl OpenSessions {
    /// No sessions yet; a session is forgotten `max_age` after it started.
    pub fn new(limits: SessionLimits, max_age: Duration) -> Self {
        Self(Arc::new(Mutex::new(Counts {
            limits,
            max_age,
            per_client: HashMap::new(),
            total: 0,
            sessions: HashMap::new(),
        })))
    }

    fn lock(&self) -> MutexGuard<'_, Counts> {
        // The counts stay consistent even if a holder panicked: each update is one step.
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Takes a slot for a session of `client` (unknown: one shared slot pool), or
    /// `429 TOOMANYREQUESTS` when the client or the process is at its cap.
    pub fn reserve(&self, client: Option<IpAddr>) -> Result<Reservation, ApiError> {
        let client = client.unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
        let mut c = self.lock();
        if c.full(client) {
            c.forget_expired();
        }
        if c.full(client) {
            let SessionLimits { total, per_client } = c.limits;
            return Err(ApiError::new(
                OciCode::TooManyRequests,
                format!(
                    "too many open upload sessions (at most {per_client} per client, {total} in all): finish or cancel some, or retry later"
                ),
            ));
        }
        c.total += 1;
        *c.per_client.entry(client).or_default() += 1;
        Ok(Reservation {
            sessions: self.clone(),
            client,
            held: true,
        })
    }

    /// A session this process started has ended (finished, cancelled or gone).
    pub fn close(&self, id: &UploadId) {
        let mut c = self.lock();
        if let Some((client, _)) = c.sessions.remove(id) {
            c.release(client);
        }
    }
}

impl Counts {
    fn full(&self, client: IpAddr) -> bool {
        self.total >= self.limits.total
            || self.per_client.get(&client).copied().unwrap_or(0) >= self.limits.per_client
    }

    fn release(&mut self, client: IpAddr) {
        self.total = self.total.saturating_sub(1);
        if let Some(n) = self.per_client.get_mut(&client) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                self.per_client.remove(&client);
            }
        }
    }

    /// Drops sessions old enough for garbage collection to have removed them.
    fn forget_expired(&mut self) {
        let max_age = self.max_age;
        let expired: Vec<UploadId> = self
            .sessions
            .iter()
            .filter(|(_, (_, at))| at.elapsed() >= max_age)
            .map(|(id, _)| id.clone())
            .collect();
        for id in expired {
            if let Some((client, _)) = self.sessions.remove(&id) {
                self.release(client);
            }
        }
    }
}

impl Reservation {
    /// The slot now belongs to session `id`, open until [`OpenSessions::close`].
    pub fn opened(mut self, id: &UploadId) {
        self.held = false;
        let mut c = self.sessions.lock();
        c.sessions.insert(id.clone(), (self.client, Instant::now()));
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        if self.held {
            self.sessions.lock().release(self.client);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(n: u128) -> UploadId {
        UploadId::from_u128(n)
    }

    #[test]
    fn caps_per_client_and_in_all() {
        let s = OpenSessions::new(
            SessionLimits {
                total: 3,
                per_client: 2,
            },
            Duration::from_secs(3600),
        );
        let (a, b) = (Some([10, 0, 0, 1].into()), Some([10, 0, 0, 2].into()));
        s.reserve(a).expect("1st").opened(&id(1));
        s.reserve(a).expect("2nd").opened(&id(2));
        assert!(s.reserve(a).is_err(), "a is at its cap");
        let in_flight = s.reserve(b).expect("b");
        assert!(s.reserve(b).is_err(), "the process is at its cap");
        drop(in_flight);
        s.reserve(b)
            .expect("a dropped reservation gives its slot back");
        s.close(&id(1));
        s.close(&id(1));
        s.reserve(a).expect("a closed session gives its slot back");
    }

    #[test]
    fn expired_sessions_are_forgotten() {
        let limits = SessionLimits {
            total: 1,
            per_client: 1,
        };
        let s = OpenSessions::new(limits, Duration::ZERO);
        s.reserve(None).expect("1st").opened(&id(1));
        s.reserve(None).expect("the first has expired");
    }
}
