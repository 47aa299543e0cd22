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

use std::io::Write;

use serverkit_sdk::describe::{SERVERKIT_AUTHORS, option};
use serverkit_sdk::{
    Client, Connection, Descriptor, Module, OptionType, Version, config, log, prestart,
};

struct Hostile;

impl Module for Hostile {
    fn describe() -> Descriptor {
        Descriptor::new(
            "hostile",
            "Test-only: attacks its host on request",
            Version::new(1, 0, 0),
        )
        .author(SERVERKIT_AUTHORS)
        .options([
            option("address", OptionType::Address, "Address").default_text("127.0.0.1"),
            option("port", OptionType::Port, "Port").default_integer(7),
            option("operator_trap", OptionType::Boolean, "Trap in the operator")
                .default_flag(false),
        ])
    }

    fn prestart() -> Result<(), String> {
        let address = config::text("address").unwrap_or_else(|| "127.0.0.1".into());
        let port = config::integer("port").unwrap_or(7) as u16;
        prestart::bind_listener(&address, port, 64).map_err(|e| format!("{e:?}"))?;
        Ok(())
    }

    fn operator() -> Result<(), String> {
        if config::flag("operator_trap") {
            panic!("hostile: trapping in the operator on request");
        }
        Ok(())
    }

    fn session(conn: Connection) -> Result<(), String> {
        let mut client = Client::new(conn)?;
        let line = client.read_line().map_err(|e| e.to_string())?;
        let command = String::from_utf8_lossy(line.content().unwrap_or_default()).into_owned();
        let answer = match command.trim() {
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
        writeln!(client, "{answer}").map_err(|e| e.to_string())?;
        client.flush().map_err(|e| e.to_string())
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
        held.push(
            serverkit_sdk::wasip2::clocks::monotonic_clock::subscribe_duration(1_000_000_000),
        );
        if held.len() > 1_000_000 {
            return format!("the host gave {} handles", held.len());
        }
    }
}

serverkit_sdk::export!(Hostile);
