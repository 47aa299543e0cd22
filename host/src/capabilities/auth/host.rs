//! The auth interface on a view of the instance: the module's [`Logins`], the session's
//! client address (never one the module names) and its standing with that address.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use wasmtime::component::HasData;

use super::schemes::{self, CAPS, MAX_INPUT_BYTES};
use super::{Logins, Policy, Session};
use crate::capabilities::log::written;
use crate::contract::bindings::auth::{self as wit, Host};
use crate::meter::{Channel, InstanceMeter};

/// What the auth interface reaches of an instance.
pub struct AuthView<'a> {
    /// The module's name, for log lines.
    pub module: &'a str,
    /// What the host keeps for the module's logins.
    pub logins: &'a Arc<Logins>,
    /// The session's client address (`None` outside a session).
    pub peer: Option<SocketAddr>,
    /// The session's standing with its address, once admitted.
    pub session: &'a mut Option<Session>,
    /// Its meter: memory-hard checks charge it, waits are counted in it.
    pub meter: &'a InstanceMeter,
}

/// The auth interface, for `add_to_linker`.
pub struct Auth;

impl HasData for Auth {
    type Data<'a> = AuthView<'a>;
}

impl Host for AuthView<'_> {
    async fn admit(&mut self, policy: wit::Policy) -> wasmtime::Result<bool> {
        let Some(peer) = self.peer else {
            return Ok(true);
        };
        if self.session.is_some() {
            return Ok(true); // admitted already: one count per session
        }
        let policy = Policy {
            max_unauthenticated: policy.max_unauthenticated,
            penalty: Duration::from_millis(policy.penalty_ms.into()),
            penalty_max: Duration::from_millis(policy.penalty_max_ms.into()),
            quiet: Duration::from_secs(policy.quiet_seconds.into()),
        };
        match self.logins.book.admit(peer.ip(), policy) {
            Some(session) => {
                *self.session = Some(session);
                Ok(true)
            }
            None => {
                if self.log_event() {
                    tracing::info!(
                        module = self.module,
                        peer = %peer,
                        limit = policy.max_unauthenticated,
                        "session refused: too many unauthenticated sessions from this address"
                    );
                }
                Ok(false)
            }
        }
    }

    async fn attempt(&mut self) -> wasmtime::Result<u32> {
        let Some(session) = self.session.as_mut() else {
            return Ok(0);
        };
        let delay = session.attempt();
        if !delay.is_zero() {
            let _waiting = self.meter.waits.enter(Channel::AuthPenalty);
            tokio::time::sleep(delay).await;
        }
        Ok(u32::try_from(delay.as_millis()).unwrap_or(u32::MAX))
    }

    async fn failed(&mut self) -> wasmtime::Result<()> {
        if let Some(session) = self.session.as_mut() {
            session.failed();
        }
        Ok(())
    }

    async fn succeeded(&mut self) -> wasmtime::Result<()> {
        if let Some(session) = self.session.as_mut() {
            session.succeeded();
        }
        Ok(())
    }

    async fn verify(
        &mut self,
        stored: String,
        password: String,
        default_scheme: String,
    ) -> wasmtime::Result<Result<bool, wit::Refusal>> {
        let result = self.check(&stored, password, &default_scheme).await;
        match &result {
            Ok(_) => self.logins.remember(&stored, &default_scheme),
            Err(refusal) => {
                self.logins
                    .book
                    .counters
                    .hashes_refused
                    .fetch_add(1, Ordering::Relaxed);
                if self.log_event() {
                    tracing::warn!(
                        module = self.module,
                        "stored password refused: {}",
                        describe(refusal)
                    );
                }
            }
        }
        Ok(result)
    }

    async fn verify_unknown(&mut self, password: String) -> wasmtime::Result<()> {
        let (stored, default_scheme) = self.logins.model();
        let _ = self.check(&stored, password, &default_scheme).await;
        Ok(())
    }
}

impl AuthView<'_> {
    /// Whether a line the module's calls cause may be logged: such lines count against
    /// its `max_log_events` like its own, or a module calling in a loop would flood the
    /// log past its budget (the counters still count every refusal).
    fn log_event(&self) -> bool {
        written(self.module, &self.meter.module, self.meter.log_event())
    }

    /// Checks `password` against `stored` on the blocking threads, in the module's turn,
    /// with a memory-hard scheme's memory charged to the module while it runs.
    async fn check(
        &self,
        stored: &str,
        password: String,
        default_scheme: &str,
    ) -> Result<bool, wit::Refusal> {
        if stored.len() > MAX_INPUT_BYTES
            || password.len() > MAX_INPUT_BYTES
            || default_scheme.len() > 64
        {
            return Err(wit::Refusal::TooLong);
        }
        let cost = schemes::cost(&schemes::split(stored, default_scheme), &CAPS).map_err(to_wit)?;
        let turn = {
            let _waiting = self.meter.waits.enter(Channel::PasswordCheck);
            self.logins
                .checks
                .clone()
                .acquire_owned()
                .await
                .map_err(|_| wit::Refusal::Busy)?
        };
        let memory = match cost.memory_bytes {
            0 => None,
            bytes => Some(self.meter.charge(bytes).ok_or(wit::Refusal::Busy)?),
        };
        let (stored, default_scheme) = (stored.to_string(), default_scheme.to_string());
        let _waiting = self.meter.waits.enter(Channel::PasswordCheck);
        // The turn and the memory charge go with the hash, not with this call: a session
        // that ends mid-check (its client gone, reclaimed) must not free them while the
        // hash still runs and holds the memory.
        tokio::task::spawn_blocking(move || {
            let _held = (turn, memory);
            schemes::verify(&schemes::split(&stored, &default_scheme), &password, &CAPS)
        })
        .await
        .map_err(|_| wit::Refusal::Busy)?
        .map_err(to_wit)
    }
}

fn to_wit(refusal: schemes::Refusal) -> wit::Refusal {
    match refusal {
        schemes::Refusal::UnknownScheme(s) => wit::Refusal::UnknownScheme(s),
        schemes::Refusal::Malformed(s) => wit::Refusal::Malformed(s),
        schemes::Refusal::TooCostly(s) => wit::Refusal::TooCostly(s),
        schemes::Refusal::TooLong => wit::Refusal::TooLong,
    }
}

fn describe(refusal: &wit::Refusal) -> String {
    match refusal {
        wit::Refusal::UnknownScheme(s) => format!("unknown password scheme `{s}`"),
        wit::Refusal::Malformed(s) => format!("malformed: {s}"),
        wit::Refusal::TooCostly(s) => {
            format!("{s}: above the host's cap (docs/pop.md, \"Moving from Dovecot\")")
        }
        wit::Refusal::TooLong => format!("longer than {MAX_INPUT_BYTES} bytes"),
        wit::Refusal::Busy => "the module's host_memory_mb cannot hold the check now".into(),
    }
}
