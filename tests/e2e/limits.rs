//! Per-module limits set in c11n: the test-only `hostile` module runs with every limit
//! lowered, beside echo with the defaults. Each limit lets a request under it through and
//! ends the session that goes past it, echo keeps serving throughout, and the log and the
//! report name the limit hit.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;

use crate::harness::{Client, Server, TestPersonality, free_port};

const LIMITS: &str = "  instance_memory_mb = 16\n  module_memory_mb = 20\n  max_handles = 64\n  \
                      session_wall_seconds = 5\n  session_cpu_ms = 2000\n  max_buffered_kb = 16\n  \
                      max_log_events = 50\n";

fn start() -> (Server, SocketAddr) {
    let (hostile_port, echo_port) = (free_port(), free_port());
    let personality = TestPersonality::new(&format!(
        "executes_as_root = true\nuid = 65534\ngid = 65534\n\
         hostile {{\n  port = {hostile_port}\n{LIMITS}}}\n\
         echo {{\n  address = 127.0.0.1\n  port = {echo_port}\n}}\n"
    ));
    let wasm = PathBuf::from(env!("SERVERKIT_TEST_MODULES_DIR")).join("hostile.wasm");
    std::fs::copy(wasm, personality.path().join("modules/hostile.wasm")).unwrap();
    let server = Server::start(personality, echo_port);
    (server, ([127, 0, 0, 1], hostile_port).into())
}

/// Sends `command`; returns the answer, or `None` if the session was ended.
fn ask(addr: SocketAddr, command: &str) -> Option<String> {
    let mut client = Client::connect(addr);
    client.send(command);
    client.line()
}

#[test]
fn lowered_limits_end_only_the_session_past_them() {
    let (mut server, hostile) = start();
    let mut bystander = server.client();

    // instance_memory_mb = 16
    assert_eq!(ask(hostile, "alloc 4").as_deref(), Some("allocated 4 MiB"));
    assert_eq!(ask(hostile, "alloc 20"), None, "past instance_memory_mb");
    bystander.echo("after memory");

    // module_memory_mb = 20: two sessions of 10 MiB each do not fit together.
    let mut first = Client::connect(hostile);
    first.send("hold 10");
    assert_eq!(first.line().as_deref(), Some("holding 10 MiB"));
    assert_eq!(ask(hostile, "hold 10"), None, "past module_memory_mb");
    first.send("done");
    assert_eq!(first.line().as_deref(), Some("released 10 MiB"));
    drop(first);
    // The first session's memory is given back when it ends.
    let start = Instant::now();
    while ask(hostile, "alloc 10").as_deref() != Some("allocated 10 MiB") {
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "memory given back"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    bystander.echo("after module memory");

    // max_handles = 64
    assert_eq!(
        ask(hostile, "handles 30").as_deref(),
        Some("held 30 handles")
    );
    assert_eq!(ask(hostile, "handles 100"), None, "past max_handles");

    // session_wall_seconds = 5, although idle_timeout is 300.
    assert_eq!(ask(hostile, "sleep 1").as_deref(), Some("slept"));
    let start = Instant::now();
    assert_eq!(ask(hostile, "sleep 20"), None, "past session_wall_seconds");
    assert!(
        start.elapsed() < Duration::from_secs(15),
        "{:?}",
        start.elapsed()
    );

    // session_cpu_ms = 2000: high enough that the log flood below (100 000 host calls)
    // stays under it on a loaded machine, where epoch ticks also count while the worker
    // thread waits for a core.
    assert_eq!(ask(hostile, "spin"), None, "past session_cpu_ms");
    bystander.echo("after cpu");

    // max_buffered_kb = 16
    let wrote = ask(hostile, "write 8").expect("an answer");
    assert!(wrote.ends_with("wrote 8 KiB"), "{wrote:.40}");
    assert_eq!(ask(hostile, "write 32"), None, "past max_buffered_kb");

    // max_log_events = 50: the session goes on, its log is cut.
    assert_eq!(ask(hostile, "logflood").as_deref(), Some("flooded"));
    bystander.echo("after the log flood");
    server.client().echo("and a new session");

    let log = server.log();
    for named in [
        "session trapped: limit `instance_memory_mb = 16` hit",
        "session trapped: limit `module_memory_mb = 20` hit",
        "session trapped: limit `max_handles = 64` hit: resource table has no free keys",
        "session ended: limit `session_wall_seconds = 5` hit",
        "session trapped: limit `session_cpu_ms = 2000` hit: wasm trap: interrupt",
        "session trapped: limit `max_buffered_kb = 16` hit",
        "an instance hit limit `max_log_events = 50`",
    ] {
        assert!(log.contains(named), "{named:?} is logged:\n{log}");
    }
    let flood_lines = log.lines().filter(|l| l.contains("flood line")).count();
    assert_eq!(flood_lines, 50, "the log budget held");

    server.signal(Signal::SIGUSR1);
    server.wait_for_log("Module hostile", Duration::from_secs(10));
    let log = server.log();
    let report = &log[log.rfind("ServerKit status report").unwrap()..];
    let limits = report
        .lines()
        .skip_while(|l| *l != "Module hostile")
        .find(|l| l.starts_with("Limits hit: "))
        .expect("the limits line");
    assert!(
        limits.starts_with(
            "Limits hit: memory 1, module memory 1, wall 1, cpu 1, handles 1, buffered 1, log 1, host memory 0, descriptors 0, store 0;"
        ),
        "{limits}"
    );
    let echo = report
        .lines()
        .skip_while(|l| *l != "Module echo")
        .find(|l| l.starts_with("Limits hit: "))
        .expect("echo's limits line");
    assert!(echo.contains("memory 0, module memory 0, wall 0"), "{echo}");
}

#[test]
fn the_pool_is_sized_from_max_sessions_and_refused_past_instance_capacity() {
    let port = free_port();
    let personality = TestPersonality::new(&format!(
        "instance_capacity = 100\necho {{\n  address = 127.0.0.1\n  port = {port}\n  max_sessions = 200\n}}\n"
    ));
    let out = std::process::Command::new(crate::harness::binary())
        .arg("check")
        .arg(personality.path())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(100), "{stderr}");
    assert!(
        stderr.contains("the modules' `max_sessions` add up to 200 sessions (plus 4 instances for operators and hooks), more than `instance_capacity` = 100"),
        "{stderr}"
    );
}
