//! c11n, ServerKit's configuration language: a parser, and a checker that reads the
//! parsed file against a vocabulary of typed options and sections.
//!
//! ```
//! use serverkit_c11n::{OptionSpec, OptionType, SectionSpec, Vocabulary, load};
//!
//! let mut vocab = Vocabulary::core();
//! vocab.add_section(
//!     SectionSpec::new("pop", "POP3 service")
//!         .option(OptionSpec::new("port", OptionType::Port, "TCP port").required()),
//! );
//! let config = load("c11n", "identity = pop\npop { port = 110 }\n", &vocab).unwrap();
//! assert_eq!(config.globals.str("identity"), Some("pop"));
//! assert_eq!(config.section("pop").unwrap().int("port"), Some(110));
//!
//! let errors = load("c11n", "pop { prot = 110 }\n", &vocab).unwrap_err();
//! assert_eq!(
//!     errors.to_string(),
//!     "c11n:1:1: error: section `pop` is missing required option `port`
//!   help: add a line `port = ...` with a port number (1-65535)
//! c11n:1:7: error: unknown option `prot` in section `pop`
//!   help: did you mean `port`?"
//! );
//! ```
//!
//! # Why a hand-written parser
//!
//! The syntax is ours: libconfuse-style, but with a bare value that runs to the end of
//! its line (`maildrop_query_format_string = select ... where user="%u"`), which
//! libconfuse itself rejects and ServerKit's own sample file needs verbatim. The error
//! messages are the other reason: every error names file, line and column, quotes the
//! token, says what was expected, suggests the nearest valid name, and all errors in a
//! file are reported at once. A grammar crate would give us its messages and its
//! recovery, not ours. The language is small enough that the parser stays short.
//!
//! The language reference for operators is `docs/c11n.md`.
//!
//! # Layout
//!
//! - [`diagnostic`]: [`Location`], [`Diagnostic`], [`Diagnostics`]: errors and their display.
//! - `cursor`: character-level scanning shared by the parser.
//! - [`syntax`]: the syntax tree, [`Document`].
//! - [`parse()`]: text to [`Document`], recovering after errors.
//! - [`vocab`]: [`Vocabulary`], [`SectionSpec`], [`OptionSpec`], [`OptionType`]; the core
//!   vocabulary.
//! - [`check()`]: [`Document`] and [`Vocabulary`] to [`Config`].
//! - `suggest`: "did you mean" for misspelt names.
//! - [`value`] and [`config`]: the typed result, [`Value`], [`Config`], [`Section`].
//!
//! No function here panics on any input: the parser is meant to be fuzzed.

#![deny(missing_docs)]

mod check;
pub mod config;
mod cursor;
pub mod diagnostic;
mod parse;
mod suggest;
pub mod syntax;
pub mod value;
pub mod vocab;

pub use check::check;
pub use config::{Config, Section};
pub use diagnostic::{Diagnostic, Diagnostics, Location};
pub use parse::parse;
pub use syntax::{Document, Item, RawKind, RawValue, SectionBlock, Setting};
pub use value::Value;
pub use vocab::{OptionSpec, OptionType, SectionSpec, Vocabulary};

/// Parses and checks a file: [`parse`] then [`check`], reporting the errors of both.
///
/// After syntax errors, what did parse is still checked, so one run reports a missing
/// `=` and a misspelt option together. Two checks are skipped then, because a line the
/// parser had to drop would make them report errors that are not there: missing
/// required options and references to undefined `database` sections.
pub fn load(file: &str, text: &str, vocab: &Vocabulary) -> Result<Config, Diagnostics> {
    let parsed = Parsed::new(file, text);
    parsed.check(vocab)
}

/// A file parsed with error recovery: the syntax tree of what did parse, and the syntax
/// errors. For a caller that must look at the tree (its section names, say) before it
/// can build the vocabulary; [`Parsed::check`] then reports syntax and vocabulary errors
/// together, as [`load`] does.
pub struct Parsed {
    /// What did parse.
    pub document: Document,
    syntax_errors: Vec<Diagnostic>,
}

impl Parsed {
    /// Parses `text`, recovering after errors.
    pub fn new(file: &str, text: &str) -> Self {
        let (document, syntax_errors) = parse::parse_recovering(file, text);
        Parsed {
            document,
            syntax_errors,
        }
    }

    /// Checks what parsed against `vocab`; errors are the syntax errors followed by the
    /// vocabulary errors.
    pub fn check(&self, vocab: &Vocabulary) -> Result<Config, Diagnostics> {
        let completeness = if self.syntax_errors.is_empty() {
            check::Completeness::Complete
        } else {
            check::Completeness::Partial
        };
        let (config, check_diagnostics) =
            check::check_collecting(&self.document, vocab, completeness);
        let mut diagnostics = self.syntax_errors.clone();
        diagnostics.extend(check_diagnostics);
        if diagnostics.is_empty() {
            Ok(config)
        } else {
            Err(Diagnostics::new(diagnostics))
        }
    }
}
