//! `Expect: 100-continue` (RFC 9110 §10.1.1): curl, told to wait a minute for the
//! interim response, is answered at once; a strict client that sends nothing before the
//! interim or final response gets one; a body shttp will not read leaves the connection
//! closed, never out of step.

use std::process::Command;
use std::time::Duration;

use crate::http::{Raw, start};

/// curl with a budget far below its wait for `100 Continue`: a server that never
/// answers the expectation makes it fail instead of passing slowly.
fn curl_expecting(args: &[&str]) -> (String, String) {
    let out = Command::new("curl")
        .args([
            "-sS",
            "-v",
            "--max-time",
            "30",
            "--expect100-timeout",
            "60",
            "-H",
            "Expect: 100-continue",
        ])
        .args(args)
        .output()
        .expect("run curl");
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    );
    assert!(out.status.success(), "curl {args:?} failed:\n{stderr}");
    (stdout, stderr)
}

#[test]
fn curl_gets_100_continue_for_a_body_that_is_read_and_405_at_once_for_one_that_is_not() {
    let site = start("");
    let index = format!("{}/index.txt", site.base);
    let hello = format!("{}/sub/hello.txt", site.base);
    // A GET with a body: shttp reads (and drops) it, so it asks for it; the connection
    // stays in step and serves the second URL.
    let (body, trace) = curl_expecting(&["-X", "GET", "--data", "ignored", &index, &hello]);
    assert_eq!(body, "hello, index\nhello from sub\n");
    assert_eq!(
        trace.matches("< HTTP/1.1 100 Continue").count(),
        2,
        "{trace}"
    );
    assert!(trace.contains("Re-using existing connection"), "{trace}");

    // A POST is 405 whatever it carries: the final status at once, no 100.
    let (code, trace) = curl_expecting(&[
        "--data",
        "hello",
        "-o",
        "/dev/null",
        "-w",
        "%{http_code}",
        &index,
    ]);
    assert_eq!(code, "405");
    assert!(!trace.contains("100 Continue"), "{trace}");
    assert!(trace.contains("< Connection: close"), "{trace}");
}

#[test]
fn a_strict_client_waiting_for_the_interim_response_gets_it() {
    let site = start("");
    let addr = site.server.addr;
    // GET with a body held back until the server answers the expectation.
    let mut raw = Raw::connect(addr);
    raw.send(
        b"GET /index.txt HTTP/1.1\r\nHost: t\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n",
    );
    let interim = raw.response(true).expect("an interim response");
    assert_eq!(interim.status, 100);
    raw.send(b"hello");
    let r = raw.response(false).unwrap();
    assert_eq!(
        (r.status, r.body.as_slice()),
        (200, b"hello, index\n".as_slice())
    );
    raw.get("/sub/hello.txt", "");
    assert_eq!(
        raw.response(false).unwrap().body,
        b"hello from sub\n",
        "the body was taken as a body, not as the next request"
    );

    // PUT: 405 at once, then the connection closes (the client may never send the body).
    let mut raw = Raw::connect(addr);
    raw.send(
        b"PUT /new.txt HTTP/1.1\r\nHost: t\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n",
    );
    let r = raw.response(false).expect("the final status");
    assert_eq!((r.status, r.header("connection")), (405, Some("close")));
    assert!(raw.closed_within(Duration::from_secs(5)));

    // Over the body limit: 413 at once, without waiting for a byte of it.
    let mut raw = Raw::connect(addr);
    raw.send(
        b"GET / HTTP/1.1\r\nHost: t\r\nExpect: 100-continue\r\nContent-Length: 2000000\r\n\r\n",
    );
    assert_eq!(raw.response(false).expect("413").status, 413);
}

#[test]
fn a_body_sent_without_waiting_or_on_http_1_0_needs_no_interim_response() {
    let site = start("");
    let addr = site.server.addr;
    // The whole body came with the head: nothing to ask for, the connection goes on.
    let mut raw = Raw::connect(addr);
    raw.send(b"POST /index.txt HTTP/1.1\r\nHost: t\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\nhello");
    assert_eq!(raw.response(false).unwrap().status, 405);
    raw.get("/index.txt", "");
    assert_eq!(raw.response(false).unwrap().body, b"hello, index\n");

    // HTTP/1.0 expectations are ignored (RFC 9110 §10.1.1): no 1xx to an HTTP/1.0 client.
    let mut raw = Raw::connect(addr);
    raw.send(b"GET /index.txt HTTP/1.0\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\nhello");
    let r = raw.response(false).unwrap();
    assert_eq!(
        (r.status, r.body.as_slice()),
        (200, b"hello, index\n".as_slice())
    );

    // A GET without a body: nothing is expected.
    let mut raw = Raw::connect(addr);
    raw.get("/index.txt", "Expect: 100-continue\r\n");
    assert_eq!(raw.response(false).unwrap().status, 200);
}
