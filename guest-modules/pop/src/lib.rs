//! pop: a POP3 server module (RFC 1939, RFC 2449 CAPA, RFC 5034 SASL PLAIN) whose users
//! and maildrops are found by a SQL query on a pool the host owns, serving Maildirs
//! beneath a directory the host opened in prestart.
//!
//! Layout: [`vocabulary`] (its c11n options), [`query`] (the maildrop query format),
//! [`command`] (parsing commands), [`message`] (sizes, byte-stuffing, UIDLs),
//! [`session`] (a session: reading lines, replies, STLS; its states as types:
//! [`authorization`], [`transaction`]). The contract comes from `serverkit-sdk`.

mod authorization;
mod command;
mod message;
mod query;
mod session;
mod transaction;
mod vocabulary;

use serverkit_sdk::config::text;
use serverkit_sdk::{Connection, Descriptor, Module, listen, prestart};

/// The pure logic that reads client input, for the fuzz targets in `fuzz/`; not an API.
#[doc(hidden)]
pub mod fuzzing {
    pub use crate::authorization::plain_credentials;
    pub use crate::command::{Command, parse as parse_command};
    pub use crate::message::{Wire, size_from_name, uidl, unique_name, wire_size};
    pub use crate::query::{Style, compile as compile_query};
}

struct Pop;

impl Module for Pop {
    fn describe() -> Descriptor {
        vocabulary::descriptor()
    }

    fn prestart() -> Result<(), String> {
        // A broken query format is an operator's error: refuse to start, naming it.
        let format = text("maildrop_query_format_string").unwrap_or_default();
        query::compile(&format, query::Style::Question)
            .map_err(|e| format!("maildrop_query_format_string: {e}"))?;
        listen::plain()?;
        let policy = text("plaintext_login").unwrap_or_default();
        if !["allowed", "local-only", "never"].contains(&policy.as_str()) {
            return Err(format!(
                "plaintext_login is `{policy}`: expected allowed, local-only or never"
            ));
        }
        // POP3's registered ALPN id: a client that offers only another protocol (a browser
        // offering HTTP) is refused at the handshake.
        listen::offer_alpn(&["pop3"])?;
        if text("certificate").is_some() {
            prestart::prepare_tls(listen::CERTIFICATE, listen::PRIVATE_KEY)
                .map_err(|e| format!("cannot use the certificate for STLS: {e:?}"))?;
        }
        listen::tls("tls_port")?;
        Ok(())
    }

    fn session(conn: Connection) -> Result<(), String> {
        session::serve(conn)
    }
}

serverkit_sdk::export!(Pop);
