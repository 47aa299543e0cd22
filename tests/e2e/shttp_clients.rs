//! shttp with real clients: curl, wget, lftp, Python's `http.client` and the strict `h11`
//! parser (from the test venv, tools/test-requirements.txt).

use std::path::Path;
use std::process::Command;

use crate::http::{AWKWARD, big_bytes, python, run_in, start};

fn curl(dir: &Path, args: &[&str]) -> String {
    run_in(dir, "curl", &[&["-sS", "--max-time", "20"], args].concat())
}

#[test]
fn curl_ranges_resume_conditionals_and_keep_alive() {
    let site = start("");
    let b = &site.base;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let big = big_bytes(1 << 20);

    let head = curl(
        d,
        &[
            "-o",
            "/dev/null",
            "-D",
            "-",
            "-r",
            "0-99",
            &format!("{b}/1m.bin"),
        ],
    );
    assert!(
        head.contains("206") && head.contains("Content-Range: bytes 0-99/1048576"),
        "{head}"
    );

    std::fs::write(d.join("part.bin"), &big[..300_000]).unwrap();
    curl(d, &["-C", "-", "-o", "part.bin", &format!("{b}/1m.bin")]);
    assert_eq!(
        std::fs::read(d.join("part.bin")).unwrap(),
        big,
        "curl -C - resumed exactly"
    );

    let headers = curl(d, &["-sI", &format!("{b}/1m.bin")]);
    let modified = headers
        .lines()
        .find_map(|l| l.strip_prefix("Last-Modified: "))
        .unwrap()
        .trim();
    let code = curl(
        d,
        &[
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            "-z",
            modified,
            &format!("{b}/1m.bin"),
        ],
    );
    assert_eq!(code, "304", "curl -z");

    curl(
        d,
        &[
            "-o",
            "/dev/null",
            "--etag-save",
            "e.txt",
            &format!("{b}/index.txt"),
        ],
    );
    let code = curl(
        d,
        &[
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            "--etag-compare",
            "e.txt",
            &format!("{b}/index.txt"),
        ],
    );
    assert_eq!(code, "304", "curl --etag-compare");

    let out = Command::new("curl")
        .args([
            "-sv",
            "-o",
            "/dev/null",
            "-o",
            "/dev/null",
            "-o",
            "/dev/null",
        ])
        .args([
            format!("{b}/index.txt"),
            format!("{b}/sub/hello.txt"),
            format!("{b}/1m.bin"),
        ])
        .output()
        .unwrap();
    let trace = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{trace}");
    assert_eq!(
        trace.matches("Connected to").count(),
        1,
        "three URLs over one connection:\n{trace}"
    );
}

#[test]
fn wget_resumes_and_mirrors_the_autoindex() {
    let site = start("");
    let b = &site.base;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let big = big_bytes(1 << 20);
    std::fs::write(d.join("part.bin"), &big[..123_457]).unwrap();
    run_in(
        d,
        "wget",
        &["-q", "-c", "-O", "part.bin", &format!("{b}/1m.bin")],
    );
    assert_eq!(
        std::fs::read(d.join("part.bin")).unwrap(),
        big,
        "wget -c resumed exactly"
    );

    run_in(
        d,
        "wget",
        &[
            "-q",
            "-r",
            "-np",
            "-nH",
            "-e",
            "robots=off",
            "-P",
            "mirror",
            &format!("{b}/sub/"),
        ],
    );
    let mirror = d.join("mirror/sub");
    for name in AWKWARD
        .iter()
        .copied()
        .chain(["hello.txt", "deeper/notes.md"])
    {
        let got = std::fs::read(mirror.join(name))
            .unwrap_or_else(|e| panic!("wget did not mirror {name}: {e}"));
        assert_eq!(
            got,
            std::fs::read(site.www.join("sub").join(name)).unwrap(),
            "{name}"
        );
    }
}

#[test]
fn lftp_mirrors_the_autoindex() {
    let site = start("");
    let dir = tempfile::tempdir().unwrap();
    let script = format!(
        "set net:max-retries 1; set net:timeout 5; open {}/sub/; mirror . out",
        site.base
    );
    run_in(dir.path(), "lftp", &["-c", &script]);
    for name in AWKWARD
        .iter()
        .copied()
        .chain(["hello.txt", "deeper/notes.md"])
    {
        let got = std::fs::read(dir.path().join("out").join(name))
            .unwrap_or_else(|e| panic!("lftp did not mirror {name}: {e}"));
        assert_eq!(
            got,
            std::fs::read(site.www.join("sub").join(name)).unwrap(),
            "{name}"
        );
    }
}

/// Python's http.client and h11 read every kind of response; h11 rejects any framing
/// error (missing or wrong Content-Length, a body on HEAD or 304).
const PYTHON_CLIENTS: &str = r#"
import http.client, socket, sys, h11
port = int(sys.argv[1])
c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
for method, path, headers, status in [
    ("GET", "/index.txt", {}, 200), ("HEAD", "/index.txt", {}, 200),
    ("GET", "/1m.bin", {"Range": "bytes=10-19"}, 206), ("GET", "/missing", {}, 404),
    ("GET", "/sub", {}, 301), ("GET", "/sub/", {}, 200), ("POST", "/", {}, 405),
]:
    c.request(method, path, headers=headers)
    r = c.getresponse(); r.read()
    assert r.status == status, (method, path, r.status)
etag = None
def h11_round(requests):
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    conn = h11.Connection(h11.CLIENT)
    out = []
    for method, target, extra in requests:
        s.sendall(conn.send(h11.Request(method=method, target=target, headers=[("Host", "t")] + extra)))
        s.sendall(conn.send(h11.EndOfMessage()))
        status, body = None, b""
        while True:
            event = conn.next_event()
            if event is h11.NEED_DATA:
                conn.receive_data(s.recv(65536)); continue
            if isinstance(event, h11.Response): status = event.status_code; headers = dict(event.headers)
            elif isinstance(event, h11.Data): body += event.data
            elif isinstance(event, h11.EndOfMessage): break
        out.append((status, headers, body))
        conn.start_next_cycle()
    return out
first = h11_round([("GET", "/index.txt", [])])[0]
etag = first[1][b"etag"]
results = h11_round([
    ("GET", "/index.txt", [("If-None-Match", etag)]), ("HEAD", "/1m.bin", []),
    ("GET", "/1m.bin", [("Range", "bytes=0-1,5-6")]), ("GET", "/1m.bin", [("Range", "bytes=9999999-")]),
    ("GET", "/index.txt", [("If-Unmodified-Since", "Thu, 01 Jan 1970 00:00:00 GMT")]),
    ("GET", "/sub", []), ("GET", "/sub/", []), ("GET", "/healthz", []), ("GET", "/nope", []),
    ("DELETE", "/index.txt", []), ("GET", "/", []),
])
assert [r[0] for r in results] == [304, 200, 206, 416, 412, 301, 200, 200, 404, 405, 200], [r[0] for r in results]
assert results[1][2] == b"" and results[0][2] == b""
print("ok")
"#;

#[test]
fn python_http_client_and_h11_read_every_response_kind() {
    let site = start("");
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("clients.py"), PYTHON_CLIENTS).unwrap();
    let port = site.server.addr.port().to_string();
    let out = run_in(dir.path(), &python(), &["clients.py", &port]);
    assert_eq!(out.trim(), "ok");
}
