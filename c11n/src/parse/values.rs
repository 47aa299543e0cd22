//! Values: bare words, the run-to-end-of-line bare value, quoted strings and lists.
//!
//! The bare value rule, needed to read ServerKit's own sample verbatim: a value that
//! starts with a bare word is that word alone when what follows it on its line (after
//! blanks) is nothing, a `#` comment, a `}` (closing the section, whatever comes after
//! it), or a lone `,` (which is then reported: settings take no separator). When
//! anything else follows, the value is the whole rest of the line from its first
//! character, trailing blanks trimmed, quotes and `#` included as text. So
//!
//! ```text
//! maildrop_query_format_string = select maildrop from EMailUsers where EMailUsers.user="%u"
//! ```
//!
//! is the text after `= `, while `pop { port = 110 }` is `110` followed by a `}`, and
//! `port = 110 # comment` is `110`. The rule does not apply inside lists, whose elements
//! are single words or quoted strings.

use super::Parser;
use crate::cursor::is_bare_char;
use crate::diagnostic::Location;
use crate::syntax::{RawKind, RawValue, Setting};

impl Parser<'_> {
    /// After `key =`.
    pub(super) fn setting(&mut self, key: String, key_location: Location) -> Option<Setting> {
        self.cur.skip_blanks();
        if self.cur.at_line_end() {
            // The value may start on a later line, unless what is there is plainly the
            // next item: then the value was left out.
            let mut ahead = self.cur.clone();
            ahead.skip_trivia();
            let missing = match ahead.peek() {
                Some('"' | '{') => false,
                Some(c) if is_bare_char(c) => ahead.looks_like_item_start(),
                _ => true,
            };
            if missing {
                let found = self.cur.describe();
                let message = format!("expected a value for `{key}`, found {found}");
                let help = format!("to set an empty string, write `{key} = \"\"`");
                self.error(self.cur.location(), message, Some(help));
                return None;
            }
            self.cur = ahead;
        }
        let location = self.cur.location();
        let kind = match self.cur.peek() {
            Some('"') => RawKind::Quoted(self.quoted()?),
            Some('{') => RawKind::List(self.list(&key)?),
            Some(c) if is_bare_char(c) => self.bare_value(&key),
            next => {
                let found = self.cur.describe();
                let message = format!("expected a value for `{key}`, found {found}");
                self.error(location, message, None);
                if next != Some('}') {
                    self.recover();
                }
                return None;
            }
        };
        self.end_of_setting(&key);
        Some(Setting {
            key,
            key_location,
            value: RawValue { kind, location },
        })
    }

    /// A value starting with a bare word: the word, or the rest of the line (see the
    /// module documentation).
    fn bare_value(&mut self, key: &str) -> RawKind {
        let start = self.cur.clone();
        let word = self.cur.bare_word();
        let mut after = self.cur.clone();
        after.skip_blanks();
        let ends_here = match after.peek() {
            Some('}') => true,
            Some(',') => {
                after.bump();
                after.skip_blanks();
                after.at_line_end()
            }
            _ => after.at_line_end(),
        };
        if ends_here {
            return RawKind::Bare(word);
        }
        let text = start.rest_of_line().trim_end().to_owned();
        self.cur.skip_to_line_end();
        if text.ends_with('}') {
            self.swallowed_brace = Some((key.to_owned(), start.location().line));
        }
        RawKind::Line(text)
    }

    /// After a value only a comment, or a `}` closing the section, may follow on its line.
    fn end_of_setting(&mut self, key: &str) {
        self.cur.skip_blanks();
        if self.cur.at_line_end() || self.cur.peek() == Some('}') {
            return;
        }
        let found = self.cur.describe();
        let help = if self.cur.peek() == Some(',') {
            format!("a list is written in braces: `{key} = {{a, b}}`")
        } else {
            "only a comment can follow a value on its line".to_owned()
        };
        let message = format!("unexpected {found} after the value of `{key}`");
        self.error(self.cur.location(), message, Some(help));
        self.recover();
    }

    /// At a `"`: the decoded string, or `None` if it is not closed on its line. An
    /// unknown escape is reported and kept as written.
    pub(super) fn quoted(&mut self) -> Option<String> {
        let open = self.cur.location();
        let token = self.cur.describe();
        self.cur.bump();
        let mut text = String::new();
        loop {
            match self.cur.peek() {
                None | Some('\n') => {
                    let end = self.cur.describe();
                    let message = format!(
                        "unterminated string {token}: expected a closing `\"` before {end}"
                    );
                    let help =
                        "a string ends on the line it starts on; write a line break as `\\n`";
                    self.error(open, message, Some(help.to_owned()));
                    return None;
                }
                Some('"') => {
                    self.cur.bump();
                    return Some(text);
                }
                Some('\\') => {
                    let at = self.cur.location();
                    self.cur.bump();
                    let decoded = match self.cur.peek() {
                        // Unterminated: the loop reports it.
                        None | Some('\n') => continue,
                        Some('"') => '"',
                        Some('\\') => '\\',
                        Some('n') => '\n',
                        Some('t') => '\t',
                        Some('r') => '\r',
                        Some(other) => {
                            let message = format!("unknown escape `\\{other}` in string {token}");
                            let help = "the escapes are `\\\"`, `\\\\`, `\\n`, `\\t` and `\\r`";
                            self.error(at, message, Some(help.to_owned()));
                            text.push('\\');
                            other
                        }
                    };
                    text.push(decoded);
                    self.cur.bump();
                }
                Some(c) => {
                    text.push(c);
                    self.cur.bump();
                }
            }
        }
    }

    /// At the `{` of a list value.
    fn list(&mut self, key: &str) -> Option<Vec<RawValue>> {
        let open = self.cur.location();
        self.cur.bump();
        let mut elements = Vec::new();
        loop {
            self.cur.skip_trivia();
            let start = self.cur.offset();
            let location = self.cur.location();
            let kind = match self.cur.peek() {
                None => {
                    self.unclosed_list(key, open, "end of file".to_owned());
                    return None;
                }
                Some('}') => {
                    self.cur.bump();
                    return Some(elements);
                }
                Some('"') => self.quoted().map(RawKind::Quoted),
                Some(c) if is_bare_char(c) => {
                    if self.cur.looks_like_item_start() {
                        let next = format!("{} on line {}", self.cur.describe(), location.line);
                        self.unclosed_list(key, open, next);
                        return None;
                    }
                    Some(RawKind::Bare(self.cur.bare_word()))
                }
                Some('{') => {
                    self.error(location, "lists cannot be nested".to_owned(), None);
                    self.skip_block();
                    continue;
                }
                Some(_) => {
                    let found = self.cur.describe();
                    let message = format!("expected a list element or `}}`, found {found}");
                    self.error(location, message, None);
                    self.cur.bump();
                    continue;
                }
            };
            let element = kind.map(|kind| RawValue { kind, location });
            self.list_separator(element.as_ref());
            elements.extend(element);
            self.ensure_progress(start);
        }
    }

    /// After a list element: a `,` is consumed; a `}`, the end of the file or the start
    /// of the next setting is left for the list loop; anything else is an error.
    fn list_separator(&mut self, element: Option<&RawValue>) {
        self.cur.skip_trivia();
        match self.cur.peek() {
            Some(',') => {
                self.cur.bump();
            }
            None | Some('}') => {}
            Some(c) if is_bare_char(c) && self.cur.looks_like_item_start() => {}
            Some(c) => {
                let found = self.cur.describe();
                let after = match element.map(|e| &e.kind) {
                    Some(RawKind::Bare(word)) => format!(" `{word}`"),
                    Some(RawKind::Quoted(text)) => format!(" `{}`", crate::value::render_str(text)),
                    _ => String::new(),
                };
                let message =
                    format!("expected `,` or `}}` after list element{after}, found {found}");
                self.error(self.cur.location(), message, None);
                // Words and strings are read as the next element; anything else is dropped.
                if !(is_bare_char(c) || c == '"') {
                    self.cur.bump();
                }
            }
        }
    }

    fn unclosed_list(&mut self, key: &str, open: Location, before: String) {
        let message = format!("list for `{key}` is never closed: expected `}}` before {before}");
        self.error(open, message, None);
    }
}
