//! The pop section's options: the seed's, plus `maildrop_root`, the failed-login delay,
//! the default password scheme and the per-address guessing limits.

use serverkit_sdk::auth;
use serverkit_sdk::describe::{self, SERVERKIT_AUTHORS, option};
use serverkit_sdk::{Descriptor, OptionType, Version};

/// Who pop is and what its section accepts.
pub fn descriptor() -> Descriptor {
    Descriptor::new(
        "pop",
        "POP3 server: users and maildrops found by a SQL query, Maildir storage",
        Version::new(1, 0, 0),
    )
    .author(SERVERKIT_AUTHORS)
    .options([
        option(
            "database",
            OptionType::DatabaseRef,
            "Identifier of the database pool the maildrop query runs on",
        )
        .required(),
        describe::address_option("0.0.0.0"),
        describe::port_option(110),
        option(
            "tls_port",
            OptionType::Port,
            "TCP port for POP3S, TLS from the first byte (the host terminates it); needs certificate and private_key",
        ),
        option(
            "certificate",
            OptionType::Certificate,
            "PEM certificate chain for POP3S, read by the host as root",
        ),
        option(
            "private_key",
            OptionType::PrivateKey,
            "PEM private key for POP3S, read by the host as root; never seen by the module",
        ),
        describe::backlog_option(32),
        option(
            "maildrop_query_format_string",
            OptionType::Text,
            "SQL returning the user's maildrop; %u (user) and %p (password) become bound parameters; without %p its second column is the stored password, checked by the host (docs/pop.md)",
        )
        .required(),
        option(
            "maildrop_root",
            OptionType::Directory,
            "Directory every maildrop lies beneath; opened by the host at prestart",
        )
        .required(),
        option(
            "plaintext_login",
            OptionType::Text,
            "USER/PASS and AUTH without TLS: allowed, local-only (refused from non-loopback clients until STLS), or never",
        )
        .default_text("allowed"),
        option(
            "auth_failure_delay_ms",
            OptionType::Integer,
            "Milliseconds a failed login waits before its answer",
        )
        .default_integer(2000),
        option(
            "default_password_scheme",
            OptionType::Text,
            "Scheme of a stored password without a {SCHEME} prefix, as Dovecot's default_pass_scheme (CRYPT, SHA512-CRYPT, BLF-CRYPT, ARGON2ID, PBKDF2, SSHA512, PLAIN, ...)",
        )
        .default_text("CRYPT"),
    ])
    .options(auth::options())
}
