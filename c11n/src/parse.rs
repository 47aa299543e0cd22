//! The parser: c11n text to a [`Document`], with every syntax error collected.
//!
//! Recursive descent over a [`Cursor`], two levels deep at most (sections hold settings,
//! lists hold scalars), so no input can exhaust the stack. After an error the parser
//! resynchronises at the next line, or at a `}` that may close the open section, and
//! skips any `{ ... }` block the broken line opened; that is what lets it report every
//! error in a file rather than the first.

mod values;

use crate::cursor::{Cursor, is_bare_char};
use crate::diagnostic::{Diagnostic, Diagnostics, Location};
use crate::syntax::{Document, Item, SectionBlock};

/// Parses c11n text. `file` names the text in diagnostics; it is not opened.
pub fn parse(file: &str, text: &str) -> Result<Document, Diagnostics> {
    let (document, diagnostics) = parse_recovering(file, text);
    if diagnostics.is_empty() {
        Ok(document)
    } else {
        Err(Diagnostics::new(diagnostics))
    }
}

/// Parses as much as can be made sense of, and returns it with the syntax errors, so
/// that [`load`](crate::load) can also check what did parse.
pub(crate) fn parse_recovering(file: &str, text: &str) -> (Document, Vec<Diagnostic>) {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let chars: Vec<char> = text.chars().collect();
    let mut parser = Parser {
        cur: Cursor::new(&chars),
        file,
        diagnostics: Vec::new(),
        swallowed_brace: None,
    };
    let items = parser.document();
    let document = Document {
        file: file.to_owned(),
        items,
    };
    (document, parser.diagnostics)
}

struct Parser<'a> {
    cur: Cursor<'a>,
    file: &'a str,
    diagnostics: Vec<Diagnostic>,
    /// The key and line of the last run-to-end-of-line value in the open section whose
    /// text ends with `}`: if the section is never closed, that `}` is the likely culprit.
    swallowed_brace: Option<(String, u32)>,
}

impl Parser<'_> {
    fn error(&mut self, location: Location, message: String, help: Option<String>) {
        self.diagnostics
            .push(Diagnostic::new(self.file, location, message).with_help(help));
    }

    /// Every loop that dispatches on the next character calls this, so that a branch
    /// that consumed nothing cannot hang the parser.
    fn ensure_progress(&mut self, start: usize) {
        if self.cur.offset() == start {
            self.cur.bump();
        }
    }

    fn document(&mut self) -> Vec<Item> {
        let mut items = Vec::new();
        loop {
            self.cur.skip_trivia();
            let start = self.cur.offset();
            let location = self.cur.location();
            match self.cur.peek() {
                None => return items,
                Some('}') => {
                    self.error(
                        location,
                        "unexpected `}`: no section is open".to_owned(),
                        Some("remove it, or look above for a `}` too many".to_owned()),
                    );
                    self.cur.bump();
                }
                Some(c) if is_bare_char(c) => items.extend(self.item(None)),
                Some(_) => {
                    let found = self.cur.describe();
                    let message = format!("expected an option or section name, found {found}");
                    self.error(location, message, None);
                    self.recover();
                }
            }
            self.ensure_progress(start);
        }
    }

    /// A setting or a section header, at a bare word. `enclosing` names the open
    /// section, where a section header is an error.
    fn item(&mut self, enclosing: Option<&str>) -> Option<Item> {
        let location = self.cur.location();
        let name = self.cur.bare_word();
        let name_end = self.cur.location();
        self.cur.skip_blanks();
        if self.cur.at_line_end() {
            // `=` or `{` may start the next line; anything else there is a new item.
            let mut ahead = self.cur.clone();
            ahead.skip_trivia();
            if matches!(ahead.peek(), Some('=' | '{')) {
                self.cur = ahead;
            }
        }
        match self.cur.peek() {
            Some('=') => {
                self.cur.bump();
                self.setting(name, location).map(Item::Setting)
            }
            Some('{') => self.section(name, location, None, enclosing),
            Some(c) if is_bare_char(c) || c == '"' => self.titled(name, location, enclosing),
            next => {
                let found = self.cur.describe();
                let at = if self.cur.at_line_end() {
                    name_end
                } else {
                    self.cur.location()
                };
                self.error(
                    at,
                    format!("expected `=` after `{name}`, found {found}"),
                    None,
                );
                // A `}` is left alone: it closes the open section, or is reported as stray.
                if next != Some('}') {
                    self.recover();
                }
                None
            }
        }
    }

    /// After `name WORD`: a titled section header if a `{` follows, else a broken line.
    fn titled(
        &mut self,
        name: String,
        location: Location,
        enclosing: Option<&str>,
    ) -> Option<Item> {
        let title_location = self.cur.location();
        let title_token = self.cur.describe();
        let title = if self.cur.peek() == Some('"') {
            self.quoted()?
        } else {
            self.cur.bare_word()
        };
        let mut ahead = self.cur.clone();
        ahead.skip_trivia();
        if ahead.peek() == Some('{') {
            self.cur = ahead;
            return self.section(name, location, Some((title, title_location)), enclosing);
        }
        self.cur.skip_blanks();
        let rest = self.cur.rest_of_line();
        if self.cur.at_line_end() {
            let message = format!("expected `=` after `{name}`, found {title_token}");
            let help = format!("write `{name} = {}`", title_token.trim_matches('`'));
            self.error(title_location, message, Some(help));
        } else if rest.contains('{') && !rest.contains('=') {
            let found = self.cur.describe();
            let message = format!("expected `{{` after `{name} {title}`, found {found}");
            let help = "a section header is `name {` or `name TITLE {`".to_owned();
            self.error(self.cur.location(), message, Some(help));
        } else {
            let message = format!("expected `=` after `{name}`, found {title_token}");
            self.error(title_location, message, None);
        }
        self.recover();
        None
    }

    /// At the `{` of a section header.
    fn section(
        &mut self,
        name: String,
        location: Location,
        title: Option<(String, Location)>,
        enclosing: Option<&str>,
    ) -> Option<Item> {
        if let Some(outer) = enclosing {
            let message = format!("section `{name}` cannot be inside section `{outer}`");
            let help = format!(
                "sections do not nest; if `{outer}` should end before this line, add its `}}`"
            );
            self.error(location, message, Some(help));
            self.skip_block();
            return None;
        }
        self.cur.bump();
        let settings = self.section_body(&name, location);
        Some(Item::Section(SectionBlock {
            name,
            location,
            title,
            settings,
        }))
    }

    /// Settings up to the closing `}`.
    fn section_body(&mut self, name: &str, location: Location) -> Vec<crate::syntax::Setting> {
        self.swallowed_brace = None;
        let mut settings = Vec::new();
        loop {
            self.cur.skip_trivia();
            let start = self.cur.offset();
            match self.cur.peek() {
                None => {
                    let help = match self.swallowed_brace.take() {
                        Some((key, line)) => format!(
                            "the value of `{key}` on line {line} runs to the end of its line, \
                             so the `}}` there is part of the value: put the `}}` on a line of its own"
                        ),
                        None => format!("add a `}}` after the last setting of `{name}`"),
                    };
                    let message = format!(
                        "section `{name}` is never closed: expected `}}` before end of file"
                    );
                    self.error(location, message, Some(help));
                    return settings;
                }
                Some('}') => {
                    self.cur.bump();
                    return settings;
                }
                Some(c) if is_bare_char(c) => {
                    if let Some(Item::Setting(setting)) = self.item(Some(name)) {
                        settings.push(setting);
                    }
                }
                Some(_) => {
                    let found = self.cur.describe();
                    let message = format!("expected an option name or `}}`, found {found}");
                    self.error(self.cur.location(), message, None);
                    self.recover();
                }
            }
            self.ensure_progress(start);
        }
    }

    /// Skips the rest of a broken line, stopping before a `}` (it may close the open
    /// section); a `{ ... }` block the line opens is skipped whole.
    fn recover(&mut self) {
        while let Some(c) = self.cur.peek() {
            match c {
                '\n' | '}' => return,
                '{' => {
                    self.skip_block();
                    return;
                }
                '"' => self.cur.skip_quoted(),
                '#' => self.cur.skip_to_line_end(),
                _ => {
                    self.cur.bump();
                }
            }
        }
    }

    /// At a `{`: skips to its matching `}`, nested braces included, without recursion.
    fn skip_block(&mut self) {
        let mut depth = 0usize;
        while let Some(c) = self.cur.peek() {
            match c {
                '{' => {
                    depth = depth.saturating_add(1);
                    self.cur.bump();
                }
                '}' => {
                    self.cur.bump();
                    depth = depth.saturating_sub(1);
                    if depth == 0 {
                        return;
                    }
                }
                '"' => self.cur.skip_quoted(),
                '#' => self.cur.skip_to_line_end(),
                _ => {
                    self.cur.bump();
                }
            }
        }
    }
}

#[cfg(test)]
mod tests;
