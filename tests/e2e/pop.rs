//! The pop module on the embedded database: the protocol against a scripted corpus, the
//! data-safety guarantees, locking, and real clients (poplib, curl, mpop).

use std::process::Command;
use std::time::Duration;

use crate::pop_fixture::{Backend, MSG1, NAMES, PopServer, PopSetup};

fn start() -> PopServer {
    PopSetup::new(Backend::Sqlite).start("")
}

/// RFC 1939 sizes of alice's messages (CRLF, before stuffing).
const SIZES: [u64; 3] = [61, 26, 25];

#[test]
fn corpus_authorization_state() {
    let server = start();
    let mut c = server.client();
    let capa = {
        assert!(c.cmd("CAPA").starts_with("+OK"));
        c.body()
    };
    for cap in [
        "TOP",
        "UIDL",
        "USER",
        "SASL PLAIN",
        "RESP-CODES",
        "AUTH-RESP-CODE",
        "PIPELINING",
    ] {
        assert!(capa.iter().any(|l| l == cap), "CAPA lacks {cap}: {capa:?}");
    }
    assert!(c.cmd("STAT").starts_with("-ERR"), "STAT before login");
    assert!(c.cmd("PASS secret").starts_with("-ERR"), "PASS before USER");
    assert!(c.cmd("FOO").starts_with("-ERR"));
    assert!(
        c.cmd(&"X".repeat(5000)).starts_with("-ERR"),
        "overlong line"
    );
    c.ok("USER alice");
    assert_eq!(
        c.cmd("PASS wrong"),
        "-ERR [AUTH] invalid user name or password"
    );
    c.ok("USER nobody");
    assert!(c.cmd("PASS secret").starts_with("-ERR [AUTH]"));
    c.ok("USER alice");
    assert_eq!(c.cmd("PASS secret"), "+OK 3 messages (112 octets)");
    c.ok("CAPA");
    let after = c.body();
    assert!(!after.iter().any(|l| l == "USER"), "no USER after login");
}

#[test]
fn corpus_transaction_state() {
    let server = start();
    let mut c = server.login("alice", "secret");
    assert_eq!(
        c.cmd("STAT"),
        format!("+OK 3 {}", SIZES.iter().sum::<u64>())
    );
    c.ok("LIST");
    assert_eq!(c.body(), ["1 61", "2 26", "3 25"]);
    assert_eq!(c.cmd("LIST 2"), "+OK 2 26");
    assert_eq!(c.cmd("RETR 1"), "+OK 61 octets");
    assert_eq!(
        c.body(),
        [
            "Subject: one",
            "",
            "line one",
            "..leading dot",
            "...two dots",
            "..",
            "last"
        ]
    );
    assert_eq!(c.cmd("TOP 2 0"), "+OK 26 octets");
    assert_eq!(c.body(), ["Subject: two", ""]);
    assert_eq!(c.cmd("TOP 1 1"), "+OK 61 octets");
    assert_eq!(c.body(), ["Subject: one", "", "line one"]);
    c.ok("UIDL");
    assert_eq!(
        c.body(),
        [
            "1 1700000001.M1P1.test",
            "2 1700000002.M2P1.test",
            "3 1700000003.M3P1.test"
        ]
    );
    for bad in [
        "RETR 0",
        "RETR 4",
        "RETR -1",
        "RETR abc",
        "RETR 99999999999999999999",
        "RETR",
        "TOP 1",
        "LIST 1 2",
        "DELE x",
        "USER bob",
        "BOGUS",
    ] {
        assert!(c.cmd(bad).starts_with("-ERR"), "{bad} must be refused");
    }
    c.ok("DELE 1");
    assert!(c.cmd("RETR 1").starts_with("-ERR"), "a deleted message");
    assert!(c.cmd("DELE 1").starts_with("-ERR"));
    assert_eq!(c.cmd("STAT"), "+OK 2 51");
    c.ok("LIST");
    assert_eq!(c.body(), ["2 26", "3 25"], "numbers do not shift");
    c.ok("RSET");
    assert_eq!(c.cmd("STAT"), "+OK 3 112");
    // Pipelined: four commands in one write, four answers in order.
    c.write(b"NOOP\r\nSTAT\r\nUIDL 1\r\nLIST 2\r\n");
    assert_eq!(c.line(), "+OK");
    assert_eq!(c.line(), "+OK 3 112");
    assert_eq!(c.line(), "+OK 1 1700000001.M1P1.test");
    assert_eq!(c.line(), "+OK 2 26");
    c.ok("QUIT");
    assert_eq!(server.setup.files("alice").len(), 3, "nothing deleted");
}

#[test]
fn sasl_plain_with_and_without_initial_response() {
    let server = start();
    let mut c = server.client();
    // "\0alice\0secret"
    assert!(c.cmd("AUTH PLAIN AGFsaWNlAHNlY3JldA==").starts_with("+OK"));
    let mut c = server.client();
    assert_eq!(c.cmd("AUTH PLAIN"), "+ ");
    assert!(
        c.cmd("AGFsaWNlAHdyb25n").starts_with("-ERR [AUTH]"),
        "wrong password"
    );
    assert_eq!(c.cmd("AUTH PLAIN"), "+ ");
    assert!(c.cmd("*").starts_with("-ERR"), "cancelled");
    assert!(c.cmd("AUTH CRAM-MD5").starts_with("-ERR"));
    assert!(c.cmd("AUTH").starts_with("+OK"));
    assert_eq!(c.body(), ["PLAIN"]);
}

#[test]
fn dele_then_dropped_connection_deletes_nothing() {
    let server = start();
    let mut c = server.login("alice", "secret");
    c.ok("DELE 1");
    c.ok("DELE 3");
    c.drop_connection();
    let mut again = server.login("alice", "secret");
    assert_eq!(again.cmd("STAT"), "+OK 3 112");
    again.ok("UIDL");
    assert_eq!(again.body()[0], "1 1700000001.M1P1.test", "same UIDL");
}

#[test]
fn dele_then_kill_9_deletes_nothing() {
    let mut server = start();
    let mut c = server.login("alice", "secret");
    c.ok("DELE 2");
    assert!(c.cmd("RETR 2").starts_with("-ERR"));
    server.server.signal(nix::sys::signal::Signal::SIGKILL);
    server.server.wait_exit(Duration::from_secs(10));
    let mut files = server.setup.files("alice");
    files.sort();
    let mut expected: Vec<String> = NAMES.iter().map(|s| s.to_string()).collect();
    expected.sort();
    assert_eq!(files, expected, "every message is still there");
    // And a restarted server gives the same UIDLs.
    let PopServer { setup, .. } = server;
    let server = setup.start("");
    let mut c = server.login("alice", "secret");
    c.ok("UIDL");
    assert_eq!(c.body()[1], "2 1700000002.M2P1.test");
}

#[test]
fn an_idle_timeout_deletes_nothing() {
    let server = PopSetup::new(Backend::Sqlite).start("idle_timeout = 1");
    let mut c = server.login("alice", "secret");
    c.ok("DELE 1");
    std::thread::sleep(Duration::from_millis(2500));
    c.write(b"QUIT\r\n");
    let mut rest = String::new();
    let _ = std::io::Read::read_to_string(c.reader_mut(), &mut rest);
    assert!(!rest.contains("+OK"), "the session had ended: {rest:?}");
    assert_eq!(server.setup.files("alice").len(), 3);
}

#[test]
fn dele_then_quit_deletes_atomically_at_update() {
    let server = start();
    let mut c = server.login("alice", "secret");
    c.ok("DELE 1");
    c.ok("DELE 2");
    assert_eq!(server.setup.files("alice").len(), 3, "not before QUIT");
    assert_eq!(c.cmd("QUIT"), "+OK bye, 2 messages deleted");
    assert_eq!(server.setup.files("alice"), ["new/1700000003.M3P1.test"]);
    let mut c = server.login("alice", "secret");
    c.ok("UIDL");
    assert_eq!(
        c.body(),
        ["1 1700000003.M3P1.test"],
        "renumbered in the next session"
    );
}

#[test]
fn a_renamed_message_keeps_its_uidl_and_is_still_deleted() {
    let server = start();
    let mut c = server.login("alice", "secret");
    c.ok("DELE 1");
    // Another client (Dovecot, say) reads message 1 meanwhile: new/ -> cur/ with flags.
    let dir = server.setup.maildir("alice");
    std::fs::rename(dir.join(NAMES[0]), dir.join("cur/1700000001.M1P1.test:2,S")).unwrap();
    assert_eq!(c.cmd("QUIT"), "+OK bye, 1 messages deleted");
    assert_eq!(server.setup.files("alice").len(), 2);
}

#[test]
fn a_second_concurrent_login_is_in_use() {
    let server = start();
    let mut first = server.login("alice", "secret");
    let mut second = server.client();
    second.ok("USER alice");
    assert!(second.cmd("PASS secret").starts_with("-ERR [IN-USE]"));
    // bob is not locked by alice's session.
    let mut bob = server.login("bob", "hunter2");
    assert_eq!(bob.cmd("STAT"), "+OK 0 0");
    first.ok("QUIT");
    let mut third = server.client();
    third.ok("USER alice");
    assert!(
        third.cmd("PASS secret").starts_with("+OK"),
        "free again after QUIT"
    );
    // A dropped session frees the lock too.
    third.drop_connection();
    std::thread::sleep(Duration::from_millis(300));
    server.login("alice", "secret").ok("QUIT");
}

#[test]
fn injection_attempts_match_no_user() {
    let server = start();
    for (user, password) in [
        ("alice' OR '1'='1", "x"),
        ("alice", "' OR '1'='1"),
        ("alice'--", "x"),
        ("x\" OR \"1\"=\"1", "x\" OR \"1\"=\"1"),
    ] {
        let mut c = server.client();
        c.ok(&format!("USER {user}"));
        assert!(
            c.cmd(&format!("PASS {password}"))
                .starts_with("-ERR [AUTH]"),
            "{user} / {password}"
        );
    }
    let mut c = server.client();
    c.ok("USER mallory");
    assert!(
        c.cmd("PASS x").starts_with("-ERR [SYS/TEMP]"),
        "maildrop outside the root"
    );
    let log = server.server.log();
    assert!(
        log.contains("outside") || log.contains("OutsideRoot"),
        "{log}"
    );
    assert!(log.contains("failed login"), "failed logins are logged");
    assert!(!log.contains("' OR '1'='1\""), "passwords are never logged");
}

#[test]
fn poplib_uses_every_command() {
    let server = start();
    let python = std::env::var("SERVERKIT_TEST_PYTHON").unwrap_or_else(|_| "python3".into());
    let script = r#"
import poplib, sys
p = poplib.POP3('127.0.0.1', int(sys.argv[1]), timeout=20)
caps = p.capa()
assert 'UIDL' in caps and 'TOP' in caps, caps
p.user('alice'); p.pass_('secret')
print('stat', p.stat())
print('list', p.list()[1])
print('uidl', p.uidl()[1])
print('uidl1', p.uidl(1))
print('retr', p.retr(1)[1])
print('top', p.top(2, 0)[1])
print('noop', p.noop())
print('dele', p.dele(3))
print('rset', p.rset())
print('quit', p.quit())
"#;
    let out = Command::new(python)
        .args(["-c", script, &server.setup.port.to_string()])
        .output()
        .expect("run python");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("stat (3, 112)"), "{stdout}");
    assert!(
        stdout.contains(
            "[b'Subject: one', b'', b'line one', b'.leading dot', b'..two dots', b'.', b'last']"
        ),
        "poplib un-stuffs: {stdout}"
    );
    assert!(stdout.contains("b'1 1700000001.M1P1.test'"), "{stdout}");
    assert_eq!(server.setup.files("alice").len(), 3, "RSET undid the DELE");
}

fn curl(server: &PopServer, args: &[&str]) -> String {
    let url = format!("pop3://127.0.0.1:{}/", server.setup.port);
    let out = Command::new("curl")
        .args(["-s", "--max-time", "20", "-u", "alice:secret"])
        .args(args.iter().map(|a| a.replace("URL", &url)))
        .output()
        .expect("run curl");
    assert!(out.status.success(), "curl {args:?}: {:?}", out.status);
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn curl_lists_retrieves_and_deletes() {
    let server = start();
    assert_eq!(curl(&server, &["URL"]), "1 61\r\n2 26\r\n3 25\r\n");
    assert_eq!(
        curl(&server, &["URL1"]).as_bytes(),
        b"Subject: one\r\n\r\nline one\r\n.leading dot\r\n..two dots\r\n.\r\nlast\r\n"
    );
    assert!(curl(&server, &["URL", "-X", "UIDL"]).contains("2 1700000002.M2P1.test"));
    assert_eq!(
        curl(&server, &["URL", "-X", "TOP 3 0"]),
        "Subject: three\r\n\r\n"
    );
    curl(&server, &["URL1", "-X", "DELE", "-I"]);
    assert_eq!(
        server.setup.files("alice").len(),
        2,
        "curl's DELE is followed by QUIT"
    );
    assert!(std::str::from_utf8(MSG1).is_ok());
}

#[test]
fn mpop_keys_on_uidl_and_fetches_nothing_twice() {
    if Command::new("mpop").arg("--version").output().is_err() {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "mpop is missing in CI"
        );
        eprintln!("!!! SKIPPED: mpop is not installed (tools/test-packages.txt) !!!");
        return;
    }
    let server = start();
    let dir = tempfile::tempdir().unwrap();
    let mbox = dir.path().join("m.mbox");
    std::fs::write(&mbox, "").unwrap();
    let run = || {
        let out = Command::new("mpop")
            .args([
                "--host=127.0.0.1",
                &format!("--port={}", server.setup.port),
                "--tls=off",
                "--auth=user",
                "--user=alice",
                "--passwordeval=echo secret",
                "--keep=on",
                "--only-new=on",
            ])
            .arg(format!(
                "--uidls-file={}",
                dir.path().join("uidls").display()
            ))
            .arg(format!("--delivery=mbox,{}", mbox.display()))
            .output()
            .expect("run mpop");
        assert!(
            out.status.success(),
            "mpop: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        std::fs::read_to_string(&mbox)
            .unwrap()
            .matches("\nSubject: ")
            .count()
            + usize::from(
                std::fs::read_to_string(&mbox)
                    .unwrap()
                    .starts_with("Subject: "),
            )
    };
    let first = run();
    assert_eq!(
        std::fs::read_to_string(&mbox)
            .unwrap()
            .matches("Subject: ")
            .count(),
        3,
        "first run fetches all"
    );
    let _ = first;
    run();
    assert_eq!(
        std::fs::read_to_string(&mbox)
            .unwrap()
            .matches("Subject: ")
            .count(),
        3,
        "second run fetches nothing new"
    );
    assert_eq!(server.setup.files("alice").len(), 3, "--keep=on");
}

#[test]
fn the_shipped_personalities_check_and_the_demo_serves() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../personalities");
    for name in ["pop", "pop-postgres", "pop-mysql"] {
        let out = Command::new(crate::harness::binary())
            .args(["check"])
            .arg(root.join(name))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{name}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    // The embedded-database demo, copied so the checkout stays clean, on a free port.
    let dir = tempfile::tempdir().unwrap();
    let copy = dir.path().join("pop");
    std::fs::create_dir(&copy).unwrap();
    for file in ["c11n", "setup-demo", "schema.sql"] {
        std::fs::copy(root.join("pop").join(file), copy.join(file)).unwrap();
    }
    let status = Command::new(copy.join("setup-demo")).status().unwrap();
    assert!(status.success());
    let port = crate::harness::free_port();
    let c11n = std::fs::read_to_string(copy.join("c11n")).unwrap();
    std::fs::write(
        copy.join("c11n"),
        c11n.replace("port = 1110", &format!("port = {port}")),
    )
    .unwrap();
    if crate::harness::is_root() {
        // uid 65534 must be able to reach the copy in this private temporary directory.
        Command::new("chmod")
            .args(["755"])
            .arg(dir.path())
            .status()
            .unwrap();
    }
    let mut server = crate::harness::Server::spawn(&["run"], &copy, &[]);
    server.addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    server.wait_for_log("serving", Duration::from_secs(60));
    let mut c = crate::pop_fixture::PopClient::connect(server.addr);
    c.ok("USER demo");
    assert_eq!(c.cmd("PASS demo"), "+OK 1 messages (197 octets)");
    assert!(c.cmd("RETR 1").starts_with("+OK"));
    assert!(
        c.body()
            .iter()
            .any(|l| l == "..A line starting with a dot is byte-stuffed on the wire.")
    );
}
