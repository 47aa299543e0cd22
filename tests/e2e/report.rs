//! The status report on SIGUSR1 and SIGALRM: live figures in ServerKit's layout.

use std::time::Duration;

use nix::sys::signal::Signal;

use crate::harness::{Server, TestPersonality, echo_c11n, free_port};

/// The last report in the log, as lines split into whitespace-separated words.
fn last_report(log: &str) -> Vec<Vec<String>> {
    let start = log
        .rfind("ServerKit status report")
        .expect("a report in the log");
    log[start..]
        .lines()
        .take_while(|l| !l.contains(" INFO ") && !l.contains(" WARN "))
        .map(|l| l.split_whitespace().map(String::from).collect())
        .collect()
}

fn row<'a>(report: &'a [Vec<String>], first: &str) -> &'a [String] {
    report
        .iter()
        .find(|r| r.first().is_some_and(|w| w == first))
        .unwrap_or_else(|| panic!("no row {first} in {report:?}"))
}

fn words(line: &str) -> Vec<String> {
    line.split_whitespace().map(String::from).collect()
}

#[test]
fn usr1_prints_live_figures_in_the_seed_layout() {
    let port = free_port();
    let c11n = echo_c11n(
        port,
        "min_threads = 2\nmax_threads = 3\nmin_sessions = 5\nmax_sessions = 40\ngreeting = hi",
    );
    let mut server = Server::start(TestPersonality::new(&c11n), port);
    let mut parked: Vec<_> = (0..3).map(|_| server.client()).collect();
    for client in &mut parked {
        assert_eq!(
            client.line().as_deref(),
            Some("hi"),
            "the session is running and now waits in recv"
        );
    }
    let mut trapping = server.client();
    trapping.line();
    trapping.send("!trap");
    assert_eq!(trapping.line(), None);
    server.wait_for_log("session trapped", Duration::from_secs(5));

    server.signal(Signal::SIGUSR1);
    server.wait_for_log("Module echo", Duration::from_secs(10));
    let report = last_report(&server.log());

    // The seed's headings and column headers, word for word.
    let lines: Vec<String> = report.iter().map(|r| r.join(" ")).collect();
    for heading in [
        "ServerKit status report",
        "Thread pools",
        "Label MinThreads MaxThreads StackSize ActiveBusy ActiveTotal",
        "WaitCount Channel",
        "Database connection pools",
        "Identifier MinConns MaxConns ActiveBusy ActivTotal Errors",
        "Heaps",
        "Label MaxUnits Opts ActChnkSiz ActivUnits ActivChnks AllocUnits",
    ] {
        assert!(
            lines.iter().any(|l| l == heading),
            "missing {heading:?} in:\n{}",
            lines.join("\n")
        );
    }

    let pool = row(&report, "echo_workers");
    assert_eq!(pool[1..4], words("2 3 2097152"), "{pool:?}");
    let total: usize = pool[5].parse().unwrap();
    assert!(
        (2..=3).contains(&total),
        "two workers alive, perhaps a blocking thread: {pool:?}"
    );

    let recv = report
        .iter()
        .find(|r| r.len() == 2 && r[1] == "recv")
        .expect("a recv row");
    assert_eq!(recv[0], "3", "three sessions wait for their client");

    let heap = row(&report, "echo_sessions");
    assert_eq!(
        heap[1..],
        words("40 ES- 16 16 1 3"),
        "min_sessions reserved a chunk; three records live"
    );

    let module = report
        .iter()
        .position(|r| r.join(" ") == "Module echo")
        .unwrap();
    let figures = &report[module + 3];
    assert_eq!(
        figures[..],
        words("1.0.0 1 3 4 0 0 1 0"),
        "version, generation, live, started, ok, errors, traps, timeouts"
    );
    parked[0].echo("serving goes on after the report");
}

#[test]
fn alrm_prints_the_report_for_svc_a() {
    let port = free_port();
    let mut server = Server::start(TestPersonality::new(&echo_c11n(port, "")), port);
    server.signal(Signal::SIGALRM);
    server.wait_for_log("Module echo", Duration::from_secs(10));
    assert!(server.log().contains("SIGALRM: status report follows"));
    server.client().echo("still serving");
}

/// The pool row of the last report: `MAIL min max busy total errors`.
fn pool_row(log: &str) -> Vec<String> {
    let report = last_report(log);
    row(&report, "MAIL").to_vec()
}

#[test]
fn the_report_shows_each_database_pool_live() {
    use crate::pop_fixture::{Backend, PopSetup, database_available};
    for backend in [Backend::Sqlite, Backend::Postgres, Backend::Mysql] {
        if !database_available(backend) {
            continue;
        }
        let mut pop = PopSetup::new(backend).start("");
        let mut client = pop.login("alice", "secret");
        client.ok("STAT");
        pop.server.signal(Signal::SIGUSR1);
        pop.server
            .wait_for_log("Module pop", Duration::from_secs(10));
        let row = pool_row(&pop.server.log());
        assert_eq!(row[1..3], words("1 4"), "{backend:?}: min and max: {row:?}");
        let (busy, total): (usize, usize) = (row[3].parse().unwrap(), row[4].parse().unwrap());
        assert_eq!(busy, 0, "{backend:?}: no query runs now: {row:?}");
        assert!(
            (1..=4).contains(&total),
            "{backend:?}: pool_min is kept open: {row:?}"
        );
        assert_eq!(row[5], "0", "{backend:?}: no connection error: {row:?}");
        client.ok("QUIT");
    }
}

#[test]
fn a_file_being_sent_shows_in_the_sendfile_channel() {
    let mut site = crate::http::start("");
    // Larger than any socket buffer: the transfer must wait for a client that reads nothing.
    std::fs::write(site.www.join("big.bin"), vec![7u8; 32 << 20]).unwrap();
    let addr: std::net::SocketAddr = site.base.trim_start_matches("http://").parse().unwrap();
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    socket.connect(&addr.into()).unwrap();
    let mut stalled: std::net::TcpStream = socket.into();
    std::io::Write::write_all(&mut stalled, b"GET /big.bin HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();

    // Ask until the transfer has filled the buffers and waits (a report a second at most).
    let start = std::time::Instant::now();
    loop {
        site.server.signal(Signal::SIGUSR1);
        site.server
            .wait_for_log("Module shttp", Duration::from_secs(10));
        let report = last_report(&site.server.log());
        let waiting = report
            .iter()
            .find(|r| r.len() == 2 && r[1] == "sendfile")
            .expect("a sendfile row");
        if waiting[0] == "1" {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "no session ever waited in sendfile: {report:?}"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    drop(stalled);
}
