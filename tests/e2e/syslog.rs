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
