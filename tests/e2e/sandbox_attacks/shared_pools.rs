//! A PostgreSQL or MariaDB pool pop shares with a third-party module (both sections name
//! it): nothing the intruder's SQL leaves on a connection may reach pop's next query on
//! it, and a query the host gives up on must not keep the connection busy or the host's
//! memory full. `pool_max = 1`, so both modules take turns on one connection and every
//! attack lands on the connection pop's next login uses.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use super::{Intruder, install_intruder, peak_kib, reset_peak, sections};
use crate::harness::free_port;
use crate::pop_fixture::{Backend, PopServer, PopSetup, database_available};

/// pop on `backend` with one pooled connection, beside the intruder naming the same pool.
fn intruder_sharing_pops_pool(backend: Backend) -> Option<(PopServer, SocketAddr)> {
    if !database_available(backend) {
        return None;
    }
    let mut setup = PopSetup::new(backend);
    setup.pool_max = 1;
    install_intruder(setup.personality.path());
    let (intruder_port, echo_port) = (free_port(), free_port());
    let server = setup.start_beside("", &sections(intruder_port, "  db = MAIL", echo_port));
    Some((server, SocketAddr::from(([127, 0, 0, 1], intruder_port))))
}

/// A temporary view named like pop's user table shadows it for unqualified names on
/// that connection: left in place, pop's next lookup read the attacker's rows, and any
/// password logged in as alice, into bob's maildrop.
#[test]
fn a_temporary_view_left_on_a_shared_connection_cannot_log_anyone_in() {
    let Some((server, intruder)) = intruder_sharing_pops_pool(Backend::Postgres) else {
        return;
    };
    let table = server.setup.table.clone();
    let mut attacker = Intruder::connect(intruder);
    let planted = attacker.answer(&format!(
        "db CREATE OR REPLACE TEMP VIEW {table} AS SELECT username, md5('x') AS password, \
         'bob/Maildir'::text AS maildrop FROM public.{table}"
    ));
    assert!(planted.starts_with("ok"), "{planted}");
    let mut forged = server.client();
    forged.ok("USER alice");
    let answer = forged.cmd("PASS x");
    assert!(
        answer.starts_with("-ERR"),
        "the view answered pop's lookup: {answer}"
    );
    let mut alice = server.login("alice", "secret");
    assert_eq!(alice.cmd("STAT"), "+OK 3 112", "alice's own maildrop");
    // Settings are reset too: a search_path that hides the table fails no login.
    let hidden = attacker.answer("db SELECT set_config('search_path', 'pg_catalog', false)");
    assert!(hidden.starts_with("ok"), "{hidden}");
    drop(alice);
    crate::pop_fixture::login_when_free(|| server.client(), "alice", "secret");
}

/// More of what a query can leave on its connection: an open transaction (pop would read
/// a frozen snapshot), a failed one (pop's query refused), SQL-level prepared statements
/// (their names can take the client's next), a `COPY` the client cannot take part in (the
/// connection stuck). Each time, pop's next login on the one connection works at once.
#[test]
fn no_transaction_statement_or_copy_left_on_a_shared_connection_reaches_pop() {
    let Some((server, intruder)) = intruder_sharing_pops_pool(Backend::Postgres) else {
        return;
    };
    let table = server.setup.table.clone();
    let mut attacker = Intruder::connect(intruder);
    for attack in [
        "BEGIN ISOLATION LEVEL REPEATABLE READ".to_string(),
        "BEGIN".to_string(),
        "SELECT 1/0".to_string(),
        "PREPARE s0 AS SELECT 1".to_string(),
        "PREPARE s1 AS SELECT 1".to_string(),
        format!("COPY {table} FROM STDIN"),
    ] {
        attacker.answer(&format!("db {attack}"));
        alice_served_at_once(&server, &attack);
    }
}

/// A statement the host gives up on (10 s) went on running on the server, and its
/// connection went back to the pool busy: pop's next login queued behind it until its own
/// query timed out. It is now cancelled and its connection closed.
#[test]
fn a_query_the_host_abandons_does_not_keep_pops_connection_busy() {
    let Some((server, intruder)) = intruder_sharing_pops_pool(Backend::Postgres) else {
        return;
    };
    let answer = Intruder::connect(intruder).answer("db SELECT pg_sleep(40)::text");
    assert!(answer.contains("Unavailable"), "{answer}");
    alice_served_at_once(&server, "the abandoned statement");
}

/// A result larger than the budget (4 MiB) was read whole into host memory before it was
/// refused: here 2000 rows of 1 MB. Rows are now counted as they arrive.
#[test]
fn a_huge_result_is_refused_before_the_host_holds_it() {
    let Some((server, intruder)) = intruder_sharing_pops_pool(Backend::Postgres) else {
        return;
    };
    let before = reset_peak(&server.server);
    let answer = Intruder::connect(intruder)
        .answer("db SELECT repeat('x', 1000000) FROM generate_series(1, 2000)");
    assert!(answer.contains("TooLarge"), "{answer}");
    let grew = peak_kib(&server.server).saturating_sub(before);
    assert!(grew < 200 << 10, "the host's peak grew {grew} KiB");
    let mut alice = server.login("alice", "secret");
    assert_eq!(alice.cmd("STAT"), "+OK 3 112");
}

/// MariaDB: a result too large, then `SLEEP` past the host's timeout. Before, the
/// oversized result was read to its end when its connection went back to the pool, so
/// pop's login waited behind it; and the sleeping statement went on on the server after
/// the host gave up (a dropped connection does not stop it), one server thread more for
/// every such query. Both now end.
#[test]
fn mariadb_queries_the_host_abandons_are_killed() {
    let Some((server, intruder)) = intruder_sharing_pops_pool(Backend::Mysql) else {
        return;
    };
    let mut attacker = Intruder::connect(intruder);
    let huge = attacker.answer("db SELECT REPEAT('x', 1000000) FROM seq_1_to_1000000");
    assert!(huge.contains("TooLarge"), "{huge}");
    alice_served_at_once(&server, "the refused result");
    let marker = format!("SLEEP(40.{})", std::process::id());
    let slept = attacker.answer(&format!("db SELECT {marker}"));
    // Killed when the host gave up, or stopped by the server's own timeout
    // (`max_statement_time`, 5 s later) should the kill not have come.
    assert!(slept.starts_with("err"), "{slept}");
    let started = Instant::now();
    while sleeping_statements(&marker) > 0 {
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "the abandoned statement still runs on the server"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// pop's next login, after `attack`, answers at once with alice's own maildrop: nothing
/// the attack left on the one shared connection is in its way.
fn alice_served_at_once(server: &PopServer, attack: &str) {
    let started = Instant::now();
    let mut alice = crate::pop_fixture::login_when_free(|| server.client(), "alice", "secret");
    assert_eq!(alice.cmd("STAT"), "+OK 3 112", "after {attack}");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "after {attack}, pop's login took {:?}",
        started.elapsed()
    );
}

/// Statements running on the MariaDB server whose text contains `marker`.
fn sleeping_statements(marker: &str) -> usize {
    let query = format!(
        "SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE INFO LIKE '%{marker}%' \
         AND INFO NOT LIKE '%PROCESSLIST%'"
    );
    let out = std::process::Command::new("mariadb")
        .args(["-h", "127.0.0.1", "-u", "root", "-N", "-e", &query])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().parse().unwrap()
}
