//! The root policy, the identity and the root drop, checked from outside the process.
//! Tests that need root say so loudly and skip when not run as root (CI runs as root).

use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::time::Duration;

use crate::harness::{Server, TestPersonality, binary, echo_c11n, free_port, is_root};

fn skip_unless_root(test: &str) -> bool {
    if is_root() {
        return false;
    }
    eprintln!("\n!!! SKIPPED {test}: it needs root (CI runs as root) !!!\n");
    true
}

#[test]
fn root_without_executes_as_root_aborts() {
    if skip_unless_root("root_without_executes_as_root_aborts") {
        return;
    }
    let port = free_port();
    let personality = TestPersonality::new(&format!(
        "echo {{\n address = 127.0.0.1\n port = {port}\n}}\n"
    ));
    let mut server = Server::spawn(&["run"], personality.path(), &[]);
    let status = server.wait_exit(Duration::from_secs(60));
    assert_eq!(status.code(), Some(100), "{}", server.log());
    let log = server.log();
    let line = log
        .lines()
        .find(|l| l.starts_with("serverkit: "))
        .unwrap_or_else(|| panic!("main's error line: {log}"));
    assert!(
        line.starts_with(
            "serverkit: started as root, but the personality does not say `executes_as_root = true`: start serverkit as an unprivileged user"
        ),
        "the line reads well: {line}"
    );
    assert!(
        std::net::TcpStream::connect(("127.0.0.1", port)).is_err(),
        "nothing was bound"
    );
}

#[test]
fn uid_without_executes_as_root_is_refused() {
    let port = free_port();
    let personality = TestPersonality::new(&format!(
        "uid = 65534\necho {{\n address = 127.0.0.1\n port = {port}\n}}\n"
    ));
    let mut server = Server::spawn(&["run"], personality.path(), &[]);
    let status = server.wait_exit(Duration::from_secs(60));
    assert_eq!(status.code(), Some(100), "{}", server.log());
    assert!(
        server
            .log()
            .contains("`uid` and `gid` need `executes_as_root = true`"),
        "{}",
        server.log()
    );
}

#[test]
fn identity_shows_in_comm_and_cmdline() {
    let port = free_port();
    let server = Server::start(TestPersonality::new(&echo_c11n(port, "")), port);
    let comm = std::fs::read_to_string(format!("/proc/{}/comm", server.pid())).unwrap();
    assert_eq!(comm.trim_end(), "server.echotest");
    let cmdline = std::fs::read(format!("/proc/{}/cmdline", server.pid())).unwrap();
    let argv0 = cmdline.split(|b| *b == 0).next().unwrap();
    assert_eq!(String::from_utf8_lossy(argv0), "server.echotest");
    server.client().echo("and it serves");
}

/// A port below 1024 that is free now.
fn free_privileged_port() -> u16 {
    (700..1000)
        .find(|p| std::net::TcpListener::bind(("127.0.0.1", *p)).is_ok())
        .expect("a free port below 1024")
}

#[test]
fn binds_a_privileged_port_then_drops_root_on_every_thread() {
    if skip_unless_root("binds_a_privileged_port_then_drops_root_on_every_thread") {
        return;
    }
    let port = free_privileged_port();
    let server = Server::start(
        TestPersonality::new(&echo_c11n(port, "min_threads = 2\nmax_threads = 3")),
        port,
    );
    server.client().echo("served on a privileged port");
    let tasks: Vec<_> = std::fs::read_dir(format!("/proc/{}/task", server.pid()))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert!(
        tasks.len() >= 3,
        "the main thread, the epoch ticker and the workers: {tasks:?}"
    );
    for task in tasks {
        let status = std::fs::read_to_string(task.join("status")).unwrap();
        let field = |name: &str| status_field(&status, name);
        assert_eq!(
            field("Uid"),
            "65534 65534 65534 65534",
            "{}",
            task.display()
        );
        assert_eq!(
            field("Gid"),
            "65534 65534 65534 65534",
            "{}",
            task.display()
        );
        assert_eq!(field("Groups"), "65534", "{}", task.display());
        for set in ["CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"] {
            assert_eq!(
                field(set),
                "0000000000000000",
                "{set} of {}",
                task.display()
            );
        }
        assert_eq!(field("NoNewPrivs"), "1", "{}", task.display());
        assert_eq!(field("Seccomp"), "2", "filter mode on {}", task.display());
    }
}

/// The value of `name` in a `/proc/PID/task/TID/status` text, spaces normalised.
fn status_field(status: &str, name: &str) -> String {
    status
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{name}:")))
        .unwrap_or_else(|| panic!("{name} in {status}"))
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

/// The `Seccomp` mode of every thread of `pid`.
fn seccomp_modes(pid: u32) -> Vec<String> {
    std::fs::read_dir(format!("/proc/{pid}/task"))
        .unwrap()
        .map(|e| std::fs::read_to_string(e.unwrap().path().join("status")).unwrap())
        .map(|status| status_field(&status, "Seccomp"))
        .collect()
}

#[test]
fn seccomp_false_leaves_the_filter_out_and_says_so() {
    let port = free_port();
    let c11n = format!("seccomp = false\n{}", echo_c11n(port, "min_threads = 2"));
    let server = Server::start(TestPersonality::new(&c11n), port);
    server.client().echo("served without the filter");
    let modes = seccomp_modes(server.pid());
    assert!(modes.len() >= 3, "{modes:?}");
    assert!(
        modes.iter().all(|m| m == "0"),
        "no thread filtered: {modes:?}"
    );
    assert!(
        server
            .log()
            .contains("`seccomp = false`: no system call filter"),
        "{}",
        server.log()
    );
}

#[test]
fn the_seccomp_filter_is_on_by_default_for_every_thread() {
    let port = free_port();
    let server = Server::start(
        TestPersonality::new(&echo_c11n(port, "min_threads = 2")),
        port,
    );
    server.client().echo("served with the filter");
    let modes = seccomp_modes(server.pid());
    assert!(modes.len() >= 3, "{modes:?}");
    assert!(
        modes.iter().all(|m| m == "2"),
        "every thread filtered: {modes:?}"
    );
    assert!(
        server.log().contains("seccomp filter installed"),
        "{}",
        server.log()
    );
}

#[test]
fn an_ordinary_user_runs_without_switching() {
    if skip_unless_root(
        "an_ordinary_user_runs_without_switching (it starts the server as uid 65534)",
    ) {
        return;
    }
    let port = free_port();
    let personality = TestPersonality::new(&echo_c11n(port, ""));
    std::fs::set_permissions(personality.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let mut child = std::process::Command::new(binary())
        .arg("run")
        .arg(personality.path())
        .uid(65534)
        .gid(65534)
        .env("SERVERKIT_CACHE_DIR", "/nonexistent/serverkit-cache")
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let served = loop {
        if let Ok(stream) = std::net::TcpStream::connect(("127.0.0.1", port)) {
            let mut client = crate::harness::Client::connect(stream.peer_addr().unwrap());
            client.echo("served by an unprivileged server");
            break true;
        }
        if std::time::Instant::now() > deadline || child.try_wait().unwrap().is_some() {
            break false;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let status =
        std::fs::read_to_string(format!("/proc/{}/status", child.id())).unwrap_or_default();
    let _ = child.kill();
    let output = child.wait_with_output().unwrap();
    assert!(
        served,
        "the server did not serve:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        status
            .lines()
            .any(|l| l.starts_with("Uid:") && l.contains("65534")),
        "{status}"
    );
    assert!(
        String::from_utf8_lossy(&output.stderr)
            .contains("not started as root: running as uid 65534 without switching ids")
    );
}

#[test]
fn a_personality_the_service_user_cannot_read_is_said_once_at_startup() {
    if skip_unless_root("a_personality_the_service_user_cannot_read_is_said_once_at_startup") {
        return;
    }
    let warning = "after the drop to uid 65534, the personality cannot be read";
    // The test's temporary directory is root's, mode 0700: nobody can enter it.
    let port = free_port();
    let personality = TestPersonality::new(&echo_c11n(port, ""));
    let path = personality.path().to_path_buf();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o700)).unwrap();
    let server = Server::start(personality, port);
    server.client().echo("still served");
    let log = server.log();
    assert_eq!(log.matches(warning).count(), 1, "{log}");
    assert!(
        log.contains(&format!("`{}/c11n`: Permission denied", path.display())),
        "{log}"
    );
    drop(server);

    // Readable by the service user: no warning.
    let port = free_port();
    let personality = TestPersonality::new(&echo_c11n(port, ""));
    std::fs::set_permissions(personality.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let server = Server::start(personality, port);
    assert!(!server.log().contains(warning), "{}", server.log());
}
