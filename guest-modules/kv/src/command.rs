//! The kv protocol's commands, parsed from one line: pure logic, tested natively.

use std::time::Duration;

/// One command line.
#[derive(Debug, PartialEq)]
pub enum Command<'a> {
    /// `GET key`
    Get(&'a str),
    /// `SET key value` (the rest of the line, spaces included), or `SETEX key ms value`.
    Set(&'a str, &'a str, Option<Duration>),
    /// `DEL key`
    Del(&'a str),
    /// `CAS key old new`, `-` standing for absent on either side.
    Cas(&'a str, Option<&'a str>, Option<&'a str>),
    /// `INCR key [by]`
    Incr(&'a str, i64),
    /// `KEYS [prefix]`
    Keys(&'a str),
    /// `QUIT`
    Quit,
}

impl<'a> Command<'a> {
    /// Parses a line without its ending; the error is the answer's text.
    pub fn parse(line: &'a str) -> Result<Self, String> {
        let (verb, rest) = line.split_once(' ').unwrap_or((line, ""));
        let word = |s: &'a str| s.split_once(' ').unwrap_or((s, ""));
        let absent = |s: &'a str| (s != "-").then_some(s);
        let key = |s: &'a str| match word(s) {
            ("", _) => Err("a key is needed".to_string()),
            (key, rest) => Ok((key, rest)),
        };
        Ok(match verb.to_ascii_uppercase().as_str() {
            "GET" => Command::Get(key(rest)?.0),
            "SET" => {
                let (k, value) = key(rest)?;
                Command::Set(k, value, None)
            }
            "SETEX" => {
                let (k, rest) = key(rest)?;
                let (ms, value) = word(rest);
                let ms = ms.parse().map_err(|_| format!("bad milliseconds {ms:?}"))?;
                Command::Set(k, value, Some(Duration::from_millis(ms)))
            }
            "DEL" => Command::Del(key(rest)?.0),
            "CAS" => {
                let (k, rest) = key(rest)?;
                let (old, new) = word(rest);
                if new.is_empty() {
                    return Err("CAS needs a key, the old value and the new one".into());
                }
                Command::Cas(k, absent(old), absent(new))
            }
            "INCR" => {
                let (k, by) = key(rest)?;
                let by = match by {
                    "" => 1,
                    n => n.parse().map_err(|_| format!("bad number {n:?}"))?,
                };
                Command::Incr(k, by)
            }
            "KEYS" => Command::Keys(rest),
            "QUIT" => Command::Quit,
            _ => return Err(format!("unknown command {verb:?}")),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_parse() {
        assert_eq!(Command::parse("GET a"), Ok(Command::Get("a")));
        assert_eq!(
            Command::parse("set a hello world"),
            Ok(Command::Set("a", "hello world", None))
        );
        assert_eq!(
            Command::parse("SETEX a 1500 v"),
            Ok(Command::Set("a", "v", Some(Duration::from_millis(1500))))
        );
        assert_eq!(
            Command::parse("CAS n - 1"),
            Ok(Command::Cas("n", None, Some("1")))
        );
        assert_eq!(Command::parse("INCR n"), Ok(Command::Incr("n", 1)));
        assert_eq!(Command::parse("INCR n -3"), Ok(Command::Incr("n", -3)));
        assert_eq!(Command::parse("KEYS"), Ok(Command::Keys("")));
        assert_eq!(Command::parse("KEYS user:"), Ok(Command::Keys("user:")));
        assert!(Command::parse("GET").is_err());
        assert!(Command::parse("CAS n 1").is_err());
        assert!(Command::parse("SETEX a soon v").is_err());
        assert!(Command::parse("FLY").is_err());
    }
}
