//! CPU (the brief's item 8; issue 12 item 3 for the operator): a session that spins is
//! interrupted after `session_cpu_ms`; one that works between reads of its client is not,
//! since each wait for the client renews the budget, nor is one making a long answer for
//! a client that takes it (each MiB taken renews it), while a trickle of bytes renews
//! nothing; an operator that never waits is interrupted and restarted with backoff. Echo
//! is served meanwhile.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use super::{Intruder, bystander_served, start};

const SPENT: &str = "limit `session_cpu_ms = 300` hit";

fn start_spinning() -> (crate::harness::Server, SocketAddr) {
    start("  session_cpu_ms = 300\n  operator = spin", "")
}

#[test]
fn spinning_sessions_and_operators_are_interrupted() {
    let (mut server, intruder) = start_spinning();
    server.wait_for_log(
        &format!("operator trapped: {SPENT}"),
        Duration::from_secs(10),
    );
    server.wait_for_log("operator restarts in 2s", Duration::from_secs(10));
    bystander_served(&server, "while the operator spins");

    let started = Instant::now();
    let spin = std::thread::spawn(move || Intruder::connect(intruder).ask("spin"));
    std::thread::sleep(Duration::from_millis(100));
    bystander_served(&server, "while a session spins");
    assert_eq!(spin.join().unwrap(), None, "the spinning session is ended");
    let took = started.elapsed();
    assert!(took < Duration::from_secs(5), "interrupted after {took:?}");
    server.wait_for_log(&format!("session trapped: {SPENT}"), Duration::from_secs(5));

    // 8 stretches of 200 ms, 1.6 s in all, each after a read of the client's next line.
    let mut honest = Intruder::connect(intruder);
    let client = honest.client();
    client.send("work-between-reads 8 200");
    for i in 0..8 {
        assert_eq!(
            client.line().as_deref(),
            Some(format!("worked {i}").as_str())
        );
        client.send("next");
    }
    assert_eq!(
        client.line().as_deref(),
        Some("worked 8 stretches of 200 ms"),
        "a busy session that reads its client keeps its budget"
    );
    bystander_served(&server, "after the CPU attacks");
}

#[test]
fn polling_unread_input_does_not_renew_the_cpu_budget() {
    let (mut server, intruder) = start_spinning();
    let mut session = Intruder::connect(intruder);
    let client = session.client();
    // 3 s of work in 200 ms stretches, each followed by a poll of the input; the client
    // leaves one line there unread, so every poll returns at once.
    client.send("poll-spin 200 3000");
    std::thread::sleep(Duration::from_millis(100));
    client.send("never read");
    let started = Instant::now();
    let answer = client.line();
    bystander_served(&server, "after the polling session");
    assert_eq!(
        answer,
        None,
        "3 s of work past a 300 ms budget, after {:?}",
        started.elapsed()
    );
    // The client sees the close before the server's log line is written.
    server.wait_for_log(&format!("session trapped: {SPENT}"), Duration::from_secs(5));
}

/// What a `work-while-sending` session ends with, read through its `x` bytes: the answer
/// line, or `None` if the session was ended first.
fn answer_after_the_bytes(session: &mut Intruder) -> (usize, Option<String>) {
    let line = session.client().line().unwrap_or_default();
    let answer = line.trim_start_matches('x');
    let received = line.len() - answer.len();
    (received, (!answer.is_empty()).then(|| answer.to_string()))
}

#[test]
fn a_long_answer_to_a_client_that_keeps_up_keeps_its_budget() {
    let (server, intruder) = start("  session_cpu_ms = 300", "");
    let mut session = Intruder::connect(intruder);
    // 2 s of work past a 300 ms budget, never a read or a wait for the client: 256 KiB
    // after every 25 ms, a stretch of 1 MiB in about 100 ms of work.
    session.client().send("work-while-sending 25 2000 262144");
    let (received, answer) = answer_after_the_bytes(&mut session);
    let answer = answer.unwrap_or_else(|| panic!("cut after {received} bytes"));
    assert_eq!(
        answer,
        format!("sent {received} bytes in stretches of 25 ms"),
        "every byte sent arrived"
    );
    assert!(received >= 8 << 20, "{received} bytes in 2 s");
    assert!(!server.log().contains("session_cpu_ms"), "{}", server.log());
}

#[test]
fn a_trickle_of_bytes_does_not_renew_the_cpu_budget() {
    let (mut server, intruder) = start("  session_cpu_ms = 300", "");
    let mut session = Intruder::connect(intruder);
    // 3 s of work with 1 KiB sent after every 25 ms: 120 KiB in all, never a stretch.
    let started = Instant::now();
    session.client().send("work-while-sending 25 3000 1024");
    let (received, answer) = answer_after_the_bytes(&mut session);
    assert_eq!(answer, None, "after {:?}", started.elapsed());
    assert!(received < 64 << 10, "{received} bytes before the cut");
    server.wait_for_log(&format!("session trapped: {SPENT}"), Duration::from_secs(5));
    bystander_served(&server, "after the trickling session");
}
