//! The pop module on the embedded database: the protocol against a scripted
//! command/response corpus (both states, pipelining, stuffing, sizes, bad arguments),
//! SASL PLAIN, and injection attempts.

use crate::pop_fixture::{Backend, PopServer, PopSetup};

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
    let asked = std::time::Instant::now();
    assert_eq!(
        c.cmd("PASS wrong"),
        "-ERR [AUTH] invalid user name or password"
    );
    assert!(
        asked.elapsed() >= std::time::Duration::from_millis(100),
        "a failed login waits auth_failure_delay_ms"
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
    // The log arrives through a pipe: wait for the fourth line.
    let start = std::time::Instant::now();
    while server.server.log().matches("failed login").count() < 4 {
        assert!(start.elapsed().as_secs() < 5, "{}", server.server.log());
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let log = server.server.log();
    assert!(!log.contains("' OR '1'='1\""), "passwords are never logged");
}

#[test]
fn maildrops_the_host_refuses_are_a_temporary_error_logged_once() {
    let server = start();
    // Named directly, with `..` (relative, or after the root's absolute path), through a
    // symlink inside the root (outside-root today; the host may report not-found).
    let refused = [
        ("mallory", "/etc", &["outside-root"][..]),
        ("trudy", "alice/../../..", &["outside-root"][..]),
        ("oscar", "/../../../etc", &["outside-root"][..]),
        ("eve", "escape", &["outside-root", "not-found"][..]),
    ];
    for (user, _, _) in refused {
        let mut c = server.client();
        c.ok(&format!("USER {user}"));
        assert_eq!(
            c.cmd("PASS x"),
            "-ERR [SYS/TEMP] cannot open the maildrop",
            "{user}'s maildrop is refused: not an [AUTH] error, the password was right"
        );
        c.ok("QUIT");
    }
    let line_of = |log: &str, user: &str| -> Vec<String> {
        log.lines()
            .filter(|l| l.contains(&format!("login of `{user}` refused")))
            .map(str::to_string)
            .collect()
    };
    // The log arrives through a pipe: wait for the last user's line.
    let start = std::time::Instant::now();
    while line_of(&server.server.log(), "eve").is_empty() {
        assert!(start.elapsed().as_secs() < 5, "{}", server.server.log());
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let log = server.server.log();
    for (user, path, reasons) in refused {
        let lines = line_of(&log, user);
        assert_eq!(lines.len(), 1, "one line for {user}: {log}");
        assert!(
            lines[0].contains(path),
            "the line names the maildrop: {}",
            lines[0]
        );
        assert!(
            reasons.iter().any(|r| lines[0].contains(r)),
            "the line says why ({reasons:?}): {}",
            lines[0]
        );
        assert!(
            !log.contains(&format!("failed login for `{user}`")),
            "{user}'s login is not logged as a wrong password: {log}"
        );
    }
}

#[test]
fn a_message_larger_than_a_read_is_sent_whole() {
    let setup = PopSetup::new(Backend::Sqlite);
    // 300 kB of LF lines, many starting with a dot, across several 64 KiB host reads.
    let mut stored = b"Subject: big\n\n".to_vec();
    for i in 0..6000 {
        stored.extend_from_slice(
            format!(".line {i:05} of the big message, dot-started\n").as_bytes(),
        );
    }
    std::fs::write(
        setup.maildir("bob").join("new/1700000009.M9P1.test"),
        &stored,
    )
    .unwrap();
    let server = setup.start("");
    let mut c = server.login("bob", "hunter2");
    let wire_size = stored.len() + stored.iter().filter(|&&b| b == b'\n').count();
    assert_eq!(c.cmd("LIST 1"), format!("+OK 1 {wire_size}"));
    assert_eq!(c.cmd("RETR 1"), format!("+OK {wire_size} octets"));
    let body = c.body();
    assert_eq!(body.len(), 6002);
    assert_eq!(body[2], "..line 00000 of the big message, dot-started");
    assert_eq!(body[6001], "..line 05999 of the big message, dot-started");
    let unstuffed: usize = body
        .iter()
        .map(|l| l.strip_prefix('.').unwrap_or(l).len() + 2)
        .sum();
    assert_eq!(unstuffed, wire_size, "every byte, CRLF-converted");
}

#[test]
fn the_command_corpus_gets_its_expected_answers() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/pop/corpus.txt");
    let corpus = std::fs::read_to_string(&path).unwrap();
    let server = start();
    let mut c = crate::pop_fixture::PopClient::connect_raw(server.server.addr);
    for (n, line) in corpus.lines().enumerate() {
        let at = format!("{}:{}", path.display(), n + 1);
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        // `S:` alone (an editor may strip the space) expects an empty line.
        let (kind, text) = line.split_at(line.len().min(2));
        let text = text.strip_prefix(' ').unwrap_or(text);
        match kind {
            "C:" => c.write(format!("{text}\r\n").as_bytes()),
            "P:" => c.write(format!("{}\r\n", text.replace('|', "\r\n")).as_bytes()),
            "S:" => assert_eq!(c.line(), text, "{at}"),
            "S^" => {
                let got = c.line();
                assert!(
                    got.starts_with(text),
                    "{at}: expected {text:?}..., got {got:?}"
                );
            }
            _ => panic!("{at}: unknown line {line:?}"),
        }
    }
    assert_eq!(server.setup.files("alice").len(), 3, "nothing was deleted");
}
