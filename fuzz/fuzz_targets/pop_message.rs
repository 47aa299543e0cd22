//! pop's conversion of stored messages to the wire (CRLF, byte-stuffing, TOP), and UIDLs
//! from Maildir names. Must never panic, must not depend on how the file is chunked, and
//! the size LIST reports, counted chunk by chunk, must be what RETR sends (before
//! stuffing).
#![no_main]

use libfuzzer_sys::fuzz_target;
use pop::fuzzing::{Wire, WireSize, size_from_name, uidl, wire_size};

fuzz_target!(|data: &[u8]| {
    let Some((&split, stored)) = data.split_first() else {
        return;
    };
    let split = usize::from(split).min(stored.len());
    let convert = |stuff: bool, top: Option<u64>, chunks: &[&[u8]]| {
        let mut wire = Wire::new(stuff, top);
        let mut out = Vec::new();
        for chunk in chunks {
            wire.feed(chunk, &mut out);
        }
        wire.finish(&mut out);
        out
    };
    let whole = convert(true, None, &[stored]);
    assert_eq!(
        whole,
        convert(true, None, &[&stored[..split], &stored[split..]])
    );
    let unstuffed = convert(false, None, &[stored]).len() as u64;
    assert_eq!(wire_size(stored), unstuffed);
    let mut counted = WireSize::default();
    counted.feed(&stored[..split]);
    counted.feed(&stored[split..]);
    assert_eq!(counted.total(), unstuffed, "split at {split}");
    // Stuffed, no line is a lone "." (which would end the response early).
    assert!(
        !whole.split(|&b| b == b'\n').any(|l| l == b".\r"),
        "{whole:?}"
    );
    assert!(whole.is_empty() || whole.ends_with(b"\r\n"));
    let top = convert(true, Some(u64::from(split as u8 % 4)), &[stored]);
    assert!(whole.starts_with(&top));

    let name = String::from_utf8_lossy(stored);
    let id = uidl(&name);
    assert!(!id.is_empty() && id.len() <= 70 && id.bytes().all(|b| (0x21..=0x7e).contains(&b)));
    let _ = size_from_name(&name);
});
