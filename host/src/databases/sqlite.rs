//! The embedded SQLite database: a small pool of rusqlite connections, each call on the
//! host runtime's blocking threads (SQLite's calls block). Every connection is opened
//! under `sqlite_policy` (no file but its own database, nothing left on it between
//! calls), and a query that runs past [`QUERY_TIMEOUT`] is interrupted, so an endless
//! query cannot keep a blocking thread.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use rusqlite::types::ValueRef;
use rusqlite::{Connection, OpenFlags};
use tokio::sync::Semaphore;

use super::sqlite_policy;
use super::{PoolConfig, QUERY_TIMEOUT, QueryError, ResultBudget, Rows, Value};

/// How long SQLite waits for another connection's write lock before giving up.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// SQLite virtual machine steps between two looks at the clock while a query runs.
const PROGRESS_STEPS: i32 = 10_000;

/// A SQLite pool: at most `pool_max` connections, idle ones kept.
pub struct LitePool {
    path: String,
    idle: Arc<Mutex<Vec<Connection>>>,
    permits: Arc<Semaphore>,
    max: usize,
}

impl LitePool {
    /// Configures the pool; nothing is opened yet.
    pub fn new(config: &PoolConfig) -> Self {
        LitePool {
            path: config.database.clone().unwrap_or_default(),
            idle: Arc::new(Mutex::new(Vec::new())),
            permits: Arc::new(Semaphore::new(config.max)),
            max: config.max,
        }
    }

    /// Connections in use and open: the in-use ones hold a permit.
    pub fn figures(&self) -> (usize, usize) {
        let busy = self.max.saturating_sub(self.permits.available_permits());
        let idle = self.idle.lock().map(|i| i.len()).unwrap_or(0);
        (busy, busy + idle)
    }

    /// Opens `min` connections and keeps them idle.
    pub async fn warm(&self, min: usize) -> Result<()> {
        let path = self.path.clone();
        let idle = self.idle.clone();
        tokio::task::spawn_blocking(move || -> Result<()> {
            let mut opened = Vec::new();
            for _ in 0..min {
                opened.push(open(&path)?);
            }
            idle.lock()
                .map_err(|_| anyhow::anyhow!("pool lock poisoned"))?
                .extend(opened);
            Ok(())
        })
        .await?
    }

    /// Runs one query on a blocking thread, by [`QUERY_TIMEOUT`] from now.
    ///
    /// The permit goes with the job, not with this call: a caller that gives up (its
    /// timeout, its session's end) cannot free a connection whose query still runs, so
    /// no more than `pool_max` jobs ever hold or wait for the blocking threads. A job
    /// that starts late runs only what is left of the deadline, and one left less than
    /// half of it does nothing.
    pub async fn query(&self, sql: &str, params: Vec<Value>) -> Result<Rows, QueryError> {
        let deadline = Instant::now() + QUERY_TIMEOUT;
        let permit = self
            .permits
            .clone()
            .acquire_owned()
            .await
            .map_err(|e| QueryError::Unavailable(e.to_string()))?;
        let (path, idle, sql) = (self.path.clone(), self.idle.clone(), sql.to_string());
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            // A job left less than half its time by the wait does not start: interrupted
            // for want of time, it would be blamed on the query (a refusal not retried),
            // though the wait for a connection or a thread took the time.
            let limit = deadline.saturating_duration_since(Instant::now());
            if limit < QUERY_TIMEOUT / 2 {
                return Err(QueryError::Unavailable(format!(
                    "no connection free within {}s",
                    (QUERY_TIMEOUT - limit).as_secs()
                )));
            }
            let taken = idle.lock().ok().and_then(|mut idle| idle.pop());
            let conn = match taken {
                Some(conn) => conn,
                None => open(&path).map_err(|e| QueryError::Unavailable(format!("{e:#}")))?,
            };
            let result = run(&conn, &sql, &params, limit);
            if !sqlite_policy::is_clean(&conn) {
                tracing::warn!(
                    "a sqlite connection was left inside a transaction: closed, not pooled"
                );
            } else if let Ok(mut idle) = idle.lock() {
                idle.push(conn);
            }
            result
        })
        .await
        .map_err(|e| QueryError::Unavailable(format!("query thread failed: {e}")))?
    }
}

fn open(path: &str) -> Result<Connection> {
    // No SQLITE_OPEN_CREATE: a mistyped path must fail, not serve an empty database.
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .with_context(|| format!("failed to open sqlite database `{path}`"))?;
    conn.busy_timeout(BUSY_TIMEOUT)?;
    sqlite_policy::harden(&conn)
        .with_context(|| format!("failed to secure sqlite database `{path}`"))?;
    Ok(conn)
}

/// Runs one query, interrupted once it has run `limit`.
fn run(
    conn: &Connection,
    sql: &str,
    params: &[Value],
    limit: Duration,
) -> Result<Rows, QueryError> {
    let deadline = Instant::now() + limit;
    conn.progress_handler(PROGRESS_STEPS, Some(move || Instant::now() > deadline));
    let result = rows(conn, sql, params).map_err(|e| match e {
        Failure::Sqlite(e)
            if e.sqlite_error_code() == Some(rusqlite::ErrorCode::OperationInterrupted) =>
        {
            // Not `Unavailable`, which would be retried: the query itself is at fault.
            QueryError::Query(format!(
                "interrupted: ran longer than {}s",
                limit.as_secs_f32()
            ))
        }
        Failure::Sqlite(e) => QueryError::Query(sqlite_policy::explain(&e)),
        Failure::Budget(e) => e,
    });
    conn.progress_handler(0, None::<fn() -> bool>);
    result
}

/// Why [`rows`] stopped.
enum Failure {
    Sqlite(rusqlite::Error),
    Budget(QueryError),
}

impl From<rusqlite::Error> for Failure {
    fn from(e: rusqlite::Error) -> Self {
        Failure::Sqlite(e)
    }
}

fn rows(conn: &Connection, sql: &str, params: &[Value]) -> Result<Rows, Failure> {
    sqlite_policy::forget_denial();
    let mut statement = conn.prepare_cached(sql)?;
    let columns: Vec<String> = statement
        .column_names()
        .iter()
        .map(|c| c.to_string())
        .collect();
    let bound = rusqlite::params_from_iter(params.iter().map(to_sqlite));
    let mut rows = statement.query(bound)?;
    let mut out = Rows {
        columns,
        rows: Vec::new(),
    };
    let mut budget = ResultBudget::new();
    while let Some(row) = rows.next()? {
        let values = (0..out.columns.len())
            .map(|i| row.get_ref(i).map(from_sqlite))
            .collect::<Result<Vec<_>, _>>()?;
        budget
            .row(out.rows.len(), &values)
            .map_err(Failure::Budget)?;
        out.rows.push(values);
    }
    Ok(out)
}

fn to_sqlite(value: &Value) -> rusqlite::types::Value {
    use rusqlite::types::Value as S;
    match value {
        Value::Null => S::Null,
        Value::Bool(b) => S::Integer(i64::from(*b)),
        Value::Int(i) => S::Integer(*i),
        Value::Float(f) => S::Real(*f),
        Value::Text(s) => S::Text(s.clone()),
        Value::Bytes(b) => S::Blob(b.clone()),
    }
}

fn from_sqlite(value: ValueRef<'_>) -> Value {
    match value {
        ValueRef::Null => Value::Null,
        ValueRef::Integer(i) => Value::Int(i),
        ValueRef::Real(f) => Value::Float(f),
        ValueRef::Text(t) => {
            String::from_utf8(t.to_vec()).map_or_else(|e| Value::Bytes(e.into_bytes()), Value::Text)
        }
        ValueRef::Blob(b) => Value::Bytes(b.to_vec()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A database file with one user, opened as the pool opens it.
    fn pooled() -> (tempfile::TempDir, Connection) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("users.db");
        Connection::open(&path)
            .unwrap()
            .execute_batch("CREATE TABLE users (name TEXT); INSERT INTO users VALUES ('demo');")
            .unwrap();
        let conn = open(path.to_str().unwrap()).unwrap();
        (dir, conn)
    }

    #[test]
    fn a_refused_statement_says_why_and_the_connection_serves_on() {
        let (_dir, conn) = pooled();
        let err = run(&conn, "ATTACH '/etc/passwd' AS p", &[], QUERY_TIMEOUT).unwrap_err();
        assert!(
            matches!(&err, QueryError::Query(m) if m.starts_with("not authorized: ATTACH `/etc/passwd`")),
            "{err}"
        );
        let rows = run(
            &conn,
            "SELECT name FROM users WHERE name = ?1",
            &[Value::Text("demo".into())],
            QUERY_TIMEOUT,
        )
        .unwrap();
        assert_eq!(rows.rows, vec![vec![Value::Text("demo".into())]]);
    }

    #[test]
    fn an_endless_query_is_interrupted_and_frees_its_thread() {
        let (_dir, conn) = pooled();
        let endless = "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n) SELECT count(*) FROM n";
        let started = Instant::now();
        let err = run(&conn, endless, &[], Duration::from_millis(200)).unwrap_err();
        assert!(
            matches!(&err, QueryError::Query(m) if m.starts_with("interrupted")),
            "{err}"
        );
        assert!(started.elapsed() < Duration::from_secs(30), "it stopped");
        assert!(sqlite_policy::is_clean(&conn));
        let rows = run(&conn, "SELECT count(*) FROM users", &[], QUERY_TIMEOUT).unwrap();
        assert_eq!(
            rows.rows,
            vec![vec![Value::Int(1)]],
            "the next query is not interrupted"
        );
    }

    /// A caller that gives up on a query (its timeout, its session's end) leaves the
    /// permit with the query still running: the pool counts that connection busy until
    /// the query ends, so abandoned queries cannot pile up beyond `pool_max`.
    #[tokio::test]
    async fn an_abandoned_query_keeps_its_connection_until_it_ends() {
        let (dir, _conn) = pooled();
        let pool = LitePool::new(&PoolConfig {
            name: "users".into(),
            driver: super::super::Driver::Sqlite,
            database: Some(dir.path().join("users.db").to_str().unwrap().into()),
            user: None,
            password: None,
            host: None,
            port: None,
            socket: None,
            min: 0,
            max: 1,
        });
        // About a second of work: long enough to be abandoned, short enough to end.
        let slow = "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 3000000) SELECT count(*) FROM n";
        let abandoned = tokio::time::timeout(Duration::from_millis(20), pool.query(slow, vec![]));
        assert!(abandoned.await.is_err(), "given up on");
        assert_eq!(pool.figures().0, 1, "its connection is still busy");
        let rows = pool
            .query("SELECT count(*) FROM users", vec![])
            .await
            .unwrap();
        assert_eq!(
            rows.rows,
            vec![vec![Value::Int(1)]],
            "the next query waited for it"
        );
        assert_eq!(pool.figures(), (0, 1));
    }
}
