//! PostgreSQL pools through deadpool-postgres; values converted by the types the server
//! inferred for each placeholder and column.
//!
//! Modules sharing a pool share its connections, so nothing one module's query leaves on
//! a connection may reach another module: a connection last used by another module is
//! reset first ([`reset_session`]: settings, role, temporary tables and views, cursors,
//! advisory locks, `LISTEN`, the client's statement and type caches), and one left inside
//! a transaction or holding prepared statements made in SQL is not reused at all (the
//! reset refuses it and the connection is closed). A module's own queries in a row skip
//! the reset and keep their prepared statements (at most [`MAX_CACHED_STATEMENTS`]): what
//! a module leaves for itself is its own affair. The server stops a statement a little
//! after the host would, and a query the host gives up on, past its time or its result
//! budget, or left in a state the client does not know (`COPY`), is cancelled on the
//! server and its connection closed, rather than left running on a connection the next
//! user would wait behind. Rows are counted as they arrive, so a huge result is refused
//! before the host holds it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use std::pin::pin;

use anyhow::Result;
use deadpool_postgres::{Manager, ManagerConfig, RecyclingMethod, Runtime};
use futures_util::TryStreamExt;
use tokio_postgres::types::{IsNull, ToSql, Type, to_sql_checked};
use tokio_postgres::{CancelToken, NoTls};

use super::{PoolConfig, QUERY_TIMEOUT, QueryError, ResultBudget, Rows, Value};

/// How long to wait for a connection from the pool or a new one from the server.
const CONNECT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// Run before a module's query on a connection another module used last. First a
/// refusal, after which the connection is closed, if a transaction is still open (`now()` is its start, older than this
/// statement; an aborted one refuses any statement) or SQL `PREPARE`d statements remain
/// (one could take the name of the client's next); then deadpool's `Clean` reset; then
/// the server-side timeouts, which `RESET ALL` cleared. (No `ROLLBACK`: on a healthy
/// connection it warns, in the server's log too, at every query.)
fn reset_session() -> String {
    let ms = (QUERY_TIMEOUT + SERVER_TIMEOUT_MARGIN).as_millis();
    format!(
        "DO $$ BEGIN IF now() <> statement_timestamp() \
         OR EXISTS (SELECT 1 FROM pg_prepared_statements WHERE from_sql) THEN \
         RAISE EXCEPTION 'serverkit: the last query left a transaction or prepared statements'; \
         END IF; END $$; \
         CLOSE ALL; SET SESSION AUTHORIZATION DEFAULT; RESET ALL; UNLISTEN *; \
         SELECT pg_advisory_unlock_all(); DISCARD TEMP; DISCARD SEQUENCES; \
         SET statement_timeout = {ms}; SET idle_in_transaction_session_timeout = {ms}"
    )
}

/// How much longer than the host the server lets a statement run: the host gives up
/// first and cancels it; the server's timeout is the backstop.
const SERVER_TIMEOUT_MARGIN: std::time::Duration = std::time::Duration::from_secs(5);

/// Longest the reset may take before the connection is given up and another tried.
const RESET_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(2);

/// Connections tried for one query when resets refuse them (each refused one is closed).
const CHECKOUT_ATTEMPTS: usize = 3;

/// Most statements a connection keeps prepared for the module using it.
pub const MAX_CACHED_STATEMENTS: usize = 64;

/// A PostgreSQL pool.
pub struct PgPool {
    pool: deadpool_postgres::Pool,
    /// The module each open connection last ran a query for.
    last_user: Mutex<HashMap<deadpool_postgres::ObjectId, Arc<str>>>,
    /// [`reset_session`], made once.
    reset: String,
}

impl PgPool {
    /// Connections in use and open.
    pub fn figures(&self) -> (usize, usize) {
        let status = self.pool.status();
        (status.size.saturating_sub(status.available), status.size)
    }

    /// Configures the pool; connects lazily (see `warm`).
    pub fn new(config: &PoolConfig) -> Result<Self> {
        let mut pg = tokio_postgres::Config::new();
        match (&config.socket, &config.host) {
            (Some(dir), _) => pg.host_path(dir),
            (None, Some(host)) => pg.host(host),
            (None, None) => pg.host("localhost"),
        };
        pg.port(config.port.unwrap_or(5432));
        pg.connect_timeout(CONNECT_TIMEOUT);
        pg.application_name("serverkit");
        if let Some(db) = &config.database {
            pg.dbname(db);
        }
        if let Some(user) = &config.user {
            pg.user(user);
        }
        if let Some(password) = &config.password {
            pg.password(password);
        }
        let manager = Manager::from_config(
            pg,
            NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = deadpool_postgres::Pool::builder(manager)
            .max_size(config.max)
            .runtime(Runtime::Tokio1)
            .wait_timeout(Some(CONNECT_TIMEOUT))
            .create_timeout(Some(CONNECT_TIMEOUT))
            .build()?;
        Ok(PgPool {
            pool,
            last_user: Mutex::default(),
            reset: reset_session(),
        })
    }

    /// Opens `min` connections and returns them to the pool, where they stay.
    pub async fn warm(&self, min: usize) -> Result<()> {
        let mut held = Vec::new();
        for _ in 0..min {
            held.push(self.pool.get().await?);
        }
        Ok(())
    }

    /// Runs one query for `module` on a pooled connection (`NamedPool::query` retries
    /// once).
    pub async fn query(
        &self,
        module: &str,
        sql: &str,
        params: &[Value],
    ) -> Result<Rows, QueryError> {
        let checkout = self.checkout(module).await?;
        match run(checkout.client(), sql, params).await {
            Outcome::Ended(result) => {
                checkout.release();
                result
            }
            Outcome::Abandoned(error) => Err(error),
        }
    }
}

impl PgPool {
    /// Whether connection `id` last ran a query for `module`. (Closed connections leave
    /// their entries: the table starts over now and then.)
    fn used_last_by(&self, id: deadpool_postgres::ObjectId, module: &str) -> bool {
        let mut users = self.last_user.lock().unwrap_or_else(|p| p.into_inner());
        if users.len() > 4 * self.pool.status().max_size {
            users.clear();
        }
        users.get(&id).is_some_and(|last| **last == *module)
    }

    /// A connection for `module`: reset first if another module used it last; one whose
    /// reset fails is closed and the next tried.
    async fn checkout(&self, module: &str) -> Result<Checkout, QueryError> {
        let mut refused = None;
        for _ in 0..CHECKOUT_ATTEMPTS {
            let client = self
                .pool
                .get()
                .await
                .map_err(|e| QueryError::Unavailable(e.to_string()))?;
            let id = deadpool_postgres::Object::id(&client);
            if self.used_last_by(id, module) {
                return Ok(Checkout::new(client));
            }
            match tokio::time::timeout(RESET_TIMEOUT, client.simple_query(&self.reset)).await {
                Ok(Ok(_)) => {
                    client.statement_cache.clear();
                    client.clear_type_cache();
                    self.last_user
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .insert(id, module.into());
                    return Ok(Checkout::new(client));
                }
                Ok(Err(e)) => refused = Some(e.to_string()),
                Err(_) => refused = Some("the reset did not answer".into()),
            }
            self.last_user
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .remove(&id);
            drop(deadpool_postgres::Object::take(client));
        }
        Err(QueryError::Unavailable(format!(
            "no connection could be reset: {}",
            refused.unwrap_or_default()
        )))
    }
}

/// How a query left its connection.
enum Outcome {
    /// Nothing runs on it any more: the result, or the server's refusal.
    Ended(Result<Rows, QueryError>),
    /// The host stopped reading while the server may still be sending, or the exchange
    /// went somewhere the client does not follow.
    Abandoned(QueryError),
}

/// The outcome of a failed exchange: a server's refusal ends the query; anything else
/// (a closed connection, a `COPY` the client cannot take part in) leaves the connection
/// in a state nobody should inherit.
fn failed(e: tokio_postgres::Error) -> Outcome {
    if e.as_db_error().is_some() {
        Outcome::Ended(Err(classify(e)))
    } else {
        Outcome::Abandoned(classify(e))
    }
}

/// Prepares `sql` (or finds it prepared for this module), binds `params` and reads the
/// rows as they come, refusing the result once it passes the budget.
async fn run(client: &deadpool_postgres::Client, sql: &str, params: &[Value]) -> Outcome {
    if client.statement_cache.size() >= MAX_CACHED_STATEMENTS {
        client.statement_cache.clear();
    }
    let statement = match client.prepare_cached(sql).await {
        Ok(statement) => statement,
        Err(e) => return failed(e),
    };
    if let Some((i, ty)) = statement
        .columns()
        .iter()
        .enumerate()
        .find(|(_, c)| !converted(c.type_()))
    {
        return Outcome::Ended(Err(QueryError::Query(format!(
            "column {i} has type {}, which serverkit does not convert; cast it to text in the query",
            ty.type_()
        ))));
    }
    if statement.params().len() != params.len() {
        return Outcome::Ended(Err(QueryError::Query(format!(
            "the query has {} placeholders and {} values were given",
            statement.params().len(),
            params.len()
        ))));
    }
    let bound = params.iter().map(|v| v as &(dyn ToSql + Sync));
    let stream = match client.query_raw(&statement, bound).await {
        Ok(stream) => stream,
        Err(e) => return failed(e),
    };
    let mut stream = pin!(stream);
    let columns = statement
        .columns()
        .iter()
        .map(|c| c.name().to_string())
        .collect();
    let mut out = Rows {
        columns,
        rows: Vec::new(),
    };
    let mut budget = ResultBudget::new();
    loop {
        let row = match stream.try_next().await {
            Ok(Some(row)) => row,
            Ok(None) => return Outcome::Ended(Ok(out)),
            Err(e) => return failed(e),
        };
        let values = (0..row.len())
            .map(|i| column(&row, i))
            .collect::<Result<Vec<_>, _>>()
            .and_then(|values| budget.row(out.rows.len(), &values).map(|()| values));
        match values {
            Ok(values) => out.rows.push(values),
            Err(refused) => return Outcome::Abandoned(refused),
        }
    }
}

/// A connection checked out for one query. Dropped without [`Checkout::release`] (the
/// host's timeout, a refused result) its query may still run on the server: the
/// connection then leaves the pool, closed, so no later user waits behind the statement
/// or reads what it still sends, and the statement is cancelled on the server. (A cancel
/// sent on a connection back in the pool could land on the next user's query.)
struct Checkout {
    client: Option<deadpool_postgres::Object>,
    cancel: CancelToken,
}

impl Checkout {
    fn new(client: deadpool_postgres::Object) -> Self {
        Checkout {
            cancel: client.cancel_token(),
            client: Some(client),
        }
    }

    fn client(&self) -> &deadpool_postgres::Client {
        self.client.as_ref().expect("held until released")
    }

    /// The query ended: the connection goes back to the pool.
    fn release(mut self) {
        self.client = None;
    }
}

impl Drop for Checkout {
    fn drop(&mut self) {
        let Some(client) = self.client.take() else {
            return;
        };
        drop(deadpool_postgres::Object::take(client));
        let cancel = self.cancel.clone();
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move {
                if let Err(e) = cancel.cancel_query(NoTls).await {
                    tracing::warn!("cancelling an abandoned PostgreSQL query failed: {e}");
                }
            });
        }
    }
}

/// A server's refusal, or a value the client cannot convert, is a query error; a closed
/// connection or a failed read or write is unavailability (which is retried once).
fn classify(e: tokio_postgres::Error) -> QueryError {
    if let Some(db) = e.as_db_error() {
        return QueryError::Query(db.message().to_string());
    }
    let io = std::error::Error::source(&e).is_some_and(|s| s.is::<std::io::Error>());
    if e.is_closed() || io {
        QueryError::Unavailable(e.to_string())
    } else {
        QueryError::Query(e.to_string())
    }
}

/// Whether [`column`] converts values of type `ty`.
fn converted(ty: &Type) -> bool {
    matches!(
        *ty,
        Type::BOOL
            | Type::INT2
            | Type::INT4
            | Type::INT8
            | Type::FLOAT4
            | Type::FLOAT8
            | Type::BYTEA
            | Type::TEXT
            | Type::VARCHAR
            | Type::BPCHAR
            | Type::NAME
            | Type::UNKNOWN
    )
}

fn column(row: &tokio_postgres::Row, i: usize) -> Result<Value, QueryError> {
    let ty = row.columns()[i].type_().clone();
    let get_err = |e: tokio_postgres::Error| QueryError::Query(format!("column {i}: {e}"));
    Ok(match ty {
        Type::BOOL => row.try_get::<_, Option<bool>>(i).map_err(get_err)?.map(Value::Bool),
        Type::INT2 => row.try_get::<_, Option<i16>>(i).map_err(get_err)?.map(|v| Value::Int(v.into())),
        Type::INT4 => row.try_get::<_, Option<i32>>(i).map_err(get_err)?.map(|v| Value::Int(v.into())),
        Type::INT8 => row.try_get::<_, Option<i64>>(i).map_err(get_err)?.map(Value::Int),
        Type::FLOAT4 => row.try_get::<_, Option<f32>>(i).map_err(get_err)?.map(|v| Value::Float(v.into())),
        Type::FLOAT8 => row.try_get::<_, Option<f64>>(i).map_err(get_err)?.map(Value::Float),
        Type::BYTEA => row.try_get::<_, Option<Vec<u8>>>(i).map_err(get_err)?.map(Value::Bytes),
        Type::TEXT | Type::VARCHAR | Type::BPCHAR | Type::NAME | Type::UNKNOWN => {
            row.try_get::<_, Option<String>>(i).map_err(get_err)?.map(Value::Text)
        }
        other => {
            return Err(QueryError::Query(format!(
                "column {i} has type {other}, which serverkit does not convert; cast it to text in the query"
            )));
        }
    }
    .unwrap_or(Value::Null))
}

/// Binds a guest value to whatever type the server inferred for its placeholder,
/// converting integers and floats to the width asked for.
impl ToSql for Value {
    fn to_sql(
        &self,
        ty: &Type,
        out: &mut bytes::BytesMut,
    ) -> Result<IsNull, Box<dyn std::error::Error + Sync + Send>> {
        match (self, ty) {
            (Value::Null, _) => Ok(IsNull::Yes),
            (Value::Bool(b), _) => b.to_sql(ty, out),
            (Value::Int(i), &Type::INT2) => i16::try_from(*i)?.to_sql(ty, out),
            (Value::Int(i), &Type::INT4) => i32::try_from(*i)?.to_sql(ty, out),
            (Value::Int(i), &Type::FLOAT8) => (*i as f64).to_sql(ty, out),
            (Value::Int(i), _) => i.to_sql(ty, out),
            (Value::Float(f), &Type::FLOAT4) => (*f as f32).to_sql(ty, out),
            (Value::Float(f), _) => f.to_sql(ty, out),
            (Value::Text(s), _) => s.as_str().to_sql(ty, out),
            (Value::Bytes(b), _) => b.as_slice().to_sql(ty, out),
        }
    }

    fn accepts(_: &Type) -> bool {
        // Checked per value in `to_sql`, which reports a mismatch as a query error.
        true
    }

    to_sql_checked!();
}
