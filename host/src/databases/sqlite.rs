//! The embedded SQLite database: a small pool of rusqlite connections, each call on the
//! host runtime's blocking threads (SQLite's calls block).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, Result};
use rusqlite::types::ValueRef;
use rusqlite::{Connection, OpenFlags};
use tokio::sync::Semaphore;

use super::{PoolConfig, QueryError, ResultBudget, Rows, Value};

/// How long SQLite waits for another connection's write lock before giving up.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

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

    /// Runs one query on a blocking thread.
    pub async fn query(&self, sql: &str, params: Vec<Value>) -> Result<Rows, QueryError> {
        let _permit = self
            .permits
            .acquire()
            .await
            .map_err(|e| QueryError::Unavailable(e.to_string()))?;
        let (path, idle, sql) = (self.path.clone(), self.idle.clone(), sql.to_string());
        tokio::task::spawn_blocking(move || {
            let taken = idle.lock().ok().and_then(|mut idle| idle.pop());
            let conn = match taken {
                Some(conn) => conn,
                None => open(&path).map_err(|e| QueryError::Unavailable(format!("{e:#}")))?,
            };
            let result = run(&conn, &sql, &params);
            if let Ok(mut idle) = idle.lock() {
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
    Ok(conn)
}

fn run(conn: &Connection, sql: &str, params: &[Value]) -> Result<Rows, QueryError> {
    let query_err = |e: rusqlite::Error| QueryError::Query(e.to_string());
    let mut statement = conn.prepare_cached(sql).map_err(query_err)?;
    let columns: Vec<String> = statement
        .column_names()
        .iter()
        .map(|c| c.to_string())
        .collect();
    let bound = rusqlite::params_from_iter(params.iter().map(to_sqlite));
    let mut rows = statement.query(bound).map_err(query_err)?;
    let mut out = Rows {
        columns,
        rows: Vec::new(),
    };
    let mut budget = ResultBudget::new();
    while let Some(row) = rows.next().map_err(query_err)? {
        let values = (0..out.columns.len())
            .map(|i| row.get_ref(i).map(from_sqlite).map_err(query_err))
            .collect::<Result<Vec<_>, _>>()?;
        budget.row(out.rows.len(), &values)?;
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
