//! The host runtime: a small multi-threaded tokio runtime, started after the privilege
//! drop, that owns the database pools' connections and background tasks.
//!
//! Why a runtime of its own: tokio I/O objects belong to the runtime that created them,
//! and a pool is shared by every module's sessions, each module on its own worker
//! runtime. The host runtime outlives them all (it is stopped last), and a session's
//! query is a task spawned on it that the session awaits from its own runtime.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;

use anyhow::{Context, Result};

use super::share::Shares;
use super::{Databases, Driver, NamedPool, Pool, PoolConfig, RETRY_INTERVAL};
use super::{mysql, postgres, sqlite};

/// Worker threads of the host runtime: pool I/O is light, the heavy work is the servers'.
const HOST_WORKER_THREADS: usize = 1;
/// Threads for blocking database calls (SQLite) at most.
const HOST_BLOCKING_THREADS: usize = 16;

/// The runtime and the pools on it.
pub struct HostRuntime {
    runtime: tokio::runtime::Runtime,
    /// The pools, shared with every module instance.
    pub databases: Arc<Databases>,
}

impl HostRuntime {
    /// Starts the runtime and creates every pool on it, shared among the modules
    /// `named_by` lists for it ([`super::share`]). Never fails on a database that is
    /// down: its pool keeps retrying in the background.
    pub fn start(
        configs: Vec<PoolConfig>,
        named_by: &HashMap<String, Vec<String>>,
    ) -> Result<Self> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(HOST_WORKER_THREADS)
            .max_blocking_threads(HOST_BLOCKING_THREADS)
            .thread_name("host")
            .enable_all()
            .build()
            .context("failed to start the host runtime")?;
        let handle = runtime.handle().clone();
        let mut pools = HashMap::new();
        for config in configs {
            let name = config.name.clone();
            // mysql_async starts its pool's background task where it is created.
            let pool = runtime
                .block_on(async { create(&config) })
                .with_context(|| format!("failed to set up database pool `{name}`"))?;
            let modules = named_by.get(&name).cloned().unwrap_or_default();
            let pool = Arc::new(NamedPool {
                name: name.clone(),
                shares: Shares::new(config.max, modules),
                config,
                pool,
                errors: AtomicU64::new(0),
            });
            runtime.spawn(keep_minimum(pool.clone()));
            pools.insert(name, pool);
        }
        let databases = Arc::new(Databases {
            pools,
            runtime: handle,
        });
        Ok(HostRuntime { runtime, databases })
    }

    /// A handle on the runtime, for the host's own tasks (the metrics endpoint).
    pub fn handle(&self) -> tokio::runtime::Handle {
        self.runtime.handle().clone()
    }

    /// Stops the runtime: the pools' connections close.
    pub fn stop(self) {
        drop(self.databases);
        self.runtime
            .shutdown_timeout(std::time::Duration::from_secs(2));
    }
}

fn create(config: &PoolConfig) -> Result<Pool> {
    Ok(match config.driver {
        Driver::Postgres => Pool::Postgres(postgres::PgPool::new(config)?),
        Driver::Mysql => Pool::Mysql(mysql::MyPool::new(config)),
        Driver::Sqlite => Pool::Sqlite(sqlite::LitePool::new(config)),
    })
}

/// Opens `pool_min` connections, retrying until the server answers: a database that is
/// down at startup does not stop the server.
async fn keep_minimum(pool: Arc<NamedPool>) {
    let mut logged_down = false;
    loop {
        let result = match &pool.pool {
            Pool::Postgres(p) => p.warm(pool.config.min).await,
            Pool::Mysql(p) => p.warm(pool.config.min).await,
            Pool::Sqlite(p) => p.warm(pool.config.min).await,
        };
        match result {
            Ok(()) => {
                tracing::info!(pool = %pool.name, connections = pool.config.min, "database pool ready");
                return;
            }
            Err(e) => {
                pool.errors
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if !logged_down {
                    tracing::error!(pool = %pool.name, "database unreachable, retrying every {}s: {e:#}", RETRY_INTERVAL.as_secs());
                    logged_down = true;
                }
                tokio::time::sleep(RETRY_INTERVAL).await;
            }
        }
    }
}
