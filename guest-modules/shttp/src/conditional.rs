//! Validators and conditional requests (RFC 9110 §8.8, §13): strong ETags, Last-Modified,
//! and the evaluation order of If-Match, If-Unmodified-Since, If-None-Match,
//! If-Modified-Since and If-Range.

/// A file's validators.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Validators {
    /// Strong entity tag, quoted: `"mtime_hex-size_hex"` as nginx's.
    pub etag: String,
    /// Modification time, whole seconds since the epoch.
    pub modified: u64,
}

impl Validators {
    /// The validators of a file of `size` bytes modified at `mtime` seconds.
    pub fn new(mtime: i64, size: u64) -> Self {
        let modified = mtime.max(0) as u64;
        let mut etag = String::with_capacity(2 + 16 + 1 + 16);
        etag.push('"');
        crate::response::push_hex(&mut etag, modified);
        etag.push('-');
        crate::response::push_hex(&mut etag, size);
        etag.push('"');
        Validators { etag, modified }
    }
}

/// The conditional headers of a request.
#[derive(Debug, Default, Clone)]
pub struct Conditions<'a> {
    /// `If-Match`.
    pub if_match: Option<&'a str>,
    /// `If-Unmodified-Since`.
    pub if_unmodified_since: Option<&'a str>,
    /// `If-None-Match`.
    pub if_none_match: Option<&'a str>,
    /// `If-Modified-Since`.
    pub if_modified_since: Option<&'a str>,
    /// `If-Range`.
    pub if_range: Option<&'a str>,
}

impl<'a> Conditions<'a> {
    /// The conditional headers `req` carries.
    pub fn of(req: &'a crate::request::Request) -> Self {
        Conditions {
            if_match: req.header("if-match"),
            if_unmodified_since: req.header("if-unmodified-since"),
            if_none_match: req.header("if-none-match"),
            if_modified_since: req.header("if-modified-since"),
            if_range: req.header("if-range"),
        }
    }
}

/// What the conditions decide before the Range header is looked at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Go on and send the representation.
    Proceed,
    /// 304 Not Modified.
    NotModified,
    /// 412 Precondition Failed.
    PreconditionFailed,
}

/// Evaluates the preconditions for a GET or HEAD, in RFC 9110 §13.2.2 order.
pub fn evaluate(c: &Conditions<'_>, v: &Validators) -> Decision {
    if let Some(list) = c.if_match {
        if !list_matches(list, &v.etag, true) {
            return Decision::PreconditionFailed;
        }
    } else if let Some(date) = c.if_unmodified_since.and_then(seconds)
        && v.modified > date
    {
        return Decision::PreconditionFailed;
    }
    if let Some(list) = c.if_none_match {
        if list_matches(list, &v.etag, false) {
            return Decision::NotModified;
        }
    } else if let Some(date) = c.if_modified_since.and_then(seconds)
        && v.modified <= date
    {
        return Decision::NotModified;
    }
    Decision::Proceed
}

/// Whether a Range may be honoured: no If-Range, or one that matches exactly (a strong
/// ETag comparison, or a date equal to Last-Modified).
pub fn range_allowed(c: &Conditions<'_>, v: &Validators) -> bool {
    let Some(value) = c.if_range.map(str::trim) else {
        return true;
    };
    if value.starts_with('"') || value.starts_with("W/") {
        return !value.starts_with("W/") && value == v.etag;
    }
    seconds(value) == Some(v.modified)
}

/// Whether a comma-separated entity-tag list (or `*`) matches `etag`; weak comparison
/// ignores `W/` prefixes, strong comparison refuses weak tags.
fn list_matches(list: &str, etag: &str, strong: bool) -> bool {
    list.split(',').map(str::trim).any(|tag| {
        if tag == "*" {
            return true;
        }
        match tag.strip_prefix("W/") {
            Some(weak) => !strong && weak == etag,
            None => tag == etag,
        }
    })
}

/// An HTTP date as seconds since the epoch; `None` if it does not parse (then the header
/// is ignored, as RFC 9110 says).
fn seconds(date: &str) -> Option<u64> {
    let time = httpdate::parse_http_date(date.trim()).ok()?;
    time.duration_since(std::time::UNIX_EPOCH)
        .ok()
        .map(|d| d.as_secs())
}

#[cfg(test)]
mod tests {
    use super::*;

    const LM: &str = "Sun, 22 Nov 2026 04:00:00 GMT";
    const LM_SECS: i64 = 1_795_320_000;

    fn v() -> Validators {
        Validators::new(LM_SECS, 1024)
    }

    fn eval(c: Conditions<'_>) -> Decision {
        evaluate(&c, &v())
    }

    #[test]
    fn etag_is_strong_and_nginx_shaped() {
        assert_eq!(v().etag, format!("\"{:x}-400\"", LM_SECS));
    }

    #[test]
    fn if_none_match_uses_weak_comparison() {
        let etag = v().etag;
        let weak = format!("W/{etag}");
        let list = format!("\"x\", {etag}");
        for inm in [etag.as_str(), weak.as_str(), list.as_str(), "*"] {
            let c = Conditions {
                if_none_match: Some(inm),
                ..Default::default()
            };
            assert_eq!(eval(c), Decision::NotModified, "{inm}");
        }
        let c = Conditions {
            if_none_match: Some("\"other\""),
            if_modified_since: Some(LM),
            ..Default::default()
        };
        assert_eq!(
            eval(c),
            Decision::Proceed,
            "If-None-Match wins over If-Modified-Since"
        );
    }

    #[test]
    fn dates() {
        let c = Conditions {
            if_modified_since: Some(LM),
            ..Default::default()
        };
        assert_eq!(eval(c), Decision::NotModified);
        let c = Conditions {
            if_modified_since: Some("Thu, 01 Jan 1970 00:00:00 GMT"),
            ..Default::default()
        };
        assert_eq!(eval(c), Decision::Proceed);
        let c = Conditions {
            if_modified_since: Some("not a date"),
            ..Default::default()
        };
        assert_eq!(eval(c), Decision::Proceed);
        let c = Conditions {
            if_unmodified_since: Some("Thu, 01 Jan 1970 00:00:00 GMT"),
            ..Default::default()
        };
        assert_eq!(eval(c), Decision::PreconditionFailed);
        let c = Conditions {
            if_unmodified_since: Some(LM),
            ..Default::default()
        };
        assert_eq!(eval(c), Decision::Proceed);
    }

    #[test]
    fn if_match_is_strong() {
        let weak = format!("W/{}", v().etag);
        let c = Conditions {
            if_match: Some(&weak),
            ..Default::default()
        };
        assert_eq!(eval(c), Decision::PreconditionFailed);
        let etag = v().etag;
        let c = Conditions {
            if_match: Some(&etag),
            ..Default::default()
        };
        assert_eq!(eval(c), Decision::Proceed);
    }

    #[test]
    fn if_range() {
        let etag = v().etag;
        let weak = format!("W/{etag}");
        let allowed = |value: &str| {
            range_allowed(
                &Conditions {
                    if_range: Some(value),
                    ..Default::default()
                },
                &v(),
            )
        };
        assert!(allowed(&etag));
        assert!(allowed(LM));
        assert!(!allowed("\"stale\""));
        assert!(!allowed(&weak));
        assert!(!allowed("Thu, 01 Jan 1970 00:00:00 GMT"));
        assert!(range_allowed(&Conditions::default(), &v()));
    }
}
