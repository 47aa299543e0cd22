//! `serverkit:module/auth`: logging clients in. Stored passwords in Dovecot's `{SCHEME}`
//! syntax are checked by the host ([`schemes`]), on the module's blocking threads and
//! outside its CPU budget, with each scheme's cost capped; guessing is slowed per client
//! address ([`penalty`]). It grants nothing, so every module may use it; what it keeps
//! ([`Logins`]) is per module, in its holdings, shared by all its sessions.

pub mod host;
pub mod penalty;
pub mod schemes;

use std::sync::{Arc, Mutex};

use tokio::sync::Semaphore;

pub use penalty::{AddressBook, Policy, Session};

/// Password checks one module may run at once; more wait their turn (in the `password
/// check` wait channel), so a module asking for many costly checks takes two blocking
/// threads' worth of CPU, not the machine.
pub const CHECKS_AT_ONCE: usize = 2;

/// What the host keeps for one module's logins.
#[derive(Debug)]
pub struct Logins {
    /// Failures and unauthenticated sessions per client address.
    pub book: Arc<AddressBook>,
    /// Turns for password checks, each held by the hashing thread until it is done.
    pub checks: Arc<Semaphore>,
    /// The last stored value checked, the model for an unknown user's check.
    last_stored: Mutex<Option<(String, String)>>,
}

impl Default for Logins {
    fn default() -> Self {
        Logins {
            book: Arc::default(),
            checks: Arc::new(Semaphore::new(CHECKS_AT_ONCE)),
            last_stored: Mutex::new(None),
        }
    }
}

/// The model for an unknown user before any real hash was checked: Dovecot's default
/// scheme at its default cost (`doveadm pw -s SHA512-CRYPT`, of a random password).
const DUMMY: &str = "{SHA512-CRYPT}$6$/QT4DbOH//V1cXUl$uQFbee26O.w3LMegeYHPUnwB1YPrcGelq9cbFtZhcGQgFRa9jRBaYsk6TbN0lzWt4UG5/tcuKYlrmjbl75ynj0";

impl Logins {
    /// Remembers a stored value (and its default scheme) that checked without refusal.
    fn remember(&self, stored: &str, default_scheme: &str) {
        let mut last = self.last_stored.lock().unwrap_or_else(|p| p.into_inner());
        *last = Some((stored.to_string(), default_scheme.to_string()));
    }

    /// The value an unknown user's password is checked against.
    fn model(&self) -> (String, String) {
        let last = self.last_stored.lock().unwrap_or_else(|p| p.into_inner());
        last.clone()
            .unwrap_or_else(|| (DUMMY.to_string(), "PLAIN".to_string()))
    }
}
