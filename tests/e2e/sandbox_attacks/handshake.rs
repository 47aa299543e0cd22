//! A write that must wait for the TLS handshake: a module that writes more than rustls
//! holds before the client's hello (after STARTTLS here) waits for the client's bytes
//! without spinning its worker, echo is served meanwhile, and the session ends when the
//! client goes rather than at the idle timeout. A read after TLS failed fails at once.

use std::time::Duration;

use super::{Intruder, bystander_served, start};
use crate::harness::Server;
use crate::tls::{Pem, make_pem};

/// CPU time the server has used, user and system, in milliseconds.
fn cpu_ms(server: &Server) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{}/stat", server.pid())).unwrap();
    // The fields after the command name, which is in parentheses and may hold spaces:
    // utime and stime are the 14th and 15th of the line, in clock ticks (100 a second).
    let fields: Vec<&str> = stat[stat.rfind(')').unwrap() + 2..].split(' ').collect();
    let ticks: u64 = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
    ticks * 10
}

/// The server with the intruder holding a certificate and key for STARTTLS, a session of
/// it, and the key files (kept while the test runs).
fn session_with_keys() -> (Server, Intruder, Pem) {
    let pem = make_pem(false, false);
    let keys = format!(
        "  cert = {}\n  key = {}",
        pem.cert().display(),
        pem.key().display()
    );
    let (server, intruder) = start(&keys, "");
    (server, Intruder::connect(intruder), pem)
}

#[test]
fn a_write_before_the_clients_hello_waits_without_spinning() {
    let (mut server, mut session, _pem) = session_with_keys();
    session.client().send("starttls-then-write 1000000");
    assert_eq!(session.client().line().as_deref(), Some("go"));
    // The client never sends its hello: the module's write can only wait for it.
    let before = cpu_ms(&server);
    std::thread::sleep(Duration::from_secs(3));
    let used = cpu_ms(&server) - before;
    eprintln!("the server used {used} ms of CPU in 3 s while a write waited for a hello");
    assert!(
        used < 1000,
        "the server used {used} ms of CPU in 3 s while a write waited for a hello"
    );
    bystander_served(&server, "while a write waits for a hello");
    drop(session);
    server.wait_for_log("session ended with an error", Duration::from_secs(10));
}

/// A client that sends no TLS after STARTTLS fails the module's read; rustls keeps that
/// error, so the socket's readiness never clears. The module's next read must fail at
/// once, not loop on the worker waiting for plaintext that cannot come (a loop the read's
/// own timeout could not end, charged to no budget).
#[test]
fn a_read_after_tls_failed_fails_at_once_instead_of_spinning() {
    let (mut server, mut session, _pem) = session_with_keys();
    session.client().send("starttls-then-read");
    assert_eq!(session.client().line().as_deref(), Some("go"));
    let before = cpu_ms(&server);
    // Plain text where the client's hello should be; the socket stays open.
    session.client().send("this is no TLS record");
    server.wait_for_log(
        "after STARTTLS: first failed; second failed.",
        Duration::from_secs(10),
    );
    let used = cpu_ms(&server) - before;
    assert!(
        used < 1000,
        "the server used {used} ms of CPU on two failed reads"
    );
    bystander_served(&server, "after a session's TLS failed");
}
