//! The checked configuration: typed values by section, defaults applied, with where each
//! value was written so later errors (a port already in use) can point at it.

use std::collections::BTreeMap;

use crate::diagnostic::Location;
use crate::value::Value;

/// A checked file: every value typed, every default applied.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// The file name given to [`load`](crate::load) or [`parse`](crate::parse).
    pub file: String,
    /// The top-level options, as a section named `""`.
    pub globals: Section,
    /// The sections in file order.
    pub sections: Vec<Section>,
}

impl Config {
    /// The first section of that name.
    pub fn section(&self, name: &str) -> Option<&Section> {
        self.sections.iter().find(|s| s.name == name)
    }

    /// Every section of that name, in file order: the `database` sections, say.
    pub fn sections_named<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Section> {
        self.sections.iter().filter(move |s| s.name == name)
    }
}

/// One section (or the top level) after checking.
#[derive(Debug, Clone, PartialEq)]
pub struct Section {
    /// The section name; `""` for the top level.
    pub name: String,
    /// The title of a titled section.
    pub title: Option<String>,
    /// Where the section header starts; line 1, column 1 for the top level.
    pub location: Location,
    /// Typed values with defaults applied. An option that is absent and has no default
    /// has no entry.
    pub values: BTreeMap<String, Value>,
    /// Where each value written in the file starts. Defaults have no entry.
    pub locations: BTreeMap<String, Location>,
}

impl Section {
    /// The value of an option, written or default.
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.values.get(key)
    }

    /// The value of a boolean option.
    pub fn bool(&self, key: &str) -> Option<bool> {
        self.get(key).and_then(Value::as_bool)
    }

    /// The value of an integer or port option.
    pub fn int(&self, key: &str) -> Option<i64> {
        self.get(key).and_then(Value::as_int)
    }

    /// The value of a string, address, path or database reference option.
    pub fn str(&self, key: &str) -> Option<&str> {
        self.get(key).and_then(Value::as_str)
    }

    /// The elements of a list option.
    pub fn list(&self, key: &str) -> Option<&[Value]> {
        self.get(key).and_then(Value::as_list)
    }

    /// Where the value of an option was written; `None` for a default or an absent option.
    pub fn location_of(&self, key: &str) -> Option<Location> {
        self.locations.get(key).copied()
    }
}
