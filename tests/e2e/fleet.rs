//! Two nodes behind a real HAProxy: `send-proxy` (v1) and `send-proxy-v2` carry the real
//! client's address to pop's log and shttp's access log; only `proxy_protocol_from` may
//! connect, and a bad header ends only its connection; the Maildir lock and deletions hold
//! across the two processes; on a TLS listener the header comes before the handshake.
//! (Failover under load: `fleet_failover`.)

use std::io::Write;
use std::net::SocketAddr;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use crate::fleet_fixture::{self, CLIENT, Check, Fleet, Haproxy, PROXY_OPTIONS, connect_from};
use crate::harness::free_port;
use crate::http::{Raw, run_in};
use crate::metrics::{sample, scrape};
use crate::pop_fixture::{self, Backend, PopClient, PopSetup};
use crate::tls::make_pem;

/// A POP3 client connected from `source` to `to`, greeting read; with its local address.
fn pop_from(source: [u8; 4], to: SocketAddr) -> (PopClient, SocketAddr) {
    let stream = connect_from(source, to).unwrap();
    let local = stream.local_addr().unwrap();
    let mut client = PopClient::over(stream);
    let greeting = client.line();
    assert!(greeting.starts_with("+OK"), "{greeting}");
    (client, local)
}

#[test]
fn haproxy_send_proxy_v1_and_v2_carry_the_real_client_to_pop_and_shttp() {
    let Some(fleet) = Fleet::start() else { return };
    let haproxy = Haproxy::start(&fleet.nodes);
    for frontend in ["pop_v1", "pop_v2"] {
        // Round robin: two sessions reach both nodes.
        for _ in 0..2 {
            let (mut client, local) = pop_from(CLIENT, haproxy.frontends[frontend]);
            assert_eq!(local.ip().to_string(), "127.0.0.2");
            client.ok("USER alice");
            let reply = client.cmd("PASS wrong");
            assert!(reply.starts_with("-ERR [AUTH]"), "{reply}");
            let logs = fleet.wait_for_log(
                &format!("failed login for `alice` from {local}"),
                Duration::from_secs(10),
            );
            let line = logs
                .lines()
                .find(|l| l.contains(&format!("from {local}")))
                .unwrap();
            // The field the host adds to every line a module logs, from the same peer.
            assert!(line.contains(&format!("peer=\"{local}\"")), "{line}");
            client.ok("USER bob");
            client.ok("PASS hunter2");
            assert_eq!(client.ok("STAT"), "+OK 0 0");
            client.ok("QUIT");
        }
    }
    let mut served_by = Vec::new();
    for frontend in ["http_v1", "http_v2"] {
        for _ in 0..2 {
            let stream = connect_from(CLIENT, haproxy.frontends[frontend]).unwrap();
            let local = stream.local_addr().unwrap();
            let mut raw = Raw::over(stream);
            raw.get("/index.txt", "Connection: close\r\n");
            let response = raw.response(false).unwrap();
            assert_eq!(response.status, 200);
            served_by.push(String::from_utf8(response.body).unwrap());
            let logged = format!("{local} \"GET /index.txt HTTP/1.1\" 200 17");
            fleet.wait_for_log(&logged, Duration::from_secs(10));
        }
    }
    served_by.sort();
    served_by.dedup();
    assert_eq!(served_by, ["served by node 0\n", "served by node 1\n"]);
    // Every health check sent a header too, and no connection was refused.
    for node in &fleet.nodes {
        let text = String::from_utf8(scrape(node.metrics, None).body).unwrap();
        for module in ["pop", "shttp"] {
            for family in ["proxy_connections_refused", "proxy_headers_failed"] {
                let name = format!("serverkit_{family}_total{{module=\"{module}\"}}");
                assert_eq!(sample(&text, &name), Some(0), "{name}:\n{text}");
            }
        }
    }
}

#[test]
fn only_proxy_protocol_from_may_connect_and_a_bad_header_ends_only_its_connection() {
    let Some(fleet) = Fleet::start() else { return };
    let node = &fleet.nodes[0];
    // From 127.0.0.2 straight to the node: not a balancer, closed before any greeting.
    for to in [node.pop, node.http] {
        let mut stream = connect_from(CLIENT, to).unwrap();
        let local = stream.local_addr().unwrap();
        let _ = stream.write_all(b"GET / HTTP/1.1\r\n\r\n");
        assert!(Raw::over(stream).closed_within(Duration::from_secs(5)));
        let logs = fleet.wait_for_log(&format!("peer={local}"), Duration::from_secs(10));
        let line = logs.lines().find(|l| l.contains(&format!("peer={local}")));
        assert!(
            line.unwrap()
                .contains("connection refused: not from an address in proxy_protocol_from"),
            "{logs}"
        );
    }
    // From 127.0.0.1, but speaking POP3 at once: no header, the connection ends.
    let mut stream = connect_from([127, 0, 0, 1], node.pop).unwrap();
    stream.write_all(b"USER alice\r\n").unwrap();
    assert!(Raw::over(stream).closed_within(Duration::from_secs(5)));
    fleet.wait_for_log(
        "connection closed: not a valid PROXY header: it starts with neither `PROXY ` nor the v2 signature: `USER alice\\r\\n`",
        Duration::from_secs(10),
    );
    // A malformed v1 header.
    let mut stream = connect_from([127, 0, 0, 1], node.pop).unwrap();
    stream
        .write_all(b"PROXY TCP4 127.0.0.300 127.0.0.1 1 110\r\n")
        .unwrap();
    assert!(Raw::over(stream).closed_within(Duration::from_secs(5)));
    fleet.wait_for_log(
        "its v1 header is malformed: header contains invalid IP address for the source",
        Duration::from_secs(10),
    );
    // A well-formed header written by hand: the client it names is the session's peer.
    let mut stream = connect_from([127, 0, 0, 1], node.pop).unwrap();
    stream
        .write_all(b"PROXY TCP4 192.0.2.44 127.0.0.1 40404 110\r\n")
        .unwrap();
    let mut client = PopClient::over(stream);
    assert!(client.line().starts_with("+OK"));
    client.ok("USER nobody");
    assert!(client.cmd("PASS x").starts_with("-ERR [AUTH]"));
    fleet.wait_for_log(
        "failed login for `nobody` from 192.0.2.44:40404",
        Duration::from_secs(10),
    );
    let text = String::from_utf8(scrape(node.metrics, None).body).unwrap();
    let count = |family: &str, module: &str| {
        sample(
            &text,
            &format!("serverkit_{family}_total{{module=\"{module}\"}}"),
        )
    };
    assert_eq!(count("proxy_connections_refused", "pop"), Some(1));
    assert_eq!(count("proxy_connections_refused", "shttp"), Some(1));
    assert_eq!(count("proxy_headers_failed", "pop"), Some(2));
    // The status report says the same, in the module's part.
    node.server.signal(nix::sys::signal::Signal::SIGUSR1);
    fleet.wait_for_log(
        "PROXY protocol: connections refused (not from proxy_protocol_from) 1, headers missing or malformed 2",
        Duration::from_secs(10),
    );
    // The other node, and the node's other sessions, never noticed.
    let mut other = pop_on(&fleet, 1, [192, 0, 2, 45]);
    other.ok("QUIT");
    assert!(client.cmd("NOOP").starts_with("+OK"));
    client.ok("QUIT");
}

/// A POP3 session on `node` from the client `client` (written as a PROXY v2 header by
/// hand, as HAProxy would), greeting read.
fn pop_on(fleet: &Fleet, node: usize, client: [u8; 4]) -> PopClient {
    let mut stream = connect_from([127, 0, 0, 1], fleet.nodes[node].pop).unwrap();
    let mut header = b"\r\n\r\n\0\r\nQUIT\n\x21\x11\x00\x0c".to_vec();
    header.extend(client);
    header.extend([127, 0, 0, 1]);
    header.extend(40000u16.to_be_bytes());
    header.extend(fleet.nodes[node].pop.port().to_be_bytes());
    stream.write_all(&header).unwrap();
    let mut c = PopClient::over(stream);
    assert!(c.line().starts_with("+OK"));
    c
}

#[test]
fn the_maildrop_lock_and_deletions_hold_across_the_two_nodes() {
    let Some(fleet) = Fleet::start() else { return };
    let mut first = pop_on(&fleet, 0, [192, 0, 2, 1]);
    first.ok("USER alice");
    first.ok("PASS secret");
    assert_eq!(first.ok("STAT"), "+OK 3 112");
    let uidl_one = first.ok("UIDL 1");

    // The other process cannot open the same maildrop while the first holds it.
    let mut second = pop_on(&fleet, 1, [192, 0, 2, 2]);
    second.ok("USER alice");
    let reply = second.cmd("PASS secret");
    assert!(reply.starts_with("-ERR [IN-USE]"), "{reply}");

    // DELE then QUIT on the first node; the second sees the result, once.
    first.ok("DELE 1");
    first.ok("QUIT");
    let mut third = fleet_login_when_free(&fleet, 1, "alice", "secret");
    assert_eq!(third.ok("STAT"), "+OK 2 51");
    third.write(b"UIDL\r\n");
    assert!(third.line().starts_with("+OK"));
    let uids = third.body();
    let deleted = uidl_one.split_whitespace().nth(2).unwrap();
    assert!(uids.iter().all(|u| !u.ends_with(deleted)), "{uids:?}");
    assert_eq!(fleet.setup.files("alice").len(), 2);
    // Deleting on the second node too: what the first deleted is not there to delete.
    third.ok("DELE 1");
    third.ok("QUIT");
    let mut fourth = fleet_login_when_free(&fleet, 0, "alice", "secret");
    assert_eq!(fourth.ok("STAT").split(' ').nth(1), Some("1"));
    fourth.ok("QUIT");
    assert_eq!(fleet.setup.files("alice").len(), 1);
}

/// A session on `node` logged in as `user` once the maildrop's lock, held by a session
/// that just ended on either node, is free.
fn fleet_login_when_free(fleet: &Fleet, node: usize, user: &str, password: &str) -> PopClient {
    pop_fixture::login_when_free(|| pop_on(fleet, node, [192, 0, 2, 3]), user, password)
}

#[test]
fn on_a_tls_listener_the_header_comes_before_the_handshake() {
    let pem = make_pem(false, false);
    let tls_port = free_port();
    let options = format!("{}{PROXY_OPTIONS}", pem.options(tls_port));
    let mut pop = PopSetup::new(Backend::Sqlite).start(&options);
    let haproxy = Haproxy::with(&[fleet_fixture::Frontend {
        name: "pop3s",
        send: "send-proxy-v2",
        check: Check::None,
        servers: vec![SocketAddr::from(([127, 0, 0, 1], tls_port))],
    }]);
    let url = format!("pop3s://127.0.0.1:{}/", haproxy.frontends["pop3s"].port());
    let cacert = pem.cert().display().to_string();
    let curl = |credentials: &str| -> Vec<String> {
        let from = ["-sS", "--interface", "127.0.0.2", "--cacert", &cacert, "-u"];
        from.iter()
            .chain(&[credentials, url.as_str()])
            .map(|s| s.to_string())
            .collect()
    };
    // A wrong password from 127.0.0.2, through HAProxy's TLS passthrough: the log names
    // that client, which only the header told.
    let refused = Command::new("curl")
        .args(curl("alice:wrong"))
        .output()
        .unwrap();
    assert!(!refused.status.success());
    pop.server.wait_for_log(
        "failed login for `alice` from 127.0.0.2:",
        Duration::from_secs(10),
    );
    let args = curl("alice:secret");
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let listing = run_in(Path::new("/"), "curl", &args);
    assert_eq!(listing.lines().count(), 3, "{listing}");
}
