//! A hostile module (test-only `hostile`) beside echo in one server: each attack ends only
//! the attacking session, echo keeps being served, and the report counts what happened.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use nix::sys::signal::Signal;

use crate::harness::{Client, Server, TestPersonality, free_port};

fn start() -> (Server, SocketAddr) {
    let (hostile_port, echo_port) = (free_port(), free_port());
    let personality = TestPersonality::new(&format!(
        "executes_as_root = true\nuid = 65534\ngid = 65534\n\
         hostile {{\n  port = {hostile_port}\n  operator_trap = on\n}}\n\
         echo {{\n  address = 127.0.0.1\n  port = {echo_port}\n}}\n"
    ));
    let wasm = PathBuf::from(env!("SERVERKIT_TEST_MODULES_DIR")).join("hostile.wasm");
    std::fs::copy(wasm, personality.path().join("modules/hostile.wasm")).unwrap();
    let server = Server::start(personality, echo_port);
    (server, ([127, 0, 0, 1], hostile_port).into())
}

/// Sends one attack; returns the answer, or `None` if the session was ended.
fn attack(addr: SocketAddr, command: &str) -> Option<String> {
    let mut client = Client::connect(addr);
    client.send(command);
    client.line()
}

#[test]
fn a_hostile_module_is_contained_and_others_keep_serving() {
    let (mut server, hostile) = start();
    server.wait_for_log("operator trapped", Duration::from_secs(10));
    // A trapping operator is started again with backoff: 1 s, then 2 s, ...
    server.wait_for_log("operator restarts in 2s", Duration::from_secs(10));
    let traps = server.log().matches("operator trapped").count();
    assert!(traps >= 2, "restarted and trapped again:\n{}", server.log());
    let mut bystander = server.client();
    bystander.echo("before the attacks");
    let descriptors = open_descriptors(&server);

    assert_eq!(
        attack(hostile, "alloc"),
        None,
        "allocating past the memory limit ends the session"
    );
    bystander.echo("after alloc");
    assert_eq!(
        attack(hostile, "recurse"),
        None,
        "exhausting the stack ends the session"
    );
    bystander.echo("after recurse");
    assert_eq!(
        attack(hostile, "handles"),
        None,
        "filling the resource table ends the session"
    );
    bystander.echo("after handles");
    let bind = attack(hostile, "bind").expect("an answer");
    assert!(
        bind.contains("bind refused") && bind.contains("NotInPrestart"),
        "{bind}"
    );
    assert_eq!(attack(hostile, "logflood").as_deref(), Some("flooded"));
    bystander.echo("after the log flood");
    server.client().echo("and a new session");

    let log = server.log();
    // A Rust guest keeps its frames in a shadow stack in linear memory, so runaway
    // recursion runs off the bottom of its memory rather than the wasm call stack.
    for named in [
        "session trapped: wasm trap: out of bounds memory access",
        "session trapped: limit `instance_memory_mb = 64` hit: wasm trap: wasm `unreachable` instruction executed",
        "session trapped: limit `max_handles = 1024` hit: resource table has no free keys",
        "operator trapped: wasm trap",
    ] {
        assert!(log.contains(named), "{named:?} is logged:\n{log}");
    }
    let flood_lines = log.lines().filter(|l| l.contains("flood line")).count();
    assert!(
        (900..=1000).contains(&flood_lines),
        "the log budget held: {flood_lines} lines"
    );
    assert!(
        log.contains("an instance hit limit `max_log_events = 1000`: dropping the rest of its log")
    );

    server.signal(Signal::SIGUSR1);
    server.wait_for_log("Module hostile", Duration::from_secs(10));
    let log = server.log();
    let report = &log[log.rfind("ServerKit status report").unwrap()..];
    let module = report
        .lines()
        .skip_while(|l| *l != "Module hostile")
        .nth(3)
        .expect("the module row");
    let words: Vec<&str> = module.split_whitespace().collect();
    assert_eq!(words[6], "3", "three sessions trapped: {module}");
    let dropped = report
        .lines()
        .find(|l| l.starts_with("log events dropped"))
        .expect("the dropped log events");
    assert!(dropped.ends_with(" 99000"), "{dropped}");

    // Nothing leaks: no hostile session is left, its instances' memory is given back, and
    // the server holds the descriptors it held before the attacks.
    assert_eq!(words[2], "0", "no live hostile session: {module}");
    let memory_kib: u64 = report
        .lines()
        .skip_while(|l| *l != "Module hostile")
        .find_map(|l| l.split("linear memory now ").nth(1))
        .and_then(|rest| rest.split_whitespace().next()?.parse().ok())
        .expect("the module's linear memory");
    assert!(
        memory_kib < 8 << 10,
        "{memory_kib} KiB still held:\n{report}"
    );
    // Sessions that just ended may still be closing: give them a moment.
    let start = std::time::Instant::now();
    while open_descriptors(&server) != descriptors && start.elapsed() < Duration::from_secs(5) {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(open_descriptors(&server), descriptors, "descriptors leaked");
}

/// How many descriptors the server process holds.
fn open_descriptors(server: &crate::harness::Server) -> usize {
    std::fs::read_dir(format!("/proc/{}/fd", server.pid()))
        .expect("the server's descriptors are readable")
        .count()
}

/// The `auth` capability abused (issue 14, item 7): a hash asking for days of CPU and a
/// 16 MiB "password" are refused unchecked and at once; a crowd of checks at the cost cap
/// waits its module's turns (two at a time) on the module's blocking threads while echo
/// keeps answering at once.
#[test]
fn password_checks_take_only_the_modules_share() {
    let (server, hostile) = start();
    let mut bystander = server.client();
    bystander.echo("before");

    let started = std::time::Instant::now();
    let costly = attack(hostile, "verify-costly").expect("an answer");
    assert!(
        costly.contains("TooCostly(\"bcrypt cost 31 (cap 13)\")"),
        "{costly}"
    );
    let huge = attack(hostile, "verify-huge").expect("an answer");
    assert!(huge.ends_with("TooLong"), "{huge}");
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );

    // Six sessions asking for two capped checks each: 12 checks, two at a time.
    let crowd: Vec<_> = (0..6)
        .map(|_| std::thread::spawn(move || attack(hostile, "verify-capped 2")))
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    let mut slowest = Duration::ZERO;
    for i in 0..10 {
        let asked = std::time::Instant::now();
        bystander.echo(&format!("during {i}"));
        slowest = slowest.max(asked.elapsed());
        std::thread::sleep(Duration::from_millis(100));
    }
    for session in crowd {
        let answer = session.join().unwrap().expect("an answer");
        assert_eq!(answer, "matched false, matched false");
    }
    let took = started.elapsed();
    eprintln!("echo answered within {slowest:?} while 12 capped checks ran ({took:?} in all)");
    assert!(
        slowest < Duration::from_millis(500),
        "echo waited {slowest:?}"
    );
    assert!(
        server
            .log()
            .contains("stored password refused: bcrypt cost 31 (cap 13)"),
        "the refusal is logged"
    );
}
