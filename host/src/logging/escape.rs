//! What makes a log line safe to print: every control character from an event's text is
//! escaped, so one event stays one line and nothing in it can drive a terminal.
//!
//! The rule, the same for stderr and syslog: a character of Unicode category Cc (C0
//! `U+0000`-`U+001F`, DEL `U+007F`, C1 `U+0080`-`U+009F`) becomes `\xHH`, its code point
//! in two lowercase hex digits: a newline is `\x0a`, a carriage return `\x0d`, ESC `\x1b`,
//! a tab `\x09`, CSI `\x9b`. Nothing else changes, backslashes included: the aim is that
//! input cannot forge a line or a colour, not that the escaping can be undone.

use std::borrow::Cow;
use std::fmt::Write as _;

/// `text` with every control character written as `\xHH`; borrowed when there is none
/// (the common case costs no copy).
pub fn escape(text: &str) -> Cow<'_, str> {
    if !text.chars().any(char::is_control) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    escape_into(&mut out, text);
    Cow::Owned(out)
}

/// Appends `text` to `out`, control characters written as `\xHH`.
pub fn escape_into(out: &mut String, text: &str) {
    for c in text.chars() {
        if c.is_control() {
            // Cc code points are all below 0x100, so two digits always suffice.
            let _ = write!(out, "\\x{:02x}", u32::from(c));
        } else {
            out.push(c);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_text_is_borrowed_unchanged() {
        let text = "user \"demo\" logged in from 127.0.0.1 \\ é ✓";
        assert!(matches!(escape(text), Cow::Borrowed(t) if t == text));
    }

    #[test]
    fn line_breaks_cannot_forge_a_second_line() {
        assert_eq!(
            escape("bad\n2026-01-01T00:00:00Z  INFO serving\r"),
            "bad\\x0a2026-01-01T00:00:00Z  INFO serving\\x0d"
        );
    }

    #[test]
    fn terminal_controls_are_escaped_c0_del_and_c1() {
        assert_eq!(escape("\x1b[31mred\x1b[0m"), "\\x1b[31mred\\x1b[0m");
        assert_eq!(
            escape("a\tb\0c\x07\x08\x7f"),
            "a\\x09b\\x00c\\x07\\x08\\x7f"
        );
        assert_eq!(escape("\u{9b}31m \u{85}"), "\\x9b31m \\x85");
    }

    #[test]
    fn every_control_character_and_nothing_else_is_escaped() {
        for c in (0u32..0x2000).filter_map(char::from_u32) {
            let escaped = escape(c.encode_utf8(&mut [0; 4])).into_owned();
            if c.is_control() {
                assert_eq!(escaped, format!("\\x{:02x}", u32::from(c)));
                assert!(!escaped.chars().any(char::is_control));
            } else {
                assert_eq!(escaped, c.to_string());
            }
        }
    }
}
