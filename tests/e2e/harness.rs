//! Starting the real binary and cleaning up after it.

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The binary under test: this build's, or `SERVERKIT_TEST_BINARY` (to run the tests, or
/// the scale test's measurements, against a release build).
pub fn binary() -> String {
    std::env::var("SERVERKIT_TEST_BINARY")
        .unwrap_or_else(|_| env!("CARGO_BIN_EXE_serverkit").to_string())
}

/// A free TCP port on 127.0.0.1 (free when asked; the server binds it right after).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Whether the tests run as root.
pub fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

/// A personality directory in a temporary folder.
pub struct TestPersonality {
    dir: tempfile::TempDir,
}

impl TestPersonality {
    /// A personality with this c11n text.
    pub fn new(c11n: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("c11n"), c11n).unwrap();
        std::fs::create_dir(dir.path().join("modules")).unwrap();
        TestPersonality { dir }
    }

    /// Its directory.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }
}

/// The c11n of an echo personality on `port`, with extra lines in the echo section.
pub fn echo_c11n(port: u16, extra: &str) -> String {
    format!(
        "identity = echotest\nexecutes_as_root = true\nuid = 65534\ngid = 65534\n\
         echo {{\n  address = 127.0.0.1\n  port = {port}\n  fault_injection = on\n{extra}\n}}\n"
    )
}

/// A running server, killed on drop; its stderr is collected and printed if a test fails.
pub struct Server {
    child: Child,
    log: Arc<Mutex<String>>,
    /// Where its echo module listens.
    pub addr: SocketAddr,
    _personality: Option<TestPersonality>,
}

impl Server {
    /// Starts `serverkit run` on `personality` and waits until it logs `serving`.
    pub fn start(personality: TestPersonality, port: u16) -> Server {
        Server::start_with_env(personality, port, &[])
    }

    /// Like [`Server::start`], with extra environment variables.
    pub fn start_with_env(personality: TestPersonality, port: u16, env: &[(&str, &str)]) -> Server {
        let mut server = Server::spawn(&["run"], personality.path(), env);
        server.addr = SocketAddr::from(([127, 0, 0, 1], port));
        server._personality = Some(personality);
        server.wait_for_log("serving", Duration::from_secs(60));
        server
    }

    /// Starts `serverkit run` on `personality` and returns as soon as `port` accepts a
    /// connection, before the server says it is serving.
    pub fn start_until_listening(personality: TestPersonality, port: u16) -> Server {
        let mut server = Server::spawn(&["run"], personality.path(), &[]);
        server.addr = SocketAddr::from(([127, 0, 0, 1], port));
        server._personality = Some(personality);
        let start = Instant::now();
        while std::net::TcpStream::connect(server.addr).is_err() {
            assert!(
                start.elapsed() < Duration::from_secs(60),
                "no listener:\n{}",
                server.log()
            );
            std::thread::sleep(Duration::from_millis(2));
        }
        server
    }

    /// Starts the binary with `args` followed by the personality path.
    pub fn spawn(args: &[&str], personality: &Path, env: &[(&str, &str)]) -> Server {
        let mut cmd = Command::new(binary());
        cmd.args(args)
            .arg(personality)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        cmd.env("RUST_LOG", "info");
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("start serverkit");
        let log = Arc::new(Mutex::new(String::new()));
        let stderr = child.stderr.take().unwrap();
        let sink = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let mut log = sink.lock().unwrap();
                log.push_str(&line);
                log.push('\n');
            }
        });
        Server {
            child,
            log,
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            _personality: None,
        }
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Everything logged so far.
    pub fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    /// Waits until the log contains `needle`; panics with the log after `limit`.
    pub fn wait_for_log(&mut self, needle: &str, limit: Duration) {
        let start = Instant::now();
        while !self.log().contains(needle) {
            if let Ok(Some(status)) = self.child.try_wait() {
                std::thread::sleep(Duration::from_millis(100));
                panic!(
                    "serverkit exited ({status}) before logging {needle:?}:\n{}",
                    self.log()
                );
            }
            assert!(
                start.elapsed() < limit,
                "serverkit did not log {needle:?} within {limit:?}:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Sends `signal` to the server.
    pub fn signal(&self, signal: nix::sys::signal::Signal) {
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(self.pid() as i32), signal).unwrap();
    }

    /// Waits for the process to exit; panics after `limit`.
    pub fn wait_exit(&mut self, limit: Duration) -> ExitStatus {
        let start = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                std::thread::sleep(Duration::from_millis(50)); // let the log thread finish
                return status;
            }
            assert!(
                start.elapsed() < limit,
                "serverkit did not exit within {limit:?}:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// A connected echo client.
    pub fn client(&self) -> Client {
        Client::connect(self.addr)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            eprintln!("--- serverkit log ---\n{}--- end of log ---", self.log());
        }
    }
}

/// A line client.
pub struct Client {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
}

impl Client {
    /// Connects, with a read timeout so a broken server fails the test instead of hanging.
    pub fn connect(addr: SocketAddr) -> Client {
        let stream = TcpStream::connect(addr).unwrap_or_else(|e| panic!("connect to {addr}: {e}"));
        stream
            .set_read_timeout(Some(Duration::from_secs(20)))
            .unwrap();
        Client {
            reader: BufReader::new(stream.try_clone().unwrap()),
            writer: stream,
        }
    }

    /// Sends one line.
    pub fn send(&mut self, line: &str) {
        self.writer
            .write_all(format!("{line}\n").as_bytes())
            .unwrap();
    }

    /// Reads one line (without its newline); `None` at end of stream.
    pub fn line(&mut self) -> Option<String> {
        let mut line = String::new();
        match self.reader.read_line(&mut line) {
            Ok(0) => None,
            Ok(_) => Some(line.trim_end_matches('\n').to_string()),
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => None,
            Err(e) => panic!("read from server: {e}"),
        }
    }

    /// Sends a line and expects it back.
    pub fn echo(&mut self, line: &str) {
        self.send(line);
        assert_eq!(self.line().as_deref(), Some(line));
    }

    /// Whether the server has sent something not read yet, without waiting for it.
    pub fn has_answer(&mut self) -> bool {
        if !self.reader.buffer().is_empty() {
            return true;
        }
        self.writer.set_nonblocking(true).unwrap();
        let peeked = self.writer.peek(&mut [0u8; 1]);
        self.writer.set_nonblocking(false).unwrap();
        matches!(peeked, Ok(n) if n > 0)
    }

    /// The buffered reader, for raw reads.
    pub fn reader_mut(&mut self) -> &mut BufReader<TcpStream> {
        &mut self.reader
    }

    /// Sets how long a read may wait.
    pub fn read_timeout(&self, limit: Duration) {
        self.writer.set_read_timeout(Some(limit)).unwrap();
    }
}

/// A tmpfs of `size` mounted on `dir` for a test (root only), unmounted on drop.
pub struct Tmpfs(std::path::PathBuf);

impl Tmpfs {
    /// Mounts it, making `dir` if needed.
    pub fn mount(dir: &Path, size: &str) -> Tmpfs {
        std::fs::create_dir_all(dir).unwrap();
        run(
            "mount",
            &[
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size},mode=0755"),
                "tmpfs",
            ],
            dir,
        );
        Tmpfs(dir.to_path_buf())
    }

    /// Where it is mounted.
    pub fn path(&self) -> &Path {
        &self.0
    }

    /// Fills it: writes until the filesystem says it is full.
    pub fn fill(&self) {
        let out = Command::new("dd")
            .args(["if=/dev/zero", "bs=64k"])
            .arg(format!("of={}", self.0.join("filler").display()))
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("No space left on device"), "{err}");
    }

    /// Remounts it with `options` (`ro`, `rw`).
    pub fn remount(&self, options: &str) {
        run("mount", &["-o", &format!("remount,{options}")], &self.0);
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

/// Runs `program` with `args` then `path`; panics with its error output if it fails.
pub fn run(program: &str, args: &[&str], path: &Path) {
    let out = Command::new(program).args(args).arg(path).output().unwrap();
    assert!(
        out.status.success(),
        "{program} {args:?} {}: {}",
        path.display(),
        String::from_utf8_lossy(&out.stderr)
    );
}
