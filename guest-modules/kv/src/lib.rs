//! kv: a line-protocol key-value server on the module's keyed store (`store`), the shipped
//! example of state shared by sessions: what one client sets, every other client reads,
//! across hot swaps, and across restarts with `store_persist = true`.
//!
//! One command per line, one answer per line (see `docs/kv.md`):
//! `GET k` → `VALUE v` or `NONE`; `SET k v` and `SETEX k ms v` → `OK`; `DEL k` →
//! `DELETED` or `NONE`; `CAS k old new` (`-` for absent) → `SWAPPED` or `CHANGED`;
//! `INCR k [n]` → `VALUE n`; `KEYS prefix` → one `KEY k` line per key, then `END`;
//! `QUIT`. A refused command answers `ERR why` and the session goes on.

mod command;

use command::Command;
use serverkit_sdk::client::DEFAULT_MAX_LINE;
use serverkit_sdk::describe::{self, SERVERKIT_AUTHORS, option};
use serverkit_sdk::{Client, Connection, Descriptor, Line, Module, OptionType, Version, config};
use serverkit_sdk::{listen, store};

struct Kv;

/// Default `max_line_kb`: a value at the store's default bound (1 MiB) and its command.
const DEFAULT_MAX_LINE_KB: i64 = 1025;

impl Module for Kv {
    fn describe() -> Descriptor {
        Descriptor::new(
            "kv",
            "Key-value server: GET, SET, SETEX, DEL, CAS, INCR, KEYS on the module's keyed store",
            Version::new(1, 0, 0),
        )
        .author(SERVERKIT_AUTHORS)
        .options(describe::listen_options(7379, 128))
        .options([option(
            "max_line_kb",
            OptionType::Integer,
            "Longest command line, in KiB (a value must also fit store_max_value_kb)",
        )
        .default_integer(DEFAULT_MAX_LINE_KB)])
    }

    fn prestart() -> Result<(), String> {
        listen::plain().map(drop)
    }

    fn session(conn: Connection) -> Result<(), String> {
        let max_line = config::integer("max_line_kb").unwrap_or(DEFAULT_MAX_LINE_KB);
        let max_line = usize::try_from(max_line).map_or(DEFAULT_MAX_LINE, |kb| kb << 10);
        let mut client = Client::new(conn)?.with_max_line(max_line);
        loop {
            let line = client.read_line().map_err(|e| e.to_string())?;
            let answer = match &line {
                Line::Closed => return Ok(()),
                Line::TooLong => {
                    if !client.skip_line().map_err(|e| e.to_string())? {
                        return Ok(());
                    }
                    format!("ERR line longer than max_line_kb = {}\n", max_line >> 10)
                }
                Line::Complete(_) | Line::Unterminated(_) => {
                    let text = String::from_utf8_lossy(line.content().unwrap_or_default());
                    match Command::parse(&text) {
                        Ok(Command::Quit) => {
                            client.send(b"BYE\n").map_err(|e| e.to_string())?;
                            return Ok(());
                        }
                        Ok(command) => run(command),
                        Err(why) => format!("ERR {why}\n"),
                    }
                }
            };
            client.send(answer.as_bytes()).map_err(|e| e.to_string())?;
        }
    }

    fn report() -> Vec<String> {
        vec![format!("kv keys {}", store::keys("").count())]
    }
}

/// Runs one command on the store; the answer, ending with a newline.
fn run(command: Command<'_>) -> String {
    let answer = match command {
        Command::Get(key) => Ok(match store::get_text(key) {
            Some(value) => format!("VALUE {value}"),
            None => "NONE".into(),
        }),
        Command::Set(key, value, ttl) => match ttl {
            Some(ttl) => store::set_for(key, value, ttl),
            None => store::set(key, value),
        }
        .map(|()| "OK".into()),
        Command::Del(key) => {
            let deleted = store::delete(key);
            Ok(if deleted { "DELETED" } else { "NONE" }.to_string())
        }
        Command::Cas(key, old, new) => {
            store::compare_and_swap(key, old.map(str::as_bytes), new.map(str::as_bytes))
                .map(|done| if done { "SWAPPED" } else { "CHANGED" }.into())
        }
        Command::Incr(key, by) => store::increment(key, by).map(|n| format!("VALUE {n}")),
        Command::Keys(prefix) => Ok(store::keys(prefix)
            .map(|k| format!("KEY {k}\n"))
            .chain(["END".to_string()])
            .collect()),
        Command::Quit => Ok("BYE".into()),
    };
    match answer {
        Ok(line) => line + "\n",
        Err(e) => format!("ERR {}\n", store::message(e)),
    }
}

serverkit_sdk::export!(Kv);
