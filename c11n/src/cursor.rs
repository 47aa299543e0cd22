//! A character cursor over c11n source: positions, lookahead, and the small skips the
//! parser shares.
//!
//! The source is held as `&[char]` so that columns count characters and every access is
//! a bounds-checked `get`: no byte offset can land inside a UTF-8 sequence, and nothing
//! here can panic on any input.

use crate::diagnostic::Location;

/// Whether `c` may appear in a bare word: anything but whitespace and the characters
/// that have a meaning of their own in c11n.
pub(crate) fn is_bare_char(c: char) -> bool {
    !c.is_whitespace() && !matches!(c, '{' | '}' | ',' | '=' | '#' | '"')
}

/// A position in the source. Cheap to copy, so lookahead is done on a clone.
#[derive(Clone)]
pub(crate) struct Cursor<'a> {
    chars: &'a [char],
    pos: usize,
    line: u32,
    column: u32,
}

impl<'a> Cursor<'a> {
    pub fn new(chars: &'a [char]) -> Cursor<'a> {
        Cursor {
            chars,
            pos: 0,
            line: 1,
            column: 1,
        }
    }

    pub fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }

    pub fn location(&self) -> Location {
        Location {
            line: self.line,
            column: self.column,
        }
    }

    /// Index into the source, to tell whether a loop made progress.
    pub fn offset(&self) -> usize {
        self.pos
    }

    pub fn bump(&mut self) -> Option<char> {
        let c = self.peek()?;
        self.pos += 1;
        // Saturating: a file of four billion lines is absurd, but must not panic.
        if c == '\n' {
            self.line = self.line.saturating_add(1);
            self.column = 1;
        } else {
            self.column = self.column.saturating_add(1);
        }
        Some(c)
    }

    /// Skips whitespace other than newlines.
    pub fn skip_blanks(&mut self) {
        while self.peek().is_some_and(|c| c != '\n' && c.is_whitespace()) {
            self.bump();
        }
    }

    /// Skips up to (not including) the next newline.
    pub fn skip_to_line_end(&mut self) {
        while self.peek().is_some_and(|c| c != '\n') {
            self.bump();
        }
    }

    /// Skips whitespace, newlines and `#` comments: everything between tokens.
    pub fn skip_trivia(&mut self) {
        loop {
            self.skip_blanks();
            match self.peek() {
                Some('\n') => {
                    self.bump();
                }
                Some('#') => self.skip_to_line_end(),
                _ => return,
            }
        }
    }

    /// Whether nothing but a comment is left on this line (after blanks were skipped).
    pub fn at_line_end(&self) -> bool {
        matches!(self.peek(), None | Some('\n') | Some('#'))
    }

    pub fn bare_word(&mut self) -> String {
        let mut word = String::new();
        while let Some(c) = self.peek().filter(|&c| is_bare_char(c)) {
            word.push(c);
            self.bump();
        }
        word
    }

    /// The rest of the current line, without its newline.
    pub fn rest_of_line(&self) -> String {
        self.chars
            .get(self.pos..)
            .unwrap_or_default()
            .iter()
            .take_while(|&&c| c != '\n')
            .collect()
    }

    /// Skips a quoted string without decoding it, up to its closing quote or the end of
    /// the line. For recovery and lookahead, where the text does not matter.
    pub fn skip_quoted(&mut self) {
        self.bump();
        while let Some(c) = self.peek() {
            match c {
                '\n' => return,
                '"' => {
                    self.bump();
                    return;
                }
                '\\' => {
                    self.bump();
                    if self.peek() != Some('\n') {
                        self.bump();
                    }
                }
                _ => {
                    self.bump();
                }
            }
        }
    }

    /// Whether a setting or a section header starts here: `word =`, `word {` or
    /// `word TITLE {` on one line. Used to notice that something before it was left
    /// unfinished (a missing value, an unclosed list).
    pub fn looks_like_item_start(&self) -> bool {
        let mut ahead = self.clone();
        if ahead.bare_word().is_empty() {
            return false;
        }
        ahead.skip_blanks();
        match ahead.peek() {
            Some('=' | '{') => true,
            Some('"') => {
                ahead.skip_quoted();
                ahead.skip_blanks();
                ahead.peek() == Some('{')
            }
            Some(c) if is_bare_char(c) => {
                ahead.bare_word();
                ahead.skip_blanks();
                ahead.peek() == Some('{')
            }
            _ => false,
        }
    }

    /// The token here as an error message quotes it: "`word`", "`=`", "`\"text\"`",
    /// "end of line" or "end of file".
    pub fn describe(&self) -> String {
        match self.peek() {
            None => "end of file".to_owned(),
            Some('\n' | '#') => "end of line".to_owned(),
            Some('"') => {
                let mut end = self.clone();
                end.skip_quoted();
                let text: String = self
                    .chars
                    .get(self.pos..end.pos)
                    .unwrap_or_default()
                    .iter()
                    .collect();
                format!("`{}`", text.trim_end())
            }
            Some(c) if is_bare_char(c) => format!("`{}`", self.clone().bare_word()),
            Some(c) => format!("`{c}`"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chars(s: &str) -> Vec<char> {
        s.chars().collect()
    }

    #[test]
    fn columns_count_characters_and_lines_restart_them() {
        let text = chars("é=1\nab");
        let mut cur = Cursor::new(&text);
        cur.bump();
        assert_eq!(cur.location(), Location { line: 1, column: 2 });
        cur.skip_to_line_end();
        cur.bump();
        assert_eq!(cur.location(), Location { line: 2, column: 1 });
    }

    #[test]
    fn trivia_covers_comments_and_newlines() {
        let text = chars("  # note\n\t\n  key");
        let mut cur = Cursor::new(&text);
        cur.skip_trivia();
        assert_eq!(cur.bare_word(), "key");
    }

    #[test]
    fn item_starts() {
        for yes in ["a = 1", "a{", "a T {", "a \"T x\" {"] {
            assert!(Cursor::new(&chars(yes)).looks_like_item_start(), "{yes}");
        }
        for no in ["a", "a b", "a, b", "= 1", "a\n= 1"] {
            assert!(!Cursor::new(&chars(no)).looks_like_item_start(), "{no}");
        }
    }

    #[test]
    fn describes_tokens() {
        let d = |s: &str| Cursor::new(&chars(s)).describe();
        assert_eq!(d(""), "end of file");
        assert_eq!(d("\nx"), "end of line");
        assert_eq!(d("# c"), "end of line");
        assert_eq!(d("word}"), "`word`");
        assert_eq!(d("=x"), "`=`");
        assert_eq!(d("\"a \\\" b\" c"), "`\"a \\\" b\"`");
        assert_eq!(d("\"open  \nx"), "`\"open`");
    }
}
