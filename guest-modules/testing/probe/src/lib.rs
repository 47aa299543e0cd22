//! probe: a test-only module. Each session reports, one line each, what the sandbox lets
//! it reach through WASI (environment, arguments, filesystem, network). Its `mode` option
//! makes its prestart misbehave: ask for a port its section does not grant, or trap.

use std::io::Write;

use serverkit_sdk::describe::{SERVERKIT_AUTHORS, option};
use serverkit_sdk::{
    Client, Connection, Descriptor, Module, OptionType, Version, config, prestart,
};

struct Probe;

fn text(key: &str) -> String {
    config::text(key).unwrap_or_default()
}

impl Module for Probe {
    fn describe() -> Descriptor {
        Descriptor::new(
            "probe",
            "Test-only: probes the sandbox",
            Version::new(1, 0, 0),
        )
        .author(SERVERKIT_AUTHORS)
        .options([
            option("address", OptionType::Address, "Address").default_text("127.0.0.1"),
            option("port", OptionType::Port, "Port"),
            option(
                "mode",
                OptionType::Text,
                "normal, heap, bind-ungranted or trap-in-prestart",
            )
            .default_text("normal"),
            option(
                "database",
                OptionType::DatabaseRef,
                "The one pool this module may query",
            ),
        ])
    }

    fn prestart() -> Result<(), String> {
        let Some(port) = config::integer("port").map(|p| p as u16) else {
            return Ok(());
        };
        match text("mode").as_str() {
            "trap-in-prestart" => panic!("probe: trapping in prestart on request"),
            "bind-ungranted" => {
                prestart::bind_listener("127.0.0.1", port.wrapping_add(1), 16)
                    .map_err(|e| format!("{e:?}"))?;
            }
            _ => {
                prestart::bind_listener(&text("address"), port, 16)
                    .map_err(|e| format!("{e:?}"))?;
            }
        }
        Ok(())
    }

    fn session(conn: Connection) -> Result<(), String> {
        if text("mode") == "heap" {
            return heap_commands(Client::new(conn)?);
        }
        let (_input, mut output) = conn.streams().ok_or("streams taken")?;
        let report = [
            format!("env {}", std::env::vars().count()),
            format!("args {}", std::env::args().count()),
            format!(
                "fs-read {}",
                outcome(std::fs::read("/etc/passwd").map(|_| ()))
            ),
            format!("fs-list {}", outcome(std::fs::read_dir("/").map(|_| ()))),
            format!("fs-write {}", outcome(std::fs::write("escape.txt", b"x"))),
            // Its own listening address: only the sandbox can refuse this connection.
            format!(
                "tcp-connect {}",
                outcome(std::net::TcpStream::connect(own_address()).map(|_| ()))
            ),
            format!(
                "tcp-listen {}",
                outcome(std::net::TcpListener::bind("127.0.0.1:0").map(|_| ()))
            ),
            format!(
                "second-streams {}",
                if conn.streams().is_some() {
                    "granted"
                } else {
                    "refused"
                }
            ),
            // The pool its section names, and another one it must not reach.
            format!("db-own {}", query_outcome(&text("database"))),
            format!("db-other {}", query_outcome("OTHER")),
            format!(
                "maildrop {}",
                if serverkit_sdk::maildrop::open("doc_root", "/").is_ok() {
                    "granted"
                } else {
                    "refused"
                }
            ),
        ];
        for line in report {
            writeln!(output, "{line}").map_err(|e| e.to_string())?;
        }
        output.flush().map_err(|e| e.to_string())?;
        Ok(())
    }
}

/// `mode = heap`: one command a line, one answer a line, driving the heap interface:
/// `create LABEL SIZE MAX`, `alloc LABEL`, `write LABEL ID TEXT`, `read LABEL ID LEN`,
/// `release LABEL ID`.
fn heap_commands(mut client: Client) -> Result<(), String> {
    use serverkit_sdk::heap;
    // A line too long (or the end of the stream) ends the session.
    while let Some(line) = client
        .read_line()
        .map_err(|e| e.to_string())?
        .content()
        .map(|b| String::from_utf8_lossy(b).into_owned())
    {
        let words: Vec<&str> = line.split_whitespace().collect();
        let num = |i: usize| {
            words
                .get(i)
                .and_then(|w| w.parse::<u64>().ok())
                .unwrap_or(0)
        };
        let answer = match words.as_slice() {
            ["create", label, ..] => {
                let spec = heap::HeapSpec {
                    label: label.to_string(),
                    unit_size: num(2) as u32,
                    units_per_chunk: 1,
                    max_units: num(3) as u32,
                    grow_exponentially: true,
                    shrink: false,
                    unlimited: false,
                };
                heap::create(&spec).map(|()| "ok".to_string())
            }
            ["alloc", label] => heap::alloc(label).map(|id| id.to_string()),
            ["write", label, _, text] => {
                heap::write(label, num(2), 0, text.as_bytes()).map(|()| "ok".to_string())
            }
            ["read", label, ..] => heap::read(label, num(2), 0, num(3) as u32)
                .map(|b| String::from_utf8_lossy(&b).into_owned()),
            ["release", label, _] => heap::release(label, num(2)).map(|()| "ok".to_string()),
            _ => break,
        };
        let answer = answer.unwrap_or_else(|e| format!("err {e:?}"));
        writeln!(client, "{answer}").map_err(|e| e.to_string())?;
        client.flush().map_err(|e| e.to_string())?;
    }
    Ok(())
}

fn own_address() -> String {
    let port = config::integer("port").unwrap_or(0);
    format!("{}:{port}", text("address"))
}

/// `granted` if `select 1` runs on `pool`, `refused` if the pool is not granted.
fn query_outcome(pool: &str) -> String {
    use serverkit_sdk::database::{self, Error};
    match database::query(pool, "select 1", &[]) {
        Ok(_) => "granted".into(),
        Err(Error::NoSuchPool(_)) => "refused".into(),
        Err(e) => format!("{e:?}"),
    }
}

fn outcome(result: std::io::Result<()>) -> &'static str {
    if result.is_ok() { "granted" } else { "refused" }
}

serverkit_sdk::export!(Probe);
