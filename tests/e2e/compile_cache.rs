//! The compiled-module cache of a server started as root, in its default place (`$HOME`
//! set to a directory each test owns): cached without a warning and loaded on the next
//! start; a forged entry planted as the service user neither run nor kept; hot swaps after
//! the root drop served from and written to the cache. Root only (the server drops to
//! uid 65534); elsewhere skipped with a loud message.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use crate::harness::{Server, TestPersonality, echo_c11n, free_port, is_root};
use crate::hotswap::{fresh_answer, personality, replace, server_dir, test_module};

/// Where the cache puts the artifacts of modules served as uid 65534.
const SERVICE_SUBDIR: &str = "uid-65534";

/// The log line of a cache hit (debug level).
const HIT: &str = "loaded from cache";

/// The log line of a module compiled and stored (debug level).
const STORED: &str = "compiled and cached";

/// The warning for an entry refused.
const DISCARDED: &str = "discarding cached module";

fn skipped(what: &str) -> bool {
    if is_root() {
        return false;
    }
    eprintln!("!!! SKIPPED: {what} needs root (the server starts as root and drops to 65534) !!!");
    true
}

/// A home directory of the test's own: the server's default cache goes beneath it.
struct Home(tempfile::TempDir);

impl Home {
    fn new() -> Home {
        Home(tempfile::tempdir().unwrap())
    }

    /// The environment of a default start: only `HOME` says where the cache is.
    fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("HOME", self.0.path().display().to_string()),
            ("SERVERKIT_CACHE_DIR", String::new()),
            ("XDG_CACHE_HOME", String::new()),
            ("RUST_LOG", "info,serverkit::engine=debug".into()),
        ]
    }

    fn cache(&self) -> PathBuf {
        self.0.path().join(".cache/serverkit")
    }

    /// The artifacts for the service uid, oldest first.
    fn artifacts(&self) -> Vec<PathBuf> {
        let Ok(entries) = std::fs::read_dir(self.cache().join(SERVICE_SUBDIR)) else {
            return Vec::new();
        };
        let mut files: Vec<_> = entries
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "cwasm"))
            .collect();
        files.sort_by_key(|p| std::fs::metadata(p).unwrap().modified().unwrap());
        files
    }

    /// Starts a server for `personality` on `port` with this home.
    fn start(&self, personality: TestPersonality, port: u16) -> Server {
        let env = self.env();
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
        Server::start_with_env(personality, port, &env)
    }

    /// Starts a server whose `modules/echo.wasm` is `wasm`; returns it and what a fresh
    /// session answers to `ping`.
    fn serve(&self, wasm: &[u8]) -> (Server, String) {
        let port = free_port();
        let personality = TestPersonality::new(&echo_c11n(port, ""));
        std::fs::write(personality.path().join("modules/echo.wasm"), wasm).unwrap();
        let server = self.start(personality, port);
        let answer = fresh_answer(server.addr);
        (server, answer)
    }
}

/// Warnings in `log` that concern the cache.
fn cache_warnings(log: &str) -> Vec<&str> {
    log.lines()
        .filter(|l| l.contains(" WARN ") && (l.contains("cach") || l.contains("compiled")))
        .collect()
}

fn modified(path: &Path) -> SystemTime {
    std::fs::metadata(path).unwrap().modified().unwrap()
}

/// Puts `bytes` at `path` as the service user could: a file of uid 65534 in its directory.
fn plant(path: &Path, bytes: &[u8]) {
    std::fs::write(path, bytes).unwrap();
    std::os::unix::fs::chown(path, Some(65534), Some(65534)).unwrap();
}

#[test]
fn a_default_root_start_caches_without_a_warning_and_the_next_start_loads_from_it() {
    if skipped("a_default_root_start_caches...") {
        return;
    }
    let home = Home::new();
    let echo = std::fs::read(test_module("echo.wasm")).unwrap();
    let (server, answer) = home.serve(&echo);
    assert_eq!(answer, "ping");
    let log = server.log();
    drop(server);
    assert_eq!(cache_warnings(&log), Vec::<&str>::new(), "{log}");
    assert!(log.contains(STORED), "{log}");
    assert!(!log.contains(HIT), "{log}");

    // Root's directory and key; the artifacts the service user's, so it can read them.
    let cache = home.cache();
    let meta = |p: &Path| std::fs::metadata(p).unwrap();
    assert_eq!(
        (meta(&cache).uid(), meta(&cache).mode() & 0o777),
        (0, 0o700)
    );
    let key = cache.join("key");
    assert_eq!((meta(&key).uid(), meta(&key).mode() & 0o777), (0, 0o600));
    let subdir = cache.join(SERVICE_SUBDIR);
    assert_eq!(
        (meta(&subdir).uid(), meta(&subdir).mode() & 0o777),
        (65534, 0o700)
    );
    let artifacts = home.artifacts();
    assert_eq!(artifacts.len(), 1, "{artifacts:?}");
    assert_eq!(meta(&artifacts[0]).uid(), 65534);
    let written = modified(&artifacts[0]);

    let (server, answer) = home.serve(&echo);
    assert_eq!(answer, "ping");
    let log = server.log();
    assert_eq!(cache_warnings(&log), Vec::<&str>::new(), "{log}");
    assert!(log.contains(HIT), "{log}");
    assert!(!log.contains(STORED), "{log}");
    assert_eq!(home.artifacts(), artifacts);
    assert_eq!(
        modified(&artifacts[0]),
        written,
        "loaded, not written again"
    );
}

#[test]
fn a_forged_entry_planted_as_the_service_user_is_neither_run_nor_kept() {
    if skipped("a_forged_entry_planted_as_the_service_user...") {
        return;
    }
    let home = Home::new();
    let echo = std::fs::read(test_module("echo.wasm")).unwrap();
    // echo-next is also named `echo` (it answers `v2 <line>`): its sealed artifact is a
    // valid artifact of another module.
    let next = std::fs::read(test_module("echo_next.wasm")).unwrap();
    assert_eq!(home.serve(&next).1, "v2 ping");
    let next_artifact = home.artifacts().pop().unwrap();
    assert_eq!(home.serve(&echo).1, "ping");
    let artifacts = home.artifacts();
    assert_eq!(artifacts.len(), 2, "{artifacts:?}");
    let echo_artifact = artifacts.last().unwrap().clone();
    assert_ne!(echo_artifact, next_artifact);

    let random: Vec<u8> = (0..65536u32)
        .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
        .collect();
    let forgeries = [
        ("random bytes", random),
        (
            "another module's artifact",
            std::fs::read(&next_artifact).unwrap(),
        ),
    ];
    for (what, forged) in forgeries {
        plant(&echo_artifact, &forged);
        let (server, answer) = home.serve(&echo);
        assert_eq!(answer, "ping", "{what}: echo is served, as echo");
        let log = server.log();
        drop(server);
        let warnings = cache_warnings(&log);
        assert_eq!(warnings.len(), 1, "{what}: one warning:\n{log}");
        assert!(
            warnings[0].contains(&format!("{DISCARDED} {}", echo_artifact.display())),
            "{what}: the warning names the file:\n{log}"
        );
        assert!(
            log.contains(STORED),
            "{what}: compiled afresh and cached:\n{log}"
        );
        let kept = std::fs::read(&echo_artifact).unwrap();
        assert_ne!(kept, forged, "{what}: the planted bytes are gone");

        // What is there now is a valid artifact of echo: the next start loads it quietly.
        let (server, answer) = home.serve(&echo);
        assert_eq!(answer, "ping");
        let log = server.log();
        assert!(log.contains(HIT), "{what}:\n{log}");
        assert_eq!(cache_warnings(&log), Vec::<&str>::new(), "{what}:\n{log}");
    }
    assert_eq!(
        home.serve(&next).1,
        "v2 ping",
        "echo-next's own artifact untouched"
    );
}

#[test]
fn a_hot_swap_after_the_drop_is_written_to_and_loaded_from_the_cache() {
    if skipped("a_hot_swap_after_the_drop...") {
        return;
    }
    let home = Home::new();
    let port = free_port();
    let personality = personality(port, "");
    let mut server = home.start(personality, port);
    let dir = server_dir(&server);
    assert_eq!(home.artifacts().len(), 1);

    replace(&dir, &std::fs::read(test_module("echo_next.wasm")).unwrap());
    server.wait_for_log("generation=2", Duration::from_secs(60));
    assert_eq!(fresh_answer(server.addr), "v2 ping");
    let artifacts = home.artifacts();
    assert_eq!(
        artifacts.len(),
        2,
        "the swapped-in version was cached: {artifacts:?}"
    );
    assert!(!server.log().contains(HIT), "{}", server.log());

    replace(&dir, &std::fs::read(test_module("echo.wasm")).unwrap());
    server.wait_for_log("generation=3", Duration::from_secs(60));
    assert_eq!(fresh_answer(server.addr), "ping");
    let log = server.log();
    assert_eq!(
        log.matches(HIT).count(),
        1,
        "echo back from the cache:\n{log}"
    );
    assert_eq!(cache_warnings(&log), Vec::<&str>::new(), "{log}");
    assert_eq!(home.artifacts(), artifacts);
}
