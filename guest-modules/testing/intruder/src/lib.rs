//! intruder: a test-only module written as a hostile module author would, to attack the
//! sandbox where issue 12 found it open (tests/e2e/sandbox_attacks.rs). Its vocabulary
//! declares every kind of grant without a default, so it loads; what it gets is what the
//! operator wrote.
//!
//! - `prestart` (as root) asks for what a section might grant and logs each answer as
//!   `prestart: WHAT: ok ...` or `prestart: WHAT: refused ...`: its listener on
//!   `address:port`, with `probe_wildcard = on` the wildcard on the same port, the file
//!   of `secret` (its text, were it granted), the directory of `doc_root`, TLS with
//!   `cert` and `key`.
//! - `operator = heap` allocates heap units until refused; `operator = spin` never waits.
//! - `report_hook = sleep` makes its `report` hook wait an hour.
//! - A session answers one line per command line (see [`attacks`], [`cpu`] and [`residue`]);
//!   `send-file PATH HEAD OFFSET LENGTH TIMES` has the host send a file of `doc_root`
//!   `TIMES` times, each behind a head of `HEAD` bytes, whether the client reads or not.

mod attacks;
mod cpu;
mod residue;

use std::io::{BufRead, BufReader, Write};

use serverkit_sdk::describe::{SERVERKIT_AUTHORS, option};
use serverkit_sdk::wasip2::clocks::monotonic_clock::subscribe_duration;
use serverkit_sdk::{
    Connection, Descriptor, Module, OptionType, Version, config, filesystem, log, prestart,
};

struct Intruder;

impl Module for Intruder {
    fn describe() -> Descriptor {
        Descriptor::new(
            "intruder",
            "Test-only: attacks the sandbox",
            Version::new(1, 0, 0),
        )
        .author(SERVERKIT_AUTHORS)
        .options([
            option("address", OptionType::Address, "Address").default_text("127.0.0.1"),
            option("port", OptionType::Port, "Port").default_integer(7),
            option(
                "probe_wildcard",
                OptionType::Boolean,
                "Ask for the wildcard too",
            )
            .default_flag(false),
            option("doc_root", OptionType::Directory, "Files to open"),
            option("secret", OptionType::File, "A file to steal"),
            option("tty", OptionType::Terminal, "The operator's terminal"),
            option("db", OptionType::DatabaseRef, "A pool to abuse"),
            option("cert", OptionType::Certificate, "A certificate"),
            option("key", OptionType::PrivateKey, "A private key"),
            option("operator", OptionType::Text, "none, heap or spin").default_text("none"),
            option("report_hook", OptionType::Text, "none, sleep or alias").default_text("none"),
        ])
    }

    fn prestart() -> Result<(), String> {
        let address = config::text("address").unwrap_or_default();
        let port = config::integer("port").unwrap_or(0) as u16;
        let bind = |address: &str| {
            let outcome = prestart::bind_listener(address, port, 64).map(drop);
            said(&format!("bind {address}:{port}"), outcome)
        };
        bind(&address);
        if config::flag("probe_wildcard") {
            for wildcard in ["*", "0.0.0.0", "::"] {
                bind(wildcard);
            }
        }
        match filesystem::granted_file("secret") {
            Some(file) => {
                let text = file.read(0, 4096).unwrap_or_default();
                said_ok("granted-file secret", &String::from_utf8_lossy(&text));
            }
            None => said_refused("granted-file secret", "none"),
        }
        match filesystem::granted_directory("doc_root") {
            Some(_) => said_ok("granted-directory doc_root", "a directory"),
            None => said_refused("granted-directory doc_root", "none"),
        }
        said("prepare-tls", prestart::prepare_tls("cert", "key"));
        // An error here would stop the server: the tests read the log instead.
        Ok(())
    }

    fn operator() -> Result<(), String> {
        match config::text("operator").as_deref() {
            Some("heap") => {
                let (units, error) = attacks::fill_heap("operator", 1024);
                log::log(
                    log::Level::Warn,
                    &format!("operator: heap refused after {units} units: {error}"),
                );
                Ok(())
            }
            Some("spin") => cpu::spin(),
            _ => Ok(()),
        }
    }

    fn report() -> Vec<String> {
        match config::text("report_hook").as_deref() {
            Some("sleep") => subscribe_duration(3600 * 1_000_000_000).block(),
            Some("alias") => return attacks::aliased_lines(64, 16 << 20),
            _ => {}
        }
        log::log(log::Level::Info, "intruder report hook ran");
        vec!["intruder report line".into()]
    }

    fn session(conn: Connection) -> Result<(), String> {
        let (input, mut output) = conn.streams().ok_or("streams taken")?;
        let mut input = BufReader::new(input);
        let mut line = String::new();
        loop {
            line.clear();
            if input.read_line(&mut line).map_err(|e| e.to_string())? == 0 {
                return Ok(());
            }
            let words: Vec<&str> = line.split_whitespace().collect();
            let answer = match words.as_slice() {
                ["quit"] => return Ok(()),
                // The session's error, N bytes of control characters: the host logs it.
                ["fail-with", n] => return Err("\u{1}".repeat(num(n) as usize)),
                ["addresses"] => {
                    format!(
                        "peer {} local {}",
                        conn.peer_address(),
                        conn.local_address()
                    )
                }
                ["spin"] => cpu::spin().map(|()| String::new())?,
                ["work-between-reads", stretches, ms] => {
                    cpu::work_between_reads(&mut input, &mut output, num(stretches), num(ms))?
                }
                ["poll-spin", ms, total] => cpu::poll_spin(input.get_ref(), num(ms), num(total)),
                ["work-while-sending", ms, total, bytes] => {
                    cpu::work_while_sending(&mut output, num(ms), num(total), num(bytes) as usize)?
                }
                ["open", n] => {
                    let (held, answer) = attacks::open_many(num(n));
                    writeln!(output, "{answer}").map_err(|e| e.to_string())?;
                    output.flush().map_err(|e| e.to_string())?;
                    line.clear();
                    input.read_line(&mut line).map_err(|e| e.to_string())?;
                    drop(held);
                    "released".into()
                }
                ["send-file", path, head, offset, length, times] => attacks::send_file(
                    &conn,
                    path,
                    num(head) as usize,
                    (num(offset), num(length)),
                    num(times),
                ),
                ["starttls-then-write", bytes] => {
                    attacks::starttls_then_write(&conn, &mut output, num(bytes) as usize)
                }
                ["starttls-then-read"] => attacks::starttls_then_read(&conn),
                ["db-alias", count, mib] => {
                    attacks::query_aliased(num(count) as usize, num(mib) as usize)
                }
                ["db", ..] => attacks::query(line.trim_start()["db".len()..].trim()),
                ["plant", seed] => residue::plant(num(seed)),
                ["scan", seed] => residue::scan(num(seed)),
                _ => attacks::run(&words),
            };
            writeln!(output, "{answer}").map_err(|e| e.to_string())?;
            output.flush().map_err(|e| e.to_string())?;
        }
    }
}

/// `word` as a number, 0 if it is not one.
fn num(word: &str) -> u64 {
    word.parse().unwrap_or(0)
}

/// Logs what a request during prestart came to.
fn said<T, E: std::fmt::Debug>(what: &str, outcome: Result<T, E>) {
    match outcome {
        Ok(_) => said_ok(what, "granted"),
        Err(e) => said_refused(what, &format!("{e:?}")),
    }
}

fn said_ok(what: &str, detail: &str) {
    log::log(log::Level::Warn, &format!("prestart: {what}: ok {detail}"));
}

fn said_refused(what: &str, detail: &str) {
    log::log(
        log::Level::Info,
        &format!("prestart: {what}: refused {detail}"),
    );
}

serverkit_sdk::export!(Intruder);
