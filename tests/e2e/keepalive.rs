//! Keep-alive connections under budgets and at `max_sessions` (issue 14, items 1 and 6):
//! a busy keep-alive connection is never cut off by the CPU budget, since the budget
//! bounds the work between two waits for the client; a session past
//! `session_wall_seconds` ends between requests, after a whole answer; and at
//! `max_sessions` a new client makes room by ending the longest-idle keep-alive session,
//! while POP3 sessions, which never say they are between requests, are not ended.

use std::time::{Duration, Instant};

use nix::sys::signal::Signal;

use crate::http::{Raw, start};
use crate::pop_fixture::{Backend, PopSetup};

#[test]
fn a_busy_keep_alive_connection_outlives_its_cpu_budget() {
    // 100 ms of wasm between two waits: a runaway loop is stopped at once, but a client
    // that keeps one connection busy for seconds uses far more in all.
    let site = start("session_cpu_ms = 100\n");
    let mut raw = Raw::connect(site.server.addr);
    let started = Instant::now();
    let mut served = 0;
    while started.elapsed() < Duration::from_secs(4) {
        raw.get("/1m.bin", "");
        let response = raw
            .response(false)
            .expect("a whole response on the same connection");
        assert_eq!((response.status, response.body.len()), (200, 1 << 20));
        served += 1;
    }
    let log = site.server.log();
    assert!(
        !log.contains("session_cpu_ms"),
        "{served} served, then:\n{log}"
    );
    assert!(served > 10, "{served}");
}

#[test]
fn a_session_past_its_wall_time_ends_between_requests() {
    let mut site = start("session_wall_seconds = 1\n");
    // Before the connect: the server may accept, and start the session's wall clock,
    // before `connect` has returned here (it failed once at 999.6 ms, taken after).
    let started = Instant::now();
    let mut raw = Raw::connect(site.server.addr);
    let mut whole = 0;
    // Requests back to back: whatever moment the wall passes, no response is cut.
    loop {
        raw.get("/1m.bin", "");
        match raw.response(false) {
            Some(response) => {
                assert_eq!((response.status, response.body.len()), (200, 1 << 20));
                whole += 1;
            }
            None => break,
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "never ended:\n{}",
            site.server.log()
        );
    }
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "{:?}",
        started.elapsed()
    );
    assert!(whole > 0);
    site.server.wait_for_log(
        "limit `session_wall_seconds = 1` hit",
        Duration::from_secs(5),
    );
}

#[test]
fn idle_keep_alive_sessions_make_room_at_max_sessions() {
    let mut site = start("max_sessions = 8\n");
    // Eight clients take every session, each after one request, and stay.
    let mut idle: Vec<Raw> = (0..8)
        .map(|_| {
            let mut raw = Raw::connect(site.server.addr);
            raw.get("/index.txt", "");
            assert_eq!(raw.response(false).unwrap().status, 200);
            raw
        })
        .collect();
    // Three more, each staying too: each makes room by ending the longest-idle session.
    let mut stayed = Vec::new();
    for _ in 0..3 {
        let asked = Instant::now();
        let mut bystander = Raw::connect(site.server.addr);
        bystander.get("/index.txt", "");
        let response = bystander.response(false).expect("served");
        assert_eq!(response.status, 200);
        assert!(
            asked.elapsed() < Duration::from_secs(1),
            "served after {:?}",
            asked.elapsed()
        );
        stayed.push(bystander);
    }
    // The oldest were ended; the newest still serve.
    let newest = idle.last_mut().unwrap();
    newest.get("/index.txt", "");
    assert_eq!(newest.response(false).unwrap().status, 200);
    for oldest in &mut idle[..3] {
        assert!(
            oldest.closed_within(Duration::from_secs(2)),
            "the oldest were ended"
        );
    }
    site.server.signal(Signal::SIGUSR1);
    site.server.wait_for_log(
        "ended to make room at max_sessions",
        Duration::from_secs(10),
    );
    let log = site.server.log();
    let line = log
        .lines()
        .rev()
        .find(|l| l.contains("ended to make room at max_sessions"))
        .unwrap();
    assert!(line.ends_with(" 3"), "{line}");
}

#[test]
fn pop3_sessions_are_not_ended_to_make_room() {
    let pop = PopSetup::new(Backend::Sqlite).start("max_sessions = 2\n");
    let mut first = pop.login("alice", "secret");
    let mut second = pop.login("bob", "hunter2");
    // A third client waits in the backlog: nothing is taken from the two logged in.
    let third = std::net::TcpStream::connect(pop.server.addr).unwrap();
    third
        .set_read_timeout(Some(Duration::from_millis(1500)))
        .unwrap();
    let mut greeting = [0u8; 1];
    assert!(
        std::io::Read::read(&mut &third, &mut greeting).is_err(),
        "the third client is not served while both sessions are live"
    );
    assert!(first.ok("STAT").starts_with("+OK"));
    assert!(second.ok("STAT").starts_with("+OK"));
    first.ok("QUIT");
    let mut third = third;
    third
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    assert!(
        std::io::Read::read(&mut third, &mut greeting).unwrap() > 0,
        "served once one left"
    );
}
