//! Typing values: what each [`OptionType`] accepts, and the error when it gets something
//! else.

use std::net::IpAddr;

use super::Checker;
use crate::cursor::is_bare_char;
use crate::suggest::Suggester;
use crate::syntax::{RawKind, RawValue};
use crate::value::{Value, render_str};
use crate::vocab::OptionType;

/// The words a boolean option accepts, in any case.
const TRUE_WORDS: [&str; 3] = ["true", "yes", "on"];
const FALSE_WORDS: [&str; 3] = ["false", "no", "off"];

impl Checker<'_> {
    /// The typed value of `key`, or `None` after reporting why it has none.
    pub(super) fn value(&mut self, key: &str, ty: &OptionType, raw: &RawValue) -> Option<Value> {
        match (ty, &raw.kind) {
            (OptionType::List(inner), RawKind::List(items)) => {
                let mut values = Vec::with_capacity(items.len());
                let mut all_ok = true;
                for item in items {
                    match self.scalar(key, inner, item, ty) {
                        Some(value) => values.push(value),
                        None => all_ok = false,
                    }
                }
                all_ok.then_some(Value::List(values))
            }
            (OptionType::List(_), _) => {
                let help = format!("write a list in braces: `{key} = {{a, b}}`");
                self.mismatch(key, ty, raw, Some(help));
                None
            }
            (_, RawKind::List(_)) => {
                self.mismatch(key, ty, raw, None);
                None
            }
            _ => self.scalar(key, ty, raw, ty),
        }
    }

    /// A single value of type `ty`. `expected` is what the message says the option
    /// expects: `ty` itself, or the list type when `raw` is a list element.
    fn scalar(
        &mut self,
        key: &str,
        ty: &OptionType,
        raw: &RawValue,
        expected: &OptionType,
    ) -> Option<Value> {
        let (text, quoted) = match &raw.kind {
            RawKind::Bare(text) | RawKind::Line(text) => (text.as_str(), false),
            RawKind::Quoted(text) => (text.as_str(), true),
            RawKind::List(_) => {
                self.mismatch(key, expected, raw, None);
                return None;
            }
        };
        let typed = match ty {
            OptionType::Bool => boolean(key, text, quoted, &mut self.suggester),
            OptionType::Integer => integer(key, text, quoted).map(Value::Int),
            OptionType::Port => port(key, text, quoted).map(Value::Int),
            OptionType::Address => match text.parse::<IpAddr>() {
                Ok(_) => Ok(Value::Str(text.to_owned())),
                Err(_) => Err(Some(
                    "write an IPv4 address such as `192.0.2.1` or an IPv6 address such as `2001:db8::1`"
                        .to_owned(),
                )),
            },
            path_or_title if path_or_title.is_path_or_title() && text.is_empty() => Err(None),
            OptionType::DatabaseRef => {
                self.database_refs.push((text.to_owned(), raw.location));
                Ok(Value::Str(text.to_owned()))
            }
            OptionType::Directory
            | OptionType::File
            | OptionType::Terminal
            | OptionType::Certificate
            | OptionType::PrivateKey
            | OptionType::String => Ok(Value::Str(text.to_owned())),
            OptionType::List(_) => Err(None),
        };
        match typed {
            Ok(value) => Some(value),
            Err(help) => {
                // A value that ran to the end of its line was most likely meant to stop
                // after its first word: say so before anything else.
                let help = line_help(raw).or(help);
                self.mismatch(key, expected, raw, help);
                None
            }
        }
    }

    fn mismatch(&mut self, key: &str, expected: &OptionType, raw: &RawValue, help: Option<String>) {
        let found = match &raw.kind {
            RawKind::Bare(text) | RawKind::Line(text) => format!("`{text}`"),
            RawKind::Quoted(text) => format!("`{}`", render_str(text)),
            RawKind::List(_) => "a list".to_owned(),
        };
        let message = format!("`{key}` expects {expected}, found {found}");
        self.error(raw.location, message, help);
    }
}

/// The error of a value that does not fit, with an optional hint.
type Typed<T> = Result<T, Option<String>>;

fn boolean(key: &str, text: &str, quoted: bool, suggester: &mut Suggester) -> Typed<Value> {
    let word = text.to_ascii_lowercase();
    let value = if TRUE_WORDS.contains(&word.as_str()) {
        Some(true)
    } else if FALSE_WORDS.contains(&word.as_str()) {
        Some(false)
    } else {
        None
    };
    match value {
        Some(_) if quoted => Err(Some(format!("write it without quotes: `{key} = {text}`"))),
        Some(b) => Ok(Value::Bool(b)),
        None => {
            let words = TRUE_WORDS.into_iter().chain(FALSE_WORDS);
            let help = suggester
                .did_you_mean(text, words)
                .unwrap_or_else(|| "use `true`, `false`, `yes`, `no`, `on` or `off`".to_owned());
            Err(Some(help))
        }
    }
}

fn integer(key: &str, text: &str, quoted: bool) -> Typed<i64> {
    match parse_int(text) {
        Ok(_) if quoted => Err(Some(format!("write it without quotes: `{key} = {text}`"))),
        Ok(n) => Ok(n),
        Err(IntError::OutOfRange) => Err(Some(format!(
            "integers range from {} to {}",
            i64::MIN,
            i64::MAX
        ))),
        Err(IntError::Invalid) => Err(None),
    }
}

fn port(key: &str, text: &str, quoted: bool) -> Typed<i64> {
    match parse_int(text) {
        Ok(n) if (1..=65535).contains(&n) && quoted => {
            Err(Some(format!("write it without quotes: `{key} = {text}`")))
        }
        Ok(n) if (1..=65535).contains(&n) => Ok(n),
        Ok(_) | Err(IntError::OutOfRange) => {
            Err(Some("port numbers range from 1 to 65535".to_owned()))
        }
        Err(IntError::Invalid) => Err(None),
    }
}

#[derive(Debug, PartialEq)]
enum IntError {
    /// Not an integer at all.
    Invalid,
    /// An integer that does not fit in 64 bits.
    OutOfRange,
}

/// A decimal integer with optional sign, or `0x` hexadecimal (also signed).
fn parse_int(text: &str) -> Result<i64, IntError> {
    let (negative, unsigned) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text.strip_prefix('+').unwrap_or(text)),
    };
    let (radix, digits) = match unsigned
        .strip_prefix("0x")
        .or_else(|| unsigned.strip_prefix("0X"))
    {
        Some(hex) => (16, hex),
        None => (10, unsigned),
    };
    if digits.is_empty() || !digits.chars().all(|c| c.is_digit(radix)) {
        return Err(IntError::Invalid);
    }
    // Only digits are left, so the only possible error is overflow.
    let magnitude = u64::from_str_radix(digits, radix).map_err(|_| IntError::OutOfRange)?;
    let signed = if negative {
        -i128::from(magnitude)
    } else {
        i128::from(magnitude)
    };
    i64::try_from(signed).map_err(|_| IntError::OutOfRange)
}

/// For a value that ran to the end of its line: why it did.
fn line_help(raw: &RawValue) -> Option<String> {
    let RawKind::Line(text) = &raw.kind else {
        return None;
    };
    let first: String = text.chars().take_while(|&c| is_bare_char(c)).collect();
    Some(format!(
        "the value runs to the end of the line because more text follows `{first}`; start a comment with `#`"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integers() {
        assert_eq!(parse_int("110"), Ok(110));
        assert_eq!(parse_int("-7"), Ok(-7));
        assert_eq!(parse_int("+7"), Ok(7));
        assert_eq!(parse_int("0x1F"), Ok(31));
        assert_eq!(parse_int("-0x10"), Ok(-16));
        assert_eq!(parse_int("-9223372036854775808"), Ok(i64::MIN));
        assert_eq!(parse_int("9223372036854775808"), Err(IntError::OutOfRange));
        assert_eq!(
            parse_int("99999999999999999999999"),
            Err(IntError::OutOfRange)
        );
        for bad in [
            "", "-", "+", "0x", "1.5", "12a", "--1", "-+1", " 1", "0x-1", "١٢",
        ] {
            assert_eq!(parse_int(bad), Err(IntError::Invalid), "{bad:?}");
        }
    }

    #[test]
    fn booleans_any_case_unquoted() {
        assert_eq!(
            boolean("k", "YES", false, &mut Suggester::new()),
            Ok(Value::Bool(true))
        );
        assert_eq!(
            boolean("k", "Off", false, &mut Suggester::new()),
            Ok(Value::Bool(false))
        );
        assert!(boolean("k", "true", true, &mut Suggester::new()).is_err());
        assert!(boolean("k", "1", false, &mut Suggester::new()).is_err());
        let help = boolean("k", "ture", false, &mut Suggester::new()).unwrap_err();
        assert_eq!(help.as_deref(), Some("did you mean `true`?"));
    }

    #[test]
    fn ports() {
        assert_eq!(port("p", "1", false), Ok(1));
        assert_eq!(port("p", "65535", false), Ok(65535));
        for bad in ["0", "65536", "-1", "99999999999999999999999"] {
            let help = port("p", bad, false).unwrap_err();
            assert_eq!(
                help.as_deref(),
                Some("port numbers range from 1 to 65535"),
                "{bad}"
            );
        }
        assert_eq!(port("p", "http", false), Err(None));
    }
}
