//! The pop module with real clients (Python poplib, curl, mpop) and the shipped
//! personalities.

use std::process::Command;
use std::time::Duration;

use crate::pop_fixture::{Backend, PopServer, PopSetup, database_available};

/// A server on `backend`, or `None` (skipped loudly) if its database is unreachable.
fn start(backend: Backend) -> Option<PopServer> {
    database_available(backend).then(|| PopSetup::new(backend).start(""))
}

/// Declares one test per database backend for a client test `fn(PopServer)`.
macro_rules! on_every_driver {
    ($test:ident: $sqlite:ident, $postgres:ident, $mysql:ident) => {
        #[test]
        fn $sqlite() {
            if let Some(server) = start(Backend::Sqlite) {
                $test(server);
            }
        }
        #[test]
        fn $postgres() {
            if let Some(server) = start(Backend::Postgres) {
                $test(server);
            }
        }
        #[test]
        fn $mysql() {
            if let Some(server) = start(Backend::Mysql) {
                $test(server);
            }
        }
    };
}

on_every_driver!(poplib_uses_every_command: poplib_sqlite, poplib_postgres, poplib_mysql);
on_every_driver!(curl_lists_retrieves_and_deletes: curl_sqlite, curl_postgres, curl_mysql);
on_every_driver!(mpop_keys_on_uidl_and_fetches_nothing_twice: mpop_sqlite, mpop_postgres, mpop_mysql);

fn poplib_uses_every_command(server: PopServer) {
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

fn curl_lists_retrieves_and_deletes(server: PopServer) {
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
}

fn mpop_keys_on_uidl_and_fetches_nothing_twice(server: PopServer) {
    if Command::new("mpop").arg("--version").output().is_err() {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "mpop is missing in CI"
        );
        eprintln!("!!! SKIPPED: mpop is not installed (tools/test-packages.txt) !!!");
        return;
    }
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
        // Messages delivered so far: mbox "From " lines carry no Subject, each message one.
        std::fs::read_to_string(&mbox)
            .unwrap()
            .matches("Subject: ")
            .count()
    };
    assert_eq!(run(), 3, "the first run fetches every message");
    assert_eq!(
        run(),
        3,
        "the second run fetches nothing new: UIDLs are stable"
    );
    assert_eq!(server.setup.files("alice").len(), 3, "--keep=on");
}

#[test]
fn the_shipped_personalities_check_and_the_demo_serves() {
    // Copies, so the checkout stays clean; the demo setup creates the maildrops that
    // all three personalities name (check opens them, as run would).
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../personalities");
    let dir = tempfile::tempdir().unwrap();
    for (name, files) in [
        ("pop", &["c11n", "setup-demo", "schema.sql"][..]),
        ("pop-postgres", &["c11n", "schema.sql"][..]),
        ("pop-mysql", &["c11n", "schema.sql"][..]),
    ] {
        std::fs::create_dir(dir.path().join(name)).unwrap();
        for file in files {
            std::fs::copy(root.join(name).join(file), dir.path().join(name).join(file)).unwrap();
        }
    }
    let copy = dir.path().join("pop");
    let status = Command::new(copy.join("setup-demo")).status().unwrap();
    assert!(status.success());
    for name in ["pop", "pop-postgres", "pop-mysql"] {
        let out = Command::new(crate::harness::binary())
            .args(["check"])
            .arg(dir.path().join(name))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{name}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
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
    assert_eq!(c.cmd("PASS demo"), "+OK 1 message (197 octets)");
    assert!(c.cmd("RETR 1").starts_with("+OK"));
    assert!(
        c.body()
            .iter()
            .any(|l| l == "..A line starting with a dot is byte-stuffed on the wire.")
    );
}
