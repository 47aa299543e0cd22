//! pop: a POP3 server module (RFC 1939, RFC 2449 CAPA, RFC 5034 SASL PLAIN) whose users
//! and maildrops are found by a SQL query on a pool the host owns, serving Maildirs
//! beneath a directory the host opened in prestart.
//!
//! Layout: [`vocabulary`] (its c11n options), [`query`] (the maildrop query format),
//! [`lines`] (reading commands), [`command`] (parsing them), [`message`] (sizes,
//! byte-stuffing, UIDLs), [`session`] (a session, its states as types:
//! [`authorization`], [`transaction`]).

mod authorization;
mod command;
mod lines;
mod message;
mod query;
mod session;
mod transaction;
mod vocabulary;

/// The pure logic that reads client input, for the fuzz targets in `fuzz/`; not an API.
#[doc(hidden)]
pub mod fuzzing {
    pub use crate::authorization::plain_credentials;
    pub use crate::command::{Command, parse as parse_command};
    pub use crate::message::{Wire, size_from_name, uidl, unique_name, wire_size};
    pub use crate::query::{Style, compile as compile_query};
}

wit_bindgen::generate!({
    world: "module",
    path: "../../wit",
    with: {
        "wasi:io/streams@0.2.12": wasip2::io::streams,
        "wasi:io/poll@0.2.12": wasip2::io::poll,
        "wasi:io/error@0.2.12": wasip2::io::error,
    },
});

use serverkit::module::{config, prestart, types};
use types::ConfigValue;

struct Pop;

impl Guest for Pop {
    fn describe() -> Descriptor {
        vocabulary::descriptor()
    }

    fn construct() -> Result<(), String> {
        Ok(())
    }

    fn prestart() -> Result<(), String> {
        // A broken query format is an operator's error: refuse to start, naming it.
        let format = text("maildrop_query_format_string").unwrap_or_default();
        query::compile(&format, query::Style::Question)
            .map_err(|e| format!("maildrop_query_format_string: {e}"))?;
        let address = text("address").unwrap_or_else(|| "0.0.0.0".into());
        let port = integer("port").unwrap_or(110);
        let backlog = integer("backlog").unwrap_or(32);
        let port = u16::try_from(port).map_err(|_| format!("port {port} is out of range"))?;
        let backlog =
            u32::try_from(backlog).map_err(|_| format!("backlog {backlog} is out of range"))?;
        prestart::bind_listener(&address, port, backlog)
            .map_err(|e| format!("cannot listen on {address}:{port}: {e:?}"))?;
        let policy = text("plaintext_login").unwrap_or_default();
        if !["allowed", "local-only", "never"].contains(&policy.as_str()) {
            return Err(format!(
                "plaintext_login is `{policy}`: expected allowed, local-only or never"
            ));
        }
        if text("certificate").is_some() {
            prestart::prepare_tls("certificate", "private_key")
                .map_err(|e| format!("cannot use the certificate for STLS: {e:?}"))?;
        }
        if let Some(tls_port) = integer("tls_port") {
            let tls_port = u16::try_from(tls_port)
                .map_err(|_| format!("tls_port {tls_port} is out of range"))?;
            prestart::bind_tls_listener(&address, tls_port, backlog, "certificate", "private_key")
                .map_err(|e| format!("cannot listen with TLS on {address}:{tls_port}: {e:?}"))?;
        }
        Ok(())
    }

    fn operator() -> Result<(), String> {
        Ok(())
    }

    fn session(conn: Connection) -> Result<(), String> {
        session::serve(conn)
    }

    fn report() -> Vec<String> {
        Vec::new()
    }
}

/// A text option of this module's section.
pub(crate) fn text(key: &str) -> Option<String> {
    match config::get(key) {
        Some(ConfigValue::Text(s)) => Some(s),
        _ => None,
    }
}

/// An integer option of this module's section.
pub(crate) fn integer(key: &str) -> Option<i64> {
    match config::get(key) {
        Some(ConfigValue::Integer(i)) => Some(i),
        _ => None,
    }
}

export!(Pop);
