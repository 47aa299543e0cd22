//! PostgreSQL pools through deadpool-postgres; values converted by the types the server
//! inferred for each placeholder and column.

use anyhow::Result;
use deadpool_postgres::{Manager, ManagerConfig, RecyclingMethod, Runtime};
use tokio_postgres::NoTls;
use tokio_postgres::types::{IsNull, ToSql, Type, to_sql_checked};

use super::{PoolConfig, QueryError, ResultBudget, Rows, Value};

/// How long to wait for a connection from the pool or a new one from the server.
const CONNECT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// A PostgreSQL pool.
pub struct PgPool {
    pool: deadpool_postgres::Pool,
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
        Ok(PgPool { pool })
    }

    /// Opens `min` connections and returns them to the pool, where they stay.
    pub async fn warm(&self, min: usize) -> Result<()> {
        let mut held = Vec::new();
        for _ in 0..min {
            held.push(self.pool.get().await?);
        }
        Ok(())
    }

    /// Runs one query on a pooled connection (`NamedPool::query` retries once).
    pub async fn query(&self, sql: &str, params: &[Value]) -> Result<Rows, QueryError> {
        let client = self
            .pool
            .get()
            .await
            .map_err(|e| QueryError::Unavailable(e.to_string()))?;
        let statement = client.prepare_cached(sql).await.map_err(classify)?;
        if statement.params().len() != params.len() {
            return Err(QueryError::Query(format!(
                "the query has {} placeholders and {} values were given",
                statement.params().len(),
                params.len()
            )));
        }
        let bound: Vec<&(dyn ToSql + Sync)> =
            params.iter().map(|v| v as &(dyn ToSql + Sync)).collect();
        let rows = client.query(&statement, &bound).await.map_err(classify)?;
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
        for row in &rows {
            let values = (0..row.len())
                .map(|i| column(row, i))
                .collect::<Result<Vec<_>, _>>()?;
            budget.row(out.rows.len(), &values)?;
            out.rows.push(values);
        }
        Ok(out)
    }
}

/// A server's refusal is a query error; anything else (closed connection) is unavailability.
fn classify(e: tokio_postgres::Error) -> QueryError {
    match e.as_db_error() {
        Some(db) => QueryError::Query(db.message().to_string()),
        None => QueryError::Unavailable(e.to_string()),
    }
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
