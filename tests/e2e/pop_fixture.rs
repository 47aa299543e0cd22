//! The pop module's test fixture: a personality with Maildirs, a user table on SQLite,
//! PostgreSQL or MariaDB (each test its own table), the server, and a POP3 line client.

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use crate::harness::{Server, TestPersonality, free_port, is_root};

/// Message 1 of alice: LF endings, lines to stuff, no final newline. 61 octets on the wire.
pub const MSG1: &[u8] = b"Subject: one\n\nline one\n.leading dot\n..two dots\n.\nlast";
/// Message 2: already read by another client (in `cur/` with flags), CRLF endings.
pub const MSG2: &[u8] = b"Subject: two\r\n\r\nbody two\r\n";
/// Message 3: a plain new message.
pub const MSG3: &[u8] = b"Subject: three\n\nthree\n";
/// File names of alice's messages, in UIDL order.
pub const NAMES: [&str; 3] = [
    "new/1700000001.M1P1.test",
    "cur/1700000002.M2P1.test:2,S",
    "new/1700000003.M3P1.test",
];

/// Which database holds the users.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Backend {
    Sqlite,
    Postgres,
    Mysql,
}

/// The personality directory, its mail and its user table.
pub struct PopSetup {
    pub personality: TestPersonality,
    pub backend: Backend,
    pub table: String,
    pub port: u16,
    /// Where the pool connects (a proxy's port in some tests); `None` for the default.
    pub db_port: Option<u16>,
    /// A Unix socket for the pool instead of TCP.
    pub db_socket: Option<&'static str>,
    /// The maildrop query, when not the backend's usual one.
    pub query: Option<String>,
    /// `auth_failure_delay_ms` (100 unless a test needs another).
    pub auth_failure_delay_ms: u64,
    /// `auth_penalty_ms` and `max_unauthenticated_per_address`: 0 (off) unless a test
    /// needs them, since every test client comes from 127.0.0.1 and many tests fail
    /// logins or open sessions by the dozen on purpose.
    pub auth_penalty_ms: u64,
    pub max_unauthenticated_per_address: u32,
    /// The pool's `pool_max` (4 unless a test needs another).
    pub pool_max: usize,
}

static TABLE_SEQ: AtomicU32 = AtomicU32::new(0);

impl PopSetup {
    /// Alice (password `secret`, three messages) and bob (`hunter2`, empty), with the
    /// pool on `backend`.
    pub fn new(backend: Backend) -> PopSetup {
        let personality = TestPersonality::new("");
        let table = format!(
            "pop_users_{}_{}",
            std::process::id(),
            TABLE_SEQ.fetch_add(1, Ordering::Relaxed)
        );
        let setup = PopSetup {
            personality,
            backend,
            table,
            port: free_port(),
            db_port: None,
            db_socket: None,
            query: None,
            auth_failure_delay_ms: 100,
            auth_penalty_ms: 0,
            max_unauthenticated_per_address: 0,
            pool_max: 4,
        };
        for user in ["alice", "bob"] {
            for folder in ["new", "cur", "tmp"] {
                std::fs::create_dir_all(setup.maildir(user).join(folder)).unwrap();
            }
        }
        for (name, body) in NAMES.iter().zip([MSG1, MSG2, MSG3]) {
            std::fs::write(setup.maildir("alice").join(name), body).unwrap();
        }
        // A symlink inside the root pointing out of it (eve's maildrop).
        std::os::unix::fs::symlink("/", setup.mail_root().join("escape")).unwrap();
        setup.create_users();
        setup
    }

    pub fn mail_root(&self) -> PathBuf {
        self.personality.path().join("mail")
    }

    pub fn maildir(&self, user: &str) -> PathBuf {
        self.mail_root().join(user).join("Maildir")
    }

    /// Message files of `user`, folder/name, sorted.
    pub fn files(&self, user: &str) -> Vec<String> {
        let mut out = Vec::new();
        for folder in ["new", "cur"] {
            for entry in std::fs::read_dir(self.maildir(user).join(folder)).unwrap() {
                let name = entry.unwrap().file_name().into_string().unwrap();
                out.push(format!("{folder}/{name}"));
            }
        }
        out.sort();
        out
    }

    fn users(&self) -> Vec<(&'static str, &'static str, String)> {
        let root = self.mail_root();
        vec![
            (
                "alice",
                "secret",
                root.join("alice/Maildir").display().to_string(),
            ),
            ("bob", "hunter2", "bob/Maildir".to_string()),
            // Maildrops outside the root: the host must refuse them, whether named
            // directly, with `..` (relative or beneath the root's absolute path), or
            // through a symlink inside the root.
            ("mallory", "x", "/etc".to_string()),
            ("trudy", "x", "alice/../../..".to_string()),
            (
                "oscar",
                "x",
                root.join("bob/Maildir/../../../etc").display().to_string(),
            ),
            ("eve", "x", "escape".to_string()),
        ]
    }

    fn create_users(&self) {
        let t = &self.table;
        let mut sql = match self.backend {
            Backend::Mysql => format!(
                "CREATE TABLE {t} (user VARCHAR(64) PRIMARY KEY, password VARCHAR(64), maildrop VARCHAR(255));"
            ),
            _ => format!(
                "CREATE TABLE {t} (username TEXT PRIMARY KEY, password TEXT, maildrop TEXT);"
            ),
        };
        for (user, password, maildrop) in self.users() {
            let hashed = match self.backend {
                Backend::Sqlite => format!("'{password}'"),
                Backend::Postgres => format!("md5('{password}')"),
                Backend::Mysql => format!("PASSWORD('{password}')"),
            };
            sql.push_str(&format!(
                "INSERT INTO {t} VALUES ('{user}', {hashed}, '{maildrop}');"
            ));
        }
        self.execute(&sql);
    }

    /// Runs `sql` (statements separated by `;`) on this setup's database.
    pub fn execute(&self, sql: &str) {
        match self.backend {
            Backend::Sqlite => {
                let db =
                    rusqlite::Connection::open(self.personality.path().join("users.db")).unwrap();
                db.execute_batch(sql).unwrap();
            }
            Backend::Postgres => run_sql(
                "psql",
                &[
                    "-h",
                    "127.0.0.1",
                    "-U",
                    "postgres",
                    "-q",
                    "-v",
                    "ON_ERROR_STOP=1",
                    "test",
                    "-c",
                    sql,
                ],
            ),
            Backend::Mysql => run_sql(
                "mariadb",
                &["-h", "127.0.0.1", "-u", "root", "test", "-e", sql],
            ),
        }
    }

    /// The pop section's query for this backend, in ServerKit's quoting habit.
    fn query(&self) -> String {
        let t = &self.table;
        match self.backend {
            Backend::Sqlite => {
                format!("select maildrop from {t} where password = '%p' and username = '%u'")
            }
            Backend::Postgres => {
                format!("select maildrop from {t} where password = md5('%p') and username = '%u'")
            }
            // The seed's own query, table name aside.
            Backend::Mysql => format!(
                "select maildrop from {t} where {t}.password=\"PASSWORD(%p)\" and {t}.user=\"%u\""
            ),
        }
    }

    fn database_section(&self) -> String {
        let port = self
            .db_port
            .map(|p| format!("port = {p}\n"))
            .unwrap_or_default();
        match self.backend {
            Backend::Sqlite => "driver = sqlite\nname = users.db\n".to_string(),
            Backend::Postgres => {
                format!("driver = postgres\nhost = 127.0.0.1\n{port}user = postgres\nname = test\n")
            }
            Backend::Mysql => format!("host = 127.0.0.1\n{port}user = root\nname = test\n"),
        }
    }

    /// The c11n, with `extra` lines in the pop section.
    pub fn c11n(&self, extra: &str) -> String {
        let root = if is_root() {
            "executes_as_root = true\nuid = 65534\ngid = 65534\n"
        } else {
            ""
        };
        format!(
            "identity = poptest\n{root}database MAIL {{\n{}pool_min = 1\npool_max = {}\n}}\n\
             pop {{\n  database = MAIL\n  address = 127.0.0.1\n  port = {}\n  maildrop_root = {}\n  \
             auth_failure_delay_ms = {}\n  auth_penalty_ms = {}\n  max_unauthenticated_per_address = {}\n  \
             maildrop_query_format_string = {}\n{extra}\n}}\n",
            self.database_section(),
            self.pool_max,
            self.port,
            self.mail_root().display(),
            self.auth_failure_delay_ms,
            self.auth_penalty_ms,
            self.max_unauthenticated_per_address,
            self.query.clone().unwrap_or_else(|| self.query()),
        )
    }

    /// Writes the c11n and starts the server.
    pub fn start(self, extra: &str) -> PopServer {
        self.start_beside(extra, "")
    }

    /// Like [`PopSetup::start`], with `sections` (other modules') after pop's.
    pub fn start_beside(self, extra: &str, sections: &str) -> PopServer {
        let c11n = self.c11n(extra) + sections;
        std::fs::write(self.personality.path().join("c11n"), c11n).unwrap();
        if is_root() {
            // The server drops to uid 65534, which must reach the mail and the database.
            let status = Command::new("chown")
                .args(["-R", "65534:65534"])
                .arg(self.personality.path())
                .status()
                .unwrap();
            assert!(status.success());
        }
        let mut server = Server::spawn(&["run"], self.personality.path(), &[]);
        server.addr = SocketAddr::from(([127, 0, 0, 1], self.port));
        server.wait_for_log("serving", Duration::from_secs(60));
        PopServer {
            server,
            setup: self,
        }
    }
}

fn run_sql(program: &str, args: &[&str]) {
    let out = Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("run {program}: {e}"));
    assert!(
        out.status.success(),
        "{program} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

impl Drop for PopSetup {
    fn drop(&mut self) {
        // `<table>_extra`: a second table a test may make (pop_dovecot's hashes).
        let drop = format!(
            "DROP TABLE IF EXISTS {0}; DROP TABLE IF EXISTS {0}_extra",
            self.table
        );
        let _ = match self.backend {
            Backend::Sqlite => return,
            Backend::Postgres => Command::new("psql")
                .args([
                    "-h",
                    "127.0.0.1",
                    "-U",
                    "postgres",
                    "-q",
                    "test",
                    "-c",
                    &drop,
                ])
                .output(),
            Backend::Mysql => Command::new("mariadb")
                .args(["-h", "127.0.0.1", "-u", "root", "test", "-e", &drop])
                .output(),
        };
    }
}

/// Whether the database of `backend` answers. In CI (`CI=true`) an unreachable server
/// fails the test; elsewhere the test is skipped with a loud message.
pub fn database_available(backend: Backend) -> bool {
    let port = match backend {
        Backend::Sqlite => return true,
        Backend::Postgres => 5432,
        Backend::Mysql => 3306,
    };
    let up = TcpStream::connect_timeout(
        &SocketAddr::from(([127, 0, 0, 1], port)),
        Duration::from_secs(2),
    )
    .is_ok();
    if !up {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "{backend:?} is not reachable on 127.0.0.1:{port}, and CI=true requires it"
        );
        eprintln!(
            "!!! SKIPPED: {backend:?} is not reachable on 127.0.0.1:{port}; start it to run this test !!!"
        );
    }
    up
}

/// A running pop server and its setup.
pub struct PopServer {
    pub server: Server,
    pub setup: PopSetup,
}

impl PopServer {
    pub fn client(&self) -> PopClient {
        PopClient::connect(self.server.addr)
    }

    /// A client logged in as `user` once a session that just ended has released the
    /// maildrop's lock (its end is noticed by the server shortly after the client's).
    pub fn login_when_free(&self, user: &str, password: &str) -> PopClient {
        login_when_free(|| self.client(), user, password)
    }

    /// A client logged in as `user`.
    pub fn login(&self, user: &str, password: &str) -> PopClient {
        let mut c = self.client();
        c.ok(&format!("USER {user}"));
        c.ok(&format!("PASS {password}"));
        c
    }
}

/// A client from `connect` logged in as `user` once the maildrop is free: a session that
/// just ended releases its lock shortly after its client saw the end.
pub fn login_when_free(connect: impl Fn() -> PopClient, user: &str, password: &str) -> PopClient {
    let start = std::time::Instant::now();
    loop {
        let mut c = connect();
        c.ok(&format!("USER {user}"));
        let reply = c.cmd(&format!("PASS {password}"));
        if reply.starts_with("+OK") {
            return c;
        }
        assert!(
            reply.starts_with("-ERR [IN-USE]") && start.elapsed() < Duration::from_secs(10),
            "login as {user}: {reply}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A POP3 client speaking raw lines.
pub struct PopClient {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
}

impl PopClient {
    /// Connects and reads the greeting.
    pub fn connect(addr: SocketAddr) -> PopClient {
        let mut c = PopClient::connect_raw(addr);
        let greeting = c.line();
        assert!(greeting.starts_with("+OK"), "greeting: {greeting}");
        c
    }

    /// Connects without reading the greeting.
    pub fn connect_raw(addr: SocketAddr) -> PopClient {
        PopClient::over(TcpStream::connect(addr).unwrap())
    }

    /// A client on a connected stream, without reading the greeting.
    pub fn over(stream: TcpStream) -> PopClient {
        stream
            .set_read_timeout(Some(Duration::from_secs(20)))
            .unwrap();
        PopClient {
            reader: BufReader::new(stream.try_clone().unwrap()),
            writer: stream,
        }
    }

    pub fn write(&mut self, raw: &[u8]) {
        self.writer.write_all(raw).unwrap();
    }

    /// One response line without CRLF; panics at end of stream.
    pub fn line(&mut self) -> String {
        let mut line = String::new();
        let n = self.reader.read_line(&mut line).unwrap();
        assert!(n > 0, "the server closed the connection");
        assert!(line.ends_with("\r\n"), "line without CRLF: {line:?}");
        line.truncate(line.len() - 2);
        line
    }

    /// Sends a command, returns the first response line.
    pub fn cmd(&mut self, command: &str) -> String {
        self.write(format!("{command}\r\n").as_bytes());
        self.line()
    }

    /// Sends a command that must succeed.
    pub fn ok(&mut self, command: &str) -> String {
        let reply = self.cmd(command);
        assert!(reply.starts_with("+OK"), "{command} answered {reply}");
        reply
    }

    /// The lines of a multi-line body up to the terminating `.`, still stuffed.
    pub fn body(&mut self) -> Vec<String> {
        let mut lines = Vec::new();
        loop {
            let line = self.line();
            if line == "." {
                return lines;
            }
            lines.push(line);
        }
    }

    /// The buffered reader, for raw reads.
    pub fn reader_mut(&mut self) -> &mut BufReader<TcpStream> {
        &mut self.reader
    }

    /// Closes the connection without QUIT.
    pub fn drop_connection(self) {
        let _ = self.writer.shutdown(std::net::Shutdown::Both);
    }
}
