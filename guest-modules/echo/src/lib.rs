//! echo: a line-echo protocol module, the first real serverkit module.
//!
//! The client sends lines; each comes back unchanged. `QUIT` ends the session. With
//! `fault_injection = on` (for tests and for operators probing their limits) the line
//! `!trap` makes the session trap and `!spin` makes it loop forever, so the host's
//! isolation and CPU deadline can be seen at work.

use std::io::{BufRead, BufReader, Write};

wit_bindgen::generate!({
    world: "module",
    path: "../../wit",
    with: {
        "wasi:io/streams@0.2.12": wasip2::io::streams,
        "wasi:io/poll@0.2.12": wasip2::io::poll,
        "wasi:io/error@0.2.12": wasip2::io::error,
    },
});

use serverkit::module::{config, log, prestart, types};
use std::io::Read;
use types::{ConfigValue, OptionSpec, OptionType, Version};

/// Longest line echoed; a longer line ends the session (a defence against a client that
/// never sends a newline).
const MAX_LINE_BYTES: usize = 64 * 1024;

struct Echo;

fn option(
    name: &str,
    option_type: OptionType,
    default: Option<ConfigValue>,
    help: &str,
) -> OptionSpec {
    OptionSpec {
        name: name.into(),
        option_type,
        default,
        required: false,
        help: help.into(),
    }
}

impl Guest for Echo {
    fn describe() -> Descriptor {
        Descriptor {
            name: "echo".into(),
            description: "Line echo: every line a client sends comes back unchanged".into(),
            version: Version {
                major: 1,
                minor: 0,
                patch: 0,
            },
            // The contract version this module was generated from (wit/module.wit).
            contract: Version {
                major: 1,
                minor: 0,
                patch: 0,
            },
            authors: vec!["The serverkit developers".into()],
            vocabulary: vec![
                option(
                    "address",
                    OptionType::Address,
                    Some(ConfigValue::Text("0.0.0.0".into())),
                    "Address to listen on",
                ),
                option(
                    "port",
                    OptionType::Port,
                    Some(ConfigValue::Integer(7)),
                    "TCP port to listen on",
                ),
                option(
                    "backlog",
                    OptionType::Integer,
                    Some(ConfigValue::Integer(128)),
                    "Listen backlog passed to listen()",
                ),
                option(
                    "greeting",
                    OptionType::Text,
                    None,
                    "Line sent to each client when it connects",
                ),
                option(
                    "fault_injection",
                    OptionType::Boolean,
                    Some(ConfigValue::Boolean(false)),
                    "For tests: the lines `!trap` and `!spin` make the session trap or loop forever",
                ),
            ],
        }
    }

    fn construct() -> Result<(), String> {
        Ok(())
    }

    fn prestart() -> Result<(), String> {
        let address = text("address").unwrap_or_else(|| "0.0.0.0".into());
        let port = integer("port").unwrap_or(7);
        let backlog = integer("backlog").unwrap_or(128);
        let port = u16::try_from(port).map_err(|_| format!("port {port} is out of range"))?;
        let backlog =
            u32::try_from(backlog).map_err(|_| format!("backlog {backlog} is out of range"))?;
        prestart::bind_listener(&address, port, backlog)
            .map_err(|e| format!("cannot listen on {address}:{port}: {e:?}"))?;
        Ok(())
    }

    fn operator() -> Result<(), String> {
        Ok(())
    }

    fn session(conn: Connection) -> Result<(), String> {
        let (input, mut output) = conn.streams().ok_or("connection streams already taken")?;
        let faults = matches!(
            config::get("fault_injection"),
            Some(ConfigValue::Boolean(true))
        );
        if let Some(greeting) = text("greeting") {
            writeln!(output, "{greeting}").map_err(|e| e.to_string())?;
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
            if n == 0 {
                break; // the client closed the connection
            }
            if line.len() > MAX_LINE_BYTES {
                return Err(format!("line longer than {MAX_LINE_BYTES} bytes"));
            }
            let trimmed = line.trim_ascii_end();
            match trimmed {
                b"QUIT" => break,
                b"!trap" if faults => {
                    log::log(log::Level::Warn, "fault injection: trapping on request");
                    eprintln!("echo: about to trap (fault injection)");
                    core::arch::wasm32::unreachable()
                }
                b"!spin" if faults => spin_forever(),
                _ => {}
            }
            output.write_all(&line).map_err(|e| e.to_string())?;
            output.flush().map_err(|e| e.to_string())?;
        }
        drop(reader);
        drop(output);
        Ok(())
    }

    fn report() -> Vec<String> {
        Vec::new()
    }
}

/// Loops without ever calling the host: only the host's CPU deadline can end it.
fn spin_forever() -> ! {
    let mut n: u64 = 0;
    loop {
        n = std::hint::black_box(n.wrapping_add(1));
    }
}

fn text(key: &str) -> Option<String> {
    match config::get(key) {
        Some(ConfigValue::Text(s)) => Some(s),
        _ => None,
    }
}

fn integer(key: &str) -> Option<i64> {
    match config::get(key) {
        Some(ConfigValue::Integer(i)) => Some(i),
        _ => None,
    }
}

export!(Echo);
