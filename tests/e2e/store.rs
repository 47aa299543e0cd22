//! The keyed store (`store` interface) through the shipped `kv` module: what one session
//! sets another reads, concurrent increments lose nothing, the store survives a hot swap,
//! a SIGHUP reload and (persisted) a restart; huge keys and values are refused while the
//! session goes on; a hostile module filling its store in one call loop is refused at
//! `store_mb` while another module keeps being served.

use std::net::SocketAddr;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use nix::sys::signal::Signal;

use crate::harness::{Client, Server, TestPersonality, free_port};

fn module_file(name: &str) -> PathBuf {
    PathBuf::from(env!("SERVERKIT_TEST_MODULES_DIR")).join(format!("{name}.wasm"))
}

/// A personality with a `kv` section on `port` (the built-in kv) and `extra` sections,
/// readable by the service user (its reload thread rereads `c11n` and `modules/`).
fn personality(port: u16, kv_extra: &str, extra: &str) -> TestPersonality {
    let personality = TestPersonality::new(&format!(
        "identity = kvtest\nexecutes_as_root = true\nuid = 65534\ngid = 65534\n\
         kv {{\n  address = 127.0.0.1\n  port = {port}\n{kv_extra}\n}}\n{extra}"
    ));
    let open = |p: &Path, mode| std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode));
    open(personality.path(), 0o755).unwrap();
    open(&personality.path().join("modules"), 0o755).unwrap();
    open(&personality.path().join("c11n"), 0o644).unwrap();
    personality
}

/// Sends one command and returns the answer line.
fn ask(client: &mut Client, command: &str) -> String {
    client.send(command);
    client.line().expect("an answer")
}

/// One command in a fresh session.
fn ask_fresh(addr: SocketAddr, command: &str) -> String {
    ask(&mut Client::connect(addr), command)
}

/// The status report's lines for `module`, after SIGUSR1.
fn report_of(server: &mut Server, module: &str) -> String {
    let before = server.log().matches(&format!("Module {module}")).count();
    server.signal(Signal::SIGUSR1);
    let start = std::time::Instant::now();
    while server.log().matches(&format!("Module {module}")).count() == before {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "{}",
            server.log()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(200));
    let log = server.log();
    let at = log.rfind(&format!("Module {module}")).unwrap();
    log[at..].lines().take(12).collect::<Vec<_>>().join("\n")
}

#[test]
fn sessions_share_the_store_across_a_swap_and_a_reload() {
    let port = free_port();
    let personality = personality(port, "  max_line_kb = 64", "");
    let dir = personality.path().to_path_buf();
    let mut server = Server::start(personality, port);
    let addr = server.addr;

    let mut writer = Client::connect(addr);
    assert_eq!(ask(&mut writer, "SET greeting hello world"), "OK");
    assert_eq!(ask(&mut writer, "SETEX brief 300 gone soon"), "OK");
    // Another session, open at the same time, reads it.
    let mut reader = Client::connect(addr);
    assert_eq!(ask(&mut reader, "GET greeting"), "VALUE hello world");
    assert_eq!(ask(&mut reader, "GET brief"), "VALUE gone soon");
    assert_eq!(ask(&mut reader, "CAS greeting nope x"), "CHANGED");
    assert_eq!(ask(&mut writer, "CAS greeting - x"), "CHANGED", "present");
    assert_eq!(ask(&mut reader, "DEL missing"), "NONE");

    // Four clients incrementing one counter at once: compare-and-swap orders them.
    let threads: Vec<_> = (0..4)
        .map(|_| {
            std::thread::spawn(move || {
                let mut client = Client::connect(addr);
                for _ in 0..50 {
                    assert!(ask(&mut client, "INCR hits").starts_with("VALUE "));
                }
            })
        })
        .collect();
    threads.into_iter().for_each(|t| t.join().unwrap());
    assert_eq!(ask_fresh(addr, "GET hits"), "VALUE 200");
    std::thread::sleep(Duration::from_millis(400));
    assert_eq!(
        ask(&mut reader, "GET brief"),
        "NONE",
        "expired after 300 ms"
    );

    // A hot swap: the module's file dropped over the built-in. The store is the module's
    // holding, not the version's.
    let staged = dir.join("modules/.kv.tmp");
    std::fs::copy(module_file("kv"), &staged).unwrap();
    std::fs::rename(&staged, dir.join("modules/kv.wasm")).unwrap();
    server.wait_for_log(
        "hot swap: new sessions start on the new module",
        Duration::from_secs(60),
    );
    assert_eq!(ask_fresh(addr, "GET greeting"), "VALUE hello world");
    assert_eq!(ask_fresh(addr, "INCR hits"), "VALUE 201");
    assert_eq!(
        ask(&mut writer, "GET hits"),
        "VALUE 201",
        "a session on the old version sees the same store"
    );

    // A reload that changes an option of the section keeps it too.
    let c11n = dir.join("c11n");
    let text = std::fs::read_to_string(&c11n).unwrap();
    std::fs::write(&c11n, text.replace("max_line_kb = 64", "max_line_kb = 128")).unwrap();
    server.signal(Signal::SIGHUP);
    server.wait_for_log(
        "hot swap: new sessions start on the new configuration",
        Duration::from_secs(30),
    );
    let mut after = Client::connect(addr);
    assert_eq!(ask(&mut after, "GET greeting"), "VALUE hello world");
    after.send("KEYS");
    let keys: Vec<String> = std::iter::from_fn(|| after.line())
        .take_while(|l| l != "END")
        .collect();
    assert_eq!(keys, ["KEY greeting", "KEY hits"]);

    let report = report_of(&mut server, "kv");
    assert!(report.contains("Store keys 2;"), "{report}");
    assert!(report.contains("of 16384 KiB (store_mb)"), "{report}");
    assert!(
        report.contains("kv keys 2"),
        "the module's own line: {report}"
    );
}

#[test]
fn huge_keys_and_values_are_refused_and_the_session_goes_on() {
    let port = free_port();
    let hostile_port = free_port();
    let personality = personality(
        port,
        "  store_max_value_kb = 16\n  store_max_key_bytes = 100",
        &format!("hostile {{\n  port = {hostile_port}\n}}\n"),
    );
    std::fs::copy(
        module_file("hostile"),
        personality.path().join("modules/hostile.wasm"),
    )
    .unwrap();
    let server = Server::start(personality, port);
    let mut client = server.client();
    let answer = ask(&mut client, &format!("SET {} v", "k".repeat(101)));
    assert_eq!(
        answer,
        "ERR invalid key: the key is 101 bytes, longer than store_max_key_bytes = 100"
    );
    let answer = ask(&mut client, &format!("SET big {}", "v".repeat(17 << 10)));
    assert_eq!(
        answer,
        "ERR value too large: the value is 17408 bytes, longer than store_max_value_kb = 16"
    );
    assert_eq!(ask(&mut client, "GET big"), "NONE");
    assert_eq!(
        ask(&mut client, &format!("SET big {}", "v".repeat(16 << 10))),
        "OK",
        "at the bound, on the same session"
    );
    // A value past the module's own line limit never reaches the store.
    let answer = ask(&mut client, &format!("SET bigger {}", "v".repeat(2 << 20)));
    assert_eq!(answer, "ERR line longer than max_line_kb = 1025");
    assert_eq!(ask(&mut client, "GET big").len(), 6 + (16 << 10));

    // A module handing the host a 1 MiB key and an 8 MiB value in one call each.
    let mut hostile = Client::connect(([127, 0, 0, 1], hostile_port).into());
    let answer = ask(&mut hostile, "storehuge");
    assert!(
        answer.contains("invalid key: the key is 1048576 bytes")
            && answer.contains("value too large: the value is 8388608 bytes"),
        "{answer}"
    );
    assert_eq!(ask(&mut client, "INCR n"), "VALUE 1", "kv goes on");
}

#[test]
fn a_module_filling_its_store_is_refused_at_the_budget_and_others_are_served() {
    let port = free_port();
    let hostile_port = free_port();
    let personality = personality(
        port,
        "",
        &format!("hostile {{\n  port = {hostile_port}\n  store_mb = 2\n}}\n"),
    );
    std::fs::copy(
        module_file("hostile"),
        personality.path().join("modules/hostile.wasm"),
    )
    .unwrap();
    let mut server = Server::start(personality, port);
    let hostile: SocketAddr = ([127, 0, 0, 1], hostile_port).into();
    let mut bystander = server.client();
    assert_eq!(ask(&mut bystander, "SET before the attack"), "OK");

    // Up to ten million keys in one loop of host calls: refused at 2 MiB.
    let started = std::time::Instant::now();
    let answer = ask_fresh(hostile, "storefill");
    let took = started.elapsed();
    let stored: usize = answer
        .strip_prefix("stored ")
        .and_then(|a| a.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{answer}"));
    // "fill:00000000" (13 bytes) and 4 bytes, each an allocation of 32, and 128 of
    // bookkeeping per key.
    assert_eq!(stored, (2 << 20) / (32 + 32 + 128), "{answer}");
    assert!(
        answer.contains("store full: ") && answer.contains("store_mb = 2"),
        "{answer}"
    );
    eprintln!("{stored} keys stored and the next refused in {took:?}");
    // Again: the keys it holds are rewritten in place, the next new one refused.
    assert_eq!(ask_fresh(hostile, "storefill"), answer);

    // The bystander module's own store and sessions are untouched.
    assert_eq!(ask(&mut bystander, "GET before"), "VALUE the attack");
    assert_eq!(ask_fresh(addr_of(&server), "SET after 1"), "OK");
    let report = report_of(&mut server, "hostile");
    assert!(report.contains("store 2"), "two refusals counted: {report}");
    assert!(
        report.contains(&format!("Store keys {stored};")) && report.contains("of 2048 KiB"),
        "{report}"
    );
}

fn addr_of(server: &Server) -> SocketAddr {
    server.addr
}

#[test]
fn a_persisted_store_survives_a_restart() {
    let port = free_port();
    let personality = personality(port, "  store_persist = true", "");
    let dir = personality.path();
    let start = || {
        let mut server = Server::spawn(&["run"], dir, &[]);
        server.addr = ([127, 0, 0, 1], port).into();
        server.wait_for_log("serving", Duration::from_secs(60));
        server
    };
    let mut server = start();
    let mut client = server.client();
    assert_eq!(ask(&mut client, "SET kept across restarts"), "OK");
    assert_eq!(ask(&mut client, "SET gone soon"), "OK");
    assert_eq!(ask(&mut client, "DEL gone"), "DELETED");
    assert_eq!(ask(&mut client, "SETEX brief 200 x"), "OK");
    assert_eq!(ask(&mut client, "INCR n 41"), "VALUE 41");
    drop(client);
    server.signal(Signal::SIGTERM);
    assert!(server.wait_exit(Duration::from_secs(30)).success());
    let file = dir.join("store/kv.sqlite");
    assert!(file.exists(), "{}", server.log());
    std::thread::sleep(Duration::from_millis(250));

    let mut server = start();
    let mut client = server.client();
    assert_eq!(ask(&mut client, "GET kept"), "VALUE across restarts");
    assert_eq!(ask(&mut client, "GET gone"), "NONE");
    assert_eq!(ask(&mut client, "GET brief"), "NONE", "expired while down");
    assert_eq!(ask(&mut client, "INCR n"), "VALUE 42");
    let report = report_of(&mut server, "kv");
    assert!(report.contains("Store keys 2;"), "{report}");
    assert!(report.contains("; persisted"), "{report}");

    // Dropping persistence by a reload would lose the file's link: a restart is needed.
    let c11n = dir.join("c11n");
    let text = std::fs::read_to_string(&c11n).unwrap();
    std::fs::write(
        &c11n,
        text.replace("store_persist = true", "store_persist = false"),
    )
    .unwrap();
    server.signal(Signal::SIGHUP);
    server.wait_for_log(
        "what its section grants changed (`store_persist`): restart needed",
        Duration::from_secs(30),
    );
    assert_eq!(ask(&mut client, "GET kept"), "VALUE across restarts");
}

/// An operator's `sqlite3` holding a write transaction on the store's file makes a
/// persisted write wait (then fail, after SQLite's busy timeout): that session alone waits.
/// The module's other sessions, on the same single worker, are answered meanwhile.
#[test]
fn a_locked_store_file_holds_up_only_the_writing_session() {
    let port = free_port();
    let personality = personality(port, "  store_persist = true\n  min_threads = 1", "");
    let mut server = Server::spawn(&["run"], personality.path(), &[]);
    server.addr = ([127, 0, 0, 1], port).into();
    server.wait_for_log("serving", Duration::from_secs(60));
    let mut writer = server.client();
    let mut reader = server.client();
    assert_eq!(ask(&mut writer, "SET a 1"), "OK");
    assert_eq!(ask(&mut reader, "GET a"), "VALUE 1");

    let operator = rusqlite::Connection::open(personality.path().join("store/kv.sqlite")).unwrap();
    operator.execute_batch("BEGIN IMMEDIATE").unwrap();
    writer.send("SET b 2");
    std::thread::sleep(Duration::from_millis(50));
    assert_eq!(ask(&mut reader, "GET a"), "VALUE 1", "{}", server.log());
    assert!(
        !writer.has_answer(),
        "the reader was answered while the write waited, not after it gave up: {}",
        server.log()
    );
    let refused = writer.line().expect("an answer");
    assert!(
        refused.starts_with("ERR") && refused.contains("locked"),
        "{refused}"
    );
    assert_eq!(
        ask(&mut reader, "GET b"),
        "NONE",
        "a failed write changes nothing"
    );

    operator.execute_batch("COMMIT").unwrap();
    assert_eq!(ask(&mut writer, "SET b 2"), "OK");
    assert_eq!(ask(&mut reader, "GET b"), "VALUE 2");
    let stored: Vec<u8> = operator
        .query_row("SELECT value FROM store WHERE key = 'b'", [], |row| {
            row.get(0)
        })
        .unwrap();
    assert_eq!(stored, b"2");
}

/// Resident memory of process `pid`, in KiB.
fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches(" kB").parse().ok())
        .expect("VmRSS in /proc/PID/status")
}

#[test]
fn millions_of_keys_stop_at_store_mb_and_cost_no_more_than_charged() {
    let port = free_port();
    let hostile_port = free_port();
    let personality = personality(
        port,
        "",
        &format!(
            "hostile {{\n  port = {hostile_port}\n  store_mb = 256\n  session_cpu_ms = 300000\n}}\n"
        ),
    );
    std::fs::copy(
        module_file("hostile"),
        personality.path().join("modules/hostile.wasm"),
    )
    .unwrap();
    let mut server = Server::start(personality, port);
    let mut bystander = server.client();
    assert_eq!(ask(&mut bystander, "SET before 1"), "OK");
    let before = rss_kib(server.pid());
    let started = std::time::Instant::now();
    let mut filler = Client::connect(([127, 0, 0, 1], hostile_port).into());
    // A debug build takes tens of seconds for a few million host calls.
    filler.read_timeout(Duration::from_secs(300));
    let answer = ask(&mut filler, "storefill");
    let took = started.elapsed();
    let stored: u64 = answer
        .strip_prefix("stored ")
        .and_then(|a| a.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{answer}"));
    assert_eq!(stored, (256 << 20) / (32 + 32 + 128), "{answer}");
    let grown = rss_kib(server.pid()).saturating_sub(before);
    eprintln!(
        "{stored} keys in {took:?}; resident memory grew {} MiB for 256 MiB charged ({} bytes a key)",
        grown >> 10,
        (grown << 10) / stored
    );
    // What the store holds is charged, within what else the process may touch meanwhile.
    assert!(
        grown <= (256 << 10) * 21 / 20,
        "the charge undercounts: {grown} KiB for 256 MiB"
    );
    assert_eq!(ask(&mut bystander, "GET before"), "VALUE 1");
    let report = report_of(&mut server, "hostile");
    assert!(
        report.contains(&format!("Store keys {stored};")),
        "{report}"
    );
}
