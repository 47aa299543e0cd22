//! Helpers of the shttp tests: a personality with a known site, a minimal raw HTTP/1.1
//! client (the tests' own, so they see exactly what went over the wire), and the
//! python of the test venv.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::harness::{Server, TestPersonality, free_port};

/// Text outside `doc_root` that no request may ever reveal.
pub const SECRET: &str = "TOP-SECRET-OUTSIDE-DOC-ROOT";

/// Awkward names in `sub/`, which listings must encode and mirrors must reproduce.
pub const AWKWARD: &[&str] = &[
    "a file & more.txt",
    "hash#.txt",
    "q?.txt",
    "pct%.txt",
    "café.txt",
    "-lead.txt",
    "<tag>.txt",
];

/// A running shttp server and the site it serves.
pub struct Site {
    /// The server (killed on drop).
    pub server: Server,
    /// Its `doc_root`.
    pub www: PathBuf,
    /// `http://127.0.0.1:PORT`.
    pub base: String,
}

/// Deterministic bytes of a large file, for range tests.
pub fn big_bytes(len: usize) -> Vec<u8> {
    (0..len).map(|i| ((i * 7 + i / 251) % 256) as u8).collect()
}

fn write_site(dir: &Path) -> PathBuf {
    let www = dir.join("www");
    std::fs::create_dir_all(www.join("sub/deeper")).unwrap();
    std::fs::create_dir_all(www.join("noindex")).unwrap();
    std::fs::write(
        www.join("index.html"),
        "<!DOCTYPE html><title>home</title>\n",
    )
    .unwrap();
    std::fs::write(www.join("index.txt"), "hello, index\n").unwrap();
    std::fs::write(www.join("1m.bin"), big_bytes(1 << 20)).unwrap();
    std::fs::write(www.join("sub/hello.txt"), "hello from sub\n").unwrap();
    std::fs::write(www.join("sub/deeper/notes.md"), "deeper\n").unwrap();
    for name in AWKWARD {
        std::fs::write(www.join("sub").join(name), format!("content of {name}\n")).unwrap();
    }
    std::fs::write(www.join("data.thg"), "thing\n").unwrap();
    std::fs::write(
        dir.join("mime.types"),
        "# test table\napplication/x-shttp-thing  thg\n",
    )
    .unwrap();
    std::fs::write(dir.join("secret.txt"), SECRET).unwrap();
    symlink(dir.join("secret.txt"), www.join("escape-abs")).unwrap();
    symlink("../secret.txt", www.join("escape-rel")).unwrap();
    symlink("/etc", www.join("etc-link")).unwrap();
    symlink("index.txt", www.join("inside-link.txt")).unwrap();
    // The server drops to nobody: the site must be world-readable.
    Command::new("chmod")
        .args(["-R", "a+rX"])
        .arg(&www)
        .status()
        .unwrap();
    www
}

/// Starts shttp on a fresh site; `extra` lines go into the section.
pub fn start(extra: &str) -> Site {
    start_with_env(extra, &[])
}

/// Like [`start`], with extra environment variables for the server.
pub fn start_with_env(extra: &str, env: &[(&str, &str)]) -> Site {
    let port = free_port();
    let autoindex = if extra.contains("autoindex") {
        ""
    } else {
        "autoindex = on"
    };
    let c11n = format!(
        "identity = shttptest\nexecutes_as_root = true\nuid = 65534\ngid = 65534\n\
         shttp {{\n  address = 127.0.0.1\n  port = {port}\n  doc_root = www\n  {autoindex}\n\
         health_check = /healthz\n{extra}\n}}\n"
    );
    let personality = TestPersonality::new(&c11n);
    let www = write_site(personality.path());
    let server = Server::start_with_env(personality, port, env);
    Site {
        server,
        www,
        base: format!("http://127.0.0.1:{port}"),
    }
}

/// One response as read off the wire.
#[derive(Debug)]
pub struct Response {
    /// Status code.
    pub status: u16,
    /// Header fields, names lowercased (last value wins).
    pub headers: HashMap<String, String>,
    /// Every header name, in order, lowercased (to count duplicates).
    pub names: Vec<String>,
    /// The body (as delimited by Content-Length).
    pub body: Vec<u8>,
}

impl Response {
    /// A header's value.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(String::as_str)
    }
}

/// A raw connection.
pub struct Raw {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
}

impl Raw {
    /// Connects with a read timeout.
    pub fn connect(addr: SocketAddr) -> Raw {
        Raw::over(TcpStream::connect(addr).unwrap())
    }

    /// A raw connection on a connected stream, with a read timeout.
    pub fn over(stream: TcpStream) -> Raw {
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        Raw {
            reader: BufReader::new(stream.try_clone().unwrap()),
            writer: stream,
        }
    }

    /// Sends raw bytes.
    pub fn send(&mut self, bytes: &[u8]) {
        self.writer.write_all(bytes).unwrap();
    }

    /// Sends `GET path` with a Host and `extra` header lines (each ending in CRLF).
    pub fn get(&mut self, path: &str, extra: &str) {
        self.send(format!("GET {path} HTTP/1.1\r\nHost: t\r\n{extra}\r\n").as_bytes());
    }

    /// Reads one response; `no_body` for HEAD and 304. `None` if the server closed first.
    pub fn response(&mut self, no_body: bool) -> Option<Response> {
        let mut line = String::new();
        if self.reader.read_line(&mut line).ok()? == 0 {
            return None;
        }
        let status = line.split(' ').nth(1)?.parse().ok()?;
        let (mut headers, mut names) = (HashMap::new(), Vec::new());
        loop {
            let mut field = String::new();
            self.reader.read_line(&mut field).ok()?;
            let field = field.trim_end();
            if field.is_empty() {
                break;
            }
            let (name, value) = field.split_once(':')?;
            names.push(name.to_ascii_lowercase());
            headers.insert(name.to_ascii_lowercase(), value.trim().to_string());
        }
        let length: usize = headers
            .get("content-length")
            .map_or(0, |v: &String| v.parse().unwrap());
        let mut body = vec![0; if no_body || status == 304 { 0 } else { length }];
        self.reader.read_exact(&mut body).ok()?;
        Some(Response {
            status,
            headers,
            names,
            body,
        })
    }

    /// Whether the server closed the connection (reads end of stream within `limit`).
    pub fn closed_within(&mut self, limit: Duration) -> bool {
        self.writer.set_read_timeout(Some(limit)).unwrap();
        let mut rest = Vec::new();
        match self.reader.read_to_end(&mut rest) {
            Ok(_) => true,
            Err(e) => e.kind() == std::io::ErrorKind::ConnectionReset,
        }
    }
}

/// One request on a new connection that asks to close; the response.
pub fn fetch(addr: SocketAddr, path: &str, extra: &str) -> Response {
    let mut raw = Raw::connect(addr);
    raw.get(path, &format!("Connection: close\r\n{extra}"));
    raw.response(false)
        .unwrap_or_else(|| panic!("no response to GET {path}"))
}

/// The test venv's python (`./dev test` sets it), or the system's.
pub fn python() -> String {
    std::env::var("SERVERKIT_TEST_PYTHON").unwrap_or_else(|_| "python3".into())
}

/// Runs `program` with `args` in `dir`; panics with its output if it fails.
pub fn run_in(dir: &Path, program: &str, args: &[&str]) -> String {
    let out = Command::new(program)
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap_or_else(|e| {
            panic!("run {program} (is it installed? see tools/test-packages.txt): {e}")
        });
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{program} {args:?} failed ({}):\n{text}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    text
}
