//! Request heads: parsed by `httparse`, then checked for what httparse leaves to us:
//! framing (Content-Length, Transfer-Encoding), Host, and the persistent-connection rules.

use std::ops::Range;

/// Most header fields in one request; more is answered 431.
pub const MAX_HEADERS: usize = 100;

/// A parsed request head. Its pieces are copied into one string, so a request costs two
/// allocations however many fields it has.
#[derive(Debug, Clone)]
pub struct Request {
    /// The method, the target, then each field's name (lowercased) and value (as text,
    /// lossy, trimmed), back to back.
    text: String,
    /// Where the method ends and the target begins, in `text`.
    method_end: usize,
    /// Where the target ends.
    target_end: usize,
    /// Each field's name and value, as ranges of `text`.
    fields: Vec<(Range<u32>, Range<u32>)>,
    /// 0 for HTTP/1.0, 1 for HTTP/1.1.
    pub minor: u8,
    /// Length of the request body (from Content-Length).
    pub body_length: u64,
}

/// Why a head is refused; each maps to a status, and the connection is closed after it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeadError {
    /// 400: not HTTP, bad syntax, missing or repeated Host, ...
    Malformed,
    /// 400: conflicting or invalid Content-Length, any Transfer-Encoding (refused: a
    /// static server takes no request bodies it cannot delimit safely).
    Framing,
    /// 414: the request line alone is over the limit.
    UriTooLong,
    /// 431: the header section is over the limit, or has too many fields.
    HeadersTooLarge,
    /// 505: not HTTP/1.x.
    Version,
}

impl HeadError {
    /// The status code answered.
    pub fn status(self) -> u16 {
        match self {
            HeadError::Malformed | HeadError::Framing => 400,
            HeadError::UriTooLong => 414,
            HeadError::HeadersTooLarge => 431,
            HeadError::Version => 505,
        }
    }
}

/// Parses the start of `buf`: `Ok(Some((request, head_length)))` when a whole head is
/// there, `Ok(None)` when more bytes are needed (and allowed, under `max_bytes`).
pub fn parse(buf: &[u8], max_bytes: usize) -> Result<Option<(Request, usize)>, HeadError> {
    let mut fields = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut fields);
    let status = match req.parse(buf) {
        Ok(status) => status,
        Err(httparse::Error::TooManyHeaders) => return Err(HeadError::HeadersTooLarge),
        Err(httparse::Error::Version) => return Err(HeadError::Version),
        Err(_) => return Err(HeadError::Malformed),
    };
    let httparse::Status::Complete(length) = status else {
        return if buf.len() > max_bytes {
            Err(too_long(buf, max_bytes))
        } else {
            Ok(None)
        };
    };
    if length > max_bytes {
        return Err(too_long(buf, max_bytes));
    }
    let request = Request::new(&req, length);
    check(request).map(|r| Some((r, length)))
}

/// The error for a head over `max_bytes`: 414 if the request line alone is, else 431.
fn too_long(buf: &[u8], max_bytes: usize) -> HeadError {
    match buf.iter().position(|&b| b == b'\n') {
        Some(end) if end <= max_bytes => HeadError::HeadersTooLarge,
        _ => HeadError::UriTooLong,
    }
}

/// The checks httparse leaves to the server.
fn check(mut request: Request) -> Result<Request, HeadError> {
    if request.has("transfer-encoding") {
        return Err(HeadError::Framing);
    }
    let lengths: Vec<&str> = request.all("content-length").collect();
    let body_length = match lengths.as_slice() {
        [] => 0,
        [only] if !only.is_empty() && only.bytes().all(|b| b.is_ascii_digit()) => {
            only.parse().map_err(|_| HeadError::Framing)?
        }
        _ => return Err(HeadError::Framing),
    };
    request.body_length = body_length;
    let hosts = request.all("host").count();
    if hosts > 1 || (request.minor == 1 && hosts == 0) {
        return Err(HeadError::Malformed);
    }
    Ok(request)
}

impl Request {
    /// The request `httparse` parsed from a head of `length` bytes.
    fn new(parsed: &httparse::Request<'_, '_>, length: usize) -> Request {
        let mut text = String::with_capacity(length);
        text.push_str(parsed.method.unwrap_or_default());
        let method_end = text.len();
        text.push_str(parsed.path.unwrap_or_default());
        let target_end = text.len();
        let mut fields = Vec::with_capacity(parsed.headers.len());
        for field in parsed.headers.iter() {
            let name = span(&mut text, |text| {
                let start = text.len();
                text.push_str(field.name);
                text[start..].make_ascii_lowercase();
            });
            let value = span(&mut text, |text| push_lossy(text, field.value.trim_ascii()));
            fields.push((name, value));
        }
        Request {
            text,
            method_end,
            target_end,
            fields,
            minor: parsed.version.unwrap_or(1),
            body_length: 0,
        }
    }

    /// The method, as sent (methods are case-sensitive).
    pub fn method(&self) -> &str {
        &self.text[..self.method_end]
    }

    /// The request target, as sent.
    pub fn target(&self) -> &str {
        &self.text[self.method_end..self.target_end]
    }

    fn piece(&self, range: &Range<u32>) -> &str {
        &self.text[range.start as usize..range.end as usize]
    }

    /// Every value of header `name` (lowercase), in order. Names are compared as bytes:
    /// a request is asked for a dozen names, each against every field.
    pub fn all<'a, 'n>(&'a self, name: &'n str) -> impl Iterator<Item = &'a str> + use<'a, 'n> {
        let text = self.text.as_bytes();
        self.fields
            .iter()
            .filter(move |(n, _)| &text[n.start as usize..n.end as usize] == name.as_bytes())
            .map(|(_, v)| self.piece(v))
    }

    /// The first value of header `name` (lowercase).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.all(name).next()
    }

    fn has(&self, name: &str) -> bool {
        self.header(name).is_some()
    }

    /// Whether the client waits for `100 Continue` before sending the body it announced
    /// (RFC 9110 §10.1.1): an `Expect: 100-continue` on HTTP/1.1 with a body. An
    /// HTTP/1.0 client's expectation must be ignored, as must one without content.
    pub fn expects_continue(&self) -> bool {
        self.minor == 1
            && self.body_length > 0
            && self
                .all("expect")
                .flat_map(|v| v.split(','))
                .any(|t| t.trim().eq_ignore_ascii_case("100-continue"))
    }

    /// Whether the connection persists after this request: HTTP/1.1 unless
    /// `Connection: close`, HTTP/1.0 only with `Connection: keep-alive`.
    pub fn keep_alive(&self) -> bool {
        let mut tokens = self
            .all("connection")
            .flat_map(|v| v.split(','))
            .map(str::trim);
        if self.minor == 0 {
            tokens.any(|t| t.eq_ignore_ascii_case("keep-alive"))
        } else {
            !tokens.any(|t| t.eq_ignore_ascii_case("close"))
        }
    }
}

/// Appends `bytes` to `text` as text, each invalid sequence as U+FFFD (as
/// `String::from_utf8_lossy`); the common all-valid value in one check.
fn push_lossy(text: &mut String, bytes: &[u8]) {
    if let Ok(valid) = std::str::from_utf8(bytes) {
        text.push_str(valid);
        return;
    }
    for chunk in bytes.utf8_chunks() {
        text.push_str(chunk.valid());
        if !chunk.invalid().is_empty() {
            text.push(char::REPLACEMENT_CHARACTER);
        }
    }
}

/// Appends to `text` what `write` writes; the range it took.
fn span(text: &mut String, write: impl FnOnce(&mut String)) -> Range<u32> {
    let start = text.len() as u32;
    write(text);
    start..text.len() as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_all(raw: &str) -> Result<Option<(Request, usize)>, HeadError> {
        parse(raw.as_bytes(), 8192)
    }

    fn ok(raw: &str) -> Request {
        parse_all(raw).unwrap().unwrap().0
    }

    #[test]
    fn parses_heads_and_reports_their_length() {
        let raw = "GET /a HTTP/1.1\r\nHost: x\r\nRange: bytes=0-1\r\n\r\nGET /b";
        let (req, len) = parse_all(raw).unwrap().unwrap();
        assert_eq!((req.method(), req.target(), req.minor), ("GET", "/a", 1));
        assert_eq!(req.header("range"), Some("bytes=0-1"));
        assert_eq!(&raw[len..], "GET /b");
        assert!(parse_all("GET /a HTTP/1.1\r\nHo").unwrap().is_none());
    }

    #[test]
    fn names_are_lowercased_values_trimmed_and_bad_bytes_replaced() {
        let raw = b"GET /x HTTP/1.1\r\nHost: h\r\nX-Odd:  a\xffb \t\r\nACCEPT: */*\r\n\r\n";
        let (req, _) = parse(raw, 8192).unwrap().unwrap();
        assert_eq!(req.header("x-odd"), Some("a\u{FFFD}b"));
        assert_eq!(req.header("accept"), Some("*/*"));
        assert_eq!(req.all("host").collect::<Vec<_>>(), ["h"]);
        assert_eq!((req.method(), req.target()), ("GET", "/x"));
    }

    #[test]
    fn persistence_rules() {
        assert!(ok("GET / HTTP/1.1\r\nHost: x\r\n\r\n").keep_alive());
        assert!(!ok("GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").keep_alive());
        assert!(!ok("GET / HTTP/1.0\r\n\r\n").keep_alive());
        assert!(ok("GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n").keep_alive());
    }

    #[test]
    fn the_continue_expectation() {
        let expects = |raw: &str| ok(raw).expects_continue();
        assert!(expects(
            "POST / HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n"
        ));
        assert!(expects(
            "PUT / HTTP/1.1\r\nHost: x\r\nExpect: 100-Continue\r\nContent-Length: 1\r\n\r\n"
        ));
        assert!(!expects(
            "POST / HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n\r\n"
        ));
        assert!(!expects(
            "POST / HTTP/1.0\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n"
        ));
        assert!(!expects(
            "POST / HTTP/1.1\r\nHost: x\r\nExpect: 200-ok\r\nContent-Length: 5\r\n\r\n"
        ));
    }

    #[test]
    fn smuggling_shapes_are_refused() {
        for raw in [
            "GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n",
            "GET / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n",
            "GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n",
            "GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\n",
            "GET / HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n",
            "GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 1,1\r\n\r\n",
        ] {
            assert_eq!(
                parse_all(raw).map(|_| ()),
                Err(HeadError::Framing),
                "{raw:?}"
            );
        }
        for raw in [
            "GET / HTTP/1.1\r\n\r\n",
            "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
            "GET / HTTP/1.1\r\nHost : x\r\n\r\n",
            "GET / HTTP/1.1\r\nHost: x\r\n folded\r\n\r\n",
            "GET  / HTTP/1.1\r\nHost: x\r\n\r\n",
        ] {
            assert_eq!(
                parse_all(raw).map(|_| ()),
                Err(HeadError::Malformed),
                "{raw:?}"
            );
        }
        assert_eq!(
            parse_all("GET / HTTP/2.0\r\n\r\n").map(|_| ()),
            Err(HeadError::Version)
        );
    }

    #[test]
    fn oversize_lines_and_headers() {
        let long_line = format!("GET /{} HTTP/1.1\r\n", "a".repeat(9000));
        assert_eq!(
            parse_all(&long_line).map(|_| ()),
            Err(HeadError::UriTooLong)
        );
        let many = format!("GET / HTTP/1.1\r\nHost: x\r\n{}", "X-A: b\r\n".repeat(2000));
        assert_eq!(
            parse_all(&many).map(|_| ()),
            Err(HeadError::HeadersTooLarge)
        );
        let big = format!(
            "GET / HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\n\r\n",
            "b".repeat(9000)
        );
        assert_eq!(parse_all(&big).map(|_| ()), Err(HeadError::HeadersTooLarge));
    }
}
