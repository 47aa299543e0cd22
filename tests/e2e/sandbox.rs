//! The sandbox seen from the inside (the test-only `probe` module) and the module rules
//! seen from outside: grants, traps in hooks, the contract version, module files.

use std::path::PathBuf;
use std::time::Duration;

use crate::harness::{Client, Server, TestPersonality, echo_c11n, free_port};

/// A test-only module's `.wasm`, built by host/build.rs.
fn test_module(file: &str) -> PathBuf {
    PathBuf::from(env!("SERVERKIT_TEST_MODULES_DIR")).join(file)
}

fn probe_personality(port: u16, mode: &str) -> TestPersonality {
    let personality = TestPersonality::new(&format!(
        "executes_as_root = true\nuid = 65534\ngid = 65534\nprobe {{\n  port = {port}\n  mode = {mode}\n}}\n"
    ));
    std::fs::copy(
        test_module("probe.wasm"),
        personality.path().join("modules/probe.wasm"),
    )
    .unwrap();
    personality
}

#[test]
fn a_guest_reaches_no_environment_filesystem_or_network() {
    let port = free_port();
    let server = Server::start(probe_personality(port, "normal"), port);
    let mut client = Client::connect(server.addr);
    let report: Vec<String> = std::iter::from_fn(|| client.line()).collect();
    assert_eq!(
        report,
        [
            "env 0",
            "args 0",
            "fs-read refused",
            "fs-list refused",
            "fs-write refused",
            "tcp-connect refused",
            "tcp-listen refused",
            "second-streams refused",
            "db-own refused",
            "db-other refused",
            "maildrop refused",
        ],
        "log:\n{}",
        server.log()
    );
}

#[test]
fn a_module_cannot_bind_a_port_its_section_does_not_grant() {
    let port = free_port();
    let personality = probe_personality(port, "bind-ungranted");
    let mut server = Server::spawn(&["run"], personality.path(), &[]);
    let status = server.wait_exit(Duration::from_secs(60));
    assert_eq!(status.code(), Some(100), "{}", server.log());
    let log = server.log();
    assert!(
        log.contains("failed in prestart")
            && log.contains(&format!(
                "port {} is not the value of a port option",
                port.wrapping_add(1)
            )),
        "{log}"
    );
    assert!(
        std::net::TcpStream::connect(("127.0.0.1", port.wrapping_add(1))).is_err(),
        "nothing was bound"
    );
}

#[test]
fn a_trap_in_prestart_aborts_startup_with_the_guests_message() {
    let port = free_port();
    let personality = probe_personality(port, "trap-in-prestart");
    let mut server = Server::spawn(&["run"], personality.path(), &[]);
    let status = server.wait_exit(Duration::from_secs(60));
    assert_eq!(status.code(), Some(100), "{}", server.log());
    let log = server.log();
    assert!(log.contains("module `probe` trapped in prestart"), "{log}");
    assert!(
        log.contains("probe: trapping in prestart on request"),
        "the guest's panic message is logged:\n{log}"
    );
}

#[test]
fn a_module_built_against_another_major_contract_is_refused() {
    let personality = TestPersonality::new("");
    std::fs::copy(
        test_module("contract_next.wasm"),
        personality.path().join("modules/next.wasm"),
    )
    .unwrap();
    let mut server = Server::spawn(&["check"], personality.path(), &[]);
    let status = server.wait_exit(Duration::from_secs(60));
    assert_eq!(status.code(), Some(100), "{}", server.log());
    let log = server.log();
    assert!(
        log.contains("was built against contract serverkit:module@2.0.0, but this serverkit speaks serverkit:module@1.1.0: major versions must match"),
        "{log}"
    );
}

#[test]
fn a_module_file_takes_precedence_over_the_built_in() {
    let port = free_port();
    let personality = TestPersonality::new(&crate::harness::echo_c11n(port, ""));
    let file = personality.path().join("modules/echo.wasm");
    std::fs::copy(test_module("echo.wasm"), &file).unwrap();
    let server = Server::start(personality, port);
    assert!(
        server.log().contains(&format!("from={}", file.display())),
        "{}",
        server.log()
    );
    server.client().echo("served by the file's echo");
}

#[test]
fn a_module_keeps_shared_state_in_host_heaps() {
    let port = free_port();
    let mut server = Server::start(probe_personality(port, "heap"), port);
    let mut first = Client::connect(server.addr);
    let ask = |client: &mut Client, line: &str| {
        client.send(line);
        client.line().unwrap()
    };
    assert_eq!(ask(&mut first, "create visits 16 2"), "ok");
    let unit = ask(&mut first, "alloc visits");
    assert_eq!(ask(&mut first, &format!("write visits {unit} hello")), "ok");
    drop(first);

    // Another session, another instance: the unit is still there, in host memory.
    let mut second = Client::connect(server.addr);
    assert_eq!(ask(&mut second, &format!("read visits {unit} 5")), "hello");
    assert_eq!(
        ask(&mut second, "create visits 16 2"),
        "ok",
        "the same spec again"
    );
    let clash = ask(&mut second, "create visits 32 2");
    assert!(
        clash.starts_with("err") && clash.contains("InvalidSpec"),
        "{clash}"
    );
    ask(&mut second, "alloc visits");
    let full = ask(&mut second, "alloc visits");
    assert!(
        full.starts_with("err") && full.contains("Full"),
        "max-units holds: {full}"
    );

    server.signal(nix::sys::signal::Signal::SIGUSR1);
    server.wait_for_log("Module probe", Duration::from_secs(10));
    let log = server.log();
    let row = log
        .lines()
        .find(|l| l.starts_with("probe.visits"))
        .expect("the guest heap in the report");
    assert_eq!(
        row.split_whitespace().collect::<Vec<_>>(),
        // Max 2, grows by doubling from 1 but never past the maximum: chunks of 1 and 1.
        ["probe.visits", "2", "E--", "1", "2", "2", "2"],
        "{row}"
    );

    assert_eq!(ask(&mut second, &format!("release visits {unit}")), "ok");
    let gone = ask(&mut second, &format!("read visits {unit} 5"));
    assert!(
        gone.starts_with("err") && gone.contains("NoSuchUnit"),
        "{gone}"
    );
}

#[test]
fn a_guest_reaches_only_the_database_pool_its_section_names() {
    let port = free_port();
    let personality = probe_personality(port, "normal");
    let c11n = std::fs::read_to_string(personality.path().join("c11n")).unwrap();
    let c11n = c11n.replace("  mode = normal\n", "  mode = normal\n  database = OWN\n")
        + "database OWN {\n  driver = sqlite\n  name = own.db\n  pool_min = 1\n}\n\
           database OTHER {\n  driver = sqlite\n  name = other.db\n  pool_min = 1\n}\n";
    std::fs::write(personality.path().join("c11n"), c11n).unwrap();
    for db in ["own.db", "other.db"] {
        rusqlite::Connection::open(personality.path().join(db))
            .unwrap()
            .execute_batch("create table t (x integer);")
            .unwrap();
    }
    if crate::harness::is_root() {
        let status = std::process::Command::new("chown")
            .args(["-R", "65534:65534"])
            .arg(personality.path())
            .status()
            .unwrap();
        assert!(status.success());
    }
    let server = Server::start(personality, port);
    let mut client = Client::connect(server.addr);
    let report: Vec<String> = std::iter::from_fn(|| client.line()).collect();
    assert!(
        report.contains(&"db-own granted".to_string()),
        "{report:?}\n{}",
        server.log()
    );
    assert!(
        report.contains(&"db-other refused".to_string()),
        "{report:?}"
    );
}

#[test]
fn a_module_built_against_contract_1_0_still_loads_and_serves() {
    let (old_port, echo_port) = (free_port(), free_port());
    let personality = TestPersonality::new(&format!(
        "{}oldecho {{\n  port = {old_port}\n}}\n",
        echo_c11n(echo_port, "")
    ));
    let wasm = PathBuf::from(env!("SERVERKIT_TEST_MODULES_DIR")).join("contract_v1_0.wasm");
    std::fs::copy(&wasm, personality.path().join("modules/oldecho.wasm")).unwrap();
    let server = Server::start(personality, echo_port);
    let mut old = Client::connect(([127, 0, 0, 1], old_port).into());
    old.send("hello");
    assert_eq!(old.line().as_deref(), Some("old hello"));
    server.client().echo("and echo beside it");
    let out = std::process::Command::new(crate::harness::binary())
        .args(["inspect"])
        .arg(&wasm)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("contract:    serverkit:module@1.0.0"),
        "{text}"
    );
    assert!(text.contains("serverkit:module/prestart@1.0.0"), "{text}");
}

/// `connection.peer-address` and `local-address` name the two ends as the client sees
/// them (the local one is asked of the socket only when a module wants it).
#[test]
fn a_session_is_told_both_ends_of_its_connection() {
    let (intruder_port, echo_port) = (free_port(), free_port());
    let personality = crate::sandbox_attacks::personality(&crate::sandbox_attacks::sections(
        intruder_port,
        "",
        echo_port,
    ));
    let _server = Server::start(personality, echo_port);
    let mut intruder =
        crate::sandbox_attacks::Intruder::connect(([127, 0, 0, 1], intruder_port).into());
    let stream = intruder.client().reader_mut().get_ref();
    let (client_end, server_end) = (stream.local_addr().unwrap(), stream.peer_addr().unwrap());
    let answer = intruder.answer("addresses");
    let (peer, local) = answer
        .strip_prefix("peer ")
        .and_then(|rest| rest.split_once(" local "))
        .unwrap_or_else(|| panic!("not an addresses answer: {answer}"));
    assert_eq!(
        (peer, local),
        (&*client_end.to_string(), &*server_end.to_string())
    );
}
