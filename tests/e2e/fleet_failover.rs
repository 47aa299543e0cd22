//! Failover: clients download and delete mail through HAProxy from both nodes; one node is
//! killed (SIGKILL) mid-load. HAProxy's health checks mark it down and new clients reach
//! the other; the sessions cut by the kill are the only failures; no message is lost,
//! corrupted or deleted twice; and every deletion a client saw confirmed has happened.

use std::collections::HashSet;
use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::Command;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;

use crate::fleet_fixture::{CLIENT, Fleet, Haproxy, connect_from};
use crate::harness::is_root;

/// Users, one client thread each (so no two clients of ours want the same maildrop).
const USERS: usize = 6;
/// Messages in each maildrop at the start.
const MESSAGES: usize = 40;
/// Deletions each client has confirmed (QUIT answered +OK) when it stops.
const DELETIONS_EACH: usize = 25;
/// Confirmed deletions, all clients together, before the first node is killed.
const KILL_AFTER: usize = 40;

/// How one client session ended.
enum Session {
    /// It deleted the message with this id, and QUIT said +OK.
    Deleted(String),
    /// The maildrop was still locked (by a session that had just ended): try again.
    InUse,
    /// The connection broke; with the id of a message whose deletion QUIT may or may not
    /// have carried out (QUIT was sent, its answer never came).
    Broken(String, Option<String>),
}

/// Adds `load0`..`load5` (password `pw`) with `MESSAGES` messages each, each carrying an
/// `X-Fleet-Id` and a body naming it.
fn add_users(fleet: &Fleet) {
    let table = &fleet.setup.table;
    let mut sql = String::new();
    for u in 0..USERS {
        sql.push_str(&format!(
            "INSERT INTO {table} VALUES ('load{u}', md5('pw'), 'load{u}/Maildir');"
        ));
        let maildir = fleet.setup.maildir(&format!("load{u}"));
        for folder in ["new", "cur", "tmp"] {
            std::fs::create_dir_all(maildir.join(folder)).unwrap();
        }
        for m in 0..MESSAGES {
            let id = format!("load{u}-{m}");
            let name = format!("new/{}.M{m}P{u}.fleet", 1_700_001_000 + m);
            let body = format!("Subject: {id}\nX-Fleet-Id: {id}\n\nbody of {id}\n");
            std::fs::write(maildir.join(name), body).unwrap();
        }
    }
    fleet.setup.execute(&sql);
    if is_root() {
        let status = Command::new("chown")
            .args(["-R", "65534:65534"])
            .arg(fleet.setup.mail_root())
            .status()
            .unwrap();
        assert!(status.success());
    }
}

/// One session: log in as `user`, read message 1 (checking its body), delete it, QUIT.
fn session(frontend: SocketAddr, user: &str) -> Session {
    let mut marker = None;
    let mut quit_sent = false;
    match try_session(frontend, user, &mut marker, &mut quit_sent) {
        Ok(session) => session,
        Err(why) => Session::Broken(why, marker.filter(|_| quit_sent)),
    }
}

fn try_session(
    frontend: SocketAddr,
    user: &str,
    marker: &mut Option<String>,
    quit_sent: &mut bool,
) -> Result<Session, String> {
    let stream = connect_from(CLIENT, frontend).map_err(|e| format!("connect: {e}"))?;
    let mut io = Lines::new(stream)?;
    io.expect_ok("")?;
    io.expect_ok(&format!("USER {user}"))?;
    let reply = io.command("PASS pw")?;
    if reply.starts_with("-ERR [IN-USE]") {
        return Ok(Session::InUse);
    }
    if !reply.starts_with("+OK") {
        return Err(format!("PASS: {reply}"));
    }
    io.expect_ok("RETR 1")?;
    let body = io.body()?;
    let id = body
        .iter()
        .find_map(|l| l.strip_prefix("X-Fleet-Id: "))
        .ok_or_else(|| format!("RETR 1 without an id: {body:?}"))?
        .to_string();
    if !body.contains(&format!("body of {id}")) {
        return Err(format!("message {id} corrupted: {body:?}"));
    }
    *marker = Some(id.clone());
    io.expect_ok("DELE 1")?;
    *quit_sent = true;
    io.expect_ok("QUIT")?;
    Ok(Session::Deleted(id))
}

/// A POP3 line reader that returns errors instead of panicking.
struct Lines {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
}

impl Lines {
    fn new(stream: TcpStream) -> Result<Lines, String> {
        let reader = BufReader::new(stream.try_clone().map_err(|e| e.to_string())?);
        Ok(Lines {
            reader,
            writer: stream,
        })
    }

    fn line(&mut self) -> Result<String, String> {
        let mut line = String::new();
        match self.reader.read_line(&mut line) {
            Ok(0) => Err("the connection closed".into()),
            Ok(_) => Ok(line.trim_end_matches("\r\n").to_string()),
            Err(e) => Err(format!("read: {e}")),
        }
    }

    /// Sends `command` (none for the greeting) and returns the answer's first line.
    fn command(&mut self, command: &str) -> Result<String, String> {
        if !command.is_empty() {
            self.writer
                .write_all(format!("{command}\r\n").as_bytes())
                .map_err(|e| format!("write {command}: {e}"))?;
        }
        self.line()
    }

    fn expect_ok(&mut self, command: &str) -> Result<(), String> {
        let reply = self.command(command)?;
        if reply.starts_with("+OK") {
            Ok(())
        } else {
            Err(format!("{command}: {reply}"))
        }
    }

    fn body(&mut self) -> Result<Vec<String>, String> {
        let mut lines = Vec::new();
        loop {
            match self.line()? {
                end if end == "." => return Ok(lines),
                line => lines.push(line),
            }
        }
    }
}

/// The ids of the messages in a Maildir, read from the files.
fn ids_on_disk(maildir: &Path) -> Vec<String> {
    let mut ids = Vec::new();
    for folder in ["new", "cur"] {
        for entry in std::fs::read_dir(maildir.join(folder)).unwrap() {
            let text = std::fs::read_to_string(entry.unwrap().path()).unwrap();
            let id = text.lines().find_map(|l| l.strip_prefix("X-Fleet-Id: "));
            ids.push(id.unwrap().to_string());
        }
    }
    ids
}

/// What the clients saw: deletions confirmed, deletions in doubt, failed sessions with
/// when they started.
#[derive(Default)]
struct Ledger {
    confirmed: Vec<String>,
    in_doubt: Vec<String>,
    failures: Vec<(Instant, String)>,
    succeeded_after_kill: usize,
}

#[test]
fn killing_one_node_mid_load_moves_new_clients_to_the_other_and_loses_no_mail() {
    let Some(mut fleet) = Fleet::start() else {
        return;
    };
    add_users(&fleet);
    let haproxy = Haproxy::start(&fleet.nodes);
    let frontend = haproxy.frontends["pop_v2"];
    let ledger = Mutex::new(Ledger::default());
    let confirmed = AtomicUsize::new(0);
    let killed_at: Mutex<Option<Instant>> = Mutex::new(None);
    let dead_at: Mutex<Option<Instant>> = Mutex::new(None);
    std::thread::scope(|scope| {
        for u in 0..USERS {
            let (ledger, confirmed, killed_at) = (&ledger, &confirmed, &killed_at);
            scope.spawn(move || {
                let user = format!("load{u}");
                let start = Instant::now();
                let mut mine = 0;
                while mine < DELETIONS_EACH {
                    assert!(
                        start.elapsed() < Duration::from_secs(120),
                        "{user}: too slow"
                    );
                    let began = Instant::now();
                    let outcome = session(frontend, &user);
                    let after_kill = killed_at.lock().unwrap().is_some_and(|k| began > k);
                    let mut l = ledger.lock().unwrap();
                    match outcome {
                        Session::Deleted(id) => {
                            mine += 1;
                            confirmed.fetch_add(1, Ordering::Relaxed);
                            l.confirmed.push(id);
                            l.succeeded_after_kill += usize::from(after_kill);
                        }
                        Session::InUse => std::thread::sleep(Duration::from_millis(20)),
                        Session::Broken(why, in_doubt) => {
                            l.failures.push((began, format!("{user}: {why}")));
                            l.in_doubt.extend(in_doubt);
                        }
                    }
                }
            });
        }
        let waiting = Instant::now();
        while confirmed.load(Ordering::Relaxed) < KILL_AFTER {
            assert!(waiting.elapsed() < Duration::from_secs(120), "no load");
            std::thread::sleep(Duration::from_millis(5));
        }
        fleet.nodes[0].server.signal(Signal::SIGKILL);
        *killed_at.lock().unwrap() = Some(Instant::now());
        fleet.nodes[0].server.wait_exit(Duration::from_secs(30));
        *dead_at.lock().unwrap() = Some(Instant::now());
    });
    let ledger = ledger.into_inner().unwrap();
    let killed_at = killed_at.into_inner().unwrap().unwrap();
    let dead_at = dead_at.into_inner().unwrap().unwrap();

    // HAProxy's checks took the dead node out of both POP3 backends.
    haproxy.wait_for("node0 down", Duration::from_secs(10), |servers| {
        servers
            .iter()
            .filter(|(backend, server, _)| backend.starts_with("pop") && server == "node0")
            .all(|(_, _, status)| status.starts_with("DOWN"))
    });
    // Only sessions in flight while the node died failed. Dying takes a while (the kernel
    // unmaps the instance pool's reservation before it closes the listener, and completes
    // handshakes meanwhile); once the listener is gone, a connection HAProxy still sends
    // there is refused and retried on the other node, so nothing fails any more.
    let late: Vec<_> = ledger
        .failures
        .iter()
        .filter(|(began, _)| *began > dead_at + Duration::from_millis(500))
        .collect();
    assert!(
        late.is_empty(),
        "sessions failed after the node died: {late:?}"
    );
    // All but those confirmed before the kill, and those in flight across it.
    assert!(
        ledger.succeeded_after_kill >= USERS * DELETIONS_EACH - KILL_AFTER - 2 * USERS,
        "{} sessions succeeded after the kill",
        ledger.succeeded_after_kill
    );
    check_mail(&fleet, &ledger);
    eprintln!(
        "failover: {} deletions confirmed, {} after the kill; the node took {:?} to die; {} sessions cut ({} QUITs in doubt)",
        ledger.confirmed.len(),
        ledger.succeeded_after_kill,
        dead_at - killed_at,
        ledger.failures.len(),
        ledger.in_doubt.len()
    );
}

/// No message deleted twice, none confirmed deleted still there, none lost.
fn check_mail(fleet: &Fleet, ledger: &Ledger) {
    let confirmed: HashSet<&String> = ledger.confirmed.iter().collect();
    assert_eq!(
        confirmed.len(),
        ledger.confirmed.len(),
        "a message deleted twice"
    );
    assert_eq!(confirmed.len(), USERS * DELETIONS_EACH);
    for u in 0..USERS {
        let user = format!("load{u}");
        let on_disk = ids_on_disk(&fleet.setup.maildir(&user));
        for id in &on_disk {
            assert!(
                !confirmed.contains(id),
                "{id} was confirmed deleted but is still there"
            );
        }
        for m in 0..MESSAGES {
            let id = format!("{user}-{m}");
            assert!(
                on_disk.contains(&id) || confirmed.contains(&id) || ledger.in_doubt.contains(&id),
                "{id} is lost: neither there nor deleted by a client"
            );
        }
    }
}
