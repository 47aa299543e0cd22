//! TLS terminated by the host: HTTPS on shttp (curl, Python `ssl` with ALPN), POP3S on pop
//! (`openssl s_client`, Python `poplib.POP3_SSL`), and certificates refused at startup
//! (expired, key not matching). Certificates are made by the tests with rcgen; the key
//! files are mode 0600, owned by whoever runs the tests (root in CI, while the server
//! drops to nobody).

use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use rcgen::{CertificateParams, KeyPair, SanType, date_time_ymd};

use crate::harness::{Server, TestPersonality, free_port, is_root};
use crate::http::{big_bytes, python, run_in, start};
use crate::pop_fixture::{Backend, PopSetup};

/// A certificate and key written as PEM files in their own directory.
struct Pem {
    dir: tempfile::TempDir,
}

impl Pem {
    fn cert(&self) -> PathBuf {
        self.dir.path().join("cert.pem")
    }
    fn key(&self) -> PathBuf {
        self.dir.path().join("key.pem")
    }
    /// The c11n lines naming them.
    fn options(&self, tls_port: u16) -> String {
        format!(
            "tls_port = {tls_port}\ncertificate = {}\nprivate_key = {}\n",
            self.cert().display(),
            self.key().display()
        )
    }
}

/// A self-signed certificate for 127.0.0.1 and localhost; `expired` makes it end in 2001;
/// `other_key` writes a key that is not the certificate's.
fn make_pem(expired: bool, other_key: bool) -> Pem {
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(vec!["localhost".into()]).unwrap();
    params
        .subject_alt_names
        .push(SanType::IpAddress([127, 0, 0, 1].into()));
    if expired {
        params.not_before = date_time_ymd(2000, 1, 1);
        params.not_after = date_time_ymd(2001, 1, 1);
    }
    let cert = params.self_signed(&key).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let pem = Pem { dir };
    std::fs::write(pem.cert(), cert.pem()).unwrap();
    let key = if other_key {
        KeyPair::generate().unwrap()
    } else {
        key
    };
    std::fs::write(pem.key(), key.serialize_pem()).unwrap();
    std::fs::set_permissions(pem.key(), std::fs::Permissions::from_mode(0o600)).unwrap();
    // The directory itself must be traversable only for the cert's sake; keep it private.
    std::fs::set_permissions(pem.dir.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
    pem
}

#[test]
fn https_serves_files_through_tls_with_alpn_http11() {
    let pem = make_pem(false, false);
    let tls_port = free_port();
    let site = start(&pem.options(tls_port));
    let url = format!("https://127.0.0.1:{tls_port}/index.txt");
    let cacert = pem.cert().display().to_string();
    let body = run_in(
        site.www.as_path(),
        "curl",
        &["-sS", "--fail", "--cacert", &cacert, &url],
    );
    assert_eq!(body, "hello, index\n");
    // Python ssl: ALPN, and a 1 MiB file whose bytes the host reads and encrypts.
    let script = r#"
import socket, ssl, sys
ctx = ssl.create_default_context(cafile=sys.argv[2])
ctx.set_alpn_protocols(['http/1.1'])
with socket.create_connection(('127.0.0.1', int(sys.argv[1])), timeout=20) as raw:
    with ctx.wrap_socket(raw, server_hostname='localhost') as s:
        print('alpn', s.selected_alpn_protocol())
        s.sendall(b'GET /1m.bin HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n')
        data = b''
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
head, _, body = data.partition(b'\r\n\r\n')
open(sys.argv[3], 'wb').write(body)
print(head.split(b'\r\n')[0].decode())
"#;
    let out_file = site.www.parent().unwrap().join("fetched.bin");
    let out = run_in(
        site.www.as_path(),
        &python(),
        &[
            "-c",
            script,
            &tls_port.to_string(),
            &cacert,
            &out_file.display().to_string(),
        ],
    );
    assert!(out.contains("alpn http/1.1"), "{out}");
    assert!(out.contains("HTTP/1.1 200"), "{out}");
    assert!(
        std::fs::read(&out_file).unwrap() == big_bytes(1 << 20),
        "the file came through TLS altered"
    );
    // The plain port still serves.
    let plain = run_in(
        site.www.as_path(),
        "curl",
        &["-sS", "--fail", &format!("{}/index.txt", site.base)],
    );
    assert_eq!(plain, "hello, index\n");
}

#[test]
fn pop3s_logs_in_over_tls_with_s_client_and_poplib() {
    let pem = make_pem(false, false);
    let tls_port = free_port();
    let server = PopSetup::new(Backend::Sqlite).start(&pem.options(tls_port));
    let mut child = Command::new("openssl")
        .args(["s_client", "-quiet", "-verify_return_error", "-CAfile"])
        .arg(pem.cert())
        .args(["-connect", &format!("127.0.0.1:{tls_port}")])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run openssl (see tools/test-packages.txt)");
    let mut stdin = child.stdin.take().unwrap();
    // s_client -quiet ends at end of input: keep it open until QUIT's answer can come.
    stdin
        .write_all(b"USER alice\r\nPASS secret\r\nSTAT\r\nQUIT\r\n")
        .unwrap();
    std::thread::sleep(Duration::from_secs(2));
    drop(stdin);
    let out = child.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("+OK 3 112"),
        "{text}\n{}\n{}",
        String::from_utf8_lossy(&out.stderr),
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
    let out = run_in(
        Path::new("/"),
        &python(),
        &[
            "-c",
            script,
            &tls_port.to_string(),
            &pem.cert().display().to_string(),
        ],
    );
    assert!(out.contains("stat (3, 112)"), "{out}");
    assert!(out.contains("b'Subject: one'"), "{out}");
}

/// Starts shttp with `pem` and expects it to refuse to start, its log naming `file`.
fn refused(pem: &Pem, file: &Path, words: &str) {
    let port = free_port();
    let root = if is_root() {
        "executes_as_root = true\nuid = 65534\ngid = 65534\n"
    } else {
        ""
    };
    let c11n = format!(
        "identity = tlstest\n{root}shttp {{\n  address = 127.0.0.1\n  port = {port}\n  doc_root = www\n{}}}\n",
        pem.options(free_port())
    );
    let personality = TestPersonality::new(&c11n);
    std::fs::create_dir(personality.path().join("www")).unwrap();
    let mut server = Server::spawn(&["run"], personality.path(), &[]);
    let status = server.wait_exit(Duration::from_secs(60));
    assert!(!status.success(), "started with a bad certificate");
    let log = server.log();
    assert!(log.contains(words), "{log}");
    assert!(log.contains(&file.display().to_string()), "{log}");
}

#[test]
fn an_expired_certificate_is_refused_at_startup() {
    let pem = make_pem(true, false);
    refused(&pem, &pem.cert(), "expired");
}

#[test]
fn a_key_not_matching_the_certificate_is_refused_at_startup() {
    let pem = make_pem(false, true);
    refused(&pem, &pem.key(), "does not match");
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
    let mut child = Command::new("openssl")
        .args([
            "s_client",
            "-quiet",
            "-verify_return_error",
            "-starttls",
            "pop3",
        ])
        .args(["-CAfile", &cacert, "-connect", &format!("127.0.0.1:{port}")])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run openssl (see tools/test-packages.txt)");
    let mut stdin = child.stdin.take().unwrap();
    stdin
        .write_all(b"USER alice\r\nPASS secret\r\nSTAT\r\nQUIT\r\n")
        .unwrap();
    std::thread::sleep(Duration::from_secs(2));
    drop(stdin);
    let out = child.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("+OK 3 112"),
        "{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
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
    let out = run_in(Path::new("/"), &python(), &["-c", script, &port, &cacert]);
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
    let out = run_in(
        Path::new("/"),
        &python(),
        &[
            "-c",
            script,
            &server.setup.port.to_string(),
            &pem.cert().display().to_string(),
        ],
    );
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
    let cacert = pem.cert().display().to_string();
    run_in(
        Path::new("/"),
        &python(),
        &["-c", script, &tls_port.to_string(), &cacert],
    );
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
    let out = run_in(
        Path::new("/"),
        &python(),
        &[
            "-c",
            script,
            &server.setup.port.to_string(),
            &pem.cert().display().to_string(),
        ],
    );
    assert!(out.contains("stat (3, 112)"), "{out}");
}

#[test]
fn https_redirect_sends_plain_requests_to_the_tls_port() {
    let pem = make_pem(false, false);
    let tls_port = free_port();
    let site = start(&format!("{}https_redirect = on\n", pem.options(tls_port)));
    let cacert = pem.cert().display().to_string();
    let url = format!("{}/sub/hello.txt?x=1", site.base);
    let head = run_in(
        site.www.as_path(),
        "curl",
        &[
            "-sS",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code} %{redirect_url}",
            &url,
        ],
    );
    assert_eq!(
        head,
        format!("301 https://127.0.0.1:{tls_port}/sub/hello.txt?x=1")
    );
    let body = run_in(
        site.www.as_path(),
        "curl",
        &["-sS", "--fail", "-L", "--cacert", &cacert, &url],
    );
    assert_eq!(body, "hello from sub\n");
}
