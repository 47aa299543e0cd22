//! MySQL and MariaDB pools through mysql_async, with positional (`?`) parameters.
//!
//! Modules sharing a pool share its connections: a connection back in the pool is reset
//! (`COM_RESET_CONNECTION`: variables, temporary tables, prepared statements,
//! transactions, locks) before anyone else gets it, MariaDB stops a statement a little
//! after the host's query timeout (`max_statement_time`, set again after every reset),
//! and a query the host gives up on (its time passed, its result too large) is killed on
//! the server (`KILL QUERY` from a connection of its own) before its connection goes
//! back, rather than left running or read to its end.

use anyhow::Result;
use mysql_async::consts::ColumnFlags;
use mysql_async::prelude::Queryable;
use mysql_async::{OptsBuilder, Params, PoolConstraints, PoolOpts};

use super::{PoolConfig, QUERY_TIMEOUT, QueryError, ResultBudget, Rows, Value};

/// Run on every new or reset connection. `max_statement_time` is MariaDB's (seconds, from
/// 10.1): written in a MariaDB-only comment, so a MySQL server, or an older MariaDB, runs
/// the harmless rest.
fn session_setup() -> String {
    format!(
        "SET @serverkit = 1 /*M!100100 , SESSION max_statement_time = {} */",
        (QUERY_TIMEOUT + SERVER_TIMEOUT_MARGIN).as_secs()
    )
}

/// How much longer than the host the server lets a statement run: the host gives up
/// first and kills it; the server's timeout is the backstop.
const SERVER_TIMEOUT_MARGIN: std::time::Duration = std::time::Duration::from_secs(5);

/// MySQL's character set number for binary strings: such columns are bytes, not text.
const BINARY_CHARSET: u16 = 63;

/// A MySQL pool.
pub struct MyPool {
    pool: mysql_async::Pool,
    /// For the connection that kills an abandoned query: not the pool's, which may have
    /// none free until that query's connection comes back.
    opts: mysql_async::Opts,
}

impl MyPool {
    /// Configures the pool. Must run inside the host runtime: mysql_async starts the
    /// pool's background task where it is created.
    pub fn new(config: &PoolConfig) -> Self {
        let constraints = PoolConstraints::new(config.min, config.max)
            .unwrap_or_else(|| PoolConstraints::new(0, config.max.max(1)).unwrap_or_default());
        let mut opts = OptsBuilder::default()
            .ip_or_hostname(config.host.clone().unwrap_or_else(|| "localhost".into()))
            .tcp_port(config.port.unwrap_or(3306))
            .user(config.user.clone())
            .pass(config.password.clone())
            .db_name(config.database.clone())
            .prefer_socket(false)
            .setup(vec![session_setup()])
            .pool_opts(
                PoolOpts::default()
                    .with_constraints(constraints)
                    .with_reset_connection(true),
            );
        if let Some(socket) = &config.socket {
            opts = opts.socket(Some(socket.clone()));
        }
        let opts = mysql_async::Opts::from(opts);
        MyPool {
            pool: mysql_async::Pool::new(opts.clone()),
            opts,
        }
    }

    /// Connections in use and open.
    pub fn figures(&self) -> (usize, usize) {
        use std::sync::atomic::Ordering::Relaxed;
        let metrics = self.pool.metrics();
        (
            metrics.connections_in_use.load(Relaxed),
            metrics.connection_count.load(Relaxed),
        )
    }

    /// Opens `min` connections and returns them to the pool.
    pub async fn warm(&self, min: usize) -> Result<()> {
        let mut held = Vec::new();
        for _ in 0..min {
            held.push(self.pool.get_conn().await?);
        }
        Ok(())
    }

    /// Runs one query on a pooled connection (`NamedPool::query` retries once).
    pub async fn query(&self, sql: &str, params: &[Value]) -> Result<Rows, QueryError> {
        let conn = self
            .pool
            .get_conn()
            .await
            .map_err(|e| QueryError::Unavailable(e.to_string()))?;
        let bound = if params.is_empty() {
            Params::Empty
        } else {
            Params::Positional(params.iter().map(to_mysql).collect())
        };
        let mut running = Running {
            id: conn.id(),
            conn: Some(conn),
            server: Some(self.opts.clone()),
        };
        let Running { conn, server, id } = &mut running;
        let conn = conn.as_mut().expect("held until dropped");
        let mut result = match conn.exec_iter(sql, bound).await {
            Ok(result) => result,
            Err(e) => {
                *server = None; // the server answered: nothing runs
                return Err(classify(e));
            }
        };
        let columns = result.columns();
        let binary: Vec<bool> = columns
            .as_deref()
            .unwrap_or_default()
            .iter()
            .map(|c| {
                c.character_set() == BINARY_CHARSET && !c.flags().contains(ColumnFlags::NUM_FLAG)
            })
            .collect();
        let mut out = Rows {
            columns: columns
                .as_deref()
                .unwrap_or_default()
                .iter()
                .map(|c| c.name_str().into_owned())
                .collect(),
            rows: Vec::new(),
        };
        let mut budget = ResultBudget::new();
        loop {
            let row = match result.next().await {
                Ok(Some(row)) => row,
                Ok(None) => break,
                Err(e) => {
                    *server = None;
                    return Err(classify(e));
                }
            };
            let values: Vec<Value> = row
                .unwrap()
                .into_iter()
                .zip(&binary)
                .map(|(v, binary)| from_mysql(v, *binary))
                .collect();
            if let Err(refused) = budget.row(out.rows.len(), &values) {
                // Killed before the result is dropped: dropping it reads the rest.
                if let Some(server) = server.take() {
                    kill_query(server, *id).await;
                }
                return Err(refused);
            }
            out.rows.push(values);
        }
        *server = None;
        Ok(out)
    }
}

/// A query's connection while it runs. Dropped before the query ended (the host's
/// timeout), the query is killed (`KILL QUERY`, from a connection of its own) before the
/// connection goes back to the pool, where mysql_async would read the rest of the result
/// and hand it on: killed after, the kill could land on the next user's query.
struct Running {
    conn: Option<mysql_async::Conn>,
    /// The server to connect to for the kill; `None` once the query has ended.
    server: Option<mysql_async::Opts>,
    id: u32,
}

impl Drop for Running {
    fn drop(&mut self) {
        let (Some(server), Some(conn)) = (self.server.take(), self.conn.take()) else {
            return;
        };
        let id = self.id;
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move {
                kill_query(server, id).await;
                drop(conn);
            });
        }
    }
}

async fn kill_query(server: mysql_async::Opts, id: u32) {
    let killed = async {
        let mut conn = mysql_async::Conn::new(server).await?;
        conn.query_drop(format!("KILL QUERY {id}")).await?;
        conn.disconnect().await
    };
    match tokio::time::timeout(QUERY_TIMEOUT, killed).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => tracing::warn!("killing an abandoned MySQL query failed: {e}"),
        Err(_) => tracing::warn!("killing an abandoned MySQL query timed out"),
    }
}

fn classify(e: mysql_async::Error) -> QueryError {
    match e {
        mysql_async::Error::Server(e) => QueryError::Query(e.message),
        other => QueryError::Unavailable(other.to_string()),
    }
}

fn to_mysql(value: &Value) -> mysql_async::Value {
    use mysql_async::Value as M;
    match value {
        Value::Null => M::NULL,
        Value::Bool(b) => M::Int(i64::from(*b)),
        Value::Int(i) => M::Int(*i),
        Value::Float(f) => M::Double(*f),
        Value::Text(s) => M::Bytes(s.clone().into_bytes()),
        Value::Bytes(b) => M::Bytes(b.clone()),
    }
}

fn from_mysql(value: mysql_async::Value, binary: bool) -> Value {
    use mysql_async::Value as M;
    match value {
        M::NULL => Value::Null,
        M::Int(i) => Value::Int(i),
        M::UInt(u) => i64::try_from(u).map_or_else(|_| Value::Text(u.to_string()), Value::Int),
        M::Float(f) => Value::Float(f.into()),
        M::Double(f) => Value::Float(f),
        M::Bytes(b) if binary => Value::Bytes(b),
        M::Bytes(b) => {
            String::from_utf8(b).map_or_else(|e| Value::Bytes(e.into_bytes()), Value::Text)
        }
        other => Value::Text(other.as_sql(true).trim_matches('\'').to_string()),
    }
}
