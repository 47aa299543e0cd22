//! pop against hostile clients at volume: password guessing (paced by
//! `auth_failure_delay_ms`, pipelined or in parallel, and no timing difference between
//! an unknown user and a wrong password), overlong lines, command floods, and connection
//! floods beyond `max_sessions`. docs/hardening.md says what each proves.

use std::io::{BufRead, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::thread;
use std::time::{Duration, Instant};

use crate::pop_fixture::{Backend, PopClient, PopSetup};

/// Sends USER and PASS; returns the PASS answer and how long it took to come.
fn attempt(c: &mut PopClient, user: &str, password: &str) -> (String, Duration) {
    c.ok(&format!("USER {user}"));
    let asked = Instant::now();
    let reply = c.cmd(&format!("PASS {password}"));
    (reply, asked.elapsed())
}

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

/// A maildrop query whose cost depends on the user existing, as a real password hash
/// does (`crypt(%p, password)`): the "hash" (a 150,000-step recursive count, 50-400 ms
/// in a debug build) runs only for the row the user name found, never for an unknown
/// user.
fn hashing_query(table: &str) -> String {
    format!(
        "select maildrop from {table} where username = '%u' and password = \
         (with recursive c(n, h) as (select 0, '%p' union all select n + 1, h from c \
         where n < 150000 + 0 * length(password)) select h from c where n = 150000)"
    )
}

#[test]
fn unknown_users_and_wrong_passwords_take_the_same_time() {
    let mut setup = PopSetup::new(Backend::Sqlite);
    setup.query = Some(hashing_query(&setup.table));
    setup.auth_failure_delay_ms = 1000;
    let delay = Duration::from_secs(1);
    let server = setup.start("");
    // What the "hash" costs on this machine now: a successful login pays it undelayed.
    let addr = server.server.addr;
    let hash = median((0..3).map(|_| login(addr, "alice", "secret")).collect());
    assert!(
        (Duration::from_millis(20)..delay / 2).contains(&hash),
        "the query's cost must be visible yet well under the delay: {hash:?}"
    );

    // Both kinds side by side in each round, so load on the machine hits both alike.
    let (mut unknown, mut wrong) = (server.client(), server.client());
    let (mut unknown_times, mut wrong_times) = (Vec::new(), Vec::new());
    for round in 0..9 {
        let guess = thread::spawn(move || {
            let (reply, took) = attempt(&mut wrong, "alice", &format!("guess{round}"));
            (wrong, reply, took)
        });
        let (reply, took) = attempt(&mut unknown, &format!("nobody{round}"), "secret");
        assert_eq!(reply, "-ERR [AUTH] invalid user name or password");
        unknown_times.push(took);
        let (back, reply, took) = guess.join().unwrap();
        wrong = back;
        assert_eq!(reply, "-ERR [AUTH] invalid user name or password");
        wrong_times.push(took);
    }
    let fastest = *unknown_times.iter().chain(&wrong_times).min().unwrap();
    assert!(
        fastest >= delay,
        "every failure waits auth_failure_delay_ms: {fastest:?}"
    );
    let (u, w) = (median(unknown_times), median(wrong_times));
    eprintln!("medians: unknown user {u:?}, wrong password {w:?}; the hash costs {hash:?}");
    // A delay slept after the query makes the wrong password slower by the whole hash;
    // scheduling noise moves both medians alike, far less than half of it.
    assert!(
        u.abs_diff(w) < hash / 2,
        "median of unknown user {u:?}, of wrong password {w:?}; the hash costs {hash:?}"
    );
}

#[test]
fn guessing_is_paced_pipelined_or_in_parallel_and_locks_nobody_out() {
    let server = PopSetup::new(Backend::Sqlite).start("max_sessions = 64");
    let delay = Duration::from_millis(100);

    // Ten guesses in one write: answered one delay apart, not all at once.
    let mut c = server.client();
    let guesses: String = (0..10)
        .map(|i| format!("USER alice\r\nPASS guess{i}\r\n"))
        .collect();
    let sent = Instant::now();
    c.write(guesses.as_bytes());
    for _ in 0..10 {
        assert_eq!(c.line(), "+OK send PASS");
        assert_eq!(c.line(), "-ERR [AUTH] invalid user name or password");
    }
    assert!(sent.elapsed() >= delay * 10, "{:?}", sent.elapsed());

    // 32 connections guessing at once: each failure is paced, none gets in.
    let addr = server.server.addr;
    let guessers: Vec<_> = (0..32)
        .map(|i| {
            thread::spawn(move || {
                let mut c = PopClient::connect(addr);
                for n in 0..5 {
                    let (reply, took) = attempt(&mut c, "alice", &format!("p{i}-{n}"));
                    assert_eq!(reply, "-ERR [AUTH] invalid user name or password");
                    assert!(took >= delay, "{took:?}");
                }
            })
        })
        .collect();
    for g in guessers {
        g.join()
            .expect("a guesser saw something other than a paced -ERR [AUTH]");
    }
    // The owner still logs in: guessing locks nobody out.
    let mut owner = server.login("alice", "secret");
    assert_eq!(owner.cmd("STAT"), "+OK 3 112");
}

#[test]
fn overlong_lines_and_command_floods_are_answered_in_order() {
    let server = PopSetup::new(Backend::Sqlite).start("");
    let mut c = server.client();
    // A megabyte without a line end, then a command: one refusal, then served.
    c.write(&vec![b'A'; 1 << 20]);
    c.write(b"\r\nNOOP\r\n");
    assert_eq!(c.line(), "-ERR line too long");
    assert_eq!(c.line(), "+OK");
    // A hundred overlong lines and 5,000 commands in one stream, read as they come.
    let mut flood = Vec::new();
    for _ in 0..100 {
        flood.extend_from_slice(&[b'X'; 2000]);
        flood.extend_from_slice(b"\r\n");
    }
    flood.extend_from_slice(&b"NOOP\r\nFOO\r\n".repeat(2500));
    let mut writer = c.reader_mut().get_ref().try_clone().unwrap();
    let feeder = thread::spawn(move || writer.write_all(&flood).unwrap());
    for _ in 0..100 {
        assert_eq!(c.line(), "-ERR line too long");
    }
    for _ in 0..2500 {
        assert_eq!(c.line(), "+OK");
        assert_eq!(c.line(), "-ERR unknown command: FOO");
    }
    feeder.join().unwrap();
    c.ok("USER alice");
    assert_eq!(c.cmd("PASS secret"), "+OK 3 messages (112 octets)");
    // Pipelined in the TRANSACTION state too: 500 RETRs in one write.
    c.write(&b"RETR 3\r\n".repeat(500));
    for _ in 0..500 {
        assert_eq!(c.line(), "+OK 25 octets");
        assert_eq!(c.body(), ["Subject: three", "", "three"]);
    }
}

#[test]
fn a_client_that_never_reads_holds_only_its_own_session() {
    let server = PopSetup::new(Backend::Sqlite).start("idle_timeout = 2");
    let mut flooder = TcpStream::connect(server.server.addr).unwrap();
    flooder
        .set_write_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    // CAPA answers are ~150 bytes: the server's writes block long before this is sent.
    let chunk = b"CAPA\r\n".repeat(10_000);
    let started = Instant::now();
    let mut sent = 0usize;
    while started.elapsed() < Duration::from_secs(20) {
        match flooder.write(&chunk) {
            Ok(n) => sent += n,
            Err(_) => break,
        }
        // Others are served meanwhile.
        server.login("bob", "hunter2").ok("QUIT");
    }
    // The server stopped reading (back-pressure), then ended the session once nothing
    // moved for idle_timeout: the write fails well before the loop's limit.
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "the flooder was never cut off (sent {sent} bytes)"
    );
    assert!(sent < 64 << 20, "the server kept reading: {sent} bytes");
}

#[test]
fn a_connection_flood_beyond_max_sessions_waits_then_recovers() {
    let server = PopSetup::new(Backend::Sqlite).start("max_sessions = 4\nidle_timeout = 1");
    let addr = server.server.addr;
    // 12 silent connections, three times max_sessions, and never a byte from them.
    let flood: Vec<TcpStream> = (0..12).map(|_| TcpStream::connect(addr).unwrap()).collect();
    thread::sleep(Duration::from_millis(200));
    // A client behind them waits in the backlog: no greeting while the flood holds
    // every session...
    let queued = Instant::now();
    let mut c = PopClient::connect_raw(addr);
    c.reader_mut()
        .get_ref()
        .set_read_timeout(Some(Duration::from_millis(700)))
        .unwrap();
    let mut first = [0u8; 1];
    assert!(
        c.reader_mut().get_mut().read(&mut first).is_err(),
        "a session beyond max_sessions started"
    );
    // ...and is served once idle_timeout has ended them, four at a time (~3 s).
    c.reader_mut()
        .get_ref()
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let mut greeting = String::new();
    c.reader_mut().read_line(&mut greeting).unwrap();
    assert!(greeting.starts_with("+OK"), "{greeting:?}");
    let waited = queued.elapsed();
    assert!(
        (Duration::from_secs(2)..Duration::from_secs(12)).contains(&waited),
        "served after {waited:?}"
    );
    c.ok("USER alice");
    c.ok("PASS secret");
    c.ok("QUIT");
    drop(flood);
    // Fully recovered: 4 clients at once (the cap), each logged in and out.
    let clients: Vec<_> = [("alice", "secret"), ("bob", "hunter2")]
        .repeat(2)
        .into_iter()
        .map(|(user, password)| thread::spawn(move || login(addr, user, password)))
        .collect();
    for c in clients {
        c.join().unwrap();
    }
}

/// Logs in and out, retrying while another session still holds the maildrop (its lock is
/// released just after its QUIT); returns how long the successful PASS took.
fn login(addr: SocketAddr, user: &str, password: &str) -> Duration {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let mut c = PopClient::connect(addr);
        let (reply, took) = attempt(&mut c, user, password);
        if reply.starts_with("+OK") {
            c.ok("QUIT");
            return took;
        }
        assert!(
            reply.starts_with("-ERR [IN-USE]") && Instant::now() < deadline,
            "{reply}"
        );
        thread::sleep(Duration::from_millis(50));
    }
}
