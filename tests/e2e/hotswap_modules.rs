//! Modules added to and removed from `modules/` while serving: a new file starts a module
//! when it needs nothing privileged, a removed one stops accepting while its live sessions
//! finish; listeners of other modules never close.

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use nix::sys::signal::Signal;

use crate::harness::{Server, echo_c11n, free_port};
use crate::hotswap::{fresh_answer, personality, server_dir, test_module};

/// Connects, sends `line` and reads one answer; `None` when refused or closed.
fn ask(addr: SocketAddr, line: &str) -> Option<String> {
    let mut stream = TcpStream::connect(addr).ok()?;
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .ok()?;
    writeln!(stream, "{line}").ok()?;
    let mut answer = String::new();
    BufReader::new(stream).read_line(&mut answer).ok()?;
    (!answer.is_empty()).then(|| answer.trim_end().to_string())
}

#[test]
fn modules_added_and_removed_while_serving() {
    let (echo_port, hostile_port) = (free_port(), free_port());
    let mut server = Server::start(personality(echo_port, ""), echo_port);
    let dir = server_dir(&server);
    let hostile: SocketAddr = ([127, 0, 0, 1], hostile_port).into();
    let mut held_echo = server.client();
    held_echo.echo("before any change");

    // Added with no section in c11n (reread for a new file): its default port 7 needs root.
    std::fs::copy(
        test_module("hostile.wasm"),
        dir.join("modules/hostile.wasm"),
    )
    .unwrap();
    server.wait_for_log("cannot start without a restart", Duration::from_secs(60));
    assert!(
        server.log().contains("hot swap refused"),
        "{}",
        server.log()
    );
    assert_eq!(fresh_answer(server.addr), "ping", "echo serves on");

    // Its section names a port any user may bind: SIGHUP starts it.
    let section = format!("hostile {{\n  address = 127.0.0.1\n  port = {hostile_port}\n}}\n");
    std::fs::write(dir.join("c11n"), echo_c11n(echo_port, "") + &section).unwrap();
    server.signal(Signal::SIGHUP);
    server.wait_for_log(
        "module added while serving: started",
        Duration::from_secs(60),
    );
    assert_eq!(
        ask(hostile, "ping").as_deref(),
        Some("unknown command \"ping\""),
        "the added module serves:\n{}",
        server.log()
    );
    let mut held_hostile = TcpStream::connect(hostile).unwrap();
    held_hostile
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();

    // Removed: no new sessions, the live one finishes, echo is untouched.
    std::fs::remove_file(dir.join("modules/hostile.wasm")).unwrap();
    server.wait_for_log("module file removed", Duration::from_secs(30));
    assert!(
        server.log().contains("still configures it"),
        "the log says the section remains:\n{}",
        server.log()
    );
    assert_eq!(ask(hostile, "ping"), None, "its listener is closed");
    writeln!(held_hostile, "finish").unwrap();
    let mut answer = String::new();
    BufReader::new(&held_hostile)
        .read_line(&mut answer)
        .unwrap();
    assert_eq!(answer.trim_end(), "unknown command \"finish\"");
    server.wait_for_log("removed module stopped", Duration::from_secs(30));
    held_echo.echo("after every change");
    assert_eq!(fresh_answer(server.addr), "ping");

    // The c11n in force still has its section: later reloads are not refused for it.
    server.signal(Signal::SIGHUP);
    server.wait_for_log("no module and no option changed", Duration::from_secs(30));
}

/// `wasm` with a custom section appended: a different file (so a swap happens) holding
/// the same code. A component may carry custom sections anywhere.
fn with_custom_section(mut wasm: Vec<u8>, name: &str, payload: &[u8]) -> Vec<u8> {
    fn leb128(out: &mut Vec<u8>, mut n: usize) {
        loop {
            let byte = (n & 0x7f) as u8;
            n >>= 7;
            out.push(if n == 0 { byte } else { byte | 0x80 });
            if n == 0 {
                return;
            }
        }
    }
    let mut body = Vec::new();
    leb128(&mut body, name.len());
    body.extend_from_slice(name.as_bytes());
    body.extend_from_slice(payload);
    wasm.push(0);
    leb128(&mut wasm, body.len());
    wasm.extend(body);
    wasm
}

#[test]
fn a_pop3_session_held_across_a_swap_finishes_on_its_version() {
    use crate::pop_fixture::{Backend, PopSetup};
    let mut pop = PopSetup::new(Backend::Sqlite).start("");
    let mut held = pop.login("alice", "secret");
    assert!(held.ok("STAT").starts_with("+OK 3 "));

    let dir = pop.setup.personality.path().join("modules");
    let wasm = std::fs::read(test_module("pop.wasm")).unwrap();
    let next = with_custom_section(wasm, "serverkit-test", b"generation 2");
    std::fs::write(dir.join("pop.wasm.new"), next).unwrap();
    std::fs::rename(dir.join("pop.wasm.new"), dir.join("pop.wasm")).unwrap();
    pop.server
        .wait_for_log("generation=2", Duration::from_secs(60));

    // A new login runs on generation 2 while the held one stays on 1.
    let mut fresh = pop.login("bob", "hunter2");
    pop.server.signal(Signal::SIGUSR1);
    pop.server
        .wait_for_log("Draining generation 1: 1 live", Duration::from_secs(10));

    // The held session completes on its version: a retrieval and a deletion at QUIT.
    held.ok("RETR 1");
    let body = held.body();
    assert!(!body.is_empty(), "message 1 has lines");
    held.ok("DELE 1");
    held.ok("QUIT");
    assert_eq!(
        pop.setup.files("alice").len(),
        2,
        "the deletion was applied"
    );
    fresh.ok("QUIT");

    // Its version is released when its last session ends.
    let start = std::time::Instant::now();
    loop {
        let reports = pop.server.log().matches("Module pop").count();
        pop.server.signal(Signal::SIGUSR1);
        while pop.server.log().matches("Module pop").count() == reports {
            assert!(start.elapsed() < Duration::from_secs(20), "no report");
            std::thread::sleep(Duration::from_millis(50));
        }
        std::thread::sleep(Duration::from_millis(100));
        let log = pop.server.log();
        let last = log.rsplit("Module pop").next().unwrap_or_default();
        if !last.contains("Draining generation 1") {
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(10), "{last}");
    }
}

/// A removed module's sessions hold pool instances until they end. A module added
/// meanwhile was checked against the pool as if they had ended: here the intruder's 10
/// draining sessions beside echo (2 sessions and 4 hook instances) and hostile (20 and 4)
/// would need 40 of the pool's 30 instances, so hostile's 15th client would find none
/// (nor would echo's). The add is now refused while the intruder drains, and succeeds
/// once it has.
#[test]
fn a_module_added_while_another_drains_must_fit_beside_its_sessions() {
    let (echo_port, intruder_port, hostile_port) = (free_port(), free_port(), free_port());
    let personality = personality(echo_port, "");
    let dir = personality.path().to_path_buf();
    let section = |name: &str, port: u16, sessions: u16| {
        format!(
            "{name} {{\n  address = 127.0.0.1\n  port = {port}\n  max_sessions = {sessions}\n}}\n"
        )
    };
    let capped = |sections: &str| {
        format!(
            "instance_capacity = 30\n{}{}{sections}",
            echo_c11n(echo_port, "  max_sessions = 2"),
            section("intruder", intruder_port, 10)
        )
    };
    std::fs::write(dir.join("c11n"), capped("")).unwrap();
    std::fs::copy(
        test_module("intruder.wasm"),
        dir.join("modules/intruder.wasm"),
    )
    .unwrap();
    let mut server = Server::start(personality, echo_port);
    let intruder: SocketAddr = ([127, 0, 0, 1], intruder_port).into();
    let mut draining = Vec::new();
    for n in 0..10 {
        let (answer, stream) = held_ask(intruder, &format!("held {n}"));
        assert!(answer.starts_with("unknown command"), "{answer:?}");
        draining.push(stream);
    }
    std::fs::remove_file(dir.join("modules/intruder.wasm")).unwrap();
    server.wait_for_log("module file removed", Duration::from_secs(30));

    std::fs::write(
        dir.join("c11n"),
        capped(&section("hostile", hostile_port, 20)),
    )
    .unwrap();
    std::fs::copy(
        test_module("hostile.wasm"),
        dir.join("modules/hostile.wasm"),
    )
    .unwrap();
    server.wait_for_log(
        "10 sessions of removed modules still hold instances",
        Duration::from_secs(60),
    );
    let hostile: SocketAddr = ([127, 0, 0, 1], hostile_port).into();
    assert_eq!(ask(hostile, "ping"), None, "not started");

    drop(draining);
    server.wait_for_log("removed module stopped", Duration::from_secs(30));
    server.signal(Signal::SIGHUP);
    server.wait_for_log(
        "module added while serving: started",
        Duration::from_secs(60),
    );
    for n in 0..20 {
        let (answer, _) = held_ask(hostile, &format!("ping {n}"));
        assert!(
            answer.starts_with("unknown command"),
            "session {n}: {answer:?}\n{}",
            server.log()
        );
    }
    assert_eq!(fresh_answer(server.addr), "ping", "echo serves beside it");
}

/// Connects, sends `line` and reads one answer, keeping the session open.
fn held_ask(addr: SocketAddr, line: &str) -> (String, TcpStream) {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    writeln!(stream, "{line}").unwrap();
    let mut answer = String::new();
    BufReader::new(&stream).read_line(&mut answer).unwrap();
    (answer.trim_end().to_string(), stream)
}
