//! Positions in a c11n file and the errors that point at them.

use std::fmt;

/// A position in a c11n file: 1-based line, and 1-based column counted in characters
/// (not bytes), so editors and humans agree on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Location {
    /// Line number, starting at 1.
    pub line: u32,
    /// Column number in characters, starting at 1.
    pub column: u32,
}

impl Location {
    /// The first character of a file.
    pub const START: Location = Location { line: 1, column: 1 };
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.line, self.column)
    }
}

/// One error in a c11n file, with an optional hint on how to fix it.
///
/// Displays as `{file}:{line}:{column}: error: {message}` and, with a hint, a second line
/// `  help: {help}`: the `file:line:column:` prefix is what editors jump to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    /// The file name as given to [`parse`](crate::parse) or [`load`](crate::load).
    pub file: String,
    /// Where the offending token starts.
    pub location: Location,
    /// What is wrong: lowercase, no trailing period, offending tokens in backticks.
    pub message: String,
    /// How to fix it, when there is something useful to say.
    pub help: Option<String>,
}

impl Diagnostic {
    /// A diagnostic without a hint.
    pub fn new(file: &str, location: Location, message: impl Into<String>) -> Diagnostic {
        Diagnostic {
            file: file.to_owned(),
            location,
            message: message.into(),
            help: None,
        }
    }

    /// The same diagnostic with a hint (or none).
    pub fn with_help(mut self, help: impl Into<Option<String>>) -> Diagnostic {
        self.help = help.into();
        self
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}: error: {}",
            self.file, self.location, self.message
        )?;
        if let Some(help) = &self.help {
            write!(f, "\n  help: {help}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Diagnostic {}

/// Every error found in a file, in the order they occur in it.
///
/// Displays each diagnostic on its own line(s), without a trailing newline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostics(pub Vec<Diagnostic>);

impl Diagnostics {
    /// Sorts by file, then position, keeping the order of diagnostics at the same place.
    pub fn new(mut diagnostics: Vec<Diagnostic>) -> Diagnostics {
        diagnostics.sort_by(|a, b| (&a.file, a.location).cmp(&(&b.file, b.location)));
        Diagnostics(diagnostics)
    }
}

impl fmt::Display for Diagnostics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Sort again here: the field is public, so the vector may have been built by hand.
        let mut sorted: Vec<&Diagnostic> = self.0.iter().collect();
        sorted.sort_by(|a, b| (&a.file, a.location).cmp(&(&b.file, b.location)));
        for (i, diagnostic) in sorted.into_iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{diagnostic}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Diagnostics {}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(line: u32, column: u32, message: &str) -> Diagnostic {
        Diagnostic::new("c11n", Location { line, column }, message)
    }

    #[test]
    fn displays_with_and_without_help() {
        let plain = at(3, 7, "unknown option `prot`");
        assert_eq!(plain.to_string(), "c11n:3:7: error: unknown option `prot`");
        let helped = plain.with_help(Some("did you mean `port`?".to_owned()));
        assert_eq!(
            helped.to_string(),
            "c11n:3:7: error: unknown option `prot`\n  help: did you mean `port`?"
        );
    }

    #[test]
    fn sorts_by_position_and_keeps_ties_in_order() {
        let all = Diagnostics::new(vec![
            at(9, 1, "c"),
            at(2, 5, "b1"),
            at(2, 5, "b2"),
            at(2, 1, "a"),
        ]);
        let messages: Vec<&str> = all.0.iter().map(|d| d.message.as_str()).collect();
        assert_eq!(messages, ["a", "b1", "b2", "c"]);
    }

    #[test]
    fn display_sorts_a_hand_built_vector() {
        let all = Diagnostics(vec![at(2, 1, "second"), at(1, 1, "first")]);
        assert_eq!(
            all.to_string(),
            "c11n:1:1: error: first\nc11n:2:1: error: second"
        );
    }
}
