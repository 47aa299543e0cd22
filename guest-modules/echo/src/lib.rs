//! echo: a line-echo protocol module, the first real serverkit module.
//!
//! The client sends lines; each comes back unchanged. `QUIT` ends the session. With
//! `fault_injection = on` (for tests and for operators probing their limits) the line
//! `!trap` makes the session trap and `!spin` makes it loop forever, so the host's
//! isolation and CPU deadline can be seen at work.

use serverkit_sdk::client::DEFAULT_MAX_LINE;
use serverkit_sdk::describe::{self, SERVERKIT_AUTHORS, option};
use serverkit_sdk::{
    Client, Connection, Descriptor, Line, Module, OptionType, Version, config, listen, log,
};

struct Echo;

impl Module for Echo {
    fn describe() -> Descriptor {
        Descriptor::new(
            "echo",
            "Line echo: every line a client sends comes back unchanged",
            Version::new(1, 0, 0),
        )
        .author(SERVERKIT_AUTHORS)
        .options(describe::listen_options(7, 128))
        .options([
            option(
                "greeting",
                OptionType::Text,
                "Line sent to each client when it connects",
            ),
            option(
                "fault_injection",
                OptionType::Boolean,
                "For tests: the lines `!trap` and `!spin` make the session trap or loop forever",
            )
            .default_flag(false),
        ])
    }

    fn prestart() -> Result<(), String> {
        listen::plain().map(drop)
    }

    fn session(conn: Connection) -> Result<(), String> {
        let mut client = Client::new(conn)?;
        let faults = config::flag("fault_injection");
        if let Some(greeting) = config::text("greeting") {
            client
                .send(format!("{greeting}\n").as_bytes())
                .map_err(|e| e.to_string())?;
        }
        loop {
            let line = match client.read_line().map_err(|e| e.to_string())? {
                Line::Complete(line) | Line::Unterminated(line) => line,
                Line::TooLong => return Err(format!("line longer than {DEFAULT_MAX_LINE} bytes")),
                Line::Closed => break, // the client closed the connection
            };
            match line.trim_ascii_end() {
                b"QUIT" => break,
                b"!trap" if faults => {
                    log::log(log::Level::Warn, "fault injection: trapping on request");
                    eprintln!("echo: about to trap (fault injection)");
                    core::arch::wasm32::unreachable()
                }
                b"!spin" if faults => spin_forever(),
                _ => {}
            }
            client.send(&line).map_err(|e| e.to_string())?;
        }
        Ok(())
    }
}

/// Loops without ever calling the host: only the host's CPU deadline can end it.
fn spin_forever() -> ! {
    let mut n: u64 = 0;
    loop {
        n = std::hint::black_box(n.wrapping_add(1));
    }
}

serverkit_sdk::export!(Echo);
