//! What the sandbox costs: serverkit's echo module against a native tokio line-echo server
//! (the same protocol with no wasm), side by side in one run, printing the ratio.
//!
//! Measures, with both servers on 2 worker threads:
//! - new sessions per second (connect, one line echoed, close), 32 clients at once;
//! - round trips per second on 32 persistent connections;
//! - resident memory per idle session, with 1000 sessions open.
//!
//! Run: `./dev bench` (or `cargo bench -p serverkit --bench echo_sessions`).

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

const CLIENTS: usize = 32;
const PHASE: Duration = Duration::from_secs(3);
const IDLE_SESSIONS: usize = 1000;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(i) = args.iter().position(|a| a == "--native-peer") {
        return native_peer(args[i + 1].parse().expect("port"));
    }
    if args.iter().any(|a| a == "--list") {
        println!("echo_sessions: benchmark");
        return;
    }
    raise_open_files();
    let serverkit = Peer::serverkit();
    let native = Peer::native();
    let rows = [
        (
            "new sessions/s",
            measure(sessions_per_second, &serverkit, &native),
        ),
        (
            "round trips/s",
            measure(round_trips_per_second, &serverkit, &native),
        ),
        (
            "KiB RSS per idle session",
            measure_memory(&serverkit, &native),
        ),
    ];
    println!(
        "\n{:<26} {:>12} {:>12} {:>8}",
        "metric", "serverkit", "native", "ratio"
    );
    for (name, (ours, theirs)) in rows {
        println!(
            "{name:<26} {ours:>12.1} {theirs:>12.1} {:>8.2}",
            ours / theirs
        );
    }
}

struct Peer {
    child: Child,
    addr: SocketAddr,
    _dir: Option<tempfile::TempDir>,
}

impl Peer {
    fn serverkit() -> Peer {
        let port = free_port();
        let dir = tempfile::tempdir().unwrap();
        let c11n = format!(
            "executes_as_root = true\nuid = 65534\ngid = 65534\necho {{\n address = 127.0.0.1\n port = {port}\n backlog = 1024\n max_sessions = 5000\n min_threads = 2\n max_threads = 2\n}}\n"
        );
        std::fs::write(dir.path().join("c11n"), c11n).unwrap();
        let mut child = Command::new(env!("CARGO_BIN_EXE_serverkit"))
            .arg("run")
            .arg(dir.path())
            .env("RUST_LOG", "warn")
            .stderr(Stdio::null())
            .spawn()
            .expect("start serverkit");
        let addr = wait_listening(port, &mut child);
        Peer {
            child,
            addr,
            _dir: Some(dir),
        }
    }

    fn native() -> Peer {
        let port = free_port();
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args(["--native-peer", &port.to_string()])
            .spawn()
            .unwrap();
        let addr = wait_listening(port, &mut child);
        Peer {
            child,
            addr,
            _dir: None,
        }
    }

    fn rss_kib(&self) -> f64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap();
        let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
        line.split_whitespace().nth(1).unwrap().parse().unwrap()
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn wait_listening(port: u16, child: &mut Child) -> SocketAddr {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let start = Instant::now();
    while TcpStream::connect(addr).is_err() {
        assert!(child.try_wait().unwrap().is_none(), "peer exited");
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "peer did not listen"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    addr
}

fn measure(f: impl Fn(SocketAddr) -> f64, a: &Peer, b: &Peer) -> (f64, f64) {
    f(a.addr); // warm-up
    (f(a.addr), f(b.addr))
}

fn echo_once(reader: &mut BufReader<TcpStream>, line: &mut String) {
    reader.get_mut().write_all(b"ping\n").unwrap();
    line.clear();
    reader.read_line(line).unwrap();
    assert_eq!(line, "ping\n");
}

fn run_clients(addr: SocketAddr, client: fn(SocketAddr, &AtomicBool, &AtomicU64)) -> f64 {
    let stop = Arc::new(AtomicBool::new(false));
    let count = Arc::new(AtomicU64::new(0));
    let threads: Vec<_> = (0..CLIENTS)
        .map(|_| {
            let (stop, count) = (stop.clone(), count.clone());
            std::thread::spawn(move || client(addr, &stop, &count))
        })
        .collect();
    let start = Instant::now();
    std::thread::sleep(PHASE);
    stop.store(true, Ordering::Relaxed);
    threads.into_iter().for_each(|t| t.join().unwrap());
    count.load(Ordering::Relaxed) as f64 / start.elapsed().as_secs_f64()
}

fn sessions_per_second(addr: SocketAddr) -> f64 {
    run_clients(addr, |addr, stop, count| {
        let mut line = String::new();
        while !stop.load(Ordering::Relaxed) {
            let mut reader = BufReader::new(TcpStream::connect(addr).unwrap());
            echo_once(&mut reader, &mut line);
            count.fetch_add(1, Ordering::Relaxed);
        }
    })
}

fn round_trips_per_second(addr: SocketAddr) -> f64 {
    run_clients(addr, |addr, stop, count| {
        let mut reader = BufReader::new(TcpStream::connect(addr).unwrap());
        let mut line = String::new();
        while !stop.load(Ordering::Relaxed) {
            echo_once(&mut reader, &mut line);
            count.fetch_add(1, Ordering::Relaxed);
        }
    })
}

fn measure_memory(a: &Peer, b: &Peer) -> (f64, f64) {
    let per_session = |peer: &Peer| {
        let before = peer.rss_kib();
        let mut open = Vec::new();
        let mut line = String::new();
        for _ in 0..IDLE_SESSIONS {
            let mut reader = BufReader::new(TcpStream::connect(peer.addr).unwrap());
            echo_once(&mut reader, &mut line); // the session is really running
            open.push(reader);
        }
        let after = peer.rss_kib();
        (after - before) / IDLE_SESSIONS as f64
    };
    (per_session(a), per_session(b))
}

/// The clients hold a thousand sockets at once.
fn raise_open_files() {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    let (_, hard) = getrlimit(Resource::RLIMIT_NOFILE).unwrap();
    setrlimit(Resource::RLIMIT_NOFILE, hard, hard).unwrap();
}

/// The peer: a native tokio line-echo server, two worker threads.
fn native_peer(port: u16) {
    raise_open_files();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async move {
        use tokio::io::{AsyncBufReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
            .await
            .unwrap();
        loop {
            let (socket, _) = listener.accept().await.unwrap();
            tokio::spawn(async move {
                let (read, mut write) = socket.into_split();
                let mut lines = tokio::io::BufReader::new(read);
                let mut line = String::new();
                while lines.read_line(&mut line).await.unwrap_or(0) > 0 {
                    if write.write_all(line.as_bytes()).await.is_err() {
                        return;
                    }
                    line.clear();
                }
            });
        }
    });
}
