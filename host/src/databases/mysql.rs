//! MySQL and MariaDB pools through mysql_async, with positional (`?`) parameters.

use anyhow::Result;
use mysql_async::consts::ColumnFlags;
use mysql_async::prelude::Queryable;
use mysql_async::{OptsBuilder, Params, PoolConstraints, PoolOpts};

use super::{PoolConfig, QueryError, ResultBudget, Rows, Value};

/// MySQL's character set number for binary strings: such columns are bytes, not text.
const BINARY_CHARSET: u16 = 63;

/// A MySQL pool.
pub struct MyPool {
    pool: mysql_async::Pool,
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
            .pool_opts(PoolOpts::default().with_constraints(constraints));
        if let Some(socket) = &config.socket {
            opts = opts.socket(Some(socket.clone()));
        }
        MyPool {
            pool: mysql_async::Pool::new(opts),
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
        let mut conn = self
            .pool
            .get_conn()
            .await
            .map_err(|e| QueryError::Unavailable(e.to_string()))?;
        let bound = if params.is_empty() {
            Params::Empty
        } else {
            Params::Positional(params.iter().map(to_mysql).collect())
        };
        let mut result = conn.exec_iter(sql, bound).await.map_err(classify)?;
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
        while let Some(row) = result.next().await.map_err(classify)? {
            let values: Vec<Value> = row
                .unwrap()
                .into_iter()
                .zip(&binary)
                .map(|(v, binary)| from_mysql(v, *binary))
                .collect();
            budget.row(out.rows.len(), &values)?;
            out.rows.push(values);
        }
        Ok(out)
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
