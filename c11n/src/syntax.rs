//! The syntax tree of a c11n file: what was written and where, before any vocabulary
//! gives it meaning.

use crate::diagnostic::Location;

/// A parsed c11n file. Values are still untyped: [`check`](crate::check) interprets them
/// against a [`Vocabulary`](crate::Vocabulary).
#[derive(Debug, Clone, PartialEq)]
pub struct Document {
    /// The file name given to [`parse`](crate::parse), used in diagnostics.
    pub file: String,
    /// Top-level settings and sections, in file order.
    pub items: Vec<Item>,
}

impl Document {
    /// Distinct top-level section names in order of first appearance, so the host can
    /// tell which modules a file configures before it builds the vocabulary.
    pub fn section_names(&self) -> Vec<String> {
        let mut seen = std::collections::HashSet::new();
        self.sections()
            .filter(|section| seen.insert(section.name.as_str()))
            .map(|section| section.name.clone())
            .collect()
    }

    /// The top-level settings, in file order.
    pub fn settings(&self) -> impl Iterator<Item = &Setting> {
        self.items.iter().filter_map(|item| match item {
            Item::Setting(setting) => Some(setting),
            Item::Section(_) => None,
        })
    }

    /// The sections, in file order.
    pub fn sections(&self) -> impl Iterator<Item = &SectionBlock> {
        self.items.iter().filter_map(|item| match item {
            Item::Section(section) => Some(section),
            Item::Setting(_) => None,
        })
    }
}

/// One top-level entry of a file.
#[derive(Debug, Clone, PartialEq)]
pub enum Item {
    /// `key = value`
    Setting(Setting),
    /// `name { ... }` or `name TITLE { ... }`
    Section(SectionBlock),
}

/// `key = value`.
#[derive(Debug, Clone, PartialEq)]
pub struct Setting {
    /// The option name.
    pub key: String,
    /// Where the option name starts.
    pub key_location: Location,
    /// The value as written.
    pub value: RawValue,
}

/// `name { settings }` or `name TITLE { settings }`.
#[derive(Debug, Clone, PartialEq)]
pub struct SectionBlock {
    /// The section name, such as `database` or a module name.
    pub name: String,
    /// Where the section name starts: the location of the whole section.
    pub location: Location,
    /// The title, such as `FOOFOO` in `database FOOFOO { ... }`, and where it starts.
    pub title: Option<(String, Location)>,
    /// The settings inside the braces, in file order.
    pub settings: Vec<Setting>,
}

/// A value as written, with where it starts.
#[derive(Debug, Clone, PartialEq)]
pub struct RawValue {
    /// The form the value was written in.
    pub kind: RawKind,
    /// Where the value's first character is.
    pub location: Location,
}

/// The forms a value can be written in. The checker decides what they mean: `yes` is a
/// boolean for a boolean option and text for a string option.
#[derive(Debug, Clone, PartialEq)]
pub enum RawKind {
    /// A single bare word such as `110`, `true` or `localhost`.
    Bare(String),
    /// A bare value that runs to the end of its line, trailing blanks trimmed: more text
    /// followed its first word on the line (see the crate documentation).
    Line(String),
    /// A quoted string, escapes decoded.
    Quoted(String),
    /// `{a, b, "c"}`: bare words and quoted strings.
    List(Vec<RawValue>),
}

#[cfg(test)]
mod tests {
    use crate::parse;

    #[test]
    fn section_names_are_distinct_and_in_order() {
        let doc = parse(
            "c11n",
            "a = 1\npop {}\ndatabase X {}\npop {}\ndatabase Y {}\necho {}\n",
        )
        .unwrap();
        assert_eq!(doc.section_names(), ["pop", "database", "echo"]);
        assert_eq!(doc.settings().count(), 1);
        assert_eq!(doc.sections().count(), 5);
    }
}
