//! echo-next: a test-only second version of `echo` (2.0.0, same vocabulary) that answers
//! every line with `v2 ` in front, so hot-swap tests can tell which version served a line.

use std::io::{BufRead, BufReader, Read, Write};

wit_bindgen::generate!({
    world: "module",
    path: "../../../wit",
    with: {
        "wasi:io/streams@0.2.12": wasip2::io::streams,
        "wasi:io/poll@0.2.12": wasip2::io::poll,
        "wasi:io/error@0.2.12": wasip2::io::error,
    },
});

use serverkit::module::{config, prestart, types};
use types::{ConfigValue, OptionSpec, OptionType, Version};

/// Longest line answered; a longer one ends the session.
const MAX_LINE_BYTES: usize = 64 * 1024;

struct EchoNext;

fn option(name: &str, option_type: OptionType, default: Option<ConfigValue>) -> OptionSpec {
    OptionSpec {
        name: name.into(),
        option_type,
        default,
        required: false,
        help: format!("as echo's `{name}`"),
    }
}

impl Guest for EchoNext {
    fn describe() -> Descriptor {
        let v = |major| Version {
            major,
            minor: 0,
            patch: 0,
        };
        Descriptor {
            name: "echo".into(),
            description: "Line echo, version 2: every line comes back after `v2 `".into(),
            version: v(2),
            contract: v(1),
            authors: vec!["The serverkit developers".into()],
            vocabulary: vec![
                option(
                    "address",
                    OptionType::Address,
                    Some(ConfigValue::Text("0.0.0.0".into())),
                ),
                option("port", OptionType::Port, Some(ConfigValue::Integer(7))),
                option(
                    "backlog",
                    OptionType::Integer,
                    Some(ConfigValue::Integer(128)),
                ),
                option("greeting", OptionType::Text, None),
                option(
                    "fault_injection",
                    OptionType::Boolean,
                    Some(ConfigValue::Boolean(false)),
                ),
            ],
        }
    }

    fn construct() -> Result<(), String> {
        Ok(())
    }

    fn prestart() -> Result<(), String> {
        // Only reached when this version is the one started; a swap never runs prestart.
        let port = match config::get("port") {
            Some(ConfigValue::Integer(p)) => u16::try_from(p).map_err(|_| "bad port")?,
            _ => 7,
        };
        prestart::bind_listener("127.0.0.1", port, 128).map_err(|e| format!("{e:?}"))?;
        Ok(())
    }

    fn operator() -> Result<(), String> {
        Ok(())
    }

    fn session(conn: Connection) -> Result<(), String> {
        let (input, mut output) = conn.streams().ok_or("connection streams already taken")?;
        if let Some(ConfigValue::Text(greeting)) = config::get("greeting") {
            writeln!(output, "v2 {greeting}").map_err(|e| e.to_string())?;
            output.flush().map_err(|e| e.to_string())?;
        }
        let mut reader = BufReader::new(input);
        let mut line = Vec::new();
        loop {
            line.clear();
            let n = (&mut reader)
                .take(MAX_LINE_BYTES as u64 + 1)
                .read_until(b'\n', &mut line)
                .map_err(|e| e.to_string())?;
            if n == 0 || line.trim_ascii_end() == b"QUIT" {
                break;
            }
            output.write_all(b"v2 ").map_err(|e| e.to_string())?;
            output.write_all(&line).map_err(|e| e.to_string())?;
            output.flush().map_err(|e| e.to_string())?;
        }
        Ok(())
    }

    fn report() -> Vec<String> {
        Vec::new()
    }
}

export!(EchoNext);
