//! Hot swap cost: how long from a module file replaced to the first fresh session answered
//! by the new version, with and without the compiled-module cache, and how much the
//! throughput of live traffic dips meanwhile; plus startup time with a cold and a warm
//! cache (what a restart with unchanged modules costs).
//!
//! Run: `./dev bench-swap` (or `cargo bench -p serverkit --bench hot_swap`). The echo
//! module is swapped with the test-only `echo-next` (which answers `v2 <line>`) and back,
//! under load from client threads looping on one-line sessions.

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Client threads looping on sessions while swaps happen.
const CLIENTS: usize = 8;
/// Swaps measured per case.
const SWAPS: usize = 10;
/// Steady traffic measured before the swaps, and the pause between swaps.
const SETTLE: Duration = Duration::from_secs(2);

fn main() {
    if std::env::args().any(|a| a == "--list") {
        println!("hot_swap: benchmark");
        return;
    }
    let startup = [("cold cache", false), ("warm cache", true)].map(|(name, warm)| {
        let cache = CacheDir::new(true);
        if warm {
            drop(Server::start(&cache.path));
        }
        let start = Instant::now();
        let server = Server::start(&cache.path);
        let took = start.elapsed();
        drop(server);
        (name, took)
    });
    let cases = [("no cache", false), ("with cache", true)].map(|(name, cached)| {
        let cache = CacheDir::new(cached);
        (name, swap_case(&cache))
    });

    println!("\nstartup (spawn to listening, echo module)");
    for (name, took) in startup {
        println!("  {name:<12} {:>8.0} ms", ms(took));
    }
    println!(
        "\n{:<12} {:>6} {:>14} {:>12} {:>22}",
        "swap", "swaps", "median switch", "slowest", "sessions/s during/steady"
    );
    for (name, r) in cases {
        println!(
            "{name:<12} {:>6} {:>11.0} ms {:>9.0} ms {:>10.0} / {:<6.0} = {:.2}",
            r.switches.len(),
            ms(median(&r.switches)),
            ms(*r.switches.iter().max().unwrap()),
            r.during,
            r.steady,
            r.during / r.steady
        );
    }
}

struct SwapResult {
    switches: Vec<Duration>,
    steady: f64,
    during: f64,
}

/// Swaps echo and echo-next `SWAPS` times under load (after one warm-up round trip of
/// both versions, which fills the cache when there is one).
fn swap_case(cache: &CacheDir) -> SwapResult {
    let server = Server::start(&cache.path);
    let versions = [module("echo_next.wasm"), module("echo.wasm")];
    let prefixes = ["v2 ", ""];
    for (wasm, prefix) in versions.iter().zip(prefixes) {
        server.replace(wasm);
        wait_for_prefix(server.addr, prefix, Duration::from_secs(120));
    }
    let load = Load::start(server.addr);
    std::thread::sleep(SETTLE / 2);
    let before = load.count();
    std::thread::sleep(SETTLE);
    let steady = (load.count() - before) as f64 / SETTLE.as_secs_f64();
    let (mut switches, mut served, mut spent) = (Vec::new(), 0, Duration::ZERO);
    for i in 0..SWAPS {
        let before = load.count();
        server.replace(&versions[i % 2]);
        let took = wait_for_prefix(server.addr, prefixes[i % 2], Duration::from_secs(120));
        served += load.count() - before;
        spent += took;
        switches.push(took);
        std::thread::sleep(SETTLE);
    }
    load.stop();
    SwapResult {
        switches,
        steady,
        during: served as f64 / spent.as_secs_f64(),
    }
}

/// A compiled-module cache directory of the user starting the server (the server keeps
/// the artifacts of uid 65534 in a subdirectory it gives that uid, and swaps after the drop
/// use it), or a path the cache cannot be made at (no cache).
struct CacheDir {
    path: PathBuf,
    _dir: Option<tempfile::TempDir>,
}

impl CacheDir {
    fn new(usable: bool) -> CacheDir {
        if !usable {
            return CacheDir {
                path: PathBuf::from("/dev/null/no-cache"),
                _dir: None,
            };
        }
        let dir = tempfile::tempdir().unwrap();
        CacheDir {
            path: dir.path().to_path_buf(),
            _dir: Some(dir),
        }
    }
}

fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

fn module(file: &str) -> Vec<u8> {
    std::fs::read(Path::new(env!("SERVERKIT_TEST_MODULES_DIR")).join(file)).unwrap()
}

/// serverkit serving `modules/echo.wasm` (release build), as uid 65534 when run as root.
struct Server {
    child: Child,
    addr: SocketAddr,
    dir: tempfile::TempDir,
}

impl Server {
    fn start(cache: &Path) -> Server {
        use std::os::unix::fs::PermissionsExt;
        let port = free_port();
        let dir = tempfile::tempdir().unwrap();
        let drop_root = if is_root() {
            "executes_as_root = true\nuid = 65534\ngid = 65534\n"
        } else {
            ""
        };
        let c11n = format!(
            "{drop_root}echo {{\n address = 127.0.0.1\n port = {port}\n backlog = 1024\n max_sessions = 2000\n min_threads = 2\n max_threads = 2\n}}\n"
        );
        std::fs::write(dir.path().join("c11n"), c11n).unwrap();
        std::fs::create_dir(dir.path().join("modules")).unwrap();
        for path in [dir.path(), &dir.path().join("modules")] {
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        std::fs::write(dir.path().join("modules/echo.wasm"), module("echo.wasm")).unwrap();
        let mut child = Command::new(env!("CARGO_BIN_EXE_serverkit"))
            .arg("run")
            .arg(dir.path())
            .env("RUST_LOG", "warn")
            .env("SERVERKIT_CACHE_DIR", cache)
            .stderr(Stdio::null())
            .spawn()
            .expect("start serverkit");
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let start = Instant::now();
        while TcpStream::connect(addr).is_err() {
            assert!(child.try_wait().unwrap().is_none(), "serverkit exited");
            assert!(start.elapsed() < Duration::from_secs(120), "no listener");
            std::thread::sleep(Duration::from_millis(5));
        }
        Server { child, addr, dir }
    }

    /// Replaces the module file atomically, as an operator's `mv` would.
    fn replace(&self, wasm: &[u8]) {
        let modules = self.dir.path().join("modules");
        std::fs::write(modules.join("echo.wasm.new"), wasm).unwrap();
        std::fs::rename(modules.join("echo.wasm.new"), modules.join("echo.wasm")).unwrap();
    }
}

impl Drop for Server {
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

/// Polls fresh sessions until one is answered with `prefix`; returns how long it took.
fn wait_for_prefix(addr: SocketAddr, prefix: &str, limit: Duration) -> Duration {
    let start = Instant::now();
    loop {
        if session(addr).is_some_and(|a| a == format!("{prefix}probe")) {
            return start.elapsed();
        }
        assert!(
            start.elapsed() < limit,
            "no switch to {prefix:?} within {limit:?}"
        );
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// One session: connect, one line, its answer, close.
fn session(addr: SocketAddr) -> Option<String> {
    let mut stream = TcpStream::connect(addr).ok()?;
    stream.write_all(b"probe\n").ok()?;
    let mut answer = String::new();
    BufReader::new(stream).read_line(&mut answer).ok()?;
    Some(answer.trim_end().to_string())
}

/// Client threads looping on sessions; counts the answered ones.
struct Load {
    stop: Arc<AtomicBool>,
    done: Arc<AtomicU64>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl Load {
    fn start(addr: SocketAddr) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let done = Arc::new(AtomicU64::new(0));
        let threads = (0..CLIENTS)
            .map(|_| {
                let (stop, done) = (stop.clone(), done.clone());
                std::thread::spawn(move || {
                    while !stop.load(Ordering::Relaxed) {
                        if session(addr).is_some() {
                            done.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                })
            })
            .collect();
        Load {
            stop,
            done,
            threads,
        }
    }

    fn count(&self) -> u64 {
        self.done.load(Ordering::Relaxed)
    }

    fn stop(self) {
        self.stop.store(true, Ordering::Relaxed);
        self.threads.into_iter().for_each(|t| t.join().unwrap());
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn median(values: &[Duration]) -> Duration {
    let mut sorted = values.to_vec();
    sorted.sort();
    sorted[sorted.len() / 2]
}
