//! Guessing per address (issue 14, item 8): wrong passwords sent in parallel from one
//! address are slowed progressively (the penalty doubles per failure, and attempts in
//! flight count), the unauthenticated sessions of one address are capped, and a client
//! from another address (127.0.0.2) logs in at once throughout. The report counts it all.

use std::net::{SocketAddr, TcpStream};
use std::thread;
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;

use crate::pop_fixture::{Backend, PopClient, PopSetup};

/// A POP3 client connecting from `source` (any 127/8 address reaches the server).
fn connect_from(source: [u8; 4], server: SocketAddr) -> TcpStream {
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    socket.bind(&SocketAddr::from((source, 0)).into()).unwrap();
    socket.connect(&server.into()).unwrap();
    socket.into()
}

/// USER alice / PASS `password`: the answer and how long it took after PASS.
fn guess(c: &mut PopClient, password: &str) -> (String, Duration) {
    c.ok("USER alice");
    let asked = Instant::now();
    let reply = c.cmd(&format!("PASS {password}"));
    (reply, asked.elapsed())
}

/// The bystander logs in from 127.0.0.2 and is answered within a second.
fn bystander_logs_in(server: SocketAddr) {
    let started = Instant::now();
    let mut c = PopClient::over(connect_from([127, 0, 0, 2], server));
    assert!(c.line().starts_with("+OK"));
    c.ok("USER bob");
    assert!(c.ok("PASS hunter2").starts_with("+OK 0 messages"));
    c.ok("QUIT");
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "the bystander waited {:?}",
        started.elapsed()
    );
}

#[test]
fn pop_guessing_parallel_guesses_are_slowed_progressively() {
    let mut setup = PopSetup::new(Backend::Sqlite);
    setup.auth_penalty_ms = 200;
    setup.max_unauthenticated_per_address = 64;
    let server = setup.start("auth_penalty_max_ms = 1600\nmax_sessions = 100");
    let addr = server.server.addr;

    // One wrong password from 127.0.0.1, then 40 at once: an address that has failed
    // has its attempts in flight counted too.
    let mut first = PopClient::connect(addr);
    let (reply, _) = guess(&mut first, "first");
    assert_eq!(reply, "-ERR [AUTH] invalid user name or password");
    let guessers: Vec<_> = (0..40)
        .map(|i| {
            thread::spawn(move || {
                let mut c = PopClient::connect(addr);
                let (reply, took) = guess(&mut c, &format!("guess{i}"));
                assert_eq!(reply, "-ERR [AUTH] invalid user name or password");
                took
            })
        })
        .collect();
    thread::sleep(Duration::from_millis(300));
    bystander_logs_in(addr); // while the guesses wait
    let mut times: Vec<Duration> = guessers.into_iter().map(|g| g.join().unwrap()).collect();
    times.sort();
    eprintln!("40 parallel guesses answered after {times:?}");
    // The first waits 200 ms (one failure before it), the next 400, 800 ms, then the rest
    // 1.6 s: progressively, not all together.
    assert!(times[0] < Duration::from_millis(1000), "{times:?}");
    let slowed = times
        .iter()
        .filter(|t| **t >= Duration::from_millis(1600))
        .count();
    assert!(
        slowed >= 35,
        "{slowed} of 40 waited the full penalty: {times:?}"
    );

    // The address's failures stand: its next attempt waits the full penalty too, while
    // the bystander is still answered at once; the owner gets in after the penalty and
    // so clears it.
    let mut c = PopClient::connect(addr);
    let (reply, took) = guess(&mut c, "one more");
    assert_eq!(reply, "-ERR [AUTH] invalid user name or password");
    assert!(took >= Duration::from_millis(1600), "{took:?}");
    bystander_logs_in(addr);
    let (reply, took) = guess(&mut c, "secret");
    assert!(reply.starts_with("+OK 3 messages"), "{reply}");
    assert!(took >= Duration::from_millis(1600), "{took:?}");
    c.ok("QUIT");
    let mut c = PopClient::connect(addr);
    let (reply, took) = guess(&mut c, "secret");
    assert!(reply.starts_with("+OK"), "{reply}");
    assert!(
        took < Duration::from_millis(1000),
        "cleared by the login: {took:?}"
    );

    server.server.signal(Signal::SIGUSR1);
    thread::sleep(Duration::from_millis(500));
    let log = server.server.log();
    assert!(
        log.contains("Logins failed 42, penalised"),
        "the report counts the failures: {log}"
    );
}

#[test]
fn pop_guessing_unauthenticated_sessions_are_capped_per_address() {
    let mut setup = PopSetup::new(Backend::Sqlite);
    setup.max_unauthenticated_per_address = 3;
    let server = setup.start("");
    let addr = server.server.addr;

    let mut held: Vec<PopClient> = (0..3).map(|_| PopClient::connect(addr)).collect();
    // The fourth from the same address is refused before the greeting.
    let mut extra = PopClient::connect_raw(addr);
    assert_eq!(
        extra.line(),
        "-ERR [SYS/TEMP] too many connections from your address, try again later"
    );
    // Another address is not.
    bystander_logs_in(addr);
    // A session that logs in no longer counts: room for one more.
    held[0].ok("USER alice");
    held[0].ok("PASS secret");
    let _one_more = PopClient::connect(addr);
    // A session that ends frees its place too.
    held.pop().unwrap().drop_connection();
    thread::sleep(Duration::from_millis(300));
    let _another = PopClient::connect(addr);
    let mut refused = PopClient::connect_raw(addr);
    assert!(refused.line().starts_with("-ERR [SYS/TEMP]"));

    server.server.signal(Signal::SIGUSR1);
    thread::sleep(Duration::from_millis(500));
    let log = server.server.log();
    assert!(
        log.contains("refused over max_unauthenticated_per_address 2"),
        "the report counts the refusals: {log}"
    );
}
