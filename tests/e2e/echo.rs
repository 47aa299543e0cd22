//! The echo module end to end: concurrency and fault isolation.

use std::time::{Duration, Instant};

use crate::harness::{Server, TestPersonality, echo_c11n, free_port};

fn start(extra: &str) -> Server {
    let port = free_port();
    Server::start(TestPersonality::new(&echo_c11n(port, extra)), port)
}

#[test]
fn greets_and_echoes_lines_until_quit() {
    let server = start("greeting = \"hi there\"");
    let mut client = server.client();
    assert_eq!(client.line().as_deref(), Some("hi there"));
    client.echo("hello, world");
    client.echo("a second line with ünïcode");
    client.send("QUIT");
    assert_eq!(client.line(), None, "QUIT ends the session");
}

#[test]
fn serves_many_concurrent_clients() {
    let server = start("max_sessions = 200");
    let addr = server.addr;
    let clients: Vec<_> = (0..100)
        .map(|i| {
            std::thread::spawn(move || {
                let mut client = crate::harness::Client::connect(addr);
                for n in 0..20 {
                    client.echo(&format!("client {i} line {n}"));
                }
            })
        })
        .collect();
    for client in clients {
        client.join().expect("every client is served");
    }
}

#[test]
fn a_trapping_session_ends_alone() {
    let server = start("");
    let mut before = server.client();
    before.echo("I was here first");
    let mut victim = server.client();
    victim.echo("about to trap");
    victim.send("!trap");
    assert_eq!(victim.line(), None, "the trapping session is closed");
    // The session that was already open and a new one are both served.
    before.echo("still served");
    server.client().echo("new sessions too");
    let mut server = server;
    server.wait_for_log("session trapped", Duration::from_secs(5));
    assert!(
        server
            .log()
            .contains("fault injection: trapping on request"),
        "the guest's log line reaches the host log"
    );
}

#[test]
fn an_infinite_loop_is_interrupted_without_blocking_others() {
    let mut server = start("session_cpu_ms = 300\nmax_threads = 1\nmin_threads = 1");
    let mut spinner = server.client();
    spinner.send("!spin");
    // While the guest spins on the module's only worker thread, others are still served:
    // the epoch tick makes the spinning guest yield.
    let start = Instant::now();
    server.client().echo("served while another session spins");
    assert_eq!(spinner.line(), None, "the spinning session is ended");
    assert!(start.elapsed() < Duration::from_secs(10));
    server.wait_for_log("interrupt", Duration::from_secs(5));
    server.client().echo("and after");
}

#[test]
fn an_idle_client_is_timed_out() {
    let mut server = start("idle_timeout = 1");
    let mut idle = server.client();
    idle.echo("then silence");
    let start = Instant::now();
    assert_eq!(idle.line(), None, "the server closes an idle session");
    assert!(
        start.elapsed() >= Duration::from_millis(900),
        "not before the timeout"
    );
    server.wait_for_log("idle for 1s", Duration::from_secs(5));
}

#[test]
fn max_sessions_applies_back_pressure_then_recovers() {
    let server = start("max_sessions = 2\ngreeting = welcome");
    let mut first = server.client();
    let mut second = server.client();
    assert_eq!(first.line().as_deref(), Some("welcome"));
    assert_eq!(second.line().as_deref(), Some("welcome"));
    // The third connection waits in the listen backlog: no greeting while two are live.
    let mut third = server.client();
    third.read_timeout(Duration::from_millis(500));
    let mut buf = [0u8; 1];
    let waited = std::io::Read::read(&mut third.reader_mut(), &mut buf);
    assert!(
        waited.is_err(),
        "the third session must not start while two are live: {waited:?}"
    );
    first.send("QUIT");
    assert_eq!(first.line(), None);
    third.read_timeout(Duration::from_secs(20));
    assert_eq!(
        third.line().as_deref(),
        Some("welcome"),
        "the waiting client is served once a session ends"
    );
    third.echo("served");
    second.echo("still served");
}
