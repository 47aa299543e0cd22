//! shttp's request handling, pure parts: the head parser, then what the server does with
//! a parsed head (target path, persistence, conditionals, ranges, MIME type), on bytes
//! as a client sends them. Must never panic; ranges must stay inside the file.
#![no_main]

use libfuzzer_sys::fuzz_target;
use shttp::conditional::{self, Conditions, Validators};
use shttp::range::{self, Ranges};
use shttp::{mime, path, request};

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
    let Ok(Some((req, length))) = request::parse(raw, 8192) else {
        return;
    };
    assert!(length <= raw.len());
    let _ = req.keep_alive();
    if let Ok(target) = path::parse(&req.target) {
        assert!(
            !target.path.split('/').any(|s| s == ".." || s == "."),
            "{target:?}"
        );
        assert!(!target.path.starts_with('/') && !target.path.contains('\0'));
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
