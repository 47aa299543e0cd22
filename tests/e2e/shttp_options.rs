//! shttp's site policy options on the wire: `hidden_files` (dotfiles denied or served,
//! `/.well-known/` always), `autoindex_format = json`, `cache_control`, `hsts_max_age`
//! on HTTPS only, the access log with client bytes escaped, and values refused at
//! startup.

use std::path::Path;
use std::time::Duration;

use crate::harness::{Server, TestPersonality, free_port, is_root};
use crate::http::{Raw, fetch, python, run_in, start};
use crate::tls::make_pem;

/// Writes `text` at `rel` beneath `www`, creating its directories (world-readable:
/// the server runs as nobody).
fn put(www: &Path, rel: &str, text: &str) {
    let path = www.join(rel);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(&path, text).unwrap();
    run_in(www, "chmod", &["-R", "a+rX", "."]);
}

/// The dotfiles of the hidden-files tests, and the well-known file.
fn put_dotfiles(www: &Path) {
    put(www, ".git/config", "[core]\n");
    put(www, ".env", "PASSWORD=x\n");
    put(www, ".hidden/dir/file", "nested\n");
    put(www, "sub/.secret.txt", "secret\n");
    put(www, ".well-known/acme-challenge/x", "token\n");
}

fn status(site: &crate::http::Site, target: &str) -> u16 {
    fetch(site.server.addr, target, "").status
}

#[test]
fn hidden_files_are_404_and_unlisted_by_default_but_well_known_is_served() {
    let site = start("");
    put_dotfiles(&site.www);
    for target in [
        "/.git/config",
        "/.git/",
        "/.git",
        "/.env",
        "/.hidden/dir/file",
        "/sub/.secret.txt",
        "/%2egit/config",
        "/sub/../.env",
        "/.well-known/../.env",
    ] {
        assert_eq!(status(&site, target), 404, "{target}");
    }
    let token = fetch(site.server.addr, "/.well-known/acme-challenge/x", "");
    assert_eq!(
        (token.status, token.body.as_slice()),
        (200, b"token\n".as_slice())
    );
    // Listings show what is served: no dotfile, but the root's `.well-known/`.
    std::fs::remove_file(site.www.join("index.html")).unwrap();
    let root = String::from_utf8(fetch(site.server.addr, "/", "").body).unwrap();
    for hidden in [".git", ".env", ".hidden"] {
        assert!(!root.contains(hidden), "{hidden} listed:\n{root}");
    }
    assert!(
        root.contains("<a href=\".well-known/\">.well-known/</a>"),
        "{root}"
    );
    let sub = String::from_utf8(fetch(site.server.addr, "/sub/", "").body).unwrap();
    assert!(!sub.contains(".secret"), "{sub}");
    let well_known = String::from_utf8(fetch(site.server.addr, "/.well-known/", "").body).unwrap();
    assert!(well_known.contains("acme-challenge/"), "{well_known}");
}

#[test]
fn hidden_files_allow_serves_and_lists_them() {
    let site = start("hidden_files = allow");
    put_dotfiles(&site.www);
    let addr = site.server.addr;
    for (target, body) in [
        ("/.git/config", "[core]\n"),
        ("/.env", "PASSWORD=x\n"),
        ("/.hidden/dir/file", "nested\n"),
        ("/sub/.secret.txt", "secret\n"),
        ("/.well-known/acme-challenge/x", "token\n"),
    ] {
        let r = fetch(addr, target, "");
        assert_eq!(
            (r.status, r.body.as_slice()),
            (200, body.as_bytes()),
            "{target}"
        );
    }
    let sub = String::from_utf8(fetch(addr, "/sub/", "").body).unwrap();
    assert!(
        sub.contains("<a href=\".secret.txt\">.secret.txt</a>"),
        "{sub}"
    );
    let hidden = String::from_utf8(fetch(addr, "/.hidden/", "").body).unwrap();
    assert!(hidden.contains("<a href=\"dir/\">dir/</a>"), "{hidden}");
}

#[test]
fn autoindex_json_is_an_array_python_parses_with_names_dates_and_sizes() {
    let site = start("autoindex = on\nautoindex_format = json");
    put(&site.www, "sub/q\"uote\\back.txt", "12345");
    let r = fetch(site.server.addr, "/sub/", "");
    assert_eq!(r.header("content-type"), Some("application/json"));
    let listing = site.www.parent().unwrap().join("listing.json");
    std::fs::write(&listing, &r.body).unwrap();
    let script = r#"
import json, sys, email.utils
entries = json.load(open(sys.argv[1]))
for e in entries:
    assert set(e) <= {'name', 'type', 'mtime', 'size'}, e
    assert email.utils.parsedate_to_datetime(e['mtime']).year >= 2000, e
    assert ('size' in e) == (e['type'] == 'file'), e
    print(e['type'], e['size'] if 'size' in e else '-', e['name'])
"#;
    let out = run_in(
        &site.www,
        &python(),
        &["-c", script, &listing.display().to_string()],
    );
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "directory - deeper", "directories first:\n{out}");
    for expected in [
        "file 5 q\"uote\\back.txt",
        "file 15 hello.txt",
        "file 29 a file & more.txt",
        "file 21 café.txt",
        "file 21 <tag>.txt",
    ] {
        assert!(lines.contains(&expected), "{expected:?} not in:\n{out}");
    }
}

#[test]
fn cache_control_rides_on_file_responses_only() {
    let site = start("cache_control = \"public, max-age=3600\"");
    let addr = site.server.addr;
    let cc = "public, max-age=3600";
    let whole = fetch(addr, "/index.txt", "");
    assert_eq!(
        (whole.status, whole.header("cache-control")),
        (200, Some(cc))
    );
    let part = fetch(addr, "/1m.bin", "Range: bytes=0-9\r\n");
    assert_eq!((part.status, part.header("cache-control")), (206, Some(cc)));
    let etag = whole.header("etag").unwrap();
    let mut raw = Raw::connect(addr);
    raw.get("/index.txt", &format!("If-None-Match: {etag}\r\n"));
    let unchanged = raw.response(true).unwrap();
    assert_eq!(
        (unchanged.status, unchanged.header("cache-control")),
        (304, Some(cc))
    );
    let index = fetch(addr, "/", "");
    assert_eq!(
        index.header("cache-control"),
        Some(cc),
        "default_index is a file"
    );
    for (target, code) in [("/missing", 404), ("/sub/", 200), ("/sub", 301)] {
        let r = fetch(addr, target, "");
        assert_eq!(
            (r.status, r.header("cache-control")),
            (code, None),
            "{target}"
        );
    }
    let plain = start("");
    assert_eq!(
        fetch(plain.server.addr, "/index.txt", "").header("cache-control"),
        None
    );
}

#[test]
fn hsts_is_sent_on_https_responses_only() {
    let pem = make_pem(false, false);
    let tls_port = free_port();
    let site = start(&format!(
        "{}hsts_max_age = 31536000\n",
        pem.options(tls_port)
    ));
    let cacert = pem.cert().display().to_string();
    let curl_head = |url: &str| {
        run_in(
            &site.www,
            "curl",
            &[
                "-sS",
                "-o",
                "/dev/null",
                "-D",
                "-",
                "--cacert",
                &cacert,
                url,
            ],
        )
    };
    let https = format!("https://127.0.0.1:{tls_port}");
    for target in ["/index.txt", "/missing", "/sub/"] {
        let head = curl_head(&format!("{https}{target}"));
        assert!(
            head.contains("Strict-Transport-Security: max-age=31536000\r\n"),
            "{target}:\n{head}"
        );
    }
    let plain = curl_head(&format!("{}/index.txt", site.base));
    assert!(
        !plain.to_ascii_lowercase().contains("strict-transport"),
        "{plain}"
    );

    let off_port = free_port();
    let off = start(&pem.options(off_port));
    let head = run_in(
        &off.www,
        "curl",
        &[
            "-sS",
            "-o",
            "/dev/null",
            "-D",
            "-",
            "--cacert",
            &cacert,
            &format!("https://127.0.0.1:{off_port}/index.txt"),
        ],
    );
    assert!(
        !head.to_ascii_lowercase().contains("strict-transport"),
        "{head}"
    );
}

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

/// Starts shttp with `extra` in its section and expects it to refuse to start, saying
/// `words`.
fn refused(extra: &str, words: &str) {
    let port = free_port();
    let root = if is_root() {
        "executes_as_root = true\nuid = 65534\ngid = 65534\n"
    } else {
        ""
    };
    let c11n = format!(
        "identity = shttpbad\n{root}shttp {{\n  address = 127.0.0.1\n  port = {port}\n  doc_root = www\n  {extra}\n}}\n"
    );
    let personality = TestPersonality::new(&c11n);
    std::fs::create_dir(personality.path().join("www")).unwrap();
    let mut server = Server::spawn(&["run"], personality.path(), &[]);
    let status = server.wait_exit(Duration::from_secs(60));
    assert!(!status.success(), "started with {extra}");
    let log = server.log();
    assert!(log.contains(words), "{log}");
}

#[test]
fn bad_option_values_stop_the_server_at_startup() {
    refused(
        "hidden_files = maybe",
        "hidden_files must be `deny` or `allow`, not `maybe`",
    );
    refused(
        "autoindex_format = xml",
        "autoindex_format must be `html` or `json`, not `xml`",
    );
    refused(
        "hsts_max_age = -1",
        "hsts_max_age must be 0 or more seconds, not -1",
    );
    refused(
        "cache_control = \"\"",
        "cache_control must be a header field value",
    );
}
