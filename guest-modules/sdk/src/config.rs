//! Typed reads of the module's own c11n section, defaults applied by the host.
//!
//! The host checks every value against the vocabulary before a module runs, so a value
//! of the wrong type can only mean the module reads an option as another type than its
//! `describe` declared: a broken invariant, and these functions panic (the hook traps)
//! naming the option. A value that is absent is `None`; one that does not fit the Rust
//! type a module wants is a [`ConfigError`] it can return from a hook.

use std::fmt;
use std::sync::OnceLock;

use crate::ConfigValue;
use crate::bindings::serverkit::module::config::entries;
pub use crate::bindings::serverkit::module::config::keys;

/// The value of `key` in the module's section (defaults applied), `None` if it has none.
/// The whole section is fetched from the host once per instance (`config.entries`, one
/// call) and read from memory after: a module reading its settings at the start of every
/// session pays one host call, not one per option.
pub fn get(key: &str) -> Option<ConfigValue> {
    static SECTION: OnceLock<Vec<(String, ConfigValue)>> = OnceLock::new();
    let section = SECTION.get_or_init(entries);
    section
        .binary_search_by(|(k, _)| k.as_str().cmp(key))
        .ok()
        .map(|i| section[i].1.clone())
}

/// A configured number that does not fit the type the module needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// The option.
    pub key: String,
    /// Its value.
    pub value: i64,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {} is out of range", self.key, self.value)
    }
}

impl std::error::Error for ConfigError {}

/// Hooks return `Result<_, String>`: `?` turns a `ConfigError` into its message.
impl From<ConfigError> for String {
    fn from(error: ConfigError) -> String {
        error.to_string()
    }
}

/// A `text`, `address`, `directory`, `file`, `database-ref`, `terminal`, `certificate` or
/// `private-key` option.
pub fn text(key: &str) -> Option<String> {
    match get(key)? {
        ConfigValue::Text(text) => Some(text),
        other => wrong_type(key, "text", &other),
    }
}

/// An `integer` or `port` option.
pub fn integer(key: &str) -> Option<i64> {
    match get(key)? {
        ConfigValue::Integer(number) => Some(number),
        other => wrong_type(key, "integer", &other),
    }
}

/// An `integer` or `port` option converted to the type the module needs (`u16`, `u32`,
/// `u64`...); an error names the option and its value when it does not fit.
pub fn integer_as<T: TryFrom<i64>>(key: &str) -> Result<Option<T>, ConfigError> {
    let Some(number) = integer(key) else {
        return Ok(None);
    };
    T::try_from(number).map(Some).map_err(|_| ConfigError {
        key: key.into(),
        value: number,
    })
}

/// A `boolean` option; `None` when it is absent and has no default.
pub fn boolean(key: &str) -> Option<bool> {
    match get(key)? {
        ConfigValue::Boolean(flag) => Some(flag),
        other => wrong_type(key, "boolean", &other),
    }
}

/// A `boolean` option that is on; absent counts as off.
pub fn flag(key: &str) -> bool {
    boolean(key).unwrap_or(false)
}

/// A `text-list` option.
pub fn text_list(key: &str) -> Option<Vec<String>> {
    match get(key)? {
        ConfigValue::TextList(list) => Some(list),
        other => wrong_type(key, "text-list", &other),
    }
}

/// An `integer-list` option.
pub fn integer_list(key: &str) -> Option<Vec<i64>> {
    match get(key)? {
        ConfigValue::IntegerList(list) => Some(list),
        other => wrong_type(key, "integer-list", &other),
    }
}

fn wrong_type<T>(key: &str, wanted: &str, found: &ConfigValue) -> T {
    panic!(
        "option `{key}` read as {wanted} but its value is {found:?}: the module's \
         vocabulary declares it with another type"
    )
}
