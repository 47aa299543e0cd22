//! Request targets to paths beneath `doc_root`: percent-decoding and normalisation. This
//! is the first line of defence; the host's `RESOLVE_BENEATH` is the one that cannot fail.

use std::borrow::Cow;

use percent_encoding::percent_decode;

/// A request target, decoded and normalised.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// Segments joined by `/`, without leading slash; empty for the root.
    pub path: String,
    /// Whether the target's path ended with `/`.
    pub trailing_slash: bool,
    /// The query, without `?`, if any.
    pub query: Option<String>,
}

/// The one hidden name served whatever `hidden_files` says, at the root only: the
/// well-known URIs of RFC 8615 (ACME challenges, security.txt, ...).
pub const WELL_KNOWN: &str = ".well-known";

impl Target {
    /// Whether a segment of the path starts with `.` (a dotfile or a file beneath a
    /// dot-directory: `.env`, `.git/config`), `/.well-known/` at the root excepted.
    pub fn is_hidden(&self) -> bool {
        let mut segments = self.path.split('/').peekable();
        segments.next_if_eq(&WELL_KNOWN);
        segments.any(|s| s.starts_with('.'))
    }
}

/// Why a target is refused (all answered 400).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BadTarget {
    /// Neither `/path` nor `http(s)://authority/path`.
    Form,
    /// A NUL byte, an encoded `/` or `\`, a backslash, or bytes that are not UTF-8.
    Bytes,
    /// `..` above the root.
    AboveRoot,
}

/// Decodes the request target `raw` (origin-form or absolute-form).
pub fn parse(raw: &str) -> Result<Target, BadTarget> {
    let path = origin_part(raw)?;
    let (path, query) = match path.split_once('?') {
        Some((p, q)) => (p, Some(q.to_string())),
        None => (path, None),
    };
    if path.contains('#') {
        return Err(BadTarget::Form);
    }
    let trailing_slash = path.ends_with('/');
    // Built in place: a segment is appended after a `/`, and `..` cuts back to the last
    // `/` (a decoded segment never holds one).
    let mut joined = String::with_capacity(path.len());
    for raw_segment in path.split('/') {
        let segment = decode_segment(raw_segment)?;
        match &*segment {
            "" | "." => {}
            ".." if joined.is_empty() => return Err(BadTarget::AboveRoot),
            ".." => joined.truncate(joined.rfind('/').unwrap_or(0)),
            segment => {
                if !joined.is_empty() {
                    joined.push('/');
                }
                joined.push_str(segment);
            }
        }
    }
    // "/a/.." names the root directory: it is a directory URL either way.
    let trailing_slash = trailing_slash || path.ends_with("/.") || path.ends_with("/..");
    Ok(Target {
        path: joined,
        trailing_slash,
        query,
    })
}

/// The path-and-query of an origin-form or absolute-form target.
fn origin_part(raw: &str) -> Result<&str, BadTarget> {
    if raw.starts_with('/') {
        return Ok(raw);
    }
    let lower = raw.get(..8).unwrap_or(raw).to_ascii_lowercase();
    let rest = if lower.starts_with("http://") {
        &raw[7..]
    } else if lower.starts_with("https://") {
        &raw[8..]
    } else {
        return Err(BadTarget::Form);
    };
    match rest.find('/') {
        Some(slash) => Ok(&rest[slash..]),
        None if !rest.is_empty() && !rest.contains('?') => Ok("/"),
        None => Err(BadTarget::Form),
    }
}

/// One segment, percent-decoded; refuses what would change the path's meaning. Borrowed
/// when nothing in it is encoded (nearly every request).
fn decode_segment(raw: &str) -> Result<Cow<'_, str>, BadTarget> {
    if !raw.contains('%') {
        if raw.bytes().any(changes_meaning) {
            return Err(BadTarget::Bytes);
        }
        return Ok(Cow::Borrowed(raw));
    }
    let bytes: Vec<u8> = percent_decode(raw.as_bytes()).collect();
    if bytes.iter().copied().any(changes_meaning) {
        return Err(BadTarget::Bytes);
    }
    String::from_utf8(bytes)
        .map(Cow::Owned)
        .map_err(|_| BadTarget::Bytes)
}

/// A byte a segment may not hold: NUL, or a separator (`/` never reaches here undecoded,
/// since segments are split on it; `%2F` does).
fn changes_meaning(byte: u8) -> bool {
    matches!(byte, 0 | b'/' | b'\\')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn path(raw: &str) -> Result<String, BadTarget> {
        parse(raw).map(|t| t.path)
    }

    #[test]
    fn decodes_and_normalises() {
        assert_eq!(path("/"), Ok(String::new()));
        assert_eq!(
            path("/a%20file%20%26%20more.txt"),
            Ok("a file & more.txt".into())
        );
        assert_eq!(path("/sub/../index.txt"), Ok("index.txt".into()));
        assert_eq!(path("//a/./b//c"), Ok("a/b/c".into()));
        assert_eq!(path("/caf%C3%A9"), Ok("café".into()));
        let t = parse("/sub/?x=1").unwrap();
        assert_eq!((t.path.as_str(), t.trailing_slash), ("sub", true));
        assert_eq!(t.query.as_deref(), Some("x=1"));
        assert!(parse("/sub/..").unwrap().trailing_slash);
    }

    #[test]
    fn hidden_paths_are_those_with_a_dot_segment_but_well_known() {
        let hidden = |raw: &str| parse(raw).unwrap().is_hidden();
        for raw in [
            "/.env",
            "/.git/config",
            "/.git/",
            "/a/.hidden/dir/file",
            "/%2egit/config",
            "/a/..b",
            "/.well-known/.secret",
            "/sub/.well-known/x",
            "/.well-knownx/y",
        ] {
            assert!(hidden(raw), "{raw}");
        }
        for raw in [
            "/",
            "/index.html",
            "/a.b/c.d",
            "/sub/./x",
            "/a/b/../c",
            "/.well-known/acme-challenge/x",
            "/.well-known/",
            "/.well-known",
        ] {
            assert!(!hidden(raw), "{raw}");
        }
    }

    #[test]
    fn absolute_form_keeps_only_the_path() {
        assert_eq!(path("http://example.org/a/b"), Ok("a/b".into()));
        assert_eq!(path("HTTP://example.org"), Ok(String::new()));
        assert_eq!(path("http://x/../../etc/passwd"), Err(BadTarget::AboveRoot));
        assert_eq!(path("ftp://x/a"), Err(BadTarget::Form));
        assert_eq!(path("*"), Err(BadTarget::Form));
        assert_eq!(path("index.html"), Err(BadTarget::Form));
    }

    #[test]
    fn refuses_traversal_and_meaning_changing_bytes() {
        for (raw, why) in [
            ("/../../../etc/passwd", BadTarget::AboveRoot),
            ("/%2e%2e/%2e%2e/etc/passwd", BadTarget::AboveRoot),
            ("/.%2e/", BadTarget::AboveRoot),
            ("/sub/..%2f..%2f..%2fetc/passwd", BadTarget::Bytes),
            ("/%2e%2e%2f%2e%2e%2fetc%2fpasswd", BadTarget::Bytes),
            ("/..%5c..%5cetc/passwd", BadTarget::Bytes),
            ("/..\\..\\etc/passwd", BadTarget::Bytes),
            ("/index.txt%00.html", BadTarget::Bytes),
            ("/%c0%ae%c0%ae/etc/passwd", BadTarget::Bytes),
            ("/%ff", BadTarget::Bytes),
        ] {
            assert_eq!(path(raw), Err(why), "{raw}");
        }
        // Decoded once only: a double-encoded dot is a literal name.
        assert_eq!(
            path("/sub/%252e%252e/index.txt"),
            Ok("sub/%2e%2e/index.txt".into())
        );
    }
}
