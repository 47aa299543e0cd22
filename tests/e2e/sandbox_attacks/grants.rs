//! Issue 12 item 1: what a module is granted is what the operator wrote. Defaults for
//! terminals, files, directories, pools, certificates and keys are refused at load; a
//! module nobody configured gets no listener and no grant; `address = 127.0.0.1` does not
//! grant the wildcard; a terminal option opens only a character device.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::Duration;

use super::{
    Intruder, bystander_served, personality, run_refused, run_to_end, sections, start, test_module,
};
use crate::harness::{Server, free_port};

/// Where `grant_defaults`' defaults point (fixed in the module): a root-only directory.
const PLANTED: &str = "/var/tmp/serverkit-grant-defaults";

/// The text of the root-only "private key" its `secret` default names.
const KEY_TEXT: &str = "ROOT-ONLY-PRIVATE-KEY-TEXT";

/// Makes the root-only directory the defaults name, with a 0600 key and a certificate,
/// and nothing at the terminal's path.
fn plant() {
    let dir = Path::new(PLANTED);
    std::fs::create_dir_all(dir).unwrap();
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)).unwrap();
    for (file, text) in [("key.pem", KEY_TEXT), ("cert.pem", "not a certificate")] {
        std::fs::write(dir.join(file), text).unwrap();
        std::fs::set_permissions(dir.join(file), std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    let _ = std::fs::remove_file(dir.join("planted-by-default"));
}

/// The refusal must name every option whose default would have been a grant.
fn assert_refused_for_every_default(text: &str) {
    assert!(
        text.contains("module `grant_defaults` is refused"),
        "{text}"
    );
    for option in ["tty", "secret", "doc_root", "db", "cert", "key"] {
        let why = format!("the option `{option}` (");
        assert!(
            text.contains(&why) && text.contains("granted only by what the operator writes"),
            "{option} is named: {text}"
        );
    }
    assert!(!text.contains(KEY_TEXT), "the key was read: {text}");
}

fn assert_nothing_planted() {
    let planted = Path::new(PLANTED).join("planted-by-default");
    assert!(!planted.exists(), "root created {}", planted.display());
}

#[test]
fn defaults_that_would_be_grants_are_refused_at_load() {
    plant();
    let wasm = test_module("grant_defaults.wasm");
    let (echo_port, port) = (free_port(), free_port());
    let users = "database USERS {\n  driver = sqlite\n  name = users.db\n}\n";
    let c11n = format!("grant_defaults {{\n  port = {port}\n}}\n{users}");
    let personality = personality(&(sections(free_port(), "", echo_port) + &c11n));
    std::fs::copy(
        &wasm,
        personality.path().join("modules/grant_defaults.wasm"),
    )
    .unwrap();
    rusqlite::Connection::open(personality.path().join("users.db"))
        .unwrap()
        .execute_batch("create table users (name text, password text);")
        .unwrap();

    let dir = personality.path().to_str().unwrap();
    let (code, check) = run_to_end(&["check", dir]);
    assert_eq!(code, Some(100), "check refuses: {check}");
    assert_refused_for_every_default(&check);
    let (code, inspect) = run_to_end(&["inspect", wasm.to_str().unwrap()]);
    assert_eq!(code, Some(100), "inspect refuses: {inspect}");
    assert_refused_for_every_default(&inspect);
    let (code, log) = run_refused(personality.path());
    assert_eq!(code, Some(100), "run refuses to start: {log}");
    assert_refused_for_every_default(&log);
    assert_nothing_planted();

    // Dropped into a serving personality: refused with the reason, echo serves on.
    let mut server = Server::start(crate::hotswap::personality(echo_port, ""), echo_port);
    let dir = crate::hotswap::server_dir(&server);
    bystander_served(&server, "before the module is added");
    std::fs::copy(&wasm, dir.join("modules/grant_defaults.wasm")).unwrap();
    server.wait_for_log("hot swap refused", Duration::from_secs(60));
    assert_refused_for_every_default(&server.log());
    bystander_served(&server, "after the module was refused");
    assert_nothing_planted();
}

#[test]
fn inspect_says_what_each_granting_option_reaches() {
    let wasm = test_module("intruder.wasm");
    let out = std::process::Command::new(crate::harness::binary())
        .args(["inspect", wasm.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    // Each option is a line `  NAME: TYPE`, then its lines indented further.
    let entry = |option: &str| {
        let head = format!("  {option}: ");
        let mut lines = text.lines().skip_while(|l| !l.starts_with(&head));
        let first = lines
            .next()
            .unwrap_or_else(|| panic!("no option {option}:\n{text}"));
        let more: Vec<&str> = lines.take_while(|l| l.starts_with("    ")).collect();
        format!("{first}\n{}", more.join("\n"))
    };
    for (option, reaches) in [
        ("port", "a listener the host binds on this port"),
        ("secret", "this one file, read-only"),
        (
            "tty",
            "this terminal device as its operator's standard output",
        ),
        ("db", "queries on this database pool"),
    ] {
        let entry = entry(option);
        assert!(entry.contains(&format!("reaches: {reaches}")), "{entry}");
    }
    assert!(
        !entry("operator").contains("reaches:"),
        "a plain setting grants nothing"
    );
}

#[test]
fn a_module_nobody_configured_gets_no_listener_and_no_grant() {
    let echo_port = free_port();
    let c11n = format!("echo {{\n  address = 127.0.0.1\n  port = {echo_port}\n}}\n");
    let server = Server::start(personality(&c11n), echo_port);
    let log = server.log();
    // Its prestart ran, as root, with its defaults (127.0.0.1, port 7) and got nothing.
    for refused in [
        "prestart: bind 127.0.0.1:7: refused BindError::NotGranted(",
        "prestart: granted-file secret: refused none",
        "prestart: granted-directory doc_root: refused none",
        "prestart: prepare-tls: refused BindError::TlsError(",
    ] {
        assert!(log.contains(refused), "{refused:?}:\n{log}");
    }
    let granted: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("prestart: ") && l.contains(": ok "))
        .collect();
    assert!(granted.is_empty(), "nothing granted: {granted:?}");
    assert!(
        std::net::TcpStream::connect(("127.0.0.1", 7)).is_err(),
        "nothing listens on its default port"
    );
    bystander_served(&server, "beside an unconfigured module");
}

#[test]
fn an_address_of_127_0_0_1_does_not_grant_the_wildcard() {
    let (server, intruder) = start("  probe_wildcard = on", "");
    let log = server.log();
    let port = intruder.port();
    assert!(
        log.contains(&format!("prestart: bind 127.0.0.1:{port}: ok granted")),
        "the address written is granted:\n{log}"
    );
    for wildcard in ["*", "0.0.0.0", "::"] {
        let refused = format!("prestart: bind {wildcard}:{port}: refused BindError::NotGranted(");
        assert!(log.contains(&refused), "{refused:?}:\n{log}");
    }
    let listening = listening_addresses(port);
    assert_eq!(listening, ["0100007F"], "only 127.0.0.1 listens on {port}");
    Intruder::connect(intruder).answer("stats");
    bystander_served(&server, "after the wildcard was refused");
}

#[test]
fn listen_options_the_section_does_not_name_grant_no_other_address_or_port() {
    let (port, echo_port) = (free_port(), free_port());
    let c11n = format!(
        "executes_as_root = true\nuid = 65534\ngid = 65534\n\
         listen_defaults {{\n  address = 127.0.0.1\n  port = {port}\n}}\n\
         echo {{\n  address = 127.0.0.1\n  port = {echo_port}\n}}\n"
    );
    let personality = crate::harness::TestPersonality::new(&c11n);
    std::fs::copy(
        test_module("listen_defaults.wasm"),
        personality.path().join("modules/listen_defaults.wasm"),
    )
    .unwrap();
    let server = Server::start(personality, echo_port);
    let log = server.log();
    bystander_served(&server, "beside listen_defaults");
    let listening = listening_addresses(port);
    let granted: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("prestart: bind ") && l.contains(": ok "))
        .collect();
    assert_eq!(
        listening,
        ["0100007F"],
        "only 127.0.0.1 on {port}: {granted:?}"
    );
    assert_eq!(granted.len(), 1, "one listener granted: {granted:?}");
}

/// The local addresses (hex, as /proc/net/tcp* shows them) listening on `port`.
fn listening_addresses(port: u16) -> Vec<String> {
    let port = format!(":{port:04X}");
    ["/proc/net/tcp", "/proc/net/tcp6"]
        .iter()
        .flat_map(|file| {
            let table = std::fs::read_to_string(file).unwrap_or_default();
            table
                .lines()
                .skip(1)
                .filter_map(|line| {
                    let fields: Vec<&str> = line.split_whitespace().collect();
                    let (local, state) = (fields.get(1)?, fields.get(3)?);
                    let address = local.strip_suffix(port.as_str())?;
                    (*state == "0A").then(|| address.to_string())
                })
                .collect::<Vec<_>>()
        })
        .collect()
}

#[test]
fn a_terminal_option_opens_only_a_character_device() {
    // A root-only directory (tempdir makes it 0700), with a file a terminal must not append
    // to, and a symlink to a character device.
    let private = tempfile::tempdir().unwrap();
    let file = private.path().join("crontab");
    std::fs::write(&file, "# root's\n").unwrap();
    std::os::unix::fs::symlink("/dev/null", private.path().join("link")).unwrap();
    let listing = || {
        let mut names: Vec<_> = std::fs::read_dir(private.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        names.sort();
        names
    };
    let before = listing();
    for (name, why) in [
        ("crontab", "is not a terminal"),
        ("missing", "failed to open terminal"),
        ("link", "failed to open terminal"),
    ] {
        let tty = private.path().join(name);
        let extra = format!("  tty = {}", tty.display());
        let personality = personality(&sections(free_port(), &extra, free_port()));
        let (code, log) = run_refused(personality.path());
        assert_eq!(code, Some(100), "{name}: {log}");
        assert!(
            log.contains(why) && log.contains("option `tty`"),
            "{name}: {log}"
        );
    }
    assert_eq!(listing(), before, "nothing created");
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "# root's\n");

    // A character device is what it is for: the server starts and echo serves.
    let (server, _) = start("  tty = /dev/null", "");
    assert!(server.log().contains("terminal opened"), "{}", server.log());
    bystander_served(&server, "with the terminal open");
}
