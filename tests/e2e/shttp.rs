//! shttp over raw sockets: what goes on the wire for each kind of answer (files, HEAD,
//! persistence and pipelining, directories, ranges, conditionals, errors).

use std::time::Duration;

use crate::http::{Raw, big_bytes, fetch, start};

#[test]
fn serves_a_file_with_validators_and_length() {
    let site = start("");
    let r = fetch(site.server.addr, "/index.txt", "");
    assert_eq!(r.status, 200);
    assert_eq!(r.body, b"hello, index\n");
    assert_eq!(r.header("content-length"), Some("13"));
    assert_eq!(r.header("content-type"), Some("text/plain; charset=utf-8"));
    assert_eq!(r.header("accept-ranges"), Some("bytes"));
    assert_eq!(r.header("connection"), Some("close"));
    let etag = r.header("etag").unwrap();
    assert!(
        etag.starts_with('"') && etag.ends_with('"'),
        "strong etag: {etag}"
    );
    assert!(r.header("last-modified").unwrap().ends_with(" GMT"));
    assert!(r.header("date").is_some());
    for field in ["content-length", "content-type", "etag", "date"] {
        let count = r.names.iter().filter(|n| *n == field).count();
        assert_eq!(count, 1, "exactly one {field}: {:?}", r.names);
    }
    let big = fetch(site.server.addr, "/1m.bin", "");
    assert_eq!(
        big.body,
        big_bytes(1 << 20),
        "the whole large file, byte for byte"
    );
}

#[test]
fn pipelined_requests_are_answered_in_order_on_one_connection() {
    let site = start("");
    let mut raw = Raw::connect(site.server.addr);
    raw.send(
        b"GET /index.txt HTTP/1.1\r\nHost: t\r\n\r\nHEAD /sub/hello.txt HTTP/1.1\r\nHost: t\r\n\r\n\
          GET /sub/hello.txt HTTP/1.1\r\nHost: t\r\n\r\nGET /missing HTTP/1.1\r\nHost: t\r\n\r\n",
    );
    let first = raw.response(false).unwrap();
    assert_eq!(first.body, b"hello, index\n");
    let head = raw.response(true).unwrap();
    assert_eq!(
        (head.status, head.header("content-length")),
        (200, Some("15"))
    );
    let third = raw.response(false).unwrap();
    assert_eq!(
        third.body, b"hello from sub\n",
        "HEAD sent no body: the next response follows at once"
    );
    let missing = raw.response(false).unwrap();
    assert_eq!(missing.status, 404);
    assert!(missing.header("content-length").is_some());
    raw.get("/index.txt", "");
    assert_eq!(
        raw.response(false).unwrap().status,
        200,
        "still usable after a 404"
    );
    raw.send(b"HEAD /%00 HTTP/1.1\r\nHost: t\r\n\r\nHEAD /sub HTTP/1.1\r\nHost: t\r\n\r\n");
    assert_eq!(raw.response(true).unwrap().status, 400);
    assert_eq!(
        raw.response(true).unwrap().status,
        301,
        "no body after HEAD errors either"
    );
    raw.get("/index.txt", "");
    assert_eq!(raw.response(false).unwrap().body, b"hello, index\n");
}

#[test]
fn persistence_follows_the_version_and_connection_header() {
    let site = start("");
    let mut old = Raw::connect(site.server.addr);
    old.send(b"GET /index.txt HTTP/1.0\r\n\r\n");
    assert_eq!(
        old.response(false).unwrap().header("connection"),
        Some("close")
    );
    assert!(
        old.closed_within(Duration::from_secs(5)),
        "HTTP/1.0 closes by default"
    );

    let mut kept = Raw::connect(site.server.addr);
    kept.send(b"GET /index.txt HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
    assert_eq!(
        kept.response(false).unwrap().header("connection"),
        Some("keep-alive")
    );
    kept.send(b"GET /index.txt HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
    assert_eq!(
        kept.response(false).unwrap().status,
        200,
        "HTTP/1.0 keep-alive honoured"
    );

    let mut closing = Raw::connect(site.server.addr);
    closing.get("/index.txt", "Connection: close\r\n");
    assert_eq!(closing.response(false).unwrap().status, 200);
    assert!(
        closing.closed_within(Duration::from_secs(5)),
        "Connection: close honoured"
    );
}

#[test]
fn other_methods_get_405_and_bodies_are_discarded() {
    let site = start("");
    let mut raw = Raw::connect(site.server.addr);
    raw.send(b"POST /index.txt HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n\r\nhello");
    let r = raw.response(false).unwrap();
    assert_eq!((r.status, r.header("allow")), (405, Some("GET, HEAD")));
    raw.send(b"GET /index.txt HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\n\r\nabc");
    assert_eq!(
        raw.response(false).unwrap().body,
        b"hello, index\n",
        "a GET body is read and dropped"
    );
    raw.get("/index.txt", "");
    assert_eq!(
        raw.response(false).unwrap().status,
        200,
        "framing intact afterwards"
    );
}

#[test]
fn directories_redirect_index_and_list() {
    let site = start("");
    let addr = site.server.addr;
    let r = fetch(addr, "/sub?x=1", "");
    assert_eq!((r.status, r.header("location")), (301, Some("/sub/?x=1")));
    let root = fetch(addr, "/", "");
    assert_eq!(
        root.body, b"<!DOCTYPE html><title>home</title>\n",
        "default_index"
    );
    let listing = String::from_utf8(fetch(addr, "/sub/", "").body).unwrap();
    assert!(
        listing.contains("<a href=\"a%20file%20%26%20more.txt\">a file &amp; more.txt</a>"),
        "{listing}"
    );
    assert!(
        listing.contains("<a href=\"deeper/\">deeper/</a>"),
        "{listing}"
    );
    assert!(listing.contains("<a href=\"hash%23.txt\">"), "{listing}");
    let r = fetch(addr, "/sub/a%20file%20%26%20more.txt", "");
    assert_eq!(r.body, b"content of a file & more.txt\n");
    assert_eq!(
        fetch(addr, "/index.txt/", "").status,
        404,
        "a file is not a directory"
    );

    let closed = start("autoindex = off");
    assert_eq!(fetch(closed.server.addr, "/noindex/", "").status, 403);
}

#[test]
fn ranges_single_suffix_open_multiple_and_unsatisfiable() {
    let site = start("");
    let addr = site.server.addr;
    let big = big_bytes(1 << 20);
    let r = fetch(addr, "/1m.bin", "Range: bytes=0-99\r\n");
    assert_eq!(
        (r.status, r.header("content-range")),
        (206, Some("bytes 0-99/1048576"))
    );
    assert_eq!(r.body, &big[..100]);
    let r = fetch(addr, "/1m.bin", "Range: bytes=-500\r\n");
    assert_eq!(r.body, &big[big.len() - 500..]);
    let r = fetch(addr, "/1m.bin", "Range: bytes=1048000-\r\n");
    assert_eq!(
        (r.header("content-length"), r.header("content-range")),
        (Some("576"), Some("bytes 1048000-1048575/1048576"))
    );
    let r = fetch(addr, "/1m.bin", "Range: bytes=2000000-\r\n");
    assert_eq!(
        (r.status, r.header("content-range")),
        (416, Some("bytes */1048576"))
    );
    let r = fetch(addr, "/1m.bin", "Range: bytes=0-1,5-6\r\n");
    assert_eq!(r.status, 206);
    let ty = r.header("content-type").unwrap();
    let boundary = ty
        .strip_prefix("multipart/byteranges; boundary=")
        .expect(ty);
    let body = String::from_utf8_lossy(&r.body);
    assert_eq!(body.matches(&format!("--{boundary}\r\n")).count(), 2);
    assert!(
        body.contains("Content-Range: bytes 0-1/1048576")
            && body.contains("Content-Range: bytes 5-6/1048576")
    );
    assert!(body.ends_with(&format!("--{boundary}--\r\n")));
    let stale = fetch(
        addr,
        "/1m.bin",
        "Range: bytes=0-99\r\nIf-Range: \"stale\"\r\n",
    );
    assert_eq!(
        (stale.status, stale.body.len()),
        (200, 1 << 20),
        "If-Range mismatch: the whole file"
    );
}

#[test]
fn conditional_requests() {
    let site = start("");
    let addr = site.server.addr;
    let first = fetch(addr, "/index.txt", "");
    let etag = first.header("etag").unwrap().to_string();
    let modified = first.header("last-modified").unwrap().to_string();
    let mut raw = Raw::connect(addr);
    raw.get("/index.txt", &format!("If-None-Match: W/{etag}\r\n"));
    let r = raw.response(true).unwrap();
    assert_eq!((r.status, r.header("etag")), (304, Some(etag.as_str())));
    assert_eq!(r.header("content-length"), Some("13"));
    raw.get("/index.txt", &format!("If-Modified-Since: {modified}\r\n"));
    assert_eq!(
        raw.response(true).unwrap().status,
        304,
        "no body on 304: the connection stays in step"
    );
    raw.get(
        "/index.txt",
        "If-Unmodified-Since: Thu, 01 Jan 1970 00:00:00 GMT\r\n",
    );
    assert_eq!(raw.response(false).unwrap().status, 412);
    raw.get(
        "/1m.bin",
        &format!(
            "Range: bytes=0-9\r\nIf-Range: {}\r\n",
            fetch(addr, "/1m.bin", "").header("etag").unwrap()
        ),
    );
    assert_eq!(raw.response(false).unwrap().status, 206);
}

#[test]
fn content_types_come_from_mime_types_or_the_built_in_table() {
    let site = start("mime_types = mime.types");
    let addr = site.server.addr;
    let r = fetch(addr, "/data.thg", "");
    assert_eq!(r.header("content-type"), Some("application/x-shttp-thing"));
    let r = fetch(addr, "/index.html", "");
    assert_eq!(
        r.header("content-type"),
        Some("text/html; charset=utf-8"),
        "built-in fallback"
    );
    let plain = start("");
    let r = fetch(plain.server.addr, "/data.thg", "");
    assert_eq!(r.header("content-type"), Some("application/octet-stream"));
}

#[test]
fn the_health_check_is_a_constant_response() {
    let site = start("");
    let r = fetch(site.server.addr, "/healthz", "");
    assert_eq!((r.status, r.body.as_slice()), (200, b"OK\n".as_slice()));
}

/// The file's bytes travel by sendfile(2) in the host: strace sees the call, with the
/// file's length, on the server's threads.
#[test]
fn file_bytes_go_by_sendfile() {
    let site = start("");
    let trace = tempfile::NamedTempFile::new().unwrap();
    let mut strace = std::process::Command::new("strace")
        .args(["-f", "-qq", "-e", "trace=sendfile,sendfile64", "-o"])
        .arg(trace.path())
        .args(["-p", &site.server.pid().to_string()])
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run strace (tools/test-packages.txt)");
    // strace needs a moment to attach to every thread: fetch until it has seen a call
    // (each fetch must be whole either way), for at most ten seconds.
    let seen = |path: &std::path::Path| {
        std::fs::read_to_string(path).is_ok_and(|t| t.contains("sendfile("))
    };
    let start = std::time::Instant::now();
    while !seen(trace.path()) && start.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(300));
        let r = fetch(site.server.addr, "/1m.bin", "");
        assert_eq!(r.body, big_bytes(1 << 20));
        std::thread::sleep(Duration::from_millis(100));
    }
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(strace.id() as i32),
        nix::sys::signal::Signal::SIGINT,
    )
    .unwrap();
    strace.wait().unwrap();
    let calls = std::fs::read_to_string(trace.path()).unwrap();
    assert!(
        calls.contains("sendfile("),
        "no sendfile call seen:\n{calls}"
    );
}

#[test]
fn an_idle_persistent_connection_is_closed_after_keepalive_timeout() {
    let site = start("keepalive_timeout = 1");
    let mut raw = Raw::connect(site.server.addr);
    raw.get("/index.txt", "");
    assert_eq!(raw.response(false).unwrap().status, 200);
    let idle = std::time::Instant::now();
    assert!(
        raw.closed_within(Duration::from_secs(5)),
        "closed when idle"
    );
    let waited = idle.elapsed();
    assert!(
        waited >= Duration::from_millis(900) && waited < Duration::from_secs(3),
        "{waited:?}"
    );
}
