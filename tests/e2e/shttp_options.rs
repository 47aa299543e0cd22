//! shttp's site policy options on the wire: the access log with client bytes escaped.

use std::time::Duration;

use crate::http::{Raw, start};

#[test]
fn the_access_log_escapes_what_the_client_sent() {
    let mut site = start("access_log = on");
    let addr = site.server.addr;
    // A quote is a legal target byte (404); a space makes what follows the version
    // (505); a raw control byte makes the head malformed (400). Each is logged, one line
    // each, its client bytes escaped.
    let requests: [(&[u8], u16, &str); 3] = [
        (
            b"GET /a\"b HTTP/1.1\r\nHost: t\r\n\r\n",
            404,
            "\"GET /a\\x22b HTTP/1.1\" 404 ",
        ),
        (
            b"GET /a\" 200 0 \"forged HTTP/1.1\r\nHost: t\r\n\r\n",
            505,
            "\"GET /a\\x22 200 0 \\x22forged HTTP/1.1\" 505 ",
        ),
        (
            b"GET /x\"\x01\x1b[2J\\y HTTP/1.1\r\nHost: t\r\n\r\n",
            400,
            "\"GET /x\\x22\\x01\\x1B[2J\\x5Cy HTTP/1.1\" 400 ",
        ),
    ];
    for (request, status, _) in requests {
        let mut raw = Raw::connect(addr);
        raw.send(request);
        assert_eq!(raw.response(false).unwrap().status, status);
    }
    site.server.wait_for_log("\" 400 ", Duration::from_secs(10));
    let log = site.server.log();
    let lines: Vec<&str> = log.lines().filter(|l| l.contains("HTTP/1.1\" ")).collect();
    assert_eq!(lines.len(), 3, "one line per request:\n{log}");
    for ((_, _, logged), line) in requests.iter().zip(&lines) {
        assert!(line.contains(logged), "{line}\nwanted {logged}");
        // The module's message, before the fields the host adds (`module="shttp" ...`).
        let message = &line[line.find(" \"GET").unwrap()..line.find(" module=").unwrap()];
        assert_eq!(message.matches('"').count(), 2, "{line}");
        assert!(line.bytes().all(|b| (b' '..=b'~').contains(&b)), "{line:?}");
    }
}
