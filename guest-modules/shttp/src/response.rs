//! Response heads and the small bodies shttp writes itself (errors, redirects).

use std::fmt::Write as _;
use std::time::SystemTime;

/// The `Server` field of every response.
const SERVER: &str = "serverkit-shttp";

/// The reason phrase of `status`.
pub fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        206 => "Partial Content",
        301 => "Moved Permanently",
        304 => "Not Modified",
        400 => "Bad Request",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        412 => "Precondition Failed",
        413 => "Content Too Large",
        414 => "URI Too Long",
        416 => "Range Not Satisfiable",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        505 => "HTTP Version Not Supported",
        _ => "Unknown",
    }
}

/// A response head being built.
pub struct Head {
    text: String,
}

impl Head {
    /// Status line, `Server` and `Date`.
    pub fn new(status: u16) -> Self {
        let mut text = String::with_capacity(256);
        let _ = write!(
            text,
            "HTTP/1.1 {status} {}\r\nServer: {SERVER}\r\nDate: {}\r\n",
            reason(status),
            httpdate::fmt_http_date(SystemTime::now())
        );
        Head { text }
    }

    /// Adds a field.
    pub fn field(mut self, name: &str, value: impl std::fmt::Display) -> Self {
        let _ = write!(self.text, "{name}: {value}\r\n");
        self
    }

    /// Adds `Content-Length`, the `Connection` field the persistence decision needs
    /// (`close`, or `keep-alive` for an HTTP/1.0 client), and the blank line.
    pub fn finish(self, length: u64, keep_alive: bool, minor: u8) -> Vec<u8> {
        let mut head = self.field("Content-Length", length);
        if !keep_alive {
            head = head.field("Connection", "close");
        } else if minor == 0 {
            head = head.field("Connection", "keep-alive");
        }
        let mut text = head.text;
        text.push_str("\r\n");
        text.into_bytes()
    }
}

/// The last second httpdate can format (23:59:59, 31 December 9999); it panics beyond.
const LAST_HTTP_DATE: i64 = 253_402_300_799;

/// `seconds` since the epoch as an HTTP date (RFC 9110 §5.6.7), clamped to what the
/// format can hold: a file's mtime is whatever the filesystem stores (tmpfs keeps any
/// 64-bit time), and formatting must never trap the session.
pub fn http_date(seconds: i64) -> String {
    let seconds = seconds.clamp(0, LAST_HTTP_DATE) as u64;
    httpdate::fmt_http_date(SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(seconds))
}

/// The small HTML body of an error status.
pub fn error_body(status: u16) -> String {
    let reason = reason(status);
    format!(
        "<!DOCTYPE html>\n<html><head><title>{status} {reason}</title></head>\
         <body><h1>{status} {reason}</h1></body></html>\n"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heads_carry_length_and_persistence() {
        let head = String::from_utf8(Head::new(404).field("X", 1).finish(10, false, 1)).unwrap();
        assert!(head.starts_with("HTTP/1.1 404 Not Found\r\nServer: serverkit-shttp\r\nDate: "));
        assert!(
            head.ends_with("X: 1\r\nContent-Length: 10\r\nConnection: close\r\n\r\n"),
            "{head}"
        );
        let head = String::from_utf8(Head::new(200).finish(0, true, 0)).unwrap();
        assert!(head.ends_with("Content-Length: 0\r\nConnection: keep-alive\r\n\r\n"));
        let head = String::from_utf8(Head::new(200).finish(0, true, 1)).unwrap();
        assert!(!head.contains("Connection"));
    }

    #[test]
    fn dates_outside_the_format_are_clamped_not_a_panic() {
        assert_eq!(http_date(0), "Thu, 01 Jan 1970 00:00:00 GMT");
        assert_eq!(http_date(-5), "Thu, 01 Jan 1970 00:00:00 GMT");
        assert_eq!(http_date(1_795_320_000), "Sun, 22 Nov 2026 04:00:00 GMT");
        assert_eq!(http_date(i64::MAX), "Fri, 31 Dec 9999 23:59:59 GMT");
    }
}
