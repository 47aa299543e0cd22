//! Logging clients in through the host (`serverkit:module/auth`): stored passwords in
//! Dovecot's `{SCHEME}value` syntax checked by the host, and guessing slowed per client
//! address. A module declares [`options`] in its vocabulary, calls [`admit`] when a session
//! starts, [`attempt`] before each check, then [`failed`] or [`succeeded`].

use crate::OptionSpec;
use crate::OptionType;
use crate::describe::option;

pub use crate::bindings::serverkit::module::auth::{
    Policy, Refusal, attempt, failed, succeeded, verify, verify_unknown,
};

/// The guessing options with their defaults (Dovecot's `auth_penalty`: 2 s doubling to
/// 15 s, forgotten after an hour), for a module's vocabulary.
pub fn options() -> [OptionSpec; 4] {
    [
        option(
            "auth_penalty_ms",
            OptionType::Integer,
            "Delay before a login attempt from an address with one recent failure; doubles with each further failure (attempts in flight count); 0 for none",
        )
        .default_integer(2000),
        option(
            "auth_penalty_max_ms",
            OptionType::Integer,
            "Longest delay auth_penalty_ms grows to",
        )
        .default_integer(15_000),
        option(
            "auth_penalty_quiet_seconds",
            OptionType::Integer,
            "An address's failures are forgotten after this many seconds without one",
        )
        .default_integer(3600),
        option(
            "max_unauthenticated_per_address",
            OptionType::Integer,
            "Most sessions from one client address that have not logged in yet; more are refused at once; 0 for no cap",
        )
        .default_integer(10),
    ]
}

/// The policy the section's [`options`] give.
pub fn policy() -> Policy {
    let read = |key: &str, default: u32| {
        crate::config::integer(key)
            .map(|v| v.clamp(0, i64::from(u32::MAX)) as u32)
            .unwrap_or(default)
    };
    Policy {
        max_unauthenticated: read("max_unauthenticated_per_address", 10),
        penalty_ms: read("auth_penalty_ms", 2000),
        penalty_max_ms: read("auth_penalty_max_ms", 15_000),
        quiet_seconds: read("auth_penalty_quiet_seconds", 3600),
    }
}

/// Counts this session as not logged in yet for its client's address, under the
/// section's policy; false when the address has too many such sessions already.
pub fn admit() -> bool {
    crate::bindings::serverkit::module::auth::admit(policy())
}

/// Checks `password` against `stored` (`None`: the user does not exist, and the same
/// work is done against a model hash so both take the same time). A refusal (unknown
/// scheme, too costly) is the operator's to fix; the host has logged it.
pub fn check(stored: Option<&str>, password: &str, default_scheme: &str) -> Result<bool, Refusal> {
    match stored {
        Some(stored) => verify(stored, password, default_scheme),
        None => {
            verify_unknown(password);
            Ok(false)
        }
    }
}
