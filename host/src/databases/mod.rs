//! The database pools the host owns: one per `database IDENT { ... }` section, shared by
//! every instance of every module that names it, reached through `serverkit:module/database`.
//!
//! Pools are planned at startup step 6 (configuration checked, nothing opened) and opened
//! after the privilege drop on the host runtime ([`HostRuntime`]): connection pools start
//! tasks and threads, and the root drop requires a single-threaded process. A pool whose
//! server is down keeps retrying in the background; queries meanwhile fail with
//! [`QueryError::Unavailable`], which modules turn into a temporary error.

mod config;
mod mysql;
mod postgres;
mod runtime;
pub mod share;
mod sqlite;
mod sqlite_policy;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

pub use config::{Driver, PoolConfig, plan};
pub use runtime::HostRuntime;

/// Longest SQL text a guest may send: what it defends is host memory and the server's
/// parser against a guest building statements in a loop.
pub const MAX_QUERY_BYTES: usize = 16 * 1024;
/// Most parameters bound to one query: bounds the host's conversion work per call.
pub const MAX_PARAMS: usize = 256;
/// Most rows returned by one query; more is refused, not truncated, so a guest never
/// mistakes a partial result for a whole one. Defends host and guest memory.
pub const MAX_ROWS: usize = 10_000;
/// Most bytes of text and bytes values in one result: defends host memory and the copy
/// into the guest.
pub const MAX_RESULT_BYTES: usize = 4 * 1024 * 1024;
/// Longest a query may take, waiting for a connection included, before it is abandoned
/// as unavailable: a hung server must not hold sessions forever.
pub const QUERY_TIMEOUT: Duration = Duration::from_secs(10);
/// Pause between attempts to open `pool_min` connections while a server is down.
pub const RETRY_INTERVAL: Duration = Duration::from_secs(2);

/// A value bound to a placeholder or read from a column.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// SQL NULL.
    Null,
    /// A boolean.
    Bool(bool),
    /// Any integer column.
    Int(i64),
    /// Any floating-point column.
    Float(f64),
    /// Text.
    Text(String),
    /// Binary data.
    Bytes(Vec<u8>),
}

/// A query's result.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Rows {
    /// Column names.
    pub columns: Vec<String>,
    /// Rows, values in column order.
    pub rows: Vec<Vec<Value>>,
}

/// Why a query failed; modules branch on the kind.
#[derive(Debug, thiserror::Error)]
pub enum QueryError {
    /// No pool of that name is granted.
    #[error("no database pool `{0}` is granted to this module")]
    NoSuchPool(String),
    /// No connection right now.
    #[error("database unavailable: {0}")]
    Unavailable(String),
    /// The server refused the query.
    #[error("query failed: {0}")]
    Query(String),
    /// A limit was exceeded.
    #[error("too large: {0}")]
    TooLarge(String),
}

/// One pool, whatever its driver.
pub enum Pool {
    /// PostgreSQL through deadpool-postgres.
    Postgres(postgres::PgPool),
    /// MySQL or MariaDB through mysql_async.
    Mysql(mysql::MyPool),
    /// The embedded SQLite database.
    Sqlite(sqlite::LitePool),
}

/// A pool with its name and counters.
pub struct NamedPool {
    /// The `database` section's title.
    pub name: String,
    /// Its configuration.
    pub config: PoolConfig,
    /// The pool itself.
    pub pool: Pool,
    /// Connection errors so far (the report's Errors column).
    pub errors: AtomicU64,
    /// What each module naming it may hold at once.
    pub shares: share::Shares,
}

impl NamedPool {
    /// Connections in use and connections open now (the report's ActiveBusy and
    /// ActivTotal).
    pub fn figures(&self) -> (usize, usize) {
        match &self.pool {
            Pool::Postgres(p) => p.figures(),
            Pool::Mysql(p) => p.figures(),
            Pool::Sqlite(p) => p.figures(),
        }
    }

    /// Runs one query on the host runtime.
    /// A connection found dead (the server restarted) is replaced once: the first query
    /// after a restart then succeeds instead of failing the session.
    pub async fn query(
        &self,
        module: &str,
        sql: &str,
        params: Vec<Value>,
    ) -> Result<Rows, QueryError> {
        let result = match self.query_once(module, sql, params.clone()).await {
            Err(QueryError::Unavailable(_)) => self.query_once(module, sql, params).await,
            other => other,
        };
        if let Err(QueryError::Unavailable(e)) = &result {
            self.errors.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(pool = %self.name, "database unavailable: {e}");
        }
        result
    }
}

impl NamedPool {
    async fn query_once(
        &self,
        module: &str,
        sql: &str,
        params: Vec<Value>,
    ) -> Result<Rows, QueryError> {
        match &self.pool {
            Pool::Postgres(p) => p.query(module, sql, &params).await,
            Pool::Mysql(p) => p.query(sql, &params).await,
            Pool::Sqlite(p) => p.query(sql, params).await,
        }
    }
}

/// Every pool of the personality, by title, and the runtime their connections live on.
pub struct Databases {
    pools: HashMap<String, Arc<NamedPool>>,
    runtime: tokio::runtime::Handle,
}

impl Databases {
    /// Every pool, by title.
    pub fn pools(&self) -> Vec<Arc<NamedPool>> {
        let mut pools: Vec<_> = self.pools.values().cloned().collect();
        pools.sort_by(|a, b| a.name.cmp(&b.name));
        pools
    }

    /// The pool of that title.
    pub fn get(&self, name: &str) -> Option<Arc<NamedPool>> {
        self.pools.get(name).cloned()
    }

    /// Runs `sql` on pool `name`, on the host runtime (the pool's connections belong to
    /// it), from any runtime: the caller's task waits without holding a thread.
    /// `module` waits for one of its turns first ([`share`]); the turn is held by the
    /// task, so a session that gives up does not free it while its query runs.
    pub async fn query(
        &self,
        name: &str,
        module: &str,
        sql: String,
        params: Vec<Value>,
    ) -> Result<Rows, QueryError> {
        let pool = self
            .get(name)
            .ok_or_else(|| QueryError::NoSuchPool(name.to_string()))?;
        let turns = pool.shares.of(module);
        let module = module.to_string();
        // What the query logs (deadpool's refused resets, a cancelled query) is the
        // calling module's doing.
        let share = crate::logging::owner::current().unwrap_or_default();
        // The task's future stays small: a session polls this on its fiber stack, and a
        // future spawned by value is built there first, so a driver's multi-KiB query
        // state would touch stack pages that stay resident for the session's life (8 KiB
        // of every idle POP3 session). Boxed, that state is built on the host runtime.
        let task = self
            .runtime
            .spawn(crate::logging::owner::owned(share, async move {
                let query = Box::pin(async move {
                    let _turn = turns.acquire_owned().await;
                    pool.query(&module, &sql, params).await
                });
                match tokio::time::timeout(QUERY_TIMEOUT, query).await {
                    Ok(result) => result,
                    Err(_) => Err(QueryError::Unavailable(format!(
                        "no answer within {}s",
                        QUERY_TIMEOUT.as_secs()
                    ))),
                }
            }));
        task.await
            .map_err(|e| QueryError::Unavailable(format!("query task failed: {e}")))?
    }
}

/// What a cell counts against [`MAX_RESULT_BYTES`]: its text or bytes, and at least
/// [`MIN_CELL_BYTES`], so a result of millions of empty strings is not free: its cells
/// cost the host their `Value`s (32 bytes each) whatever they hold.
fn cell_bytes(value: &Value) -> usize {
    match value {
        Value::Text(s) => s.len(),
        Value::Bytes(b) => b.len(),
        _ => 0,
    }
    .max(MIN_CELL_BYTES)
}

/// The least a cell counts: a number's. The host then holds at most four times
/// [`MAX_RESULT_BYTES`] in `Value`s for a result it accepts.
const MIN_CELL_BYTES: usize = 8;

/// Counts the text and bytes of a result, refusing it past [`MAX_RESULT_BYTES`] or
/// [`MAX_ROWS`].
pub(crate) struct ResultBudget {
    bytes: usize,
}

impl ResultBudget {
    pub(crate) fn new() -> Self {
        ResultBudget { bytes: 0 }
    }

    /// Accounts for one more row.
    pub(crate) fn row(&mut self, rows_so_far: usize, row: &[Value]) -> Result<(), QueryError> {
        if rows_so_far >= MAX_ROWS {
            return Err(QueryError::TooLarge(format!(
                "more than {MAX_ROWS} rows; add a LIMIT"
            )));
        }
        self.bytes += row.iter().map(cell_bytes).sum::<usize>();
        if self.bytes > MAX_RESULT_BYTES {
            return Err(QueryError::TooLarge(format!(
                "result larger than {MAX_RESULT_BYTES} bytes"
            )));
        }
        Ok(())
    }
}

#[cfg(test)]
mod result_budget_tests {
    use super::*;

    #[test]
    fn empty_cells_count_against_the_result_budget() {
        let row = vec![Value::Text(String::new()); 2000];
        let mut budget = ResultBudget::new();
        let mut rows = 0;
        let refused = loop {
            match budget.row(rows, &row) {
                Ok(()) => rows += 1,
                Err(e) => break e,
            }
        };
        assert!(matches!(refused, QueryError::TooLarge(_)), "{refused:?}");
        let cells = rows * row.len();
        assert!(
            cells * MIN_CELL_BYTES <= MAX_RESULT_BYTES,
            "{rows} rows of empty cells passed"
        );
    }
}
