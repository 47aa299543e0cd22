//! Hot swap: a module file replaced under load (alternating `echo` and the test-only
//! `echo-next`, which answers `v2 <line>`), broken replacements refused, and SIGHUP
//! rereading `c11n`.

use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;

use crate::harness::{Client, Server, TestPersonality, echo_c11n, free_port};

/// Longest time from a file replaced to a fresh session answering with the new version
/// (watcher poll and debounce, a compile in a debug build, construct).
const SWAP_BOUND: Duration = Duration::from_secs(30);

pub fn test_module(file: &str) -> PathBuf {
    PathBuf::from(env!("SERVERKIT_TEST_MODULES_DIR")).join(file)
}

/// A personality serving `modules/echo.wasm`, readable by the unprivileged user the server
/// drops to (it rereads the folder and `c11n` after the drop).
pub fn personality(port: u16, extra: &str) -> TestPersonality {
    use std::os::unix::fs::PermissionsExt;
    let personality = TestPersonality::new(&echo_c11n(port, extra));
    let open = |p: &Path, mode| std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode));
    open(personality.path(), 0o755).unwrap();
    open(&personality.path().join("modules"), 0o755).unwrap();
    open(&personality.path().join("c11n"), 0o644).unwrap();
    replace(
        personality.path(),
        &std::fs::read(test_module("echo.wasm")).unwrap(),
    );
    personality
}

/// Replaces `modules/echo.wasm` atomically, as an operator's `mv` would.
pub fn replace(personality: &Path, bytes: &[u8]) {
    let tmp = personality.join("modules/echo.wasm.new");
    std::fs::write(&tmp, bytes).unwrap();
    std::fs::rename(&tmp, personality.join("modules/echo.wasm")).unwrap();
}

/// What a fresh session answers to `ping`.
pub fn fresh_answer(addr: SocketAddr) -> String {
    let mut client = Client::connect(addr);
    client.send("ping");
    client.line().expect("an answer")
}

/// Waits until fresh sessions answer `expected`; returns how long it took.
fn wait_for_answer(addr: SocketAddr, expected: &str, server: &Server) -> Duration {
    let start = Instant::now();
    while fresh_answer(addr) != expected {
        assert!(
            start.elapsed() < SWAP_BOUND,
            "still not answering {expected:?} after {SWAP_BOUND:?}:\n{}",
            server.log()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    start.elapsed()
}

/// Client threads looping on short sessions until stopped; counts answers and failures.
struct Load {
    stop: Arc<AtomicBool>,
    ok: Arc<AtomicUsize>,
    failed: Arc<AtomicUsize>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl Load {
    fn start(addr: SocketAddr, clients: usize) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let ok = Arc::new(AtomicUsize::new(0));
        let failed = Arc::new(AtomicUsize::new(0));
        let threads = (0..clients)
            .map(|_| {
                let (stop, ok, failed) = (stop.clone(), ok.clone(), failed.clone());
                std::thread::spawn(move || {
                    while !stop.load(Ordering::Relaxed) {
                        let counter = if one_session(addr) { &ok } else { &failed };
                        counter.fetch_add(1, Ordering::Relaxed);
                    }
                })
            })
            .collect();
        Load {
            stop,
            ok,
            failed,
            threads,
        }
    }

    /// Stops the clients; returns (answered, failed).
    fn finish(self) -> (usize, usize) {
        self.stop.store(true, Ordering::Relaxed);
        self.threads.into_iter().for_each(|t| t.join().unwrap());
        (
            self.ok.load(Ordering::Relaxed),
            self.failed.load(Ordering::Relaxed),
        )
    }
}

/// One session of three lines, answered consistently by one version: a refused connection,
/// a dropped one or a mixed answer is a failure.
fn one_session(addr: SocketAddr) -> bool {
    use std::io::{BufRead, BufReader, Write};
    let Ok(mut stream) = TcpStream::connect(addr) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(20)));
    let Ok(clone) = stream.try_clone() else {
        return false;
    };
    let mut reader = BufReader::new(clone);
    let mut prefix = None;
    for n in 0..3 {
        let mut answer = String::new();
        if stream.write_all(format!("line {n}\n").as_bytes()).is_err()
            || reader.read_line(&mut answer).is_err()
        {
            return false;
        }
        let this = match answer.strip_suffix(&format!("line {n}\n")) {
            Some(p @ ("" | "v2 ")) => p.to_string(),
            _ => return false,
        };
        if prefix.get_or_insert_with(|| this.clone()) != &this {
            return false;
        }
    }
    true
}

#[test]
fn a_module_replaced_under_load_switches_with_no_failed_session() {
    const SWAPS: usize = 20;
    let port = free_port();
    let mut server = Server::start(personality(port, ""), port);
    let dir = server_dir(&server);
    let versions = [
        (
            std::fs::read(test_module("echo_next.wasm")).unwrap(),
            "v2 ping",
        ),
        (std::fs::read(test_module("echo.wasm")).unwrap(), "ping"),
    ];
    let mut held = server.client();
    held.echo("before the swaps");
    let load = Load::start(server.addr, 4);
    let mut slowest = Duration::ZERO;
    for swap in 0..SWAPS {
        let (bytes, answer) = &versions[swap % 2];
        replace(&dir, bytes);
        slowest = slowest.max(wait_for_answer(server.addr, answer, &server));
        server.wait_for_log(&format!("generation={}", swap + 2), Duration::from_secs(5));
    }
    let (ok, failed) = load.finish();
    eprintln!("{SWAPS} swaps: slowest switch {slowest:?}; {ok} sessions served, {failed} failed");
    assert_eq!(
        failed,
        0,
        "no session failed or was refused:\n{}",
        server.log()
    );
    assert!(ok > 0, "the load ran");
    // The session open since before the first swap finishes on version 1.
    held.echo("after the swaps");
}

#[test]
fn a_module_replaced_while_the_server_starts_is_swapped_in() {
    // A deploy racing a restart: the file changes after startup read it and before the
    // watcher took its first look. The watcher's reference is the folder as startup read
    // it, so this is a change like any other.
    let port = free_port();
    let personality = personality(port, "");
    let dir = personality.path().to_path_buf();
    let server = Server::start_until_listening(personality, port);
    replace(&dir, &std::fs::read(test_module("echo_next.wasm")).unwrap());
    wait_for_answer(server.addr, "v2 ping", &server);
}

#[test]
fn broken_replacements_keep_the_old_version_serving() {
    let port = free_port();
    let mut server = Server::start(personality(port, ""), port);
    let dir = server_dir(&server);
    let broken: [(Vec<u8>, &str); 4] = [
        (b"not a component".to_vec(), "failed to compile"),
        (
            std::fs::read(test_module("contract_next.wasm")).unwrap(),
            "major versions must match",
        ),
        (
            std::fs::read(test_module("construct_fails.wasm")).unwrap(),
            "construct-fails refuses to start",
        ),
        (
            std::fs::read(test_module("probe.wasm")).unwrap(),
            "now holds a module named `probe`, not `echo`",
        ),
    ];
    for (bytes, why) in broken {
        replace(&dir, &bytes);
        server.wait_for_log(why, Duration::from_secs(30));
        assert!(
            server.log().contains("hot swap refused"),
            "{}",
            server.log()
        );
        assert!(
            server
                .log()
                .contains("modules/echo.wasm` stays in modules/"),
            "the refusal says the file is still there:\n{}",
            server.log()
        );
        assert_eq!(fresh_answer(server.addr), "ping", "the old version serves");
    }
    assert!(!server.log().contains("generation=2"), "{}", server.log());
}

#[test]
fn sighup_rereads_c11n_refusing_broken_or_privileged_changes() {
    let port = free_port();
    let mut server = Server::start(personality(port, "greeting = hello"), port);
    let dir = server_dir(&server);
    let greeting = |server: &Server| server.client().line().expect("a greeting");
    let c11n = |extra: &str| std::fs::write(dir.join("c11n"), echo_c11n(port, extra)).unwrap();

    c11n("greeting = hello\nno_such_option = 1");
    server.signal(Signal::SIGHUP);
    server.wait_for_log("no_such_option", Duration::from_secs(30));
    assert!(
        server.log().contains("invalid configuration"),
        "{}",
        server.log()
    );
    assert_eq!(greeting(&server), "hello");

    std::fs::write(
        dir.join("c11n"),
        echo_c11n(port, "greeting = hello").replace(&port.to_string(), &free_port().to_string()),
    )
    .unwrap();
    server.signal(Signal::SIGHUP);
    server.wait_for_log("restart needed", Duration::from_secs(30));
    assert_eq!(greeting(&server), "hello");

    let mut held = server.client();
    assert_eq!(held.line().as_deref(), Some("hello"));
    c11n("greeting = bonjour");
    server.signal(Signal::SIGHUP);
    server.wait_for_log("generation=2", Duration::from_secs(30));
    assert_eq!(
        greeting(&server),
        "bonjour",
        "new sessions see the new section"
    );
    held.echo("the held session still runs");
}

/// The personality directory of a server started by `Server::start`.
pub fn server_dir(server: &Server) -> PathBuf {
    let log = server.log();
    let from = log
        .split("from=")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .expect("the log names the module file");
    Path::new(from)
        .parent()
        .and_then(Path::parent)
        .expect("modules/echo.wasm is two levels down")
        .to_path_buf()
}

#[test]
fn swap_drain_timeout_bounds_sessions_on_a_replaced_version() {
    let port = free_port();
    let personality = personality(port, "");
    let c11n = format!("swap_drain_timeout = 1\n{}", echo_c11n(port, ""));
    std::fs::write(personality.path().join("c11n"), c11n).unwrap();
    let mut server = Server::start(personality, port);
    let dir = server_dir(&server);
    let mut held = server.client();
    held.echo("on generation 1");
    replace(&dir, &std::fs::read(test_module("echo_next.wasm")).unwrap());
    server.wait_for_log("generation=2", Duration::from_secs(30));
    held.echo("still on generation 1 within the drain timeout");
    let start = Instant::now();
    assert_eq!(held.line(), None, "closed at the drain deadline");
    assert!(start.elapsed() < Duration::from_secs(5), "within the bound");
    server.wait_for_log("swap_drain_timeout passed", Duration::from_secs(5));
    assert_eq!(fresh_answer(server.addr), "v2 ping");
}
