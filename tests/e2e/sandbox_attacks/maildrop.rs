//! Issue 12 items 5 and 6, planted by a local user rather than a module: a Maildir that is
//! a symlink to another user's (or reached through a linked directory) is refused with
//! `-ERR [SYS/TEMP]` and a log line; a FIFO in place of a message is skipped or refused at
//! once and hangs no thread (`max_threads = 3`); the same FIFO under shttp's `doc_root`
//! answers at once.

use std::net::SocketAddr;
use std::os::unix::fs::symlink;
use std::path::Path;
use std::time::{Duration, Instant};

use nix::sys::stat::Mode;

use super::echo_served_at;
use crate::harness::{Server, TestPersonality, free_port};
use crate::http::Raw;
use crate::pop_fixture::{Backend, NAMES, PopServer, PopSetup};

/// Echo's section on a fresh port, and its address.
fn echo_section() -> (String, SocketAddr) {
    let port = free_port();
    let section = format!("echo {{\n  address = 127.0.0.1\n  port = {port}\n}}\n");
    (section, ([127, 0, 0, 1], port).into())
}

/// Adds a user (password `x`) whose maildrop query answers `maildrop`.
fn add_user(setup: &PopSetup, user: &str, maildrop: &str) {
    let db = rusqlite::Connection::open(setup.personality.path().join("users.db")).unwrap();
    db.execute(
        &format!("insert into {} values (?1, 'x', ?2)", setup.table),
        [user, maildrop],
    )
    .unwrap();
}

/// A FIFO at `path` that the service user could open.
fn fifo(path: &Path) {
    nix::unistd::mkfifo(path, Mode::from_bits_truncate(0o666)).unwrap();
    let nobody = Some(nix::unistd::Uid::from_raw(65534));
    nix::unistd::chown(path, nobody, Some(nix::unistd::Gid::from_raw(65534))).unwrap();
}

/// Logs in as `user` and returns the answer to PASS, within `limit`.
fn login(server: &PopServer, user: &str, password: &str, limit: Duration) -> String {
    let start = Instant::now();
    let mut client = server.client();
    client.ok(&format!("USER {user}"));
    let answer = client.cmd(&format!("PASS {password}"));
    if answer.starts_with("+OK") {
        client.ok("QUIT");
    }
    assert!(start.elapsed() < limit, "{user}: {:?}", start.elapsed());
    answer
}

#[test]
fn a_symlinked_maildrop_is_refused_and_reads_nothing() {
    let setup = PopSetup::new(Backend::Sqlite);
    let mail = setup.mail_root();
    // mole's Maildir is a link to alice's; tunnel's directory is a link to alice's.
    std::fs::create_dir(mail.join("mole")).unwrap();
    symlink("../alice/Maildir", mail.join("mole/Maildir")).unwrap();
    symlink("alice", mail.join("tunnel")).unwrap();
    add_user(&setup, "mole", "mole/Maildir");
    add_user(&setup, "tunnel", "tunnel/Maildir");
    let (echo, echo_addr) = echo_section();
    let mut server = setup.start_beside("", &echo);

    for user in ["mole", "tunnel"] {
        let answer = login(&server, user, "x", Duration::from_secs(5));
        assert_eq!(answer, "-ERR [SYS/TEMP] cannot open the maildrop", "{user}");
        let logged = format!("login of `{user}` refused: maildrop `{user}/Maildir`: outside-root");
        server.server.wait_for_log(&logged, Duration::from_secs(5));
        echo_served_at(echo_addr, &format!("after {user}'s login"));
    }
    let mut files = server.setup.files("alice");
    files.sort();
    let mut expected: Vec<String> = NAMES.iter().map(|n| n.to_string()).collect();
    expected.sort();
    assert_eq!(files, expected, "alice's mail is untouched");
    assert!(
        login(&server, "alice", "secret", Duration::from_secs(5)).starts_with("+OK 3 messages")
    );
}

#[test]
fn a_fifo_in_a_maildir_hangs_no_thread() {
    let setup = PopSetup::new(Backend::Sqlite);
    fifo(&setup.maildir("bob").join("new/1700000009.M9P1.test"));
    let (echo, echo_addr) = echo_section();
    let mut server = setup.start_beside("  max_threads = 3", &echo);

    // Listed: skipped and logged.
    let bob = login(&server, "bob", "hunter2", Duration::from_secs(5));
    assert_eq!(bob, "+OK 0 messages (0 octets)");
    server.server.wait_for_log(
        "not a regular file in a Maildir folder: skipped",
        Duration::from_secs(5),
    );

    // Swapped in for a message after the listing: RETR fails at once, five times (more than
    // the module's blocking threads), while bob keeps logging in.
    let mut alice = server.client();
    alice.ok("USER alice");
    assert!(alice.ok("PASS secret").starts_with("+OK 3 messages"));
    let message = server.setup.maildir("alice").join(NAMES[0]);
    std::fs::remove_file(&message).unwrap();
    fifo(&message);
    let bystander = std::thread::scope(|scope| {
        let logins = scope.spawn(|| {
            (0..5)
                .map(|_| login(&server, "bob", "hunter2", Duration::from_secs(2)))
                .collect::<Vec<_>>()
        });
        for _ in 0..5 {
            let start = Instant::now();
            assert_eq!(
                alice.cmd("RETR 1"),
                "-ERR [SYS/TEMP] message 1 cannot be read"
            );
            assert!(
                start.elapsed() < Duration::from_secs(2),
                "{:?}",
                start.elapsed()
            );
        }
        logins.join().unwrap()
    });
    assert!(
        bystander.iter().all(|a| a.starts_with("+OK")),
        "{bystander:?}"
    );
    assert!(
        alice.cmd("RETR 2").starts_with("+OK"),
        "other messages still read"
    );
    echo_served_at(echo_addr, "after the FIFO");
}

#[test]
fn a_fifo_under_shttps_doc_root_answers_at_once() {
    let (port, (echo, echo_addr)) = (free_port(), echo_section());
    let c11n = format!(
        "executes_as_root = true\nuid = 65534\ngid = 65534\n\
         shttp {{\n  address = 127.0.0.1\n  port = {port}\n  doc_root = www\n  max_threads = 3\n}}\n{echo}"
    );
    let personality = TestPersonality::new(&c11n);
    let www = personality.path().join("www");
    std::fs::create_dir(&www).unwrap();
    std::fs::write(www.join("index.txt"), "hello\n").unwrap();
    fifo(&www.join("pipe"));
    let server = Server::start(personality, port);
    let get = |path: &str| {
        let start = Instant::now();
        let mut raw = Raw::connect(server.addr);
        raw.get(path, "Connection: close\r\n");
        let status = raw.response(false).expect("a response").status;
        (status, start.elapsed())
    };
    for _ in 0..5 {
        let (status, took) = get("/pipe");
        assert!(matches!(status, 403 | 404), "{status}");
        assert!(took < Duration::from_secs(2), "{took:?}");
    }
    assert_eq!(get("/index.txt").0, 200, "the site serves on");
    echo_served_at(echo_addr, "after the FIFO requests");
}
