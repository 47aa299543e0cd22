//! The fleet tests' fixture: two serverkit processes ("nodes") serving pop and shttp from
//! one PostgreSQL users table and one Maildir tree, each taking the PROXY protocol from
//! 127.0.0.1 only, with a metrics endpoint each; HAProxy in front of them with
//! `send-proxy` and `send-proxy-v2` frontends and health checks; clients that connect
//! from another loopback address than HAProxy's.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::unix::net::UnixStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::harness::{Server, TestPersonality, free_port, is_root};
use crate::pop_fixture::{Backend, PopSetup, database_available};

/// What every node's pop and shttp sections add: the PROXY protocol from HAProxy only.
pub const PROXY_OPTIONS: &str = "proxy_protocol = true\nproxy_protocol_from = {127.0.0.1}";

/// Where clients connect from: a loopback address that is not HAProxy's.
pub const CLIENT: [u8; 4] = [127, 0, 0, 2];

/// One serverkit process.
pub struct Node {
    /// The process.
    pub server: Server,
    /// Its pop, shttp and metrics addresses.
    pub pop: SocketAddr,
    pub http: SocketAddr,
    pub metrics: SocketAddr,
}

/// Starts a node in `dir` on free ports. A port taken by another test between
/// `free_port` and the bind (the tests run in parallel) makes it exit 111: it is started
/// again on other ports.
fn start_node(setup: &mut PopSetup, dir: &std::path::Path) -> Node {
    for _attempt in 0..3 {
        let (pop, http, metrics) = (free_port(), free_port(), free_port());
        setup.port = pop;
        let c11n = format!(
            "{}shttp {{\n  address = 127.0.0.1\n  port = {http}\n  doc_root = www\n  access_log = on\n  health_check = /healthz\n{PROXY_OPTIONS}\n}}\nmetrics {{\n  port = {metrics}\n}}\n",
            setup.c11n(PROXY_OPTIONS)
        );
        std::fs::write(dir.join("c11n"), c11n).unwrap();
        let mut server = Server::spawn(&["run"], dir, &[]);
        server.addr = loopback(pop);
        let start = Instant::now();
        while !server.log().contains("serving") && !server.log().contains("failed to bind") {
            assert!(
                start.elapsed() < Duration::from_secs(60),
                "{}",
                server.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        if server.log().contains("serving") {
            return Node {
                server,
                pop: loopback(pop),
                http: loopback(http),
                metrics: loopback(metrics),
            };
        }
    }
    panic!("no free ports for a node in three tries");
}

/// Two nodes on one users table and one Maildir tree.
pub struct Fleet {
    /// The users table and the Maildirs (in the first node's personality directory).
    pub setup: PopSetup,
    pub nodes: Vec<Node>,
    _second: TestPersonality,
}

fn loopback(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

impl Fleet {
    /// Starts both nodes; `None` (the test skips) without PostgreSQL, outside CI.
    pub fn start() -> Option<Fleet> {
        if !database_available(Backend::Postgres) {
            return None;
        }
        let mut setup = PopSetup::new(Backend::Postgres);
        let second = TestPersonality::new("");
        let dirs = [
            setup.personality.path().to_path_buf(),
            second.path().to_path_buf(),
        ];
        for (i, dir) in dirs.iter().enumerate() {
            std::fs::create_dir_all(dir.join("www")).unwrap();
            std::fs::write(dir.join("www/index.txt"), format!("served by node {i}\n")).unwrap();
        }
        if is_root() {
            // The nodes drop to uid 65534, which must reach the mail and the sites.
            for dir in &dirs {
                let status = Command::new("chown")
                    .args(["-R", "65534:65534"])
                    .arg(dir)
                    .status()
                    .unwrap();
                assert!(status.success());
            }
        }
        let nodes = dirs.iter().map(|dir| start_node(&mut setup, dir)).collect();
        Some(Fleet {
            setup,
            nodes,
            _second: second,
        })
    }

    /// Both nodes' logs together.
    pub fn logs(&self) -> String {
        self.nodes.iter().map(|n| n.server.log()).collect()
    }

    /// Waits until the nodes' logs together contain `needle`.
    pub fn wait_for_log(&self, needle: &str, limit: Duration) -> String {
        let start = Instant::now();
        loop {
            let logs = self.logs();
            if logs.contains(needle) {
                return logs;
            }
            assert!(start.elapsed() < limit, "no {needle:?} in:\n{logs}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// A TCP connection to `to` from `source` (any loopback address works on Linux), with a
/// read timeout so a broken server fails the test instead of hanging it.
pub fn connect_from(source: [u8; 4], to: SocketAddr) -> std::io::Result<TcpStream> {
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None)?;
    socket.bind(&SocketAddr::from((source, 0)).into())?;
    socket.connect_timeout(&to.into(), Duration::from_secs(5))?;
    let stream: TcpStream = socket.into();
    stream.set_read_timeout(Some(Duration::from_secs(20)))?;
    Ok(stream)
}

/// One HAProxy frontend and its backend of the same name.
pub struct Frontend {
    pub name: &'static str,
    /// `send-proxy` or `send-proxy-v2`.
    pub send: &'static str,
    pub check: Check,
    pub servers: Vec<SocketAddr>,
}

/// How HAProxy checks a backend's servers (with a PROXY header too).
#[derive(Clone, Copy)]
pub enum Check {
    /// The greeting, then QUIT.
    Pop,
    /// `GET /healthz` answered 200.
    Http,
    /// Not checked (a TLS port).
    None,
}

impl Check {
    fn lines(self) -> &'static str {
        match self {
            Check::Pop => {
                "  option tcp-check\n  tcp-check expect string +OK\n  tcp-check send QUIT\\r\\n\n  tcp-check expect string +OK\n"
            }
            Check::Http => {
                "  option httpchk\n  http-check send meth GET uri /healthz ver HTTP/1.1 hdr Host fleet\n  http-check expect status 200\n"
            }
            Check::None => "",
        }
    }
}

/// HAProxy in front of servers, killed on drop: each frontend balances round robin over
/// its servers with its PROXY header; health checks (with the header too) every 300 ms
/// mark a server down after two failures; a connection refused is retried on another.
pub struct Haproxy {
    child: Child,
    dir: tempfile::TempDir,
    /// Each frontend's address.
    pub frontends: HashMap<&'static str, SocketAddr>,
}

impl Haproxy {
    /// Frontends `pop_v1`, `pop_v2`, `http_v1` and `http_v2` over both nodes, with
    /// `send-proxy` (v1) and `send-proxy-v2`.
    pub fn start(nodes: &[Node]) -> Haproxy {
        let over = |pick: fn(&Node) -> SocketAddr| nodes.iter().map(pick).collect::<Vec<_>>();
        Haproxy::with(&[
            Frontend {
                name: "pop_v1",
                send: "send-proxy",
                check: Check::Pop,
                servers: over(|n| n.pop),
            },
            Frontend {
                name: "pop_v2",
                send: "send-proxy-v2",
                check: Check::Pop,
                servers: over(|n| n.pop),
            },
            Frontend {
                name: "http_v1",
                send: "send-proxy",
                check: Check::Http,
                servers: over(|n| n.http),
            },
            Frontend {
                name: "http_v2",
                send: "send-proxy-v2",
                check: Check::Http,
                servers: over(|n| n.http),
            },
        ])
    }

    /// HAProxy with these frontends, once every checked server is up.
    pub fn with(frontends_wanted: &[Frontend]) -> Haproxy {
        let dir = tempfile::tempdir().unwrap();
        let mut config = format!(
            "global\n  maxconn 512\n  stats socket {}/stats.sock mode 600 level admin\n\
             defaults\n  mode tcp\n  timeout connect 1s\n  timeout client 60s\n  timeout server 60s\n  \
             timeout check 1s\n  retries 3\n  option redispatch 1\n  \
             default-server check-send-proxy inter 300ms fall 2 rise 1\n",
            dir.path().display()
        );
        let mut frontends = HashMap::new();
        for b in frontends_wanted {
            let bind = loopback(free_port());
            frontends.insert(b.name, bind);
            let (name, check) = (b.name, b.check.lines());
            config.push_str(&format!(
                "frontend {name}\n  bind {bind}\n  default_backend {name}\nbackend {name}\n  balance roundrobin\n{check}"
            ));
            let checked = if matches!(b.check, Check::None) {
                ""
            } else {
                " check"
            };
            for (i, to) in b.servers.iter().enumerate() {
                config.push_str(&format!("  server node{i} {to} {}{checked}\n", b.send));
            }
        }
        std::fs::write(dir.path().join("haproxy.cfg"), config).unwrap();
        let log = std::fs::File::create(dir.path().join("haproxy.log")).unwrap();
        let child = Command::new("haproxy")
            .args(["-db", "-f"])
            .arg(dir.path().join("haproxy.cfg"))
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("run haproxy (Debian package haproxy, tools/test-packages.txt)");
        let haproxy = Haproxy {
            child,
            dir,
            frontends,
        };
        let servers: usize = frontends_wanted.iter().map(|b| b.servers.len()).sum();
        haproxy.wait_for("every server up", Duration::from_secs(30), |lines| {
            lines.len() == servers
                && lines
                    .iter()
                    .all(|(_, _, status)| status == "UP" || status == "no check")
        });
        haproxy
    }

    /// Each server line of `show stat`: (backend, server, status).
    pub fn servers(&self) -> Vec<(String, String, String)> {
        let Ok(mut socket) = UnixStream::connect(self.dir.path().join("stats.sock")) else {
            return Vec::new();
        };
        socket.write_all(b"show stat\n").unwrap();
        let mut csv = String::new();
        socket.read_to_string(&mut csv).unwrap();
        let mut lines = csv.lines();
        let header: Vec<&str> = lines
            .next()
            .unwrap_or_default()
            .trim_start_matches("# ")
            .split(',')
            .collect();
        let status = header.iter().position(|h| *h == "status").unwrap_or(17);
        lines
            .map(|l| l.split(',').collect::<Vec<_>>())
            .filter(|f| f.len() > status && f[1].starts_with("node"))
            .map(|f| (f[0].to_string(), f[1].to_string(), f[status].to_string()))
            .collect()
    }

    /// Waits until `ready` holds of the server lines; panics with them and HAProxy's log.
    pub fn wait_for(
        &self,
        what: &str,
        limit: Duration,
        ready: impl Fn(&[(String, String, String)]) -> bool,
    ) {
        let start = Instant::now();
        loop {
            let servers = self.servers();
            if ready(&servers) {
                return;
            }
            if start.elapsed() > limit {
                let log = std::fs::read_to_string(self.dir.path().join("haproxy.log"));
                panic!("haproxy: not {what} within {limit:?}: {servers:?}\n{log:?}");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Haproxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
