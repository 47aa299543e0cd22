//! shttp's vocabulary (its c11n section) and the settings a session reads from it.

use crate::serverkit::module::config;
use crate::serverkit::module::types::{ConfigValue, OptionSpec, OptionType};

/// Bounds of `max_header_bytes`: below, ordinary browsers' heads would not fit; above, a
/// session's buffer could grow large.
const HEADER_BYTES_RANGE: (i64, i64) = (1024, 1024 * 1024);

/// Most request-body bytes read and discarded (on a GET, say) before answering 413 and
/// closing instead.
pub const MAX_DISCARDED_BODY: u64 = 1024 * 1024;

fn option(
    name: &str,
    option_type: OptionType,
    default: Option<ConfigValue>,
    help: &str,
) -> OptionSpec {
    OptionSpec {
        name: name.into(),
        option_type,
        default,
        required: false,
        help: help.into(),
    }
}

fn text(s: &str) -> Option<ConfigValue> {
    Some(ConfigValue::Text(s.into()))
}

fn int(i: i64) -> Option<ConfigValue> {
    Some(ConfigValue::Integer(i))
}

/// The options of the `shttp` section (the host adds its session options).
pub fn vocabulary() -> Vec<OptionSpec> {
    use OptionType::*;
    vec![
        option("address", Address, text("0.0.0.0"), "Address to listen on"),
        option("port", Port, int(80), "TCP port to listen on"),
        option(
            "tls_port",
            Port,
            None,
            "TCP port for HTTPS (the host terminates TLS); needs certificate and private_key",
        ),
        option(
            "certificate",
            Certificate,
            None,
            "PEM certificate chain for HTTPS, read by the host as root",
        ),
        option(
            "private_key",
            PrivateKey,
            None,
            "PEM private key for HTTPS, read by the host as root; never seen by the module",
        ),
        option(
            "backlog",
            Integer,
            int(511),
            "Listen backlog passed to listen()",
        ),
        option(
            "doc_root",
            Directory,
            text("www"),
            "Directory served (relative to the personality); opened by the host, nothing outside it is reachable",
        ),
        option(
            "default_index",
            Text,
            text("index.html"),
            "File served for a directory URL",
        ),
        option(
            "mime_types",
            File,
            None,
            "A mime.types file (e.g. /etc/mime.types); the built-in table of common web types when absent",
        ),
        option(
            "autoindex",
            Boolean,
            Some(ConfigValue::Boolean(false)),
            "List directories that have no default_index",
        ),
        option(
            "header_timeout",
            Integer,
            int(20),
            "Seconds a client has to send a whole request head",
        ),
        option(
            "keepalive_timeout",
            Integer,
            int(65),
            "Seconds an idle persistent connection is kept open",
        ),
        option(
            "max_header_bytes",
            Integer,
            int(16384),
            "Largest request head (request line and header fields) accepted; beyond it 414 or 431",
        ),
        option(
            "https_redirect",
            Boolean,
            Some(ConfigValue::Boolean(false)),
            "Answer every request on the plain port (but the health check) with 301 to the same URL on tls_port",
        ),
        option(
            "access_log",
            Boolean,
            Some(ConfigValue::Boolean(false)),
            "Log one line per request into the host log (costly at high request rates)",
        ),
        option(
            "health_check",
            Text,
            None,
            "A URL path answered with a constant `200 OK` (the constant-response mode)",
        ),
    ]
}

/// What a session needs from the section, read once per session.
#[derive(Debug, Clone)]
pub struct Settings {
    /// `default_index`.
    pub default_index: String,
    /// `autoindex`.
    pub autoindex: bool,
    /// `header_timeout`, nanoseconds.
    pub header_timeout: u64,
    /// `keepalive_timeout`, nanoseconds.
    pub keepalive_timeout: u64,
    /// `max_header_bytes`.
    pub max_header_bytes: usize,
    /// `access_log`.
    pub access_log: bool,
    /// `health_check`.
    pub health_check: Option<String>,
    /// Whether `mime_types` is set.
    pub mime_types: bool,
    /// `tls_port`, when `https_redirect` sends plain requests there.
    pub https_redirect: Option<i64>,
}

impl Settings {
    /// Reads the section.
    pub fn load() -> Self {
        let seconds = |key, default: i64| {
            integer(key).unwrap_or(default).clamp(1, 86_400) as u64 * crate::io::SECOND
        };
        Settings {
            default_index: string("default_index").unwrap_or_else(|| "index.html".into()),
            autoindex: boolean("autoindex"),
            header_timeout: seconds("header_timeout", 20),
            keepalive_timeout: seconds("keepalive_timeout", 65),
            max_header_bytes: integer("max_header_bytes")
                .unwrap_or(16384)
                .clamp(HEADER_BYTES_RANGE.0, HEADER_BYTES_RANGE.1)
                as usize,
            access_log: boolean("access_log"),
            health_check: string("health_check"),
            mime_types: string("mime_types").is_some(),
            https_redirect: integer("tls_port").filter(|_| boolean("https_redirect")),
        }
    }
}

/// A text option.
pub fn string(key: &str) -> Option<String> {
    match config::get(key) {
        Some(ConfigValue::Text(s)) => Some(s),
        _ => None,
    }
}

/// An integer option.
pub fn integer(key: &str) -> Option<i64> {
    match config::get(key) {
        Some(ConfigValue::Integer(i)) => Some(i),
        _ => None,
    }
}

fn boolean(key: &str) -> bool {
    matches!(config::get(key), Some(ConfigValue::Boolean(true)))
}
