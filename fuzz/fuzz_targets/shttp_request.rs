//! shttp's request handling, pure parts: the head parser, then what the server does with
//! a parsed head (target path, persistence, conditionals, ranges, MIME type), on bytes
//! as a client sends them. Must never panic; ranges must stay inside the file; an access
//! log line is one line of printable ASCII whose quoted field no client byte can close.
#![no_main]

use libfuzzer_sys::fuzz_target;
use shttp::conditional::{self, Conditions, Validators};
use shttp::range::{self, Ranges};
use shttp::{access_log, mime, path, request};

fuzz_target!(|data: &[u8]| {
    // The first 8 bytes choose the file the request is about (size, mtime); the rest is
    // the request as received.
    let Some((file, raw)) = data.split_first_chunk::<8>() else {
        return;
    };
    let size = u64::from(u32::from_le_bytes(file[..4].try_into().unwrap())) % 100_000;
    let mtime = i64::from(i32::from_le_bytes(file[4..].try_into().unwrap()));
    // The session's default head limit, and a small one to reach the 414/431 paths.
    for max in [8192, 64] {
        let _ = request::parse(raw, max);
    }
    assert_logs_safely(&access_log::first_line(raw));
    let Ok(Some((req, length))) = request::parse(raw, 8192) else {
        return;
    };
    assert!(length <= raw.len());
    let _ = req.keep_alive();
    let _ = req.expects_continue();
    assert_logs_safely(&access_log::request_line(&req));
    if let Ok(target) = path::parse(req.target()) {
        assert!(
            !target.path.split('/').any(|s| s == ".." || s == "."),
            "{target:?}"
        );
        assert!(!target.path.starts_with('/') && !target.path.contains('\0'));
        let _ = target.is_hidden();
        let _ = mime::built_in(&target.path);
        let _ = mime::from_mime_types("text/html html htm\ntext/plain txt\n", &target.path);
    }
    let validators = Validators::new(mtime, size);
    let conditions = Conditions::of(&req);
    let _ = conditional::evaluate(&conditions, &validators);
    let _ = conditional::range_allowed(&conditions, &validators);
    if let Some(header) = req.header("range")
        && let Ranges::Parts(parts) = range::resolve(header, size)
    {
        assert!(!parts.is_empty() && parts.len() <= range::MAX_RANGES);
        for (offset, len) in parts {
            assert!(len > 0 && offset.checked_add(len).is_some_and(|end| end <= size));
        }
    }
});

/// The access log line of `request_line` has exactly the two quotes around it and
/// nothing but printable ASCII.
fn assert_logs_safely(request_line: &[u8]) {
    let line = access_log::line("127.0.0.1:1", request_line, 400, 0);
    assert!(line.bytes().all(|b| (b' '..=b'~').contains(&b)), "{line}");
    assert_eq!(line.matches('"').count(), 2, "{line}");
}
