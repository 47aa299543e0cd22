//! shttp differentially against nginx (`../shared/reference/peers.md`, §2.1): both serve
//! the same site; for requests where shttp means to behave as nginx, the status and the
//! framing and validator fields must be the same. nginx's ETag and Last-Modified have the
//! same shape as shttp's, so they must even be equal; so must the listings' columns
//! (nginx with `charset utf-8`, under which it counts names in characters) and JSON.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::harness::{Server, TestPersonality, free_port};
use crate::http::{Response, fetch, python, run_in, start};

/// nginx on `www`, killed on drop.
struct Nginx {
    child: Child,
    addr: SocketAddr,
    _dir: tempfile::TempDir,
}

impl Nginx {
    fn start(www: &std::path::Path) -> Nginx {
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let user = if crate::harness::is_root() {
            "user nobody nogroup;"
        } else {
            ""
        };
        let conf = format!(
            "daemon off;\nmaster_process off;\nworker_processes 1;\n{user}\npid {pid};\n\
             error_log /dev/stderr warn;\nevents {{ worker_connections 256; }}\nhttp {{\n\
             include /etc/nginx/mime.types;\ndefault_type application/octet-stream;\n\
             access_log off;\nsendfile on;\nserver_tokens off;\ncharset utf-8;\n\
             client_body_temp_path tmp/body; proxy_temp_path tmp/proxy; fastcgi_temp_path tmp/fastcgi;\n\
             uwsgi_temp_path tmp/uwsgi; scgi_temp_path tmp/scgi;\n\
             server {{ listen 127.0.0.1:{port}; root {root}; location / {{ autoindex on; }}\n\
             location /json/ {{ alias {root}/; autoindex on; autoindex_format json; }} }}\n}}\n",
            pid = dir.path().join("nginx.pid").display(),
            root = www.display(),
        );
        std::fs::create_dir(dir.path().join("tmp")).unwrap();
        std::fs::write(dir.path().join("nginx.conf"), conf).unwrap();
        let child = Command::new("nginx")
            .args(["-p"])
            .arg(dir.path())
            .args(["-c", "nginx.conf", "-e", "/dev/stderr"])
            .stdout(Stdio::null())
            .spawn()
            .expect("run nginx (tools/test-packages.txt)");
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let start = Instant::now();
        while TcpStream::connect(addr).is_err() {
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "nginx did not start"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        Nginx {
            child,
            addr,
            _dir: dir,
        }
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `(target, extra header lines)` answered alike by both.
const SAME: &[(&str, &str)] = &[
    ("/index.txt", ""),
    ("/missing", ""),
    ("/sub/hello.txt", ""),
    ("/sub", ""),
    ("/", ""),
    ("/1m.bin", "Range: bytes=0-99\r\n"),
    ("/1m.bin", "Range: bytes=-500\r\n"),
    ("/1m.bin", "Range: bytes=1048000-\r\n"),
    ("/1m.bin", "Range: bytes=2000000-\r\n"),
    ("/1m.bin", "Range: bytes=0-99\r\nIf-Range: \"stale\"\r\n"),
    (
        "/index.txt",
        "If-Unmodified-Since: Thu, 01 Jan 1970 00:00:00 GMT\r\n",
    ),
    (
        "/index.txt",
        "If-Modified-Since: Thu, 01 Jan 1970 00:00:00 GMT\r\n",
    ),
    ("/../../../etc/passwd", ""),
    ("/%2e%2e/%2e%2e/etc/passwd", ""),
    ("/sub/..%2f..%2f..%2fetc/passwd", ""),
    ("/index.txt%00.html", ""),
    ("/sub/../index.txt", ""),
    ("/sub/%252e%252e/index.txt", ""),
];

/// What must match: the status; framing and validators of 200 and 206 (nginx leaves
/// `Accept-Ranges` out of a 206, so it is compared on 200 only); the `Content-Range` of a
/// 416 (error pages' wording, hence lengths, differ).
fn fields(r: &Response) -> Vec<(&'static str, Option<String>)> {
    let names: &[&'static str] = match r.status {
        200 => &["content-length", "etag", "last-modified", "accept-ranges"],
        206 => &["content-length", "content-range", "etag", "last-modified"],
        416 => &["content-range"],
        _ => &[],
    };
    let mut fields = vec![("status", Some(r.status.to_string()))];
    fields.extend(names.iter().map(|&n| (n, r.header(n).map(str::to_string))));
    fields
}

#[test]
fn shttp_answers_as_nginx_does() {
    let site = start("");
    // nginx opens the files by path as nobody: the personality folder must be searchable.
    Command::new("chmod")
        .args(["755"])
        .arg(site.www.parent().unwrap())
        .status()
        .unwrap();
    let nginx = Nginx::start(&site.www);
    let mut differences = Vec::new();
    for (target, extra) in SAME {
        let theirs = fields(&fetch(nginx.addr, target, extra));
        let ours = fields(&fetch(site.server.addr, target, extra));
        if ours != theirs {
            differences.push(format!(
                "{target} {extra:?}:\n  nginx {theirs:?}\n  shttp {ours:?}"
            ));
        }
    }
    // Revalidating with nginx's own validators works on shttp: they are the same.
    let etag = fetch(nginx.addr, "/index.txt", "")
        .header("etag")
        .unwrap()
        .to_string();
    let r = fetch(
        site.server.addr,
        "/index.txt",
        &format!("If-None-Match: {etag}\r\n"),
    );
    assert_eq!(r.status, 304, "nginx's ETag revalidates on shttp");
    assert!(differences.is_empty(), "{}", differences.join("\n"));
}

/// A second shttp on the same `www`, listing in JSON.
fn json_twin(www: &std::path::Path) -> Server {
    let port = free_port();
    let c11n = format!(
        "identity = shttpjson\nexecutes_as_root = true\nuid = 65534\ngid = 65534\n\
         shttp {{\n  address = 127.0.0.1\n  port = {port}\n  doc_root = {}\n  autoindex = on\n\
         autoindex_format = json\n}}\n",
        www.display()
    );
    Server::start(TestPersonality::new(&c11n), port)
}

/// The body of `GET target` in HTTP/1.0, read to the close: nginx frames listings with
/// chunks for HTTP/1.1 clients.
fn body_to_close(addr: SocketAddr, target: &str) -> Vec<u8> {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    write!(stream, "GET {target} HTTP/1.0\r\n\r\n").unwrap();
    let mut all = Vec::new();
    stream.read_to_end(&mut all).unwrap();
    let start = all
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a head")
        + 4;
    assert!(
        all.starts_with(b"HTTP/1.1 200"),
        "{}",
        String::from_utf8_lossy(&all)
    );
    all.split_off(start)
}

/// The entry lines of an HTML listing from the link text on (hrefs are encoded
/// differently: shttp encodes every reserved character).
fn entry_lines(page: &[u8]) -> Vec<String> {
    String::from_utf8_lossy(page)
        .lines()
        .filter(|l| l.starts_with("<a href=") && !l.starts_with("<a href=\"../\""))
        .map(|l| l.split_once("\">").unwrap().1.trim_end().to_string())
        .collect()
}

#[test]
fn listings_have_nginx_s_columns_and_json() {
    let site = start("");
    Command::new("chmod")
        .args(["755"])
        .arg(site.www.parent().unwrap())
        .status()
        .unwrap();
    let sub = site.www.join("sub");
    for name in [
        format!("{}.txt", "x".repeat(60)),
        "café-ünïcödé-long-name-with-many-characters-beyond-fifty.txt".to_string(),
        "q\"uote\\back.txt".to_string(),
    ] {
        std::fs::write(sub.join(name), "12345").unwrap();
    }
    for dir in ["d".repeat(49), "e".repeat(50)] {
        std::fs::create_dir(sub.join(dir)).unwrap();
    }
    run_in(&site.www, "chmod", &["-R", "a+rX", "."]);
    let nginx = Nginx::start(&site.www);

    let theirs = entry_lines(&body_to_close(nginx.addr, "/sub/"));
    let ours = entry_lines(&body_to_close(site.server.addr, "/sub/"));
    assert!(theirs.len() >= 14, "{theirs:#?}");
    assert_eq!(ours, theirs, "the listing's lines differ from nginx's");

    let json = json_twin(&site.www);
    let dir = tempfile::tempdir().unwrap();
    let (theirs, ours) = (dir.path().join("nginx.json"), dir.path().join("shttp.json"));
    std::fs::write(&theirs, body_to_close(nginx.addr, "/json/sub/")).unwrap();
    std::fs::write(&ours, body_to_close(json.addr, "/sub/")).unwrap();
    let script = "import json, sys\n\
                  a, b = (json.load(open(p)) for p in sys.argv[1:3])\n\
                  assert len(a) >= 14 and a == b, (a, b)\n\
                  print(len(a))";
    run_in(
        dir.path(),
        &python(),
        &[
            "-c",
            script,
            &theirs.display().to_string(),
            &ours.display().to_string(),
        ],
    );
}
