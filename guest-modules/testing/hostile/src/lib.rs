//! hostile: a test-only module that misbehaves on request, so tests can show the host
//! contains it. A session reads one command line and then:
//! - `alloc`: allocates until the host refuses memory (the session traps);
//! - `recurse`: recurses until the wasm stack is exhausted (the session traps);
//! - `handles`: creates host resources without dropping them until the host refuses;
//! - `bind`: asks for a privileged listener after the privilege drop (refused);
//! - `logflood`: logs far more lines than a session may;
//!
//! and answers what happened, if it still can. With `operator_trap = on` its operator
//! traps at once.

use std::io::{BufRead, BufReader, Write};

wit_bindgen::generate!({
    world: "module",
    path: "../../../wit",
    with: {
        "wasi:io/streams@0.2.12": wasip2::io::streams,
        "wasi:io/poll@0.2.12": wasip2::io::poll,
        "wasi:io/error@0.2.12": wasip2::io::error,
    },
});

use serverkit::module::{config, log, prestart, types};
use types::{ConfigValue, OptionSpec, OptionType, Version};

struct Hostile;

fn option(name: &str, option_type: OptionType, default: ConfigValue, help: &str) -> OptionSpec {
    OptionSpec {
        name: name.into(),
        option_type,
        default: Some(default),
        required: false,
        help: help.into(),
    }
}

impl Guest for Hostile {
    fn describe() -> types::Descriptor {
        types::Descriptor {
            name: "hostile".into(),
            description: "Test-only: attacks its host on request".into(),
            version: Version {
                major: 1,
                minor: 0,
                patch: 0,
            },
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
                    ConfigValue::Text("127.0.0.1".into()),
                    "Address",
                ),
                option("port", OptionType::Port, ConfigValue::Integer(7), "Port"),
                option(
                    "operator_trap",
                    OptionType::Boolean,
                    ConfigValue::Boolean(false),
                    "Trap in the operator",
                ),
            ],
        }
    }

    fn construct() -> Result<(), String> {
        Ok(())
    }

    fn prestart() -> Result<(), String> {
        let address = match config::get("address") {
            Some(ConfigValue::Text(a)) => a,
            _ => "127.0.0.1".into(),
        };
        let port = match config::get("port") {
            Some(ConfigValue::Integer(p)) => p as u16,
            _ => 7,
        };
        prestart::bind_listener(&address, port, 64).map_err(|e| format!("{e:?}"))?;
        Ok(())
    }

    fn operator() -> Result<(), String> {
        if matches!(
            config::get("operator_trap"),
            Some(ConfigValue::Boolean(true))
        ) {
            panic!("hostile: trapping in the operator on request");
        }
        Ok(())
    }

    fn session(conn: serverkit::module::connection::Connection) -> Result<(), String> {
        let (input, mut output) = conn.streams().ok_or("streams taken")?;
        let mut line = String::new();
        BufReader::new(input)
            .read_line(&mut line)
            .map_err(|e| e.to_string())?;
        let answer = match line.trim() {
            "alloc" => allocate_forever(),
            "recurse" => format!("depth {}", recurse(0)),
            "handles" => hold_handles(),
            "bind" => match prestart::bind_listener("127.0.0.1", 1, 1) {
                Ok(_) => "bind granted".into(),
                Err(e) => format!("bind refused: {e:?}"),
            },
            "logflood" => {
                for i in 0..100_000 {
                    log::log(log::Level::Info, &format!("flood line {i}"));
                }
                "flooded".into()
            }
            other => format!("unknown command {other:?}"),
        };
        writeln!(output, "{answer}").map_err(|e| e.to_string())?;
        output.flush().map_err(|e| e.to_string())
    }

    fn report() -> Vec<String> {
        Vec::new()
    }
}

/// Keeps every allocation until one fails (a Rust guest then aborts: the session traps).
fn allocate_forever() -> String {
    let mut held: Vec<Vec<u8>> = Vec::new();
    loop {
        let mut block = vec![0u8; 1 << 20];
        block[0] = held.len() as u8; // touch it, so it is real
        held.push(block);
    }
}

/// Recurses without end; `black_box` keeps the frames real.
#[expect(unconditional_recursion, reason = "exhausting the stack is the point")]
fn recurse(depth: u64) -> u64 {
    let frame = std::hint::black_box([depth; 64]);
    recurse(depth + 1) + frame[0]
}

/// Creates clock pollables (host resources) without dropping them.
fn hold_handles() -> String {
    let mut held = Vec::new();
    loop {
        held.push(wasip2::clocks::monotonic_clock::subscribe_duration(
            1_000_000_000,
        ));
        if held.len() > 1_000_000 {
            return format!("the host gave {} handles", held.len());
        }
    }
}

export!(Hostile);
