//! The pop login path on PostgreSQL and MariaDB: the query with bound parameters, wrong
//! passwords, unknown users, injection, and a database that is down at start or restarts
//! mid-run (the pool reaches it through a proxy the test starts and stops, so the shared
//! servers are never touched).

use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::pop_fixture::{Backend, PopServer, PopSetup, database_available};

fn logins_and_refusals(backend: Backend) {
    if !database_available(backend) {
        return;
    }
    let server = PopSetup::new(backend).start("");
    let mut c = server.login("alice", "secret");
    assert_eq!(c.cmd("STAT"), "+OK 3 112");
    assert_eq!(c.cmd("RETR 3"), "+OK 25 octets");
    assert_eq!(c.body(), ["Subject: three", "", "three"]);
    c.ok("QUIT");
    for (user, password) in [
        ("alice", "wrong"),
        ("nobody", "secret"),
        ("alice' OR '1'='1", "x"),
        ("alice", "x') OR ('1'='1"),
        ("alice\" OR \"1\"=\"1", "\" OR \"\"=\""),
    ] {
        let mut c = server.client();
        c.ok(&format!("USER {user}"));
        assert!(
            c.cmd(&format!("PASS {password}"))
                .starts_with("-ERR [AUTH]"),
            "{backend:?}: {user} / {password}"
        );
    }
    server.login("bob", "hunter2").ok("QUIT");
}

#[test]
fn postgres_logins_and_refusals() {
    logins_and_refusals(Backend::Postgres);
}

#[test]
fn mysql_logins_and_refusals_with_the_seed_query() {
    logins_and_refusals(Backend::Mysql);
}

fn through_the_unix_socket(backend: Backend, socket: &'static str) {
    if !database_available(backend) {
        return;
    }
    let mut setup = PopSetup::new(backend);
    setup.db_socket = Some(socket);
    let server = setup.start("");
    server.login("alice", "secret").ok("QUIT");
}

#[test]
fn postgres_through_its_unix_socket_directory() {
    through_the_unix_socket(Backend::Postgres, "/var/run/postgresql");
}

#[test]
fn mysql_through_its_unix_socket() {
    through_the_unix_socket(Backend::Mysql, "/run/mysqld/mysqld.sock");
}

fn down_at_start_then_restarted(backend: Backend, upstream: u16) {
    if !database_available(backend) {
        return;
    }
    let proxy = Proxy::new(upstream);
    let mut setup = PopSetup::new(backend);
    setup.db_port = Some(proxy.port);
    let mut server: PopServer = setup.start("");
    // Down at start: the server runs, sessions get a temporary error.
    let mut c = server.client();
    c.ok("USER alice");
    assert!(c.cmd("PASS secret").starts_with("-ERR [SYS/TEMP]"));
    server
        .server
        .wait_for_log("database unreachable", Duration::from_secs(10));
    // The database comes up: logins work without restarting the server.
    proxy.start();
    eventually(|| {
        let mut c = server.client();
        c.ok("USER alice");
        c.cmd("PASS secret").starts_with("+OK")
    });
    // It restarts mid-run: every pooled connection breaks; the next login still works.
    proxy.cut();
    let mut c = server.login("alice", "secret");
    c.ok("QUIT");
}

#[test]
fn postgres_down_at_start_then_restarted() {
    down_at_start_then_restarted(Backend::Postgres, 5432);
}

#[test]
fn mysql_down_at_start_then_restarted() {
    down_at_start_then_restarted(Backend::Mysql, 3306);
}

fn eventually(mut ok: impl FnMut() -> bool) {
    let start = Instant::now();
    while !ok() {
        assert!(start.elapsed() < Duration::from_secs(20), "never recovered");
        std::thread::sleep(Duration::from_millis(300));
    }
}

/// A TCP proxy to a local database port: not listening until `start`, and `cut` breaks
/// every connection through it, as a server restart does.
struct Proxy {
    port: u16,
    upstream: u16,
    conns: Arc<Mutex<Vec<TcpStream>>>,
    stop: Arc<AtomicBool>,
}

impl Proxy {
    fn new(upstream: u16) -> Proxy {
        Proxy {
            port: crate::harness::free_port(),
            upstream,
            conns: Arc::default(),
            stop: Arc::default(),
        }
    }

    fn start(&self) {
        let listener = TcpListener::bind(("127.0.0.1", self.port)).unwrap();
        let (conns, upstream, stop) = (self.conns.clone(), self.upstream, self.stop.clone());
        std::thread::spawn(move || {
            for client in listener.incoming() {
                if stop.load(Ordering::Relaxed) {
                    return;
                }
                let Ok(client) = client else { continue };
                let Ok(server) = TcpStream::connect(("127.0.0.1", upstream)) else {
                    continue;
                };
                let mut list = conns.lock().unwrap();
                list.push(client.try_clone().unwrap());
                list.push(server.try_clone().unwrap());
                pipe(client.try_clone().unwrap(), server.try_clone().unwrap());
                pipe(server, client);
            }
        });
    }

    /// Breaks every connection (the listener stays).
    fn cut(&self) {
        for conn in self.conns.lock().unwrap().drain(..) {
            let _ = conn.shutdown(std::net::Shutdown::Both);
        }
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        self.cut();
        let _ = TcpStream::connect(("127.0.0.1", self.port)); // wake the accept loop
    }
}

fn pipe(mut from: TcpStream, mut to: TcpStream) {
    std::thread::spawn(move || {
        let _ = std::io::copy(&mut from, &mut to);
        let _ = to.shutdown(std::net::Shutdown::Both);
    });
}

#[test]
fn sqlite_missing_at_start_then_created() {
    let setup = PopSetup::new(Backend::Sqlite);
    let db = setup.personality.path().join("users.db");
    let hidden = setup.personality.path().join("users.db.later");
    std::fs::rename(&db, &hidden).unwrap();
    let server = setup.start("");
    let mut c = server.client();
    c.ok("USER alice");
    assert!(c.cmd("PASS secret").starts_with("-ERR [SYS/TEMP]"));
    // The file appears (restored from a backup, say): logins work without a restart.
    std::fs::rename(&hidden, &db).unwrap();
    eventually(|| {
        let mut c = server.client();
        c.ok("USER alice");
        c.cmd("PASS secret").starts_with("+OK")
    });
}
