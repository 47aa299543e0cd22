//! The checker: a [`Document`] read against a [`Vocabulary`] into a typed [`Config`],
//! with every error in the file collected.

mod types;

use std::collections::{BTreeMap, HashMap, HashSet};

use crate::config::{Config, Section};
use crate::diagnostic::{Diagnostic, Diagnostics, Location};
use crate::suggest::Suggester;
use crate::syntax::{Document, SectionBlock, Setting};
use crate::value::render_word;
use crate::vocab::{OptionSpec, Vocabulary};

/// The section name whose titles [`OptionType::DatabaseRef`](crate::OptionType) refers to.
const DATABASE: &str = "database";

/// Checks a parsed file against a vocabulary.
pub fn check(doc: &Document, vocab: &Vocabulary) -> Result<Config, Diagnostics> {
    let (config, diagnostics) = check_collecting(doc, vocab, Completeness::Complete);
    if diagnostics.is_empty() {
        Ok(config)
    } else {
        Err(Diagnostics::new(diagnostics))
    }
}

/// Whether the document holds everything the file says. After syntax errors it may not:
/// a dropped setting or section header would show up as a missing required option or
/// an undefined database, so those two checks are skipped for a partial document.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Completeness {
    Complete,
    Partial,
}

/// Checks everything and returns the configuration with the errors; the configuration
/// is only meaningful when there are none.
pub(crate) fn check_collecting(
    doc: &Document,
    vocab: &Vocabulary,
    completeness: Completeness,
) -> (Config, Vec<Diagnostic>) {
    let mut checker = Checker {
        file: &doc.file,
        vocab,
        complete: completeness == Completeness::Complete,
        diagnostics: Vec::new(),
        database_refs: Vec::new(),
        suggester: Suggester::new(),
    };
    let globals = checker.settings(
        &vocab.options,
        doc.settings(),
        Scope::Top,
        "",
        None,
        Location::START,
    );
    let mut sections = Vec::new();
    let mut first_seen = HashMap::new();
    for block in doc.sections() {
        sections.extend(checker.section(block, &mut first_seen));
    }
    checker.resolve_database_refs(doc);
    let config = Config {
        file: doc.file.clone(),
        globals,
        sections,
    };
    (config, checker.diagnostics)
}

/// Where a setting is, for messages.
#[derive(Debug, Clone, Copy)]
enum Scope<'a> {
    Top,
    Section(&'a str),
}

struct Checker<'a> {
    file: &'a str,
    vocab: &'a Vocabulary,
    complete: bool,
    diagnostics: Vec<Diagnostic>,
    /// Every [`OptionType::DatabaseRef`](crate::OptionType) value seen, resolved once
    /// all sections are known: a pool may be defined below the section that uses it.
    database_refs: Vec<(String, Location)>,
    suggester: Suggester,
}

/// The first header of each section that may not be repeated, by name, or by name and
/// title for repeatable titled sections: a map, so that a file of many sections is not
/// checked in quadratic time.
type FirstSeen<'d> = HashMap<(&'d str, Option<&'d str>), Location>;

impl Checker<'_> {
    fn error(&mut self, location: Location, message: String, help: Option<String>) {
        self.diagnostics
            .push(Diagnostic::new(self.file, location, message).with_help(help));
    }

    fn section<'d>(
        &mut self,
        block: &'d SectionBlock,
        first_seen: &mut FirstSeen<'d>,
    ) -> Option<Section> {
        let name = block.name.as_str();
        let Some(spec) = self.vocab.section(name) else {
            let names = self.vocab.sections.iter().map(|s| s.name.as_str());
            let help = self.suggester.did_you_mean(name, names).or_else(|| {
                self.vocab
                    .option(name)
                    .map(|_| format!("`{name}` is a top-level option: write `{name} = ...`"))
            });
            let message = format!("no loaded module or core section is named `{name}`");
            self.error(block.location, message, help);
            return None;
        };
        let title = block.title.as_ref().map(|(title, _)| title.clone());
        match (&block.title, spec.titled) {
            (None, true) => {
                let message =
                    format!("section `{name}` needs a title, as in `{name} NAME {{ ... }}`");
                self.error(block.location, message, None);
            }
            (Some((title, at)), false) => {
                let message = format!(
                    "section `{name}` takes no title, found `{}`",
                    render_word(title)
                );
                self.error(*at, message, Some(format!("write `{name} {{ ... }}`")));
            }
            _ => {}
        }
        self.check_repeat(block, spec.repeatable, first_seen);
        let scope = Scope::Section(name);
        let settings = block.settings.iter();
        Some(self.settings(&spec.options, settings, scope, name, title, block.location))
    }

    /// A section given twice: an error unless repeatable, and then only with the same
    /// title.
    fn check_repeat<'d>(
        &mut self,
        block: &'d SectionBlock,
        repeatable: bool,
        first_seen: &mut FirstSeen<'d>,
    ) {
        let name = block.name.as_str();
        let title = block.title.as_ref().map(|(title, _)| title.as_str());
        let key = match (repeatable, title) {
            (false, _) => (name, None),
            (true, Some(title)) => (name, Some(title)),
            (true, None) => return,
        };
        let Some(first) = first_seen.get(&key) else {
            first_seen.insert(key, block.location);
            return;
        };
        let line = first.line;
        let (message, help) = match key.1 {
            Some(title) => (
                format!(
                    "section `{name} {}` is given twice: first on line {line}",
                    render_word(title)
                ),
                format!("give each `{name}` section a title of its own"),
            ),
            None => (
                format!("section `{name}` is given twice: first on line {line}"),
                format!("merge the two into one `{name} {{ ... }}` section"),
            ),
        };
        self.error(block.location, message, Some(help));
    }

    /// Checks the settings of one section (or the top level) and applies defaults.
    fn settings<'d>(
        &mut self,
        specs: &[OptionSpec],
        settings: impl Iterator<Item = &'d Setting>,
        scope: Scope<'_>,
        name: &str,
        title: Option<String>,
        location: Location,
    ) -> Section {
        let mut first_set: BTreeMap<&str, Location> = BTreeMap::new();
        let mut values = BTreeMap::new();
        let mut locations = BTreeMap::new();
        for setting in settings {
            let key = setting.key.as_str();
            let Some(spec) = specs.iter().find(|o| o.name == key) else {
                self.unknown_option(setting, specs, scope);
                continue;
            };
            let first = first_set.get(key).copied();
            if let Some(first) = first {
                let within = match scope {
                    Scope::Top => String::new(),
                    Scope::Section(section) => format!(" in section `{section}`"),
                };
                let message = format!(
                    "duplicate option `{key}`{within}: first set on line {}",
                    first.line
                );
                let help = "remove one of the two settings".to_owned();
                self.error(setting.key_location, message, Some(help));
            } else {
                first_set.insert(key, setting.key_location);
            }
            // Check a duplicate's value too: its errors are errors all the same.
            let value = self.value(key, &spec.ty, &setting.value);
            if let (None, Some(value)) = (first, value) {
                values.insert(key.to_owned(), value);
                locations.insert(key.to_owned(), setting.value.location);
            }
        }
        for spec in specs {
            if first_set.contains_key(spec.name.as_str()) {
                continue;
            }
            if let Some(default) = &spec.default {
                values.insert(spec.name.clone(), default.clone());
            } else if spec.required && self.complete {
                self.missing(spec, scope, location);
            }
        }
        Section {
            name: name.to_owned(),
            title,
            location,
            values,
            locations,
        }
    }

    fn missing(&mut self, spec: &OptionSpec, scope: Scope<'_>, location: Location) {
        let key = &spec.name;
        let message = match scope {
            Scope::Top => format!("missing required top-level option `{key}`"),
            Scope::Section(section) => {
                format!("section `{section}` is missing required option `{key}`")
            }
        };
        let help = format!("add a line `{key} = ...` with {}", spec.ty);
        self.error(location, message, Some(help));
    }

    fn unknown_option(&mut self, setting: &Setting, specs: &[OptionSpec], scope: Scope<'_>) {
        let key = setting.key.as_str();
        let close = self
            .suggester
            .did_you_mean(key, specs.iter().map(|o| o.name.as_str()));
        let (message, help) = match scope {
            Scope::Top => {
                let help = close
                    .or_else(|| self.sections_with_option(key))
                    .or_else(|| {
                        self.vocab
                            .section(key)
                            .map(|_| format!("`{key}` is a section: write `{key} {{ ... }}`"))
                    });
                (format!("unknown option `{key}`"), help)
            }
            Scope::Section(section) => {
                let help = close.or_else(|| {
                    self.vocab.option(key).map(|_| {
                        format!("`{key}` is a top-level option: move it out of section `{section}`")
                    })
                });
                (
                    format!("unknown option `{key}` in section `{section}`"),
                    help,
                )
            }
        };
        self.error(setting.key_location, message, help);
    }

    /// "`port` is an option of sections `pop` and `echo`, not a top-level option".
    fn sections_with_option(&self, key: &str) -> Option<String> {
        let names: Vec<String> = self
            .vocab
            .sections
            .iter()
            .filter(|s| s.options.iter().any(|o| o.name == key))
            .map(|s| format!("`{}`", s.name))
            .collect();
        let (last, rest) = names.split_last()?;
        let listed = if rest.is_empty() {
            format!("section {last}")
        } else {
            format!("sections {} and {last}", rest.join(", "))
        };
        Some(format!(
            "`{key}` is an option of {listed}, not a top-level option"
        ))
    }

    fn resolve_database_refs(&mut self, doc: &Document) {
        if !self.complete {
            return;
        }
        let titles: HashSet<&str> = doc
            .sections()
            .filter(|s| s.name == DATABASE)
            .filter_map(|s| s.title.as_ref().map(|(title, _)| title.as_str()))
            .collect();
        for (title, location) in std::mem::take(&mut self.database_refs) {
            if titles.contains(title.as_str()) {
                continue;
            }
            let message = format!(
                "no `{DATABASE} {} {{ ... }}` section is defined",
                render_word(&title)
            );
            // In file order, so that ties are broken the same way on every run.
            let defined = doc
                .sections()
                .filter(|s| s.name == DATABASE)
                .filter_map(|s| s.title.as_ref().map(|(title, _)| title.as_str()));
            let help = self.suggester.did_you_mean(&title, defined);
            self.error(location, message, help);
        }
    }
}

#[cfg(test)]
mod tests;
