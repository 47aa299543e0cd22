//! Guessing, slowed per client address, the way Dovecot's `auth_penalty` does it: each
//! login attempt from an address first waits a delay that doubles with every recent
//! failure from that address (up to a cap), and failures are forgotten after a quiet
//! period. Once an address has failed, its attempts still in flight count as failures
//! for the delay too, so guesses sent in parallel queue behind each other instead of all
//! being answered at once; an address with no recent failure waits nothing however many
//! logins it runs at once (a webmail host, clients behind one NAT address). A second
//! guard caps the sessions from one address that have not logged in yet.
//!
//! The state is per module (every session of the module shares it, across swaps) and
//! bounded: at most [`MAX_ADDRESSES`] addresses are tracked; the quietest are dropped
//! first. IPv6 addresses are keyed by their /64, what one host usually holds.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// Most addresses tracked per module (about 48 bytes each).
pub const MAX_ADDRESSES: usize = 65_536;

/// A module's guessing policy (its own options; the host only keeps the state).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    /// Most sessions from one address not logged in yet; 0 for no cap.
    pub max_unauthenticated: u32,
    /// The delay after the first failure; doubles with each further one. 0: no penalty.
    pub penalty: Duration,
    /// The longest delay.
    pub penalty_max: Duration,
    /// Failures are forgotten after this long without one.
    pub quiet: Duration,
}

impl Policy {
    /// The delay before an attempt when `failures` (recent and in flight) precede it.
    pub fn delay(&self, failures: u32) -> Duration {
        if failures == 0 || self.penalty.is_zero() {
            return Duration::ZERO;
        }
        let doubled = self.penalty.saturating_mul(1u32 << (failures - 1).min(20));
        doubled.min(self.penalty_max)
    }
}

/// What is known of one address.
#[derive(Debug, Default, Clone, Copy)]
struct Entry {
    unauthenticated: u32,
    in_flight: u32,
    failures: u32,
    last_failure: Option<Instant>,
}

impl Entry {
    fn idle(&self) -> bool {
        self.unauthenticated == 0 && self.in_flight == 0
    }
}

/// The module's counters, for the status report and the metrics.
#[derive(Debug, Default)]
pub struct Counters {
    /// Logins that failed.
    pub failed: AtomicU64,
    /// Attempts that waited a penalty.
    pub penalised: AtomicU64,
    /// Milliseconds waited in penalties, summed.
    pub penalty_ms: AtomicU64,
    /// Sessions refused over the per-address cap.
    pub refused: AtomicU64,
    /// Stored hashes refused (too costly, unknown scheme, malformed).
    pub hashes_refused: AtomicU64,
}

/// Every address a module has seen fail or start a session, and its counters.
#[derive(Debug, Default)]
pub struct AddressBook {
    entries: Mutex<HashMap<IpAddr, Entry>>,
    /// The counters.
    pub counters: Counters,
}

/// The key of `ip`: itself, or its /64 for IPv6 (an IPv4-mapped address as IPv4).
pub fn key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let bits = u128::from(v6) & !((1u128 << 64) - 1);
                IpAddr::V6(bits.into())
            }
        },
    }
}

impl AddressBook {
    fn lock(&self) -> MutexGuard<'_, HashMap<IpAddr, Entry>> {
        self.entries.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Addresses tracked now.
    pub fn tracked(&self) -> usize {
        self.lock().len()
    }

    /// Runs `change` on `ip`'s entry, creating it (making room) if needed; `None` when
    /// the book is full of busy addresses.
    fn with<T>(
        &self,
        ip: IpAddr,
        policy: &Policy,
        change: impl FnOnce(&mut Entry) -> T,
    ) -> Option<T> {
        let mut entries = self.lock();
        let now = Instant::now();
        if !entries.contains_key(&ip) && entries.len() >= MAX_ADDRESSES {
            entries
                .retain(|_, e| !e.idle() || e.last_failure.is_some_and(|t| now - t < policy.quiet));
            if entries.len() >= MAX_ADDRESSES {
                // Still full: drop the idle entry whose last failure is oldest.
                let oldest = entries
                    .iter()
                    .filter(|(_, e)| e.idle())
                    .min_by_key(|(_, e)| e.last_failure)
                    .map(|(ip, _)| *ip);
                entries.remove(&oldest?);
            }
        }
        let entry = entries.entry(ip).or_default();
        if entry.last_failure.is_some_and(|t| now - t >= policy.quiet) {
            entry.failures = 0;
            entry.last_failure = None;
        }
        let result = change(entry);
        if entry.idle() && entry.failures == 0 {
            entries.remove(&ip);
        }
        Some(result)
    }

    /// Counts a new unauthenticated session from `ip`; `None` (refused) over the cap.
    pub fn admit(self: &Arc<Self>, ip: IpAddr, policy: Policy) -> Option<Session> {
        let ip = key(ip);
        let admitted = self
            .with(ip, &policy, |e| {
                if policy.max_unauthenticated != 0
                    && e.unauthenticated >= policy.max_unauthenticated
                {
                    return false;
                }
                e.unauthenticated += 1;
                true
            })
            .unwrap_or(true);
        if !admitted {
            self.counters.refused.fetch_add(1, Ordering::Relaxed);
            return None;
        }
        Some(Session {
            book: self.clone(),
            ip,
            policy,
            unauthenticated: true,
            attempting: false,
        })
    }

    fn release(&self, session: &mut Session, failed: bool) {
        let (was_unauth, was_attempting) = (session.unauthenticated, session.attempting);
        session.attempting = false;
        if !failed {
            session.unauthenticated = false;
        }
        self.with(session.ip, &session.policy, |e| {
            if was_attempting {
                e.in_flight = e.in_flight.saturating_sub(1);
            }
            if failed {
                e.failures = e.failures.saturating_add(1);
                e.last_failure = Some(Instant::now());
            } else if was_unauth {
                e.unauthenticated = e.unauthenticated.saturating_sub(1);
            }
        });
    }
}

/// One session's standing with its address: counted unauthenticated until it logs in or
/// ends, and an attempt in flight between [`Session::attempt`] and its outcome.
#[derive(Debug)]
pub struct Session {
    book: Arc<AddressBook>,
    ip: IpAddr,
    policy: Policy,
    unauthenticated: bool,
    attempting: bool,
}

impl Session {
    /// Starts an attempt: the delay it must wait first (recent failures and the attempts
    /// already in flight from the address).
    pub fn attempt(&mut self) -> Duration {
        if self.attempting {
            // The module never reported the last outcome: it counts as a failure.
            self.failed();
        }
        self.attempting = true;
        let policy = self.policy;
        let delay = self
            .book
            .with(self.ip, &policy, |e| {
                let parallel = if e.failures == 0 { 0 } else { e.in_flight };
                let delay = policy.delay(e.failures.saturating_add(parallel));
                e.in_flight += 1;
                delay
            })
            .unwrap_or(policy.penalty_max);
        if !delay.is_zero() {
            let c = &self.book.counters;
            c.penalised.fetch_add(1, Ordering::Relaxed);
            c.penalty_ms
                .fetch_add(delay.as_millis() as u64, Ordering::Relaxed);
        }
        delay
    }

    /// The attempt failed: one more failure for the address.
    pub fn failed(&mut self) {
        self.book.counters.failed.fetch_add(1, Ordering::Relaxed);
        let book = self.book.clone();
        book.release(self, true);
    }

    /// The login succeeded: the session is no longer unauthenticated, and the address's
    /// failures are forgotten (as Dovecot does).
    pub fn succeeded(&mut self) {
        let book = self.book.clone();
        book.release(self, false);
        book.with(self.ip, &self.policy, |e| {
            e.failures = 0;
            e.last_failure = None;
        });
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        if self.attempting || self.unauthenticated {
            let (attempting, unauth) = (self.attempting, self.unauthenticated);
            self.book.with(self.ip, &self.policy, |e| {
                if attempting {
                    // A client that leaves mid-attempt (to skip the penalty) has failed.
                    e.in_flight = e.in_flight.saturating_sub(1);
                    e.failures = e.failures.saturating_add(1);
                    e.last_failure = Some(Instant::now());
                }
                if unauth {
                    e.unauthenticated = e.unauthenticated.saturating_sub(1);
                }
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(max: u32) -> Policy {
        Policy {
            max_unauthenticated: max,
            penalty: Duration::from_millis(100),
            penalty_max: Duration::from_millis(800),
            quiet: Duration::from_secs(3600),
        }
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn the_delay_doubles_per_failure_up_to_the_cap() {
        let p = policy(0);
        let ms: Vec<u128> = (0..7).map(|n| p.delay(n).as_millis()).collect();
        assert_eq!(ms, [0, 100, 200, 400, 800, 800, 800]);
        assert_eq!(p.delay(u32::MAX), Duration::from_millis(800));
    }

    #[test]
    fn parallel_attempts_queue_and_failures_accumulate() {
        let book = Arc::new(AddressBook::default());
        let mut sessions: Vec<Session> = (0..6)
            .map(|_| book.admit(ip("192.0.2.1"), policy(0)).unwrap())
            .collect();
        let attempt = |s: &mut [Session]| -> Vec<u128> {
            s.iter_mut().map(|s| s.attempt().as_millis()).collect()
        };
        // An address that has not failed waits nothing, however many log in at once.
        assert_eq!(attempt(&mut sessions[..3]), [0, 0, 0]);
        sessions[0].failed();
        // Once it has, its attempts in flight count too: parallel guesses queue
        // (1 failure + 2, 3, 4 in flight).
        assert_eq!(attempt(&mut sessions[3..]), [400, 800, 800]);
        for s in &mut sessions[1..] {
            s.failed();
        }
        let mut next = book.admit(ip("192.0.2.1"), policy(0)).unwrap();
        assert_eq!(next.attempt(), Duration::from_millis(800));
        // Another address is not penalised; a success forgets the failures.
        let mut other = book.admit(ip("192.0.2.2"), policy(0)).unwrap();
        assert_eq!(other.attempt(), Duration::ZERO);
        next.succeeded();
        let mut after = book.admit(ip("192.0.2.1"), policy(0)).unwrap();
        assert_eq!(after.attempt(), Duration::ZERO);
        assert_eq!(book.counters.failed.load(Ordering::Relaxed), 6);
    }

    #[test]
    fn failures_are_forgotten_after_the_quiet_period() {
        let book = Arc::new(AddressBook::default());
        let quick = Policy {
            quiet: Duration::from_millis(30),
            ..policy(0)
        };
        let mut s = book.admit(ip("192.0.2.1"), quick).unwrap();
        s.attempt();
        s.failed();
        assert_eq!(s.attempt(), Duration::from_millis(100));
        s.failed();
        std::thread::sleep(Duration::from_millis(40));
        assert_eq!(s.attempt(), Duration::ZERO);
    }

    #[test]
    fn unauthenticated_sessions_are_capped_per_address_and_released() {
        let book = Arc::new(AddressBook::default());
        let a = book.admit(ip("192.0.2.1"), policy(2)).unwrap();
        let mut b = book.admit(ip("192.0.2.1"), policy(2)).unwrap();
        assert!(book.admit(ip("192.0.2.1"), policy(2)).is_none());
        assert!(book.admit(ip("192.0.2.9"), policy(2)).is_some());
        assert_eq!(book.counters.refused.load(Ordering::Relaxed), 1);
        b.attempt();
        b.succeeded(); // logged in: no longer counted
        let _c = book.admit(ip("192.0.2.1"), policy(2)).unwrap();
        drop(a); // ended: no longer counted
        let _d = book.admit(ip("192.0.2.1"), policy(2)).unwrap();
        drop(b);
        assert!(book.admit(ip("192.0.2.1"), policy(2)).is_none());
    }

    #[test]
    fn leaving_mid_attempt_counts_as_a_failure() {
        let book = Arc::new(AddressBook::default());
        let mut s = book.admit(ip("192.0.2.1"), policy(0)).unwrap();
        s.attempt();
        drop(s);
        let mut t = book.admit(ip("192.0.2.1"), policy(0)).unwrap();
        assert_eq!(t.attempt(), Duration::from_millis(100));
    }

    #[test]
    fn ipv6_is_keyed_by_its_64_and_the_book_is_bounded() {
        assert_eq!(key(ip("2001:db8::1")), key(ip("2001:db8::ffff:1")));
        assert_ne!(key(ip("2001:db8::1")), key(ip("2001:db8:0:1::1")));
        assert_eq!(key(ip("::ffff:192.0.2.1")), ip("192.0.2.1"));
        let book = Arc::new(AddressBook::default());
        for i in 0..(MAX_ADDRESSES as u32 + 10) {
            let mut s = book.admit(IpAddr::V4(i.into()), policy(0)).unwrap();
            s.attempt();
            s.failed();
        }
        assert!(book.tracked() <= MAX_ADDRESSES);
    }
}
