//! Remote syslog: with `bypass_libc_syslog`, log events arrive as RFC 5424 datagrams at a
//! UDP collector; with the collector gone, serving goes on and drops are counted.

use std::net::UdpSocket;
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;

use crate::harness::{Client, Server, TestPersonality, echo_c11n, free_port};

/// Datagrams received until one contains `needle`.
fn receive_until(collector: &UdpSocket, needle: &str) -> Vec<String> {
    collector
        .set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let start = Instant::now();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    while !got.iter().any(|d: &String| d.contains(needle)) {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "no datagram with {needle:?}; got {got:#?}"
        );
        if let Ok(n) = collector.recv(&mut buf) {
            got.push(String::from_utf8_lossy(&buf[..n]).into_owned());
        }
    }
    got
}

/// Datagrams received until one contains `needle`, then until 500 ms pass without one
/// (the rest of a report).
fn receive_all_after(collector: &UdpSocket, needle: &str) -> Vec<String> {
    let mut got = receive_until(collector, needle);
    collector
        .set_read_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    let mut buf = [0u8; 4096];
    while let Ok(n) = collector.recv(&mut buf) {
        got.push(String::from_utf8_lossy(&buf[..n]).into_owned());
    }
    got
}

#[test]
fn events_go_to_a_remote_syslog_and_serving_survives_its_loss() {
    let collector = UdpSocket::bind("127.0.0.1:0").unwrap();
    let port = free_port();
    let c11n = format!(
        "bypass_libc_syslog = true\nlibc_syslog_bypass_address = {}\n{}",
        collector.local_addr().unwrap(),
        echo_c11n(port, "")
    );
    let personality = TestPersonality::new(&c11n);
    let mut server = Server::spawn(&["run"], personality.path(), &[]);
    let datagrams = receive_until(&collector, "serving");

    let pid = server.pid();
    let serving = datagrams.iter().find(|d| d.contains("serving")).unwrap();
    assert!(
        serving.starts_with("<30>1 "),
        "daemon.info, RFC 5424: {serving}"
    );
    assert!(
        serving.contains(&format!(" server.echotest {pid} - - serving")),
        "{serving}"
    );
    assert!(
        datagrams.iter().any(|d| d.contains("listening")),
        "events queued before the drop are sent after it: {datagrams:#?}"
    );
    assert!(
        !server.log().contains("serving"),
        "with the bypass, events no longer go to stderr"
    );

    // The collector goes away: serving goes on, failed sends are counted.
    drop(collector);
    let addr = ([127, 0, 0, 1], port).into();
    for _ in 0..3 {
        let mut client = Client::connect(addr);
        client.send("!trap");
        assert_eq!(client.line(), None);
    }
    Client::connect(addr).echo("still serving without a collector");
    std::thread::sleep(Duration::from_millis(300));
    server.signal(Signal::SIGUSR1);
    server.wait_for_log("Module echo", Duration::from_secs(10));
    let log = server.log();
    let line = log
        .lines()
        .find(|l| l.starts_with("Syslog datagrams sent"))
        .expect("a syslog line in the report");
    let words: Vec<&str> = line.split_whitespace().collect();
    let dropped: u64 = words[5].parse().unwrap();
    assert!(
        dropped >= 1,
        "sends to a closed port are counted as dropped: {line}"
    );
    assert!(
        log.contains("log_entry_heap"),
        "the queue heap is in the report:\n{log}"
    );
}

#[test]
fn the_report_reaches_the_collector_and_a_returning_collector_misses_nothing() {
    let collector = UdpSocket::bind("127.0.0.1:0").unwrap();
    let address = collector.local_addr().unwrap();
    let port = free_port();
    let c11n = format!(
        "bypass_libc_syslog = true\nlibc_syslog_bypass_address = {address}\n{}",
        echo_c11n(port, "")
    );
    let personality = TestPersonality::new(&c11n);
    let server = Server::spawn(&["run"], personality.path(), &[]);
    receive_until(&collector, "serving");

    // The report itself goes to the collector, one datagram per line, MSGID `report`.
    server.signal(Signal::SIGUSR1);
    let datagrams = receive_all_after(&collector, "Module echo");
    let pid = server.pid();
    assert!(
        datagrams
            .iter()
            .any(|d| d.ends_with(" - - SIGUSR1: status report follows")),
        "{datagrams:#?}"
    );
    for line in ["ServerKit status report", "Syslog datagrams sent"] {
        assert!(
            datagrams
                .iter()
                .any(|d| d.contains(&format!(" server.echotest {pid} report - {line}"))),
            "{line:?} as a report datagram: {datagrams:#?}"
        );
    }
    assert!(
        datagrams.iter().all(|d| !d.contains('\n')),
        "one line per datagram: {datagrams:#?}"
    );

    // The collector goes away while a session traps (three log lines), then comes back on
    // the same port. The kernel's port-unreachable for the last line waits on the socket
    // and fails the next send: the first event after the return must arrive all the same.
    drop(collector);
    let mut client = Client::connect(([127, 0, 0, 1], port).into());
    client.send("!trap");
    assert_eq!(client.line(), None);
    std::thread::sleep(Duration::from_millis(300));
    let collector = UdpSocket::bind(address).expect("the collector's port again");
    server.signal(Signal::SIGUSR1);
    let datagrams = receive_all_after(&collector, "Module echo");
    assert!(
        datagrams[0].ends_with(" - - SIGUSR1: status report follows"),
        "the first datagram after the collector's return arrived: {datagrams:#?}"
    );
    // The lines lost while it was away are counted (seen by the next report: a refusal
    // is learnt only at the send after it).
    server.signal(Signal::SIGUSR1);
    let datagrams = receive_all_after(&collector, "Module echo");
    let counts = datagrams
        .iter()
        .rev()
        .find(|d| d.contains("report - Syslog datagrams sent"))
        .expect("the syslog line of the report");
    let words: Vec<&str> = counts
        .rsplit(" - ")
        .next()
        .unwrap()
        .split_whitespace()
        .collect();
    let dropped: u64 = words[5].parse().unwrap();
    assert!(
        dropped >= 1,
        "datagrams lost while it was away are counted: {counts}"
    );
}
