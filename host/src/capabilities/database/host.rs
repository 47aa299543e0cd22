//! `serverkit:module/database`: a guest's queries on the pools its section names, on a view
//! of the instance. The grant is checked on every call; the query runs on the host runtime
//! (`crate::databases`).

use std::sync::Arc;

use wasmtime::component::HasData;

use super::DatabaseGrant;
use crate::contract::bindings::database::{Driver, Error, Host, Rows, Value};
use crate::databases::{self, Databases, MAX_PARAMS, MAX_QUERY_BYTES, QueryError};
use crate::meter::{Channel, WaitChannels};

/// What the database interface reaches of an instance.
pub struct DatabaseView<'a> {
    /// The module's name, for messages.
    pub module: &'a str,
    /// The pools its section names.
    pub grant: &'a DatabaseGrant,
    /// The personality's pools, once open (after the privilege drop).
    pub pools: Option<&'a Arc<Databases>>,
    /// Where its waits are counted.
    pub waits: &'a WaitChannels,
}

/// The database interface, for `add_to_linker`.
pub struct Database;

impl HasData for Database {
    type Data<'a> = DatabaseView<'a>;
}

impl Host for DatabaseView<'_> {
    async fn driver_of(&mut self, pool: String) -> wasmtime::Result<Result<Driver, Error>> {
        Ok(self.granted_pool(&pool).map(|p| match p.config.driver {
            databases::Driver::Mysql => Driver::Mysql,
            databases::Driver::Postgres => Driver::Postgres,
            databases::Driver::Sqlite => Driver::Sqlite,
        }))
    }

    async fn query(
        &mut self,
        pool: String,
        sql: String,
        params: Vec<Value>,
    ) -> wasmtime::Result<Result<Rows, Error>> {
        if let Err(e) = self.granted_pool(&pool) {
            return Ok(Err(e));
        }
        if sql.len() > MAX_QUERY_BYTES || params.len() > MAX_PARAMS {
            return Ok(Err(Error::TooLarge(format!(
                "queries are at most {MAX_QUERY_BYTES} bytes with {MAX_PARAMS} parameters"
            ))));
        }
        let Some(dbs) = self.pools.cloned() else {
            return Ok(Err(Error::Unavailable(
                "database pools are not open yet".into(),
            )));
        };
        let params = params.into_iter().map(from_wit).collect();
        let waiting = self.waits.enter(Channel::DatabaseQuery);
        let result = dbs.query(&pool, self.module, sql, params).await;
        drop(waiting);
        Ok(match result {
            Ok(rows) => Ok(Rows {
                columns: rows.columns,
                rows: rows
                    .rows
                    .into_iter()
                    .map(|r| r.into_iter().map(to_wit).collect())
                    .collect(),
            }),
            Err(e) => Err(match e {
                QueryError::NoSuchPool(p) => Error::NoSuchPool(p),
                QueryError::Unavailable(m) => Error::Unavailable(m),
                QueryError::Query(m) => Error::QueryFailed(m),
                QueryError::TooLarge(m) => Error::TooLarge(m),
            }),
        })
    }
}

impl DatabaseView<'_> {
    /// The pool `name` if a `database-ref` option of this module's section names it.
    fn granted_pool(&self, name: &str) -> Result<Arc<databases::NamedPool>, Error> {
        let not_granted = || {
            Error::NoSuchPool(format!(
                "`{name}` is not named by a database option of section `{}`",
                self.module
            ))
        };
        if !self.grant.pools.iter().any(|d| d == name) {
            return Err(not_granted());
        }
        match self.pools {
            Some(dbs) => dbs.get(name).ok_or_else(not_granted),
            None => Err(Error::Unavailable("database pools are not open yet".into())),
        }
    }
}

fn from_wit(value: Value) -> databases::Value {
    match value {
        Value::Null => databases::Value::Null,
        Value::Boolean(b) => databases::Value::Bool(b),
        Value::Integer(i) => databases::Value::Int(i),
        Value::Float(f) => databases::Value::Float(f),
        Value::Text(s) => databases::Value::Text(s),
        Value::Bytes(b) => databases::Value::Bytes(b),
    }
}

fn to_wit(value: databases::Value) -> Value {
    match value {
        databases::Value::Null => Value::Null,
        databases::Value::Bool(b) => Value::Boolean(b),
        databases::Value::Int(i) => Value::Integer(i),
        databases::Value::Float(f) => Value::Float(f),
        databases::Value::Text(s) => Value::Text(s),
        databases::Value::Bytes(b) => Value::Bytes(b),
    }
}
