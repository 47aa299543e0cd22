//! TLS terminated by the host: HTTPS on shttp (curl, Python `ssl` with ALPN, the redirect
//! from the plain port), and certificates refused at startup (expired, key not matching);
//! pop's POP3S and STLS are in `tls_pop`. Certificates are made by the tests with rcgen;
//! the key files are mode 0600, owned by whoever runs the tests (root in CI, while the server
//! drops to nobody).

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use rcgen::{CertificateParams, KeyPair, SanType, date_time_ymd};

use crate::harness::{Server, TestPersonality, free_port, is_root};
use crate::http::{big_bytes, python, run_in, start, start_with_env};

/// A certificate and key written as PEM files in their own directory.
pub struct Pem {
    dir: tempfile::TempDir,
}

impl Pem {
    pub fn cert(&self) -> PathBuf {
        self.dir.path().join("cert.pem")
    }
    pub fn key(&self) -> PathBuf {
        self.dir.path().join("key.pem")
    }
    /// The c11n lines naming them.
    pub fn options(&self, tls_port: u16) -> String {
        format!(
            "tls_port = {tls_port}\ncertificate = {}\nprivate_key = {}\n",
            self.cert().display(),
            self.key().display()
        )
    }
}

/// A self-signed certificate for 127.0.0.1 and localhost; `expired` makes it end in 2001;
/// `other_key` writes a key that is not the certificate's.
pub fn make_pem(expired: bool, other_key: bool) -> Pem {
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

/// Whether curl fetches `url` trusting only `cacert`.
pub fn curl_trusts(cacert: &Path, url: &str) -> bool {
    std::process::Command::new("curl")
        .args(["-sS", "--fail", "--max-time", "5", "--cacert"])
        .arg(cacert)
        .arg(url)
        .output()
        .is_ok_and(|o| o.status.success())
}

#[test]
fn sighup_reloads_a_certificate_for_new_handshakes() {
    let pem = make_pem(false, false);
    // A reload runs with the server's dropped credentials: these files must be readable
    // by it (a root-only key is read once, at prestart).
    std::fs::set_permissions(pem.dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::set_permissions(pem.key(), std::fs::Permissions::from_mode(0o644)).unwrap();
    let tls_port = free_port();
    let mut site = start(&pem.options(tls_port));
    let url = format!("https://127.0.0.1:{tls_port}/index.txt");
    assert!(curl_trusts(&pem.cert(), &url));

    let renewed = make_pem(false, false);
    for (from, to) in [(renewed.cert(), pem.cert()), (renewed.key(), pem.key())] {
        let staged = to.with_extension("new");
        std::fs::copy(from, &staged).unwrap();
        std::fs::set_permissions(&staged, std::fs::Permissions::from_mode(0o644)).unwrap();
        std::fs::rename(staged, to).unwrap();
    }
    site.server.signal(nix::sys::signal::Signal::SIGHUP);
    site.server
        .wait_for_log("rechecking every module", Duration::from_secs(10));
    let start = std::time::Instant::now();
    while !curl_trusts(&renewed.cert(), &url) {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "new handshakes never used the renewed certificate:\n{}",
            site.server.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(
        !curl_trusts(&make_pem(false, false).cert(), &url),
        "an unrelated certificate is not trusted"
    );
}

#[test]
fn an_ip_address_as_sni_is_logged_at_debug_not_as_a_warning() {
    let pem = make_pem(false, false);
    let tls_port = free_port();
    // Debug for rustls only: the line must still be there, one level down.
    let mut site = start_with_env(&pem.options(tls_port), &[("RUST_LOG", "info,rustls=debug")]);
    // RFC 6066 forbids an IP address as SNI; openssl sends whatever -servername says.
    let mut child = std::process::Command::new("openssl")
        .args(["s_client", "-quiet", "-servername", "127.0.0.1", "-connect"])
        .arg(format!("127.0.0.1:{tls_port}"))
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run openssl (see tools/test-packages.txt)");
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"GET /index.txt HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let body = String::from_utf8_lossy(&out.stdout);
    assert!(body.contains("hello, index"), "served: {body}");
    site.server
        .wait_for_log("IP address presented as hostname", Duration::from_secs(10));
    let log = site.server.log();
    let line = log
        .lines()
        .find(|l| l.contains("IP address presented as hostname"))
        .unwrap();
    assert!(line.contains("DEBUG"), "lowered to debug: {line}");
    assert!(
        !log.lines().any(|l| l.contains("WARN") && l.contains("SNI")),
        "no warning for a client's SNI:\n{log}"
    );
}

#[test]
fn https_offers_http11_alpn_and_refuses_pop3() {
    let pem = make_pem(false, false);
    let tls_port = free_port();
    let _site = start(&pem.options(tls_port));
    let (ok, text) = crate::tls_pop::alpn_handshake(&pem.cert(), tls_port, Some("http/1.1"), &[]);
    assert!(ok && text.contains("ALPN protocol: http/1.1"), "{text}");
    let (ok, text) = crate::tls_pop::alpn_handshake(&pem.cert(), tls_port, Some("pop3"), &[]);
    assert!(!ok && text.contains("no application protocol"), "{text}");
}

#[test]
fn plain_http_to_the_https_port_gets_a_readable_400() {
    let pem = make_pem(false, false);
    let tls_port = free_port();
    let site = start(&pem.options(tls_port));
    let out = std::process::Command::new("curl")
        .args(["-sS", "--max-time", "10", "-w", "%{http_code}"])
        .arg(format!("http://127.0.0.1:{tls_port}/index.txt"))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.starts_with("The plain HTTP request was sent to HTTPS port.") && text.ends_with("400"),
        "{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // And the port still speaks TLS.
    assert!(curl_trusts(
        &pem.cert(),
        &format!("https://127.0.0.1:{tls_port}/index.txt")
    ));
    drop(site);
}

/// Whether `openssl s_client` resumes a session on `port` (with `mode`): a first handshake
/// saves it, a second one offers it back.
fn resumes(cacert: &Path, port: u16, mode: &[&str], version: &str) -> (bool, String) {
    let dir = tempfile::tempdir().unwrap();
    let session = dir.path().join("session.pem");
    let handshake = |keep: &str| {
        let child = std::process::Command::new("openssl")
            .args(["s_client", version, "-CAfile"])
            .arg(cacert)
            .args(mode)
            .args([keep])
            .arg(&session)
            .args(["-connect", &format!("127.0.0.1:{port}")])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        // TLS 1.3 tickets come after the handshake: stay connected a moment for them.
        std::thread::sleep(Duration::from_secs(1));
        let out = child.wait_with_output().unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    handshake("-sess_out");
    let second = handshake("-sess_in");
    (second.contains("Reused, TLS"), second)
}

#[test]
fn sessions_resume_and_the_servers_cipher_order_holds_on_every_tls_port() {
    let pem = make_pem(false, false);
    let (https, pop3s) = (free_port(), free_port());
    let _site = start(&pem.options(https));
    let pop = crate::pop_fixture::PopSetup::new(crate::pop_fixture::Backend::Sqlite)
        .start(&pem.options(pop3s));
    let stls = pop.setup.port;
    for (port, mode) in [
        (https, &[][..]),
        (pop3s, &[][..]),
        (stls, &["-starttls", "pop3"][..]),
    ] {
        for version in ["-tls1_3", "-tls1_2"] {
            let (reused, text) = resumes(&pem.cert(), port, mode, version);
            assert!(
                reused,
                "port {port} {mode:?} {version} did not resume:\n{text}"
            );
        }
        // The client prefers AES-128; the server's order puts AES-256 first.
        let out = std::process::Command::new("openssl")
            .args(["s_client", "-tls1_3", "-ciphersuites"])
            .arg("TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384")
            .arg("-CAfile")
            .arg(pem.cert())
            .args(mode)
            .args(["-connect", &format!("127.0.0.1:{port}")])
            .stdin(std::process::Stdio::null())
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            text.contains("TLS_AES_256_GCM_SHA384"),
            "port {port}:\n{text}"
        );
    }
}
