//! hostile: a test-only module that misbehaves on request, so tests can show the host
//! contains it. A session reads one command line and then:
//! - `alloc`: allocates until the host refuses memory (the session traps); `alloc N`
//!   allocates N MiB and answers;
//! - `hold N`: allocates N MiB, answers, and keeps it until the next line;
//! - `recurse`: recurses until the wasm stack is exhausted (the session traps);
//! - `handles`: creates host resources without dropping them until the host refuses;
//!   `handles N` creates N and answers;
//! - `sleep S`: waits S seconds without a byte moving, then answers;
//! - `spin`: loops forever;
//! - `write N`: writes N KiB in one `write`, ignoring the permit `check-write` gives;
//! - `bind`: asks for a privileged listener after the privilege drop (refused);
//! - `logflood`: logs far more lines than a session may;
//! - `verify-costly`: asks the host to check a bcrypt hash of cost 31 (refused unchecked);
//! - `verify-huge`: asks it to check a 16 MiB "stored password" (refused unchecked);
//! - `verify-capped N`: asks for N checks of a bcrypt hash at the cost cap (13), each
//!   about half a second of CPU on the module's blocking threads;
//! - `storefill`: sets keys in the module's store (up to ten million) until the host
//!   refuses one, and answers how many fitted and why the next did not;
//! - `storehuge`: sets a 1 MiB key and an 8 MiB value, and answers both refusals;
//!
//! and answers what happened, if it still can. With `operator_trap = on` its operator
//! traps at once. Sessions use the raw streams, not the SDK's `Client`, because `write N`
//! must break the rule `Client` keeps.

use std::io::{BufRead, BufReader, Write};

use serverkit_sdk::describe::{SERVERKIT_AUTHORS, option};
use serverkit_sdk::wasip2::clocks::monotonic_clock::subscribe_duration;
use serverkit_sdk::{
    Connection, Descriptor, Module, OptionType, Version, auth, config, log, prestart, store,
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
        let (input, mut output) = conn.streams().ok_or("streams taken")?;
        let mut input = BufReader::new(input);
        let mut line = String::new();
        input.read_line(&mut line).map_err(|e| e.to_string())?;
        let (command, n) = match line.trim().split_once(' ') {
            Some((command, n)) => (command, n.parse::<usize>().ok()),
            None => (line.trim(), None),
        };
        let answer = match (command, n) {
            ("alloc", Some(mib)) => format!("allocated {} MiB", allocate(mib).len()),
            ("hold", Some(mib)) => {
                let held = allocate(mib);
                writeln!(output, "holding {} MiB", held.len()).map_err(|e| e.to_string())?;
                output.flush().map_err(|e| e.to_string())?;
                input.read_line(&mut line).map_err(|e| e.to_string())?;
                format!("released {} MiB", held.len())
            }
            ("handles", Some(n)) => {
                let held: Vec<_> = (0..n).map(|_| subscribe_duration(1_000_000_000)).collect();
                format!("held {} handles", held.len())
            }
            ("sleep", Some(seconds)) => {
                subscribe_duration(seconds as u64 * 1_000_000_000).block();
                "slept".into()
            }
            ("spin", None) => spin(),
            ("write", Some(kib)) => {
                output
                    .write(&vec![b'w'; kib << 10])
                    .map_err(|e| format!("{e:?}"))?;
                format!("wrote {kib} KiB")
            }
            ("alloc", None) => allocate_forever(),
            ("recurse", None) => format!("depth {}", recurse(0)),
            ("handles", None) => hold_handles(),
            ("bind", None) => match prestart::bind_listener("127.0.0.1", 1, 1) {
                Ok(_) => "bind granted".into(),
                Err(e) => format!("bind refused: {e:?}"),
            },
            ("logflood", None) => {
                for i in 0..100_000 {
                    log::log(log::Level::Info, &format!("flood line {i}"));
                }
                "flooded".into()
            }
            ("verify-costly", None) => verified(auth::verify(
                "{BLF-CRYPT}$2y$31$MAVrbut9iwf/SON./x09oOecdj4S3iY75/CZ8fGLAMl29.ju8aoo6",
                "guess",
                "PLAIN",
            )),
            ("verify-huge", None) => {
                let huge = format!("{{PLAIN}}{}", "a".repeat(16 << 20));
                verified(auth::verify(&huge, &huge, "PLAIN"))
            }
            ("verify-capped", Some(n)) => {
                let answers: Vec<String> = (0..n)
                    .map(|_| verified(auth::verify(CAPPED, "guess", "PLAIN")))
                    .collect();
                answers.join(", ")
            }
            ("storefill", None) => store_fill(),
            ("storehuge", None) => store_huge(),
            _ => format!("unknown command {:?}", line.trim()),
        };
        writeln!(output, "{answer}").map_err(|e| e.to_string())?;
        output.flush().map_err(|e| e.to_string())
    }
}

/// `doveadm pw -s BLF-CRYPT -r 13 -p hostile`: bcrypt at the host's cost cap.
const CAPPED: &str = "{BLF-CRYPT}$2y$13$MAVrbut9iwf/SON./x09oOecdj4S3iY75/CZ8fGLAMl29.ju8aoo6";

/// What a password check answered, as a line.
fn verified(result: Result<bool, auth::Refusal>) -> String {
    match result {
        Ok(matched) => format!("matched {matched}"),
        Err(refusal) => format!("refused {refusal:?}"),
    }
}

/// Fills the store with small keys in one call loop until the host refuses one.
fn store_fill() -> String {
    for i in 0..10_000_000u32 {
        if let Err(e) = store::set(&format!("fill:{i:08}"), i.to_le_bytes()) {
            return format!("stored {i} keys, then {}", store::message(e));
        }
    }
    "stored ten million keys".into()
}

/// Offers the store a key and a value far past their bounds.
fn store_huge() -> String {
    let key = store::set(&"k".repeat(1 << 20), b"v").map_err(store::message);
    let value = store::set("huge", vec![0u8; 8 << 20]).map_err(store::message);
    format!("key: {key:?}; value: {value:?}")
}

/// Allocates `mib` blocks of 1 MiB, each touched.
fn allocate(mib: usize) -> Vec<Vec<u8>> {
    (0..mib).map(|i| vec![i as u8 | 1; 1 << 20]).collect()
}

/// Loops without end (the CPU budget ends it).
fn spin() -> String {
    let mut n = 0u64;
    loop {
        n = std::hint::black_box(n.wrapping_add(1));
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
        held.push(subscribe_duration(1_000_000_000));
        if held.len() > 1_000_000 {
            return format!("the host gave {} handles", held.len());
        }
    }
}

serverkit_sdk::export!(Hostile);
