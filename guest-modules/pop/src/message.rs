//! Messages as POP3 sees them: sizes counted with CRLF line endings, byte-stuffed lines,
//! a final CRLF even when the stored file lacks one, and UIDLs from Maildir names.

use sha2::{Digest, Sha256};

/// Longest UIDL RFC 1939 allows.
const MAX_UIDL: usize = 70;

/// Turns stored bytes (LF or CRLF line endings) into POP3's wire form, chunk by chunk.
pub struct Wire {
    /// Add a `.` before a line starting with `.`.
    stuff: bool,
    at_line_start: bool,
    prev_cr: bool,
    line_blank: bool,
    in_body: bool,
    /// Body lines still to send (TOP); `None` for all.
    body_lines_left: Option<u64>,
    /// Nothing more to send.
    pub done: bool,
}

impl Wire {
    /// The whole message (RETR) or its headers and `body_lines` lines (TOP).
    pub fn new(stuff: bool, body_lines: Option<u64>) -> Self {
        Wire {
            stuff,
            at_line_start: true,
            prev_cr: false,
            line_blank: true,
            in_body: false,
            body_lines_left: body_lines,
            done: false,
        }
    }

    /// Converts `input`, appending to `out`: a line at a time, copied in slices.
    pub fn feed(&mut self, mut input: &[u8], out: &mut Vec<u8>) {
        while !input.is_empty() && !self.done {
            if self.at_line_start && self.stuff && input[0] == b'.' {
                out.push(b'.');
            }
            let Some(end) = input.iter().position(|&b| b == b'\n') else {
                // A line continued in the next chunk.
                self.line_blank = self.line_blank && input.iter().all(|&b| b == b'\r');
                self.prev_cr = input.last() == Some(&b'\r');
                self.at_line_start = false;
                out.extend_from_slice(input);
                return;
            };
            let line = &input[..end];
            let cr_before = line.last().map_or(self.prev_cr, |&b| b == b'\r');
            self.line_blank = self.line_blank && line.iter().all(|&b| b == b'\r');
            out.extend_from_slice(line);
            if !cr_before {
                out.push(b'\r');
            }
            out.push(b'\n');
            self.prev_cr = false;
            self.end_line();
            input = &input[end + 1..];
        }
    }

    fn end_line(&mut self) {
        if !self.in_body {
            if self.line_blank {
                self.in_body = true;
                self.done = self.body_lines_left == Some(0);
            }
        } else if let Some(left) = &mut self.body_lines_left {
            *left = left.saturating_sub(1);
            self.done = *left == 0;
        }
        self.at_line_start = true;
        self.line_blank = true;
    }

    /// Ends the message: a last line without its newline gets CRLF.
    pub fn finish(&mut self, out: &mut Vec<u8>) {
        if !self.at_line_start && !self.done {
            out.extend_from_slice(b"\r\n");
        }
        self.done = true;
    }
}

/// Counts the size POP3 reports for a stored message fed in chunks: what [`Wire`] sends
/// without stuffing (CRLF line endings, a CRLF after a last line that lacks one), without
/// holding the message or its wire form.
#[derive(Default)]
pub struct WireSize {
    octets: u64,
    /// The last byte fed was `\r`: an LF starting the next chunk is already CRLF.
    prev_cr: bool,
    /// Something was fed after the last LF: a line [`Wire::finish`] ends with CRLF.
    open_line: bool,
}

impl WireSize {
    /// Counts `chunk`, the next bytes of the stored message: its length, plus one CR for
    /// each LF that has none before it. Eight bytes at a time (the wasm target has no
    /// vector instructions by default, and a byte loop made this most of a login's time).
    pub fn feed(&mut self, chunk: &[u8]) {
        let Some(&last) = chunk.last() else {
            return;
        };
        let (mut lfs, mut crlfs) = (0u64, 0u64);
        // The high bit of byte 0 when the byte before it was a CR.
        let mut carry = u64::from(self.prev_cr) << 7;
        let mut words = chunk.chunks_exact(8);
        for word in &mut words {
            let word = u64::from_le_bytes(word.try_into().expect("chunks of eight bytes"));
            let (lf, cr) = (bytes_equal(word, b'\n'), bytes_equal(word, b'\r'));
            lfs += u64::from(lf.count_ones());
            // A CR in byte k marks byte k + 1; the last byte's CR marks the next word.
            crlfs += u64::from((((cr << 8) | carry) & lf).count_ones());
            carry = (cr >> 63) << 7;
        }
        let mut prev_cr = carry != 0;
        for &b in words.remainder() {
            lfs += u64::from(b == b'\n');
            crlfs += u64::from(b == b'\n' && prev_cr);
            prev_cr = b == b'\r';
        }
        self.octets += chunk.len() as u64 + lfs - crlfs;
        self.prev_cr = prev_cr;
        self.open_line = last != b'\n';
    }

    /// The size, once every chunk was fed.
    pub fn total(&self) -> u64 {
        self.octets + if self.open_line { 2 } else { 0 }
    }
}

/// The high bit of each byte of `word` that equals `byte`, and no other bit. Exact (no
/// borrow crosses bytes): `(x & 0x7f) + 0x7f` sets a byte's high bit iff its low seven
/// bits are not all zero, `| x` iff any bit is set.
fn bytes_equal(word: u64, byte: u8) -> u64 {
    const LOW7: u64 = 0x7f7f_7f7f_7f7f_7f7f;
    let x = word ^ (0x0101_0101_0101_0101 * u64::from(byte));
    !(((x & LOW7) + LOW7) | x | LOW7)
}

/// The size POP3 reports for a stored message held whole (tests and fuzzing; sessions
/// count chunk by chunk with [`WireSize`]).
pub fn wire_size(stored: &[u8]) -> u64 {
    let mut size = WireSize::default();
    size.feed(stored);
    size.total()
}

/// `1 message` or `N messages`, as replies count them (RFC 1939: `+OK 2 messages`).
pub fn count(n: usize) -> String {
    match n {
        1 => "1 message".to_string(),
        n => format!("{n} messages"),
    }
}

/// The `,W=` size a Maildir writer (Dovecot, serverkit's tests) put in the name: the
/// CRLF size, so the message need not be read to list it.
pub fn size_from_name(name: &str) -> Option<u64> {
    let base = unique_name(name);
    base.split(',')
        .skip(1)
        .find_map(|field| field.strip_prefix("W="))
        .and_then(|w| w.parse().ok())
}

/// The Maildir unique name: the file name without its folder and `:2,FLAGS` suffix, which
/// other clients change; it never changes for the life of the message.
pub fn unique_name(name: &str) -> &str {
    let file = name.rsplit('/').next().unwrap_or(name);
    file.split(':').next().unwrap_or(file)
}

/// The UIDL of a message: its unique name when it is short and printable enough for RFC
/// 1939, otherwise a digest of it (stable all the same).
pub fn uidl(name: &str) -> String {
    let unique = unique_name(name);
    if !unique.is_empty()
        && unique.len() <= MAX_UIDL
        && unique.bytes().all(|b| (0x21..=0x7e).contains(&b))
    {
        return unique.to_string();
    }
    let digest = Sha256::digest(unique.as_bytes());
    digest[..20].iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wire(stored: &[u8], top: Option<u64>) -> String {
        let mut w = Wire::new(true, top);
        let mut out = Vec::new();
        w.feed(stored, &mut out);
        w.finish(&mut out);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn stuffs_converts_and_terminates() {
        let stored = b"Subject: t\n\nline one\n.leading dot\n..two dots\n.\nlast";
        assert_eq!(
            wire(stored, None),
            "Subject: t\r\n\r\nline one\r\n..leading dot\r\n...two dots\r\n..\r\nlast\r\n"
        );
        assert_eq!(
            wire_size(b"Subject: t\n\nline one\n.leading dot\n..two dots\n.\nlast\n"),
            59
        );
    }

    #[test]
    fn chunk_boundaries_change_nothing() {
        let stored: &[u8] = b"A: 1\r\n\r\n.x\r\nline\n.\n..\nend\r";
        let whole = wire(stored, None);
        for split in 0..stored.len() {
            let mut w = Wire::new(true, None);
            let mut out = Vec::new();
            w.feed(&stored[..split], &mut out);
            w.feed(&stored[split..], &mut out);
            w.finish(&mut out);
            assert_eq!(String::from_utf8(out).unwrap(), whole, "split at {split}");
        }
    }

    /// What `Wire` sends unstuffed, the oracle `WireSize` must match.
    fn converted_len(stored: &[u8]) -> u64 {
        let mut w = Wire::new(false, None);
        let mut out = Vec::new();
        w.feed(stored, &mut out);
        w.finish(&mut out);
        out.len() as u64
    }

    #[test]
    fn sizes_counted_in_chunks_match_the_wire() {
        let cases: [&[u8]; 9] = [
            b"",
            b"\n",
            b"\r\n",
            b"no newline",
            b"ends in cr\r",
            b"A: 1\r\n\r\n.x\r\nline\n.\n..\nend\r",
            b"\n\n\r\r\n\r\n\n",
            b"cr\rinside\n",
            b"Subject: t\n\nline one\n.leading dot\n..two dots\n.\nlast\n",
        ];
        for stored in cases {
            let expected = converted_len(stored);
            assert_eq!(wire_size(stored), expected, "{stored:?}");
            for a in 0..=stored.len() {
                for b in a..=stored.len() {
                    let mut size = WireSize::default();
                    for chunk in [&stored[..a], &stored[a..b], &stored[b..]] {
                        size.feed(chunk);
                    }
                    assert_eq!(size.total(), expected, "{stored:?} split at {a}, {b}");
                }
            }
        }
    }

    #[test]
    fn word_at_a_time_counting_matches_the_wire_on_mixed_input() {
        // A fixed pseudo-random stream over the bytes that matter, at every alignment.
        let mut state = 0x2545_f491_4f6c_dd1du64;
        let alphabet = b"\r\n.a\x8d\x0a\xff\x00";
        let stored: Vec<u8> = (0..4096)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                alphabet[(state % alphabet.len() as u64) as usize]
            })
            .collect();
        for start in 0..16 {
            for split in [0, 1, 7, 8, 9, 63, 64, 65, 1000, 2047] {
                let input = &stored[start..];
                let split = split.min(input.len());
                let mut size = WireSize::default();
                size.feed(&input[..split]);
                size.feed(&input[split..]);
                assert_eq!(
                    size.total(),
                    converted_len(input),
                    "at {start}, split {split}"
                );
            }
        }
        for byte in 0..=255u8 {
            let word = u64::from_le_bytes([byte, 0x0a, 0x0d, 0x8a, 0x8d, 0x0b, 0x0c, 0x7f]);
            let marks = bytes_equal(word, byte).to_le_bytes();
            for (k, mark) in marks.iter().enumerate() {
                let equal = word.to_le_bytes()[k] == byte;
                assert_eq!(*mark, if equal { 0x80 } else { 0 }, "byte {byte:#x} at {k}");
            }
        }
    }

    #[test]
    fn top_sends_headers_and_n_lines() {
        let stored = b"A: 1\r\nB: 2\n\none\ntwo\nthree\n";
        assert_eq!(wire(stored, Some(0)), "A: 1\r\nB: 2\r\n\r\n");
        assert_eq!(wire(stored, Some(2)), "A: 1\r\nB: 2\r\n\r\none\r\ntwo\r\n");
    }

    #[test]
    fn counts_are_singular_for_one() {
        assert_eq!(count(0), "0 messages");
        assert_eq!(count(1), "1 message");
        assert_eq!(count(2), "2 messages");
    }

    #[test]
    fn uidls_ignore_folder_and_flags() {
        assert_eq!(
            uidl("new/1700000000.M1P1.host,S=10,W=12"),
            "1700000000.M1P1.host,S=10,W=12"
        );
        assert_eq!(
            uidl("cur/1700000000.M1P1.host,S=10,W=12:2,S"),
            "1700000000.M1P1.host,S=10,W=12"
        );
        assert_eq!(size_from_name("cur/x,S=10,W=12:2,S"), Some(12));
        let long = format!("new/{}", "x".repeat(80));
        assert_eq!(uidl(&long).len(), 40);
    }
}
