//! shttp against hostile requests over raw sockets: path traversal, request smuggling,
//! oversize heads and slow clients. None may leak a byte from outside `doc_root`, get a
//! 5xx, or leave the server unusable.

use std::io::Write;
use std::net::TcpStream;
use std::time::{Duration, Instant};

use crate::http::{Raw, SECRET, fetch, start};

/// Targets that try to leave `doc_root` (`peers.md`'s corpus plus symlinks).
pub const TRAVERSAL: &[&str] = &[
    "/../../../etc/passwd",
    "/%2e%2e/%2e%2e/etc/passwd",
    "/sub/..%2f..%2f..%2fetc/passwd",
    "/%2e%2e%2f%2e%2e%2fetc%2fpasswd",
    "/sub/%252e%252e/index.txt",
    "/..%5c..%5cetc/passwd",
    "/..\\..\\etc\\passwd",
    "/index.txt%00.html",
    "/%00",
    "/%c0%ae%c0%ae/etc/passwd",
    "/%c0%af",
    "/.%2e/",
    "/./../secret.txt",
    "//etc/passwd",
    "http://x/../../etc/passwd",
    "http://x/%2e%2e/secret.txt",
    "/escape-abs",
    "/escape-rel",
    "/etc-link/passwd",
    "/etc-link/",
    "/sub/../../secret.txt",
    "/%2F..%2F..%2Fsecret.txt",
    "/..;/secret.txt",
    "*",
    "secret.txt",
];

#[test]
fn traversal_corpus_never_leaves_doc_root() {
    let site = start("");
    let addr = site.server.addr;
    for target in TRAVERSAL {
        let mut raw = Raw::connect(addr);
        raw.send(
            format!("GET {target} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n").as_bytes(),
        );
        let r = raw
            .response(false)
            .unwrap_or_else(|| panic!("no answer to {target}"));
        let body = String::from_utf8_lossy(&r.body);
        assert!(
            !body.contains(SECRET) && !body.contains("root:"),
            "{target} leaked: {body}"
        );
        assert!(
            matches!(r.status, 400 | 403 | 404),
            "{target}: {}",
            r.status
        );
    }
    assert_eq!(
        fetch(addr, "/sub/../index.txt", "").status,
        200,
        "normalised inside the root"
    );
    assert_eq!(
        fetch(addr, "/inside-link.txt", "").body,
        b"hello, index\n",
        "links inside are followed"
    );
}

/// Heads that try to smuggle a second request (`GET /index.txt`) past the first: each must
/// get 400 and a closed connection.
pub fn smuggling_heads() -> Vec<String> {
    let smuggled = "GET /index.txt HTTP/1.1\r\nHost: t\r\n\r\n";
    vec![
        format!(
            "GET / HTTP/1.1\r\nHost: t\r\nContent-Length: {}\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n{smuggled}",
            5 + smuggled.len()
        ),
        format!(
            "GET / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\nContent-Length: 4\r\n\r\n0\r\n\r\n{smuggled}"
        ),
        format!(
            "GET / HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\nContent-Length: {}\r\n\r\n{smuggled}",
            smuggled.len()
        ),
        format!("GET / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\nZZ\r\n{smuggled}"),
        format!(
            "GET / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding : chunked\r\n\r\n0\r\n\r\n{smuggled}"
        ),
        format!("GET / HTTP/1.1\r\nHost: t\r\nContent-Length: +5\r\n\r\nhello{smuggled}"),
        format!("GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n{smuggled}"),
        format!("GET / HTTP/1.1\nHost: t\n X-Folded: yes\n\n{smuggled}"),
    ]
}

#[test]
fn smuggling_shapes_are_refused_and_the_connection_closed() {
    let site = start("");
    let addr = site.server.addr;
    for head in smuggling_heads() {
        let mut raw = Raw::connect(addr);
        raw.send(head.as_bytes());
        let r = raw
            .response(false)
            .unwrap_or_else(|| panic!("no answer to {head:?}"));
        assert_eq!(r.status, 400, "{head:?}");
        assert_eq!(r.header("connection"), Some("close"));
        assert!(
            raw.closed_within(Duration::from_secs(5)),
            "no second (smuggled) response: {head:?}"
        );
    }
    assert_eq!(fetch(addr, "/index.txt", "").status, 200, "still serving");
}

#[test]
fn a_range_flood_gets_the_plain_file() {
    let site = start("");
    let flood: Vec<String> = (0..200).map(|i| format!("{i}-{}", 1000 + i)).collect();
    let r = fetch(
        site.server.addr,
        "/1m.bin",
        &format!("Range: bytes={}\r\n", flood.join(",")),
    );
    assert_eq!(
        (r.status, r.body.len()),
        (200, 1 << 20),
        "more than 16 ranges: 200"
    );
}

#[test]
fn oversize_lines_and_headers_get_414_and_431() {
    let site = start("max_header_bytes = 4096");
    let addr = site.server.addr;
    let mut raw = Raw::connect(addr);
    raw.send(format!("GET /{} HTTP/1.1\r\n", "a".repeat(10_000)).as_bytes());
    assert_eq!(raw.response(false).unwrap().status, 414);
    let mut raw = Raw::connect(addr);
    raw.send(
        format!(
            "GET / HTTP/1.1\r\nHost: t\r\nX-Big: {}\r\n\r\n",
            "b".repeat(10_000)
        )
        .as_bytes(),
    );
    assert_eq!(raw.response(false).unwrap().status, 431);
    let mut raw = Raw::connect(addr);
    raw.send(
        format!(
            "GET / HTTP/1.1\r\nHost: t\r\n{}\r\n",
            "X-A: b\r\n".repeat(200)
        )
        .as_bytes(),
    );
    assert_eq!(raw.response(false).unwrap().status, 431, "too many fields");
    let mut raw = Raw::connect(addr);
    raw.send(b"GET / HTTP/1.1\r\nHost: t\r\nContent-Length: 99999999999\r\n\r\n");
    assert_eq!(raw.response(false).unwrap().status, 413);
    let mut raw = Raw::connect(addr);
    raw.send(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03 not http at all\r\n\r\n");
    assert_eq!(raw.response(false).unwrap().status, 400);
    assert_eq!(fetch(addr, "/index.txt", "").status, 200, "still serving");
}

#[test]
fn a_slowloris_client_is_dropped_while_others_are_served() {
    let site = start("header_timeout = 2");
    let addr = site.server.addr;
    let mut slow: Vec<TcpStream> = (0..20).map(|_| TcpStream::connect(addr).unwrap()).collect();
    for socket in &mut slow {
        socket.write_all(b"GET / HTTP/1.1\r\n").unwrap();
    }
    let start = Instant::now();
    let mut dropped_after = None;
    'drip: while start.elapsed() < Duration::from_secs(10) {
        for (i, socket) in slow.iter_mut().enumerate() {
            if socket
                .write_all(format!("X-{i}: a\r\n").as_bytes())
                .is_err()
            {
                dropped_after = Some(start.elapsed());
                break 'drip;
            }
        }
        assert_eq!(
            fetch(addr, "/index.txt", "").status,
            200,
            "normal clients are served meanwhile"
        );
        std::thread::sleep(Duration::from_millis(250));
    }
    let after = dropped_after.expect("slow clients were dropped");
    assert!(
        after >= Duration::from_millis(1900),
        "not before the header timeout: {after:?}"
    );
    assert!(
        after < Duration::from_secs(6),
        "soon after the header timeout: {after:?}"
    );
}

#[test]
fn a_missing_doc_root_stops_startup_naming_it() {
    let port = crate::harness::free_port();
    let personality = crate::harness::TestPersonality::new(&format!(
        "executes_as_root = true\nuid = 65534\ngid = 65534\n\
         shttp {{\n  address = 127.0.0.1\n  port = {port}\n  doc_root = no-such-dir\n}}\n"
    ));
    let mut server = crate::harness::Server::spawn(&["run"], personality.path(), &[]);
    let status = server.wait_exit(Duration::from_secs(60));
    assert_eq!(
        status.code(),
        Some(100),
        "a permanent failure:\n{}",
        server.log()
    );
    let log = server.log();
    assert!(
        log.contains("no-such-dir") && log.contains("doc_root"),
        "{log}"
    );
}
