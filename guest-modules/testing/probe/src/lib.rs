//! probe: a test-only module. Each session reports, one line each, what the sandbox lets
//! it reach through WASI (environment, arguments, filesystem, network). Its `mode` option
//! makes its prestart misbehave: ask for a port its section does not grant, or trap.

use std::io::Write;

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

struct Probe;

fn text(key: &str) -> String {
    match config::get(key) {
        Some(ConfigValue::Text(s)) => s,
        _ => String::new(),
    }
}

impl Guest for Probe {
    fn describe() -> types::Descriptor {
        let option = |name: &str, option_type, default, help: &str| OptionSpec {
            name: name.into(),
            option_type,
            default,
            required: false,
            help: help.into(),
        };
        types::Descriptor {
            name: "probe".into(),
            description: "Test-only: probes the sandbox".into(),
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
                    Some(ConfigValue::Text("127.0.0.1".into())),
                    "Address",
                ),
                option("port", OptionType::Port, None, "Port"),
                option(
                    "mode",
                    OptionType::Text,
                    Some(ConfigValue::Text("normal".into())),
                    "normal, heap, bind-ungranted or trap-in-prestart",
                ),
                option(
                    "database",
                    OptionType::DatabaseRef,
                    None,
                    "The one pool this module may query",
                ),
            ],
        }
    }

    fn construct() -> Result<(), String> {
        Ok(())
    }

    fn prestart() -> Result<(), String> {
        let port = match config::get("port") {
            Some(ConfigValue::Integer(p)) => p as u16,
            _ => return Ok(()),
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

    fn operator() -> Result<(), String> {
        Ok(())
    }

    fn session(conn: serverkit::module::connection::Connection) -> Result<(), String> {
        if text("mode") == "heap" {
            let (input, output) = conn.streams().ok_or("streams taken")?;
            return heap_commands(input, output);
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
                if serverkit::module::maildrop::open("doc_root", "/").is_ok() {
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

    fn report() -> Vec<String> {
        Vec::new()
    }
}

/// `mode = heap`: one command a line, one answer a line, driving the heap interface:
/// `create LABEL SIZE MAX`, `alloc LABEL`, `write LABEL ID TEXT`, `read LABEL ID LEN`,
/// `release LABEL ID`.
fn heap_commands(
    input: wasip2::io::streams::InputStream,
    mut output: wasip2::io::streams::OutputStream,
) -> Result<(), String> {
    use serverkit::module::heap;
    use std::io::BufRead;
    for line in std::io::BufReader::new(input).lines() {
        let line = line.map_err(|e| e.to_string())?;
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
        writeln!(output, "{answer}").map_err(|e| e.to_string())?;
        output.flush().map_err(|e| e.to_string())?;
    }
    Ok(())
}

fn own_address() -> String {
    let port = match config::get("port") {
        Some(ConfigValue::Integer(p)) => p,
        _ => 0,
    };
    format!("{}:{port}", text("address"))
}

/// `granted` if `select 1` runs on `pool`, `refused` if the pool is not granted.
fn query_outcome(pool: &str) -> String {
    use serverkit::module::database::{self, Error};
    match database::query(pool, "select 1", &[]) {
        Ok(_) => "granted".into(),
        Err(Error::NoSuchPool(_)) => "refused".into(),
        Err(e) => format!("{e:?}"),
    }
}

fn outcome(result: std::io::Result<()>) -> &'static str {
    if result.is_ok() { "granted" } else { "refused" }
}

export!(Probe);
