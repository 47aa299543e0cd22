//! The access log line, `peer "METHOD target HTTP/1.x" status body-bytes`, with every
//! byte a client chose escaped as nginx escapes its logs (`"`, `\`, control bytes and
//! bytes past ASCII become `\xHH`): no request can close the quoted field, forge the
//! fields after it, or start a line of its own.

use std::fmt::Write as _;

use crate::request::Request;

/// Most bytes of a refused request's first line copied into the log: the head may be up
/// to `max_header_bytes` (1 MiB), the host cuts log messages at 4 KiB, and escaping
/// can make each byte four.
pub const MAX_LOGGED_LINE_BYTES: usize = 1024;

/// `bytes` as log text: printable ASCII kept, `"`, `\` and everything else `\xHH`.
pub fn escape(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len());
    for &b in bytes {
        if (b' '..=b'~').contains(&b) && b != b'"' && b != b'\\' {
            out.push(b as char);
        } else {
            let _ = write!(out, "\\x{b:02X}");
        }
    }
    out
}

/// The request line of a parsed request, as the log shows it.
pub fn request_line(request: &Request) -> Vec<u8> {
    format!(
        "{} {} HTTP/1.{}",
        request.method(),
        request.target(),
        request.minor
    )
    .into_bytes()
}

/// The first line of a head that was refused (up to its LF, without the CR), cut at
/// `MAX_LOGGED_LINE_BYTES` with `...` after it.
pub fn first_line(buf: &[u8]) -> Vec<u8> {
    let end = buf.iter().position(|&b| b == b'\n').unwrap_or(buf.len());
    let line = buf[..end].strip_suffix(b"\r").unwrap_or(&buf[..end]);
    if line.len() <= MAX_LOGGED_LINE_BYTES {
        return line.to_vec();
    }
    let mut cut = line[..MAX_LOGGED_LINE_BYTES].to_vec();
    cut.extend_from_slice(b"...");
    cut
}

/// One access log line.
pub fn line(peer: &str, request_line: &[u8], status: u16, body_bytes: u64) -> String {
    format!(
        "{} \"{}\" {status} {body_bytes}",
        escape(peer.as_bytes()),
        escape(request_line)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_bytes_cannot_close_the_field_or_the_line() {
        let logged = line(
            "127.0.0.1:5000",
            b"GET /a\" 200 0 \"forged\\\x01\r\n\x7f\xc3\xa9 HTTP/1.1",
            404,
            153,
        );
        assert_eq!(
            logged,
            "127.0.0.1:5000 \"GET /a\\x22 200 0 \\x22forged\\x5C\\x01\\x0D\\x0A\\x7F\\xC3\\xA9 HTTP/1.1\" 404 153"
        );
        assert_eq!(logged.matches('"').count(), 2);
        assert!(logged.bytes().all(|b| (b' '..=b'~').contains(&b)));
    }

    #[test]
    fn a_refused_head_logs_its_first_line_cut_short() {
        assert_eq!(
            first_line(b"GET /\x01 HTTP/1.1\r\nHost: x\r\n\r\n"),
            b"GET /\x01 HTTP/1.1"
        );
        assert_eq!(first_line(b"GET /partial"), b"GET /partial");
        let long = vec![b'a'; 5000];
        let cut = first_line(&long);
        assert_eq!(cut.len(), MAX_LOGGED_LINE_BYTES + 3);
        assert!(cut.ends_with(b"a..."));
    }
}
