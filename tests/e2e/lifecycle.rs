//! Shutdown and exit codes.

use std::time::{Duration, Instant};

use nix::sys::signal::Signal;

use crate::harness::{Server, TestPersonality, echo_c11n, free_port};

#[test]
fn sigterm_lets_live_sessions_finish_then_exits_zero() {
    let port = free_port();
    let mut server = Server::start(TestPersonality::new(&echo_c11n(port, "")), port);
    let mut live = server.client();
    live.echo("before the signal");
    server.signal(Signal::SIGTERM);
    server.wait_for_log("no longer accepting", Duration::from_secs(5));
    live.echo("after the signal, the live session is still served");
    live.send("QUIT");
    assert_eq!(live.line(), None);
    let status = server.wait_exit(Duration::from_secs(10));
    assert_eq!(
        status.code(),
        Some(0),
        "a drained shutdown exits 0:\n{}",
        server.log()
    );
    assert!(server.log().contains("stopped"));
}

#[test]
fn hup_does_not_kill_the_server() {
    let port = free_port();
    let mut server = Server::start(TestPersonality::new(&echo_c11n(port, "")), port);
    server.signal(Signal::SIGHUP);
    server.wait_for_log("SIGHUP: rechecking", Duration::from_secs(5));
    server.wait_for_log(
        "reload: no module and no option changed",
        Duration::from_secs(10),
    );
    server.client().echo("still serving");
}

#[test]
fn sigint_with_a_stuck_session_exits_at_the_deadline() {
    let port = free_port();
    let c11n = format!("shutdown_timeout = 1\n{}", echo_c11n(port, ""));
    let mut server = Server::start(TestPersonality::new(&c11n), port);
    let mut stuck = server.client();
    stuck.echo("I will never leave");
    let start = Instant::now();
    server.signal(Signal::SIGINT);
    let status = server.wait_exit(Duration::from_secs(10));
    assert_eq!(status.code(), Some(0));
    assert!(
        start.elapsed() >= Duration::from_millis(900),
        "waited for the deadline"
    );
    assert!(
        server
            .log()
            .contains("1 sessions still live at the shutdown deadline"),
        "{}",
        server.log()
    );
    assert_eq!(stuck.line(), None, "the stuck session is closed at exit");
}

#[test]
fn a_port_in_use_is_a_temporary_failure() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let personality = TestPersonality::new(&echo_c11n(port, ""));
    let mut server = Server::spawn(&["run"], personality.path(), &[]);
    let status = server.wait_exit(Duration::from_secs(60));
    assert_eq!(
        status.code(),
        Some(111),
        "address in use exits 111:\n{}",
        server.log()
    );
    let log = server.log();
    assert!(
        log.contains("failed in prestart") && log.contains(&format!("127.0.0.1:{port}")),
        "{log}"
    );
}
