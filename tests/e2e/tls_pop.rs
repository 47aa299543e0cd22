//! STLS and POP3S on pop, with the host terminating TLS: `openssl s_client` (implicit and
//! `-starttls pop3`), curl `--ssl-reqd`, Python `poplib` (`POP3_SSL`, `stls()`), a command
//! injected before the STLS handshake, `plaintext_login`, and the report's handshake
//! counters. Certificates come from `tls::make_pem`.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::harness::free_port;
use crate::http::{python, run_in};
use crate::pop_fixture::{Backend, PopSetup};
use crate::tls::{Pem, make_pem};
#[test]
fn pop3s_logs_in_over_tls_with_s_client_and_poplib() {
    let pem = make_pem(false, false);
    let tls_port = free_port();
    let server = PopSetup::new(Backend::Sqlite).start(&pem.options(tls_port));
    let (text, errors) = s_client_login(&pem.cert(), tls_port, &[]);
    assert!(
        text.contains("+OK 3 112"),
        "{text}\n{errors}\n{}",
        server.server.log()
    );
    let script = r#"
import poplib, ssl, sys
ctx = ssl.create_default_context(cafile=sys.argv[2])
p = poplib.POP3_SSL('127.0.0.1', int(sys.argv[1]), context=ctx, timeout=20)
p.user('alice'); p.pass_('secret')
print('stat', p.stat())
print('retr', p.retr(1)[1])
p.quit()
"#;
    let out = python_against(script, tls_port, &pem.cert());
    assert!(out.contains("stat (3, 112)"), "{out}");
    assert!(out.contains("b'Subject: one'"), "{out}");
}

/// pop on a plain port with a certificate prepared for STLS.
fn stls_server(pem: &Pem) -> crate::pop_fixture::PopServer {
    let options = format!(
        "certificate = {}\nprivate_key = {}\n",
        pem.cert().display(),
        pem.key().display()
    );
    PopSetup::new(Backend::Sqlite).start(&options)
}

#[test]
fn stls_upgrades_for_s_client_curl_and_poplib() {
    let pem = make_pem(false, false);
    let server = stls_server(&pem);
    let port = server.setup.port.to_string();
    let cacert = pem.cert().display().to_string();
    let (text, errors) = s_client_login(&pem.cert(), server.setup.port, &["-starttls", "pop3"]);
    assert!(text.contains("+OK 3 112"), "{text}\n{errors}");
    // curl refuses to go on unless STLS succeeds.
    let url = format!("pop3://127.0.0.1:{port}/");
    let listing = run_in(
        Path::new("/"),
        "curl",
        &[
            "-sS",
            "--ssl-reqd",
            "--cacert",
            &cacert,
            "-u",
            "alice:secret",
            &url,
        ],
    );
    assert_eq!(listing.lines().count(), 3, "{listing}");
    let script = r#"
import poplib, ssl, sys
ctx = ssl.create_default_context(cafile=sys.argv[2])
p = poplib.POP3('127.0.0.1', int(sys.argv[1]), timeout=20)
print('before', sorted(p.capa()))
p.stls(context=ctx)
print('after', sorted(p.capa()))
p.user('alice'); p.pass_('secret')
print('stat', p.stat())
p.quit()
"#;
    let out = python_against(script, server.setup.port, &pem.cert());
    assert!(out.contains("before") && out.contains("'STLS'"), "{out}");
    let after = out.lines().find(|l| l.starts_with("after")).unwrap();
    assert!(!after.contains("STLS"), "STLS offered under TLS: {out}");
    assert!(out.contains("stat (3, 112)"), "{out}");
}

#[test]
fn plaintext_injected_after_stls_is_never_run() {
    let pem = make_pem(false, false);
    let server = stls_server(&pem);
    // USER rides in the same segment as STLS: were it run (under TLS, from a buffer),
    // the PASS sent after the handshake would log in.
    let script = r#"
import socket, ssl, sys
ctx = ssl.create_default_context(cafile=sys.argv[2])
raw = socket.create_connection(('127.0.0.1', int(sys.argv[1])), timeout=20)
f = raw.makefile('rb', buffering=0)
print('greeting', f.readline())
raw.sendall(b'STLS\r\nUSER alice\r\n')
print('stls', f.readline())
s = ctx.wrap_socket(raw, server_hostname='localhost')
s.sendall(b'PASS secret\r\n')
print('pass', s.recv(200))
s.sendall(b'USER alice\r\nPASS secret\r\n')
print('login', s.recv(200), s.recv(200))
"#;
    let out = python_against(script, server.setup.port, &pem.cert());
    assert!(out.contains("stls b'+OK begin TLS"), "{out}");
    assert!(out.contains("pass b'-ERR USER first"), "{out}");
    let login = out
        .lines()
        .find(|l| l.starts_with("login"))
        .unwrap_or_default();
    assert!(login.contains("+OK send PASS"), "{out}");
}

#[test]
fn the_report_counts_handshakes_ok_and_failed() {
    let pem = make_pem(false, false);
    let tls_port = free_port();
    let pop = PopSetup::new(Backend::Sqlite).start(&pem.options(tls_port));
    let script = r#"
import poplib, ssl, sys
ctx = ssl.create_default_context(cafile=sys.argv[2])
p = poplib.POP3_SSL('127.0.0.1', int(sys.argv[1]), context=ctx, timeout=20)
p.quit()
"#;
    python_against(script, tls_port, &pem.cert());
    // Plaintext on the TLS port: a handshake that fails.
    let mut raw = std::net::TcpStream::connect(("127.0.0.1", tls_port)).unwrap();
    raw.write_all(b"USER alice\r\n\r\n\r\n\r\n\r\n").unwrap();
    let expected = "TLS handshakes ok 1 (TLSv1.3 1, TLSv1.2 0) failed 1";
    for _ in 0..50 {
        pop.server.signal(nix::sys::signal::Signal::SIGUSR1);
        std::thread::sleep(Duration::from_millis(200));
        if pop.server.log().contains(expected) {
            return;
        }
    }
    panic!("no `{expected}` in the report:\n{}", pop.server.log());
}

#[test]
fn plaintext_login_never_refuses_user_until_stls() {
    let pem = make_pem(false, false);
    let options = format!(
        "certificate = {}\nprivate_key = {}\nplaintext_login = never\n",
        pem.cert().display(),
        pem.key().display()
    );
    let server = PopSetup::new(Backend::Sqlite).start(&options);
    let mut plain = server.client();
    let refused = plain.cmd("USER alice");
    assert!(refused.starts_with("-ERR [AUTH]"), "{refused}");
    let script = r#"
import poplib, ssl, sys
ctx = ssl.create_default_context(cafile=sys.argv[2])
p = poplib.POP3('127.0.0.1', int(sys.argv[1]), timeout=20)
p.stls(context=ctx)
p.user('alice'); p.pass_('secret')
print('stat', p.stat())
p.quit()
"#;
    let out = python_against(script, server.setup.port, &pem.cert());
    assert!(out.contains("stat (3, 112)"), "{out}");
}

/// Runs `openssl s_client` to 127.0.0.1:`port` trusting `cacert` (`mode`: for instance
/// `-starttls pop3`), logs in as alice and asks STAT; returns what it printed and its
/// errors.
pub fn s_client_login(cacert: &Path, port: u16, mode: &[&str]) -> (String, String) {
    let mut child = Command::new("openssl")
        .args(["s_client", "-quiet", "-verify_return_error"])
        .args(mode)
        .arg("-CAfile")
        .arg(cacert)
        .args(["-connect", &format!("127.0.0.1:{port}")])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run openssl (see tools/test-packages.txt)");
    let mut stdin = child.stdin.take().unwrap();
    stdin
        .write_all(b"USER alice\r\nPASS secret\r\nSTAT\r\nQUIT\r\n")
        .unwrap();
    // s_client -quiet ends at end of input: keep it open until QUIT's answer can come.
    std::thread::sleep(Duration::from_secs(2));
    drop(stdin);
    let out = child.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    (text, String::from_utf8_lossy(&out.stderr).into_owned())
}

/// Runs a Python `script` with the server's port and the CA file as its arguments;
/// returns what it printed.
fn python_against(script: &str, port: u16, cacert: &Path) -> String {
    let port = port.to_string();
    let cacert = cacert.display().to_string();
    run_in(Path::new("/"), &python(), &["-c", script, &port, &cacert])
}

/// What `openssl s_client` says of a handshake offering `alpn` to `port` (with `mode`,
/// e.g. `-starttls pop3`): whether it completed, and the protocol selected.
pub fn alpn_handshake(
    cacert: &Path,
    port: u16,
    alpn: Option<&str>,
    mode: &[&str],
) -> (bool, String) {
    let mut args = vec!["s_client".to_string(), "-CAfile".into()];
    args.push(cacert.display().to_string());
    args.extend(mode.iter().map(|m| m.to_string()));
    if let Some(alpn) = alpn {
        args.extend(["-alpn".into(), alpn.into()]);
    }
    args.extend(["-connect".into(), format!("127.0.0.1:{port}")]);
    let out = Command::new("openssl")
        .args(&args)
        .stdin(Stdio::null())
        .output()
        .expect("run openssl");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let completed = text.contains("Verify return code: 0 (ok)");
    (completed && !text.contains("alert"), text)
}

#[test]
fn pop3_tls_offers_pop3_alpn_and_refuses_http() {
    let pem = make_pem(false, false);
    let tls_port = free_port();
    let server = PopSetup::new(Backend::Sqlite).start(&pem.options(tls_port));
    let plain = server.setup.port;
    for (port, mode) in [(tls_port, &[][..]), (plain, &["-starttls", "pop3"][..])] {
        let (ok, text) = alpn_handshake(&pem.cert(), port, Some("pop3"), mode);
        assert!(
            ok && text.contains("ALPN protocol: pop3"),
            "pop3 offered:\n{text}"
        );
        let (ok, text) = alpn_handshake(&pem.cert(), port, None, mode);
        assert!(ok, "no ALPN offered is served:\n{text}");
        let (ok, text) = alpn_handshake(&pem.cert(), port, Some("http/1.1"), mode);
        assert!(
            !ok && text.contains("no application protocol"),
            "a browser's ALPN is refused (alert 120):\n{text}"
        );
    }
}
