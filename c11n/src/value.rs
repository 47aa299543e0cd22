//! Typed values, and how they are written back as c11n.

use std::fmt;

use crate::cursor::is_bare_char;

/// A value after checking, typed by its option: see [`OptionType`](crate::OptionType)
/// for which type gives which variant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    /// `true`, `yes`, `on` / `false`, `no`, `off`.
    Bool(bool),
    /// Integers and port numbers.
    Int(i64),
    /// Strings, addresses, paths and database references.
    Str(String),
    /// `{a, b}`.
    List(Vec<Value>),
}

impl Value {
    /// The boolean, if this is one.
    pub fn as_bool(&self) -> Option<bool> {
        match self {
            Value::Bool(b) => Some(*b),
            _ => None,
        }
    }

    /// The integer, if this is one.
    pub fn as_int(&self) -> Option<i64> {
        match self {
            Value::Int(i) => Some(*i),
            _ => None,
        }
    }

    /// The text, if this is a string.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::Str(s) => Some(s),
            _ => None,
        }
    }

    /// The elements, if this is a list.
    pub fn as_list(&self) -> Option<&[Value]> {
        match self {
            Value::List(items) => Some(items),
            _ => None,
        }
    }
}

/// Renders the value in c11n syntax, so that it reads back as the same value for an
/// option of its type: a string is written bare when it is a single bare word, quoted
/// with escapes otherwise.
impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Bool(b) => write!(f, "{b}"),
            Value::Int(i) => write!(f, "{i}"),
            Value::Str(s) => f.write_str(&render_word(s)),
            Value::List(items) => {
                f.write_str("{")?;
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{item}")?;
                }
                f.write_str("}")
            }
        }
    }
}

/// `text` as a bare word if it is one, else as a quoted string.
pub(crate) fn render_word(text: &str) -> String {
    if !text.is_empty() && text.chars().all(is_bare_char) {
        text.to_owned()
    } else {
        render_str(text)
    }
}

/// `text` as a quoted string, escaped.
pub(crate) fn render_str(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_c11n_syntax() {
        assert_eq!(Value::Bool(true).to_string(), "true");
        assert_eq!(Value::Int(-42).to_string(), "-42");
        assert_eq!(Value::Str("localhost".into()).to_string(), "localhost");
        assert_eq!(Value::Str(String::new()).to_string(), "\"\"");
        assert_eq!(
            Value::Str("a \"b\"\\\n\t\r".into()).to_string(),
            r#""a \"b\"\\\n\t\r""#
        );
        let list = Value::List(vec![Value::Str("a b".into()), Value::Int(1)]);
        assert_eq!(list.to_string(), "{\"a b\", 1}");
        assert_eq!(Value::List(vec![]).to_string(), "{}");
    }

    #[test]
    fn accessors_match_only_their_variant() {
        assert_eq!(Value::Int(3).as_int(), Some(3));
        assert_eq!(Value::Int(3).as_str(), None);
        assert_eq!(Value::Str("x".into()).as_str(), Some("x"));
        assert_eq!(Value::Bool(false).as_bool(), Some(false));
        assert_eq!(Value::List(vec![]).as_list(), Some(&[][..]));
    }
}
