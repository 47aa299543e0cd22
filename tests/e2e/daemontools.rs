//! serverkit under real daemontools (Debian's 0.76): the shipped service directory, run by
//! `svscan`, answers `svc -a` (report into the log), `-t` (restart), `-d` (drain, stop),
//! `-u` and `-k` (crash, restart). Skipped loudly where daemontools is not installed;
//! `./dev test` installs it.

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use crate::harness::{Client, binary, echo_c11n, free_port};

fn installed() -> bool {
    Command::new("svscan").arg("--version").output().is_ok()
}

/// A service tree with the echo personality's shipped service directory, run by svscan.
struct Supervised {
    _dir: tempfile::TempDir,
    service: PathBuf,
    svscan: Child,
    port: u16,
}

impl Supervised {
    fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let personality = dir.path().join("personality");
        std::fs::create_dir_all(personality.join("modules")).unwrap();
        std::fs::write(personality.join("c11n"), echo_c11n(port, "greeting = hi")).unwrap();
        let service = dir.path().join("service/echo");
        let shipped = Path::new(env!("CARGO_MANIFEST_DIR")).join("../personalities/echo/service");
        copy_tree(&shipped, &service);
        // Point the shipped env/ at this personality and this build's binary.
        std::fs::write(
            service.join("env/SERVER_PERSONALITY_PATH"),
            personality.display().to_string(),
        )
        .unwrap();
        let bin_dir = Path::new(&binary()).parent().unwrap().display().to_string();
        std::fs::write(service.join("env/PATH"), format!("{bin_dir}:/usr/bin:/bin")).unwrap();
        let svscan = Command::new("svscan")
            .arg(dir.path().join("service"))
            .process_group(0)
            .spawn()
            .expect("start svscan");
        let supervised = Supervised {
            _dir: dir,
            service,
            svscan,
            port,
        };
        supervised.wait_until(
            |s| s.pid().is_some() && s.answers(),
            "the service to come up",
        );
        supervised
    }

    fn svc(&self, flag: &str) {
        let status = Command::new("svc")
            .arg(flag)
            .arg(&self.service)
            .status()
            .unwrap();
        assert!(status.success(), "svc {flag}");
    }

    fn svstat(&self) -> String {
        let out = Command::new("svstat").arg(&self.service).output().unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// The pid of the running server, from svstat's `up (pid N)`.
    fn pid(&self) -> Option<u32> {
        let stat = self.svstat();
        let rest = stat.split("up (pid ").nth(1)?;
        rest.split(')').next()?.parse().ok()
    }

    fn answers(&self) -> bool {
        std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok()
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.service.join("log/main/current")).unwrap_or_default()
    }

    fn wait_until(&self, ok: impl Fn(&Self) -> bool, what: &str) {
        let start = Instant::now();
        while !ok(self) {
            assert!(
                start.elapsed() < Duration::from_secs(60),
                "timed out waiting for {what}; svstat: {}\nlog:\n{}",
                self.svstat(),
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Supervised {
    fn drop(&mut self) {
        let log = self.service.join("log");
        let _ = Command::new("svc")
            .arg("-dx")
            .arg(&self.service)
            .arg(&log)
            .status();
        let start = Instant::now();
        while Command::new("svok")
            .arg(&self.service)
            .status()
            .is_ok_and(|s| s.success())
            && start.elapsed() < Duration::from_secs(15)
        {
            std::thread::sleep(Duration::from_millis(50));
        }
        // A server stuck on TERM would hold `svc -dx` forever: KILL it then.
        let _ = Command::new("svc")
            .arg("-kx")
            .arg(&self.service)
            .arg(&log)
            .status();
        let _ = self.svscan.kill();
        let _ = self.svscan.wait();
    }
}

fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_tree(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

#[test]
fn serverkit_runs_under_daemontools() {
    if !installed() {
        eprintln!(
            "\n!!! SKIPPED serverkit_runs_under_daemontools: daemontools is not installed (./dev test installs it as root) !!!\n"
        );
        return;
    }
    let sv = Supervised::start();
    let first = sv.pid().unwrap();

    // svc -a: the report lands in the multilog log.
    sv.svc("-a");
    sv.wait_until(
        |s| s.log().contains("ServerKit status report") && s.log().contains("Module echo"),
        "the report in log/main/current",
    );

    // svc -t: a clean restart with a new pid, the port rebound at once.
    sv.svc("-t");
    sv.wait_until(
        |s| s.pid().is_some_and(|p| p != first) && s.answers(),
        "a restart after svc -t",
    );
    let second = sv.pid().unwrap();

    // svc -d with a live session: the session is still served, then the server exits.
    let mut live = Client::connect(([127, 0, 0, 1], sv.port).into());
    assert_eq!(live.line().as_deref(), Some("hi"));
    sv.svc("-d");
    sv.wait_until(
        |s| s.log().contains("SIGTERM: no longer accepting"),
        "the drain to start",
    );
    live.echo("served while draining");
    live.send("QUIT");
    sv.wait_until(
        |s| s.svstat().contains(": down "),
        "the server to stop after its last session",
    );
    assert!(sv.log().contains("stopped"), "a clean stop:\n{}", sv.log());

    // svc -u, then svc -k: supervise restarts a killed server.
    sv.svc("-u");
    sv.wait_until(
        |s| s.pid().is_some_and(|p| p != second) && s.answers(),
        "the service to come back up",
    );
    let third = sv.pid().unwrap();
    sv.svc("-k");
    sv.wait_until(
        |s| s.pid().is_some_and(|p| p != third) && s.answers(),
        "a restart after svc -k",
    );
    Client::connect(([127, 0, 0, 1], sv.port).into()).line();
}
