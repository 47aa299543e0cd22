//! shttp's vocabulary (its c11n section) and the settings a session reads from it.

use serverkit_sdk::config::{flag, integer, text};
use serverkit_sdk::describe::{self, option};
use serverkit_sdk::{OptionSpec, OptionType};

/// Bounds of `max_header_bytes`: below, ordinary browsers' heads would not fit; above, a
/// session's buffer could grow large.
const HEADER_BYTES_RANGE: (i64, i64) = (1024, 1024 * 1024);

/// Most request-body bytes read and discarded (on a GET, say) before answering 413 and
/// closing instead.
pub const MAX_DISCARDED_BODY: u64 = 1024 * 1024;

/// The options of the `shttp` section (the host adds its session options).
pub fn vocabulary() -> Vec<OptionSpec> {
    use OptionType::*;
    vec![
        describe::address_option("0.0.0.0"),
        describe::port_option(80),
        option(
            "tls_port",
            Port,
            "TCP port for HTTPS (the host terminates TLS); needs certificate and private_key",
        ),
        option(
            "certificate",
            Certificate,
            "PEM certificate chain for HTTPS, read by the host as root",
        ),
        option(
            "private_key",
            PrivateKey,
            "PEM private key for HTTPS, read by the host as root; never seen by the module",
        ),
        describe::backlog_option(511),
        option(
            "doc_root",
            Directory,
            "Directory served (relative to the personality); opened by the host, nothing outside it is reachable",
        )
        .required(),
        option("default_index", Text, "File served for a directory URL")
            .default_text("index.html"),
        option(
            "mime_types",
            File,
            "A mime.types file (e.g. /etc/mime.types); the built-in table of common web types when absent",
        ),
        option(
            "autoindex",
            Boolean,
            "List directories that have no default_index",
        )
        .default_flag(false),
        option(
            "autoindex_format",
            Text,
            "Listing format: `html` (nginx's columns: name, date, size) or `json` (as nginx's autoindex_format json)",
        )
        .default_text("html"),
        option(
            "hidden_files",
            Text,
            "Paths with a component starting with `.` (.git, .env): `deny` answers 404 and lists none, `allow` serves and lists them; /.well-known/ is always served",
        )
        .default_text("deny"),
        option(
            "cache_control",
            Text,
            "Cache-Control value sent with files (200, 206, 304), e.g. `public, max-age=3600`; none when absent",
        ),
        option(
            "hsts_max_age",
            Integer,
            "Seconds sent as `Strict-Transport-Security: max-age=N` on HTTPS responses; 0 sends none",
        )
        .default_integer(0),
        option(
            "header_timeout",
            Integer,
            "Seconds a client has to send a whole request head",
        )
        .default_integer(20),
        option(
            "keepalive_timeout",
            Integer,
            "Seconds an idle persistent connection is kept open",
        )
        .default_integer(65),
        option(
            "max_header_bytes",
            Integer,
            "Largest request head (request line and header fields) accepted; beyond it 414 or 431",
        )
        .default_integer(16384),
        option(
            "https_redirect",
            Boolean,
            "Answer every request on the plain port (but the health check) with 301 to the same URL on tls_port",
        )
        .default_flag(false),
        option(
            "access_log",
            Boolean,
            "Log one line per request into the host log (costly at high request rates)",
        )
        .default_flag(false),
        option(
            "health_check",
            Text,
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
    /// `autoindex_format`.
    pub autoindex_format: ListingFormat,
    /// `hidden_files`.
    pub hidden_files: HiddenFiles,
    /// `cache_control`, when set to a valid field value.
    pub cache_control: Option<String>,
    /// `hsts_max_age`, seconds (0: off).
    pub hsts_max_age: u64,
}

/// `hidden_files`: whether paths with a component starting with `.` are served.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HiddenFiles {
    /// 404, and left out of listings (the default: `.git/`, `.env` stay private).
    Deny,
    /// Served and listed like any other file.
    Allow,
}

/// `autoindex_format`: what a directory listing is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListingFormat {
    /// nginx's HTML page: name, modification date, size.
    Html,
    /// nginx's `autoindex_format json`.
    Json,
}

impl HiddenFiles {
    fn parse(value: &str) -> Option<Self> {
        match value {
            "deny" => Some(HiddenFiles::Deny),
            "allow" => Some(HiddenFiles::Allow),
            _ => None,
        }
    }
}

impl ListingFormat {
    fn parse(value: &str) -> Option<Self> {
        match value {
            "html" => Some(ListingFormat::Html),
            "json" => Some(ListingFormat::Json),
            _ => None,
        }
    }
}

/// Longest `cache_control` value: far beyond any real directive list, short enough to
/// ride on every file response.
const MAX_CACHE_CONTROL_BYTES: usize = 1024;

/// Whether `value` may be sent as a field value: visible ASCII, spaces and tabs inside,
/// so that no configured text can end the field or the head (RFC 9110 §5.5).
fn is_field_value(value: &str) -> bool {
    !value.is_empty()
        && value.len() <= MAX_CACHE_CONTROL_BYTES
        && value.trim() == value
        && value
            .bytes()
            .all(|b| b == b'\t' || (b' '..=b'~').contains(&b))
}

/// Checks the values the vocabulary's types cannot (run in `prestart`, so a bad value
/// stops the server from starting, naming the option and quoting the value).
pub fn check() -> Result<(), String> {
    if let Some(value) = text("hidden_files")
        && HiddenFiles::parse(&value).is_none()
    {
        return Err(format!(
            "hidden_files must be `deny` or `allow`, not `{value}`"
        ));
    }
    if let Some(value) = text("autoindex_format")
        && ListingFormat::parse(&value).is_none()
    {
        return Err(format!(
            "autoindex_format must be `html` or `json`, not `{value}`"
        ));
    }
    if let Some(value) = text("cache_control")
        && !is_field_value(&value)
    {
        return Err(format!(
            "cache_control must be a header field value (visible ASCII, spaces, at most \
             {MAX_CACHE_CONTROL_BYTES} bytes), not `{}`",
            value.escape_debug()
        ));
    }
    if let Some(seconds) = integer("hsts_max_age")
        && seconds < 0
    {
        return Err(format!(
            "hsts_max_age must be 0 or more seconds, not {seconds}"
        ));
    }
    Ok(())
}

impl Settings {
    /// Reads the section.
    pub fn load() -> Self {
        let seconds = |key, default: i64| {
            integer(key).unwrap_or(default).clamp(1, 86_400) as u64 * crate::io::SECOND
        };
        Settings {
            default_index: text("default_index").unwrap_or_else(|| "index.html".into()),
            autoindex: flag("autoindex"),
            header_timeout: seconds("header_timeout", 20),
            keepalive_timeout: seconds("keepalive_timeout", 65),
            max_header_bytes: integer("max_header_bytes")
                .unwrap_or(16384)
                .clamp(HEADER_BYTES_RANGE.0, HEADER_BYTES_RANGE.1)
                as usize,
            access_log: flag("access_log"),
            health_check: text("health_check"),
            mime_types: text("mime_types").is_some(),
            https_redirect: integer("tls_port").filter(|_| flag("https_redirect")),
            // A value `check` refused at startup can still arrive by a reload (which runs
            // no prestart): the safe reading is taken then.
            autoindex_format: text("autoindex_format")
                .and_then(|v| ListingFormat::parse(&v))
                .unwrap_or(ListingFormat::Html),
            hidden_files: text("hidden_files")
                .and_then(|v| HiddenFiles::parse(&v))
                .unwrap_or(HiddenFiles::Deny),
            cache_control: text("cache_control").filter(|v| is_field_value(v)),
            hsts_max_age: integer("hsts_max_age").unwrap_or(0).max(0) as u64,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn choices_parse_exactly() {
        assert_eq!(HiddenFiles::parse("deny"), Some(HiddenFiles::Deny));
        assert_eq!(HiddenFiles::parse("allow"), Some(HiddenFiles::Allow));
        assert_eq!(HiddenFiles::parse("Allow"), None);
        assert_eq!(ListingFormat::parse("json"), Some(ListingFormat::Json));
        assert_eq!(ListingFormat::parse("xml"), None);
    }

    #[test]
    fn only_clean_field_values_are_sent() {
        assert!(is_field_value("public, max-age=3600"));
        assert!(is_field_value("no-cache,\tmust-revalidate"));
        for bad in [
            "",
            " public",
            "public\r\nSet-Cookie: a=b",
            "max-age=1\n",
            "caf\u{e9}",
            &"a".repeat(MAX_CACHE_CONTROL_BYTES + 1),
        ] {
            assert!(!is_field_value(bad), "{bad:?}");
        }
    }
}
