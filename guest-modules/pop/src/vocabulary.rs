//! The pop section's options: the seed's, plus `maildrop_root` and the failed-login delay.

use crate::Descriptor;
use crate::types::{ConfigValue, OptionSpec, OptionType, Version};

fn option(
    name: &str,
    option_type: OptionType,
    default: Option<ConfigValue>,
    required: bool,
    help: &str,
) -> OptionSpec {
    OptionSpec {
        name: name.into(),
        option_type,
        default,
        required,
        help: help.into(),
    }
}

/// Who pop is and what its section accepts.
pub fn descriptor() -> Descriptor {
    use ConfigValue::{Integer, Text};
    let version = Version {
        major: 1,
        minor: 0,
        patch: 0,
    };
    Descriptor {
        name: "pop".into(),
        description: "POP3 server: users and maildrops found by a SQL query, Maildir storage"
            .into(),
        version,
        contract: version,
        authors: vec!["The serverkit developers".into()],
        vocabulary: vec![
            option(
                "database",
                OptionType::DatabaseRef,
                None,
                true,
                "Identifier of the database pool the maildrop query runs on",
            ),
            option(
                "address",
                OptionType::Address,
                Some(Text("0.0.0.0".into())),
                false,
                "Address to listen on",
            ),
            option(
                "port",
                OptionType::Port,
                Some(Integer(110)),
                false,
                "TCP port to listen on",
            ),
            option(
                "tls_port",
                OptionType::Port,
                None,
                false,
                "TCP port for POP3S, TLS from the first byte (the host terminates it); needs certificate and private_key",
            ),
            option(
                "certificate",
                OptionType::Certificate,
                None,
                false,
                "PEM certificate chain for POP3S, read by the host as root",
            ),
            option(
                "private_key",
                OptionType::PrivateKey,
                None,
                false,
                "PEM private key for POP3S, read by the host as root; never seen by the module",
            ),
            option(
                "backlog",
                OptionType::Integer,
                Some(Integer(32)),
                false,
                "Listen backlog passed to listen()",
            ),
            option(
                "maildrop_query_format_string",
                OptionType::Text,
                None,
                true,
                "SQL returning the user's maildrop; %u (user) and %p (password) become bound parameters (docs/pop.md)",
            ),
            option(
                "maildrop_root",
                OptionType::Directory,
                None,
                true,
                "Directory every maildrop lies beneath; opened by the host at prestart",
            ),
            option(
                "plaintext_login",
                OptionType::Text,
                Some(Text("allowed".into())),
                false,
                "USER/PASS and AUTH without TLS: allowed, local-only (refused from non-loopback clients until STLS), or never",
            ),
            option(
                "auth_failure_delay_ms",
                OptionType::Integer,
                Some(Integer(2000)),
                false,
                "Milliseconds a failed login waits before its answer",
            ),
        ],
    }
}
