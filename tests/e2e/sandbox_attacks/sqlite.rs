//! Issue 12 item 7: a module granted a SQLite pool reaches that database's tables and
//! nothing else: no file written or attached, no setting, transaction, temporary object or
//! extension left on a connection that pop, sharing the pool, borrows next. Parameters
//! that overlap in guest memory cost the host no more than the instance's memory, and a
//! module sharing pop's pool cannot take all of it.

use std::net::SocketAddr;

use super::{Intruder, echo_served_at, install_intruder, peak_kib, reset_peak, sections};
use crate::harness::free_port;
use crate::pop_fixture::{Backend, PopServer, PopSetup};

/// pop on SQLite with the intruder (its section's extra lines `intruder`) and echo beside
/// it: the server, the intruder's address and echo's.
fn intruder_beside_pop(intruder: &str) -> (PopServer, SocketAddr, SocketAddr) {
    let setup = PopSetup::new(Backend::Sqlite);
    install_intruder(setup.personality.path());
    let (intruder_port, echo_port) = (free_port(), free_port());
    let server = setup.start_beside("", &sections(intruder_port, intruder, echo_port));
    let at = |port| SocketAddr::from(([127, 0, 0, 1], port));
    (server, at(intruder_port), at(echo_port))
}

#[test]
fn a_sqlite_pool_is_no_door_to_the_file_system() {
    let setup = PopSetup::new(Backend::Sqlite);
    let dir = setup.personality.path().to_path_buf();
    install_intruder(&dir);
    let other = dir.join("other.db");
    rusqlite::Connection::open(&other)
        .unwrap()
        .execute_batch("create table secret (x text); insert into secret values ('OTHER-SECRET');")
        .unwrap();
    let table = setup.table.clone();
    let (intruder_port, echo_port) = (free_port(), free_port());
    let server = setup.start_beside("", &sections(intruder_port, "  db = MAIL", echo_port));
    let echo = ([127, 0, 0, 1], echo_port).into();
    let mut intruder = Intruder::connect(([127, 0, 0, 1], intruder_port).into());
    let own = intruder.answer(&format!("db select count(*) from {table}"));
    assert_eq!(
        own, "ok 1 rows, first Some(Value::Integer(6))",
        "its own pool works"
    );

    let vacuum_target = format!("/tmp/serverkit-vacuum-{}.db", std::process::id());
    let refused = [
        format!("VACUUM INTO '{vacuum_target}'"),
        "VACUUM".into(),
        format!("ATTACH DATABASE '{}' AS stolen", other.display()),
        "DETACH DATABASE main".into(),
        "PRAGMA journal_mode = OFF".into(),
        "PRAGMA temp_store_directory = '/tmp'".into(),
        "PRAGMA writable_schema = ON".into(),
        "SELECT * FROM pragma_database_list".into(),
        "BEGIN".into(),
        "SAVEPOINT held".into(),
        "CREATE TEMP TABLE t (x)".into(),
        "CREATE TABLE temp.t2 (x)".into(),
        format!("CREATE TEMP TRIGGER spy AFTER INSERT ON {table} BEGIN SELECT 1; END"),
        "SELECT load_extension('/tmp/evil.so')".into(),
        "CREATE VIRTUAL TABLE v USING fts5(x)".into(),
    ];
    for sql in &refused {
        let answer = intruder.answer(&format!("db {sql}"));
        assert!(
            answer.starts_with("err Error::QueryFailed(") && answer.contains("not authorized"),
            "{sql}: {answer}"
        );
    }
    let blob = intruder.answer("db SELECT length(randomblob(1000000000))");
    assert!(
        blob.starts_with("err ") && blob.contains("too big"),
        "{blob}"
    );
    assert!(
        !std::path::Path::new(&vacuum_target).exists(),
        "VACUUM INTO wrote {vacuum_target}"
    );

    // Nothing stayed on the pooled connections: several sessions each find no attachment
    // and no temporary table, and pop's logins on the same pool work.
    for _ in 0..4 {
        let mut later = Intruder::connect(([127, 0, 0, 1], intruder_port).into());
        let stolen = later.answer("db select x from stolen.secret");
        assert!(stolen.contains("no such table: stolen.secret"), "{stolen}");
        let temp = later.answer("db select count(*) from temp.t");
        assert!(temp.contains("no such table: temp.t"), "{temp}");
        let mut alice = server.client();
        alice.ok("USER alice");
        assert!(alice.ok("PASS secret").starts_with("+OK 3 messages"));
        alice.ok("QUIT");
    }
    let log = server.server.log();
    assert!(!log.contains("OTHER-SECRET"), "{log}");
    echo_served_at(echo, "after the SQL attacks");
}

/// Six parameters over one 16 MiB buffer: 96 MiB for the host to copy, more than the
/// instance's 32 MiB of memory. The call is refused while copying (the host copies at
/// most `instance_memory_mb` a call), the session traps, and the peak stays far below.
#[test]
fn overlapping_query_parameters_copy_no_more_than_the_instance_holds() {
    let (server, addr, echo) = intruder_beside_pop("  db = MAIL\n  instance_memory_mb = 32");
    assert_eq!(
        Intruder::connect(addr).answer("db-alias 1 1"),
        "ok 1 rows",
        "one is fine"
    );
    let before = reset_peak(&server.server);
    let answer = Intruder::connect(addr).ask("db-alias 6 16");
    let peak = peak_kib(&server.server);
    eprintln!("peak RSS {before} -> {peak} KiB; the answer: {answer:?}");
    assert_eq!(answer, None, "the session trapped");
    assert!(
        peak < before + 64 * 1024,
        "the call took the server from {before} to {peak} KiB at its peak"
    );
    echo_served_at(echo, "after the overlapping parameters");
}

/// pop's pool (`pool_max = 4`) named by the intruder too: four intruder sessions each run
/// a query of several seconds. The intruder may hold three of the four connections at
/// once, so pop's logins still find one and are answered at once, not after the 10 s a
/// query may take, with `-ERR [SYS/TEMP]`.
#[test]
fn a_module_sharing_a_pool_cannot_take_all_of_it() {
    let (server, intruder, _echo) = intruder_beside_pop("  db = MAIL");
    let slow = "db WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 20000000) SELECT count(*) FROM n";
    let hogs: Vec<_> = (0..4)
        .map(|_| std::thread::spawn(move || Intruder::connect(intruder).answer(slow)))
        .collect();
    std::thread::sleep(std::time::Duration::from_millis(500));
    let started = std::time::Instant::now();
    let mut alice = server.client();
    alice.ok("USER alice");
    let answer = alice.cmd("PASS secret");
    let waited = started.elapsed();
    assert!(
        answer.starts_with("+OK 3 messages"),
        "{answer} after {waited:?}"
    );
    assert!(
        hogs.iter().filter(|h| !h.is_finished()).count() >= 3,
        "the intruder's queries were still running when alice logged in in {waited:?}"
    );
    // Each hog ends one way or another within the 10 s a query has (the fourth waited
    // for one of the intruder's turns).
    for hog in hogs {
        let answer = hog.join().unwrap();
        assert!(
            answer.starts_with("ok ") || answer.starts_with("err "),
            "{answer}"
        );
    }
}
