//! What a module holds is carried whole to every new generation: TLS keeps working after a
//! SIGHUP that changes an unprivileged option and after a module file swap (POP3S, STLS
//! and HTTPS, with real clients, the key readable by root only), and each granted
//! directory is held by exactly one descriptor, before and after a reload.

use std::path::{Path, PathBuf};
use std::time::Duration;

use nix::sys::signal::Signal;

use crate::harness::{Server, free_port};
use crate::pop_fixture::{Backend, PopSetup};
use crate::tls::{curl_trusts, make_pem};
use crate::tls_pop::s_client_login;

/// The built module file `name` (`shttp`, `pop`), as the tests' build leaves it.
fn module_file(name: &str) -> PathBuf {
    PathBuf::from(env!("SERVERKIT_TEST_MODULES_DIR")).join(format!("{name}.wasm"))
}

/// Replaces the personality's c11n, changing `from` into `to`, and sends SIGHUP; waits
/// until the reload published the new configuration.
fn reload(server: &mut Server, personality: &Path, from: &str, to: &str) {
    let c11n = personality.join("c11n");
    let text = std::fs::read_to_string(&c11n).unwrap();
    assert!(text.contains(from), "{from:?} in\n{text}");
    std::fs::write(&c11n, text.replace(from, to)).unwrap();
    server.signal(Signal::SIGHUP);
    server.wait_for_log(
        "hot swap: new sessions start on the new configuration",
        Duration::from_secs(30),
    );
}

/// Drops `name`'s built file into the personality's `modules/` (over the built-in) and
/// waits until the swap is published.
fn swap_in_file(server: &mut Server, personality: &Path, name: &str) {
    let staged = personality.join(format!("modules/.{name}.tmp"));
    std::fs::copy(module_file(name), &staged).unwrap();
    std::fs::rename(&staged, personality.join(format!("modules/{name}.wasm"))).unwrap();
    server.wait_for_log(
        "hot swap: new sessions start on the new module",
        Duration::from_secs(60),
    );
}

/// POP3S and STLS logins with openssl s_client both succeed.
fn pop_tls_logins_work(server: &Server, cacert: &Path, plain: u16, tls: u16) {
    let (text, errors) = s_client_login(cacert, tls, &[]);
    assert!(
        text.contains("+OK 3 112"),
        "POP3S: {text}\n{errors}\n{}",
        server.log()
    );
    let (text, errors) = s_client_login(cacert, plain, &["-starttls", "pop3"]);
    assert!(
        text.contains("+OK 3 112"),
        "STLS: {text}\n{errors}\n{}",
        server.log()
    );
}

#[test]
fn pop3s_and_stls_keep_working_after_a_reload_and_a_swap() {
    let pem = make_pem(false, false);
    let tls_port = free_port();
    let mut pop = PopSetup::new(Backend::Sqlite).start(&pem.options(tls_port));
    let (plain, personality) = (pop.setup.port, pop.setup.personality.path().to_path_buf());
    pop_tls_logins_work(&pop.server, &pem.cert(), plain, tls_port);

    reload(
        &mut pop.server,
        &personality,
        "auth_failure_delay_ms = ",
        "auth_failure_delay_ms = 1",
    );
    pop_tls_logins_work(&pop.server, &pem.cert(), plain, tls_port);

    swap_in_file(&mut pop.server, &personality, "pop");
    pop_tls_logins_work(&pop.server, &pem.cert(), plain, tls_port);
    assert!(
        !pop.server.log().contains("no certificate was prepared"),
        "{}",
        pop.server.log()
    );
}

#[test]
fn https_keeps_working_after_a_reload_and_a_swap() {
    let pem = make_pem(false, false);
    let tls_port = free_port();
    let mut site = crate::http::start(&pem.options(tls_port));
    let personality = site.www.parent().unwrap().to_path_buf();
    let url = format!("https://127.0.0.1:{tls_port}/index.txt");
    assert!(curl_trusts(&pem.cert(), &url));

    reload(
        &mut site.server,
        &personality,
        "health_check = /healthz",
        "health_check = /alive",
    );
    assert!(curl_trusts(&pem.cert(), &url), "{}", site.server.log());

    swap_in_file(&mut site.server, &personality, "shttp");
    assert!(curl_trusts(&pem.cert(), &url), "{}", site.server.log());
}

/// How many of the server's descriptors are open on `path`.
fn descriptors_on(server: &Server, path: &Path) -> usize {
    let path = path.canonicalize().unwrap();
    std::fs::read_dir(format!("/proc/{}/fd", server.pid()))
        .unwrap()
        .filter_map(|fd| std::fs::read_link(fd.ok()?.path()).ok())
        .filter(|target| *target == path)
        .count()
}

#[test]
fn each_granted_directory_is_held_by_one_descriptor() {
    let mut pop = PopSetup::new(Backend::Sqlite).start("");
    let root = pop.setup.mail_root();
    assert_eq!(descriptors_on(&pop.server, &root), 1, "maildrop_root");
    // A login opens a Maildir beneath it, not the root again.
    let mut client = pop.login("alice", "secret");
    assert_eq!(descriptors_on(&pop.server, &root), 1, "during a session");
    client.ok("QUIT");
    let personality = pop.setup.personality.path().to_path_buf();
    reload(
        &mut pop.server,
        &personality,
        "auth_failure_delay_ms = ",
        "auth_failure_delay_ms = 1",
    );
    assert_eq!(descriptors_on(&pop.server, &root), 1, "after a reload");

    let site = crate::http::start("");
    assert_eq!(descriptors_on(&site.server, &site.www), 1, "doc_root");
}
