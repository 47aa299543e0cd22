//! One client session: a fresh instance of the module version current at accept time runs
//! the `session` hook on the connection, under the session's CPU budget, idle timeout and
//! the module's limits. Whatever happens inside, only this connection is affected.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Result;
use tokio::net::TcpStream;
use wasmtime::Engine;

use super::describe_failure;
use super::limits::{Limit, LimitFlag};
use super::options::SessionOptions;
use super::stats::SessionStats;
use crate::guest_host::connection::{Activity, ClientConnection};
use crate::guest_host::state::{InstanceState, Phase};
use crate::modules::{ModuleVersion, instance};

/// How a session ended.
enum Outcome {
    Ok,
    GuestError(String),
    Trap(anyhow::Error),
    IdleTimeout(Duration),
    /// Its module version was replaced and `swap_drain_timeout` passed.
    Drained,
    /// It lost to one of the module's limits; the failure it ended with, if any.
    Limit(Limit, Option<anyhow::Error>),
}

/// Serves one connection to its end.
pub async fn serve(
    engine: Engine,
    version: Arc<ModuleVersion>,
    options: SessionOptions,
    stats: &SessionStats,
    socket: TcpStream,
    peer: SocketAddr,
    (listener, tls): (u32, Option<Arc<rustls::ServerConfig>>),
) {
    SessionStats::bump(&stats.started);
    let module = version.context.name.clone();
    let outcome = run(
        &engine,
        &version,
        &options,
        stats,
        socket,
        peer,
        (listener, tls),
    )
    .await
    .unwrap_or_else(Outcome::Trap);
    match outcome {
        Outcome::Ok => {
            SessionStats::bump(&stats.ok);
            tracing::debug!(module, %peer, "session ended");
        }
        Outcome::GuestError(message) => {
            SessionStats::bump(&stats.failed);
            tracing::info!(module, %peer, "session ended with an error: {message}");
        }
        Outcome::Trap(error) => {
            SessionStats::bump(&stats.trapped);
            tracing::warn!(module, %peer, "session trapped: {}", describe_failure(&error));
        }
        Outcome::IdleTimeout(after) => {
            SessionStats::bump(&stats.timed_out);
            tracing::info!(module, %peer, "session idle for {}s: closed", after.as_secs());
        }
        Outcome::Limit(limit, failure) => {
            let limits = &version.context.limits;
            limits.count(limit);
            let setting = limits.setting(limit);
            match failure {
                Some(error) => {
                    SessionStats::bump(&stats.trapped);
                    tracing::warn!(module, %peer, "session trapped: limit `{setting}` hit: {}", describe_failure(&error));
                }
                None => {
                    SessionStats::bump(&stats.timed_out);
                    tracing::warn!(module, %peer, "session ended: limit `{setting}` hit");
                }
            }
        }
        Outcome::Drained => {
            SessionStats::bump(&stats.timed_out);
            tracing::info!(
                module,
                %peer,
                generation = version.generation,
                "session closed: its module version was replaced and swap_drain_timeout passed"
            );
        }
    }
}

async fn run(
    engine: &Engine,
    version: &ModuleVersion,
    options: &SessionOptions,
    stats: &SessionStats,
    socket: TcpStream,
    peer: SocketAddr,
    (listener, tls): (u32, Option<Arc<rustls::ServerConfig>>),
) -> Result<Outcome> {
    let activity = Activity::new();
    let mut state = InstanceState::new(version.context.clone(), Phase::Unprivileged);
    state.peer = Some(peer);
    state.waits = stats.waits.clone();
    state.cpu_tick_budget = instance::ticks(options.session_cpu);
    let hit = state.limiter.hit.clone();
    let (mut store, module) = match instance::create(engine, version.pre(), state).await {
        Ok(created) => created,
        Err(error) => return Ok(lost_to_limit(error, &hit, false)),
    };
    let conn = ClientConnection::new(socket, peer, listener, activity.clone(), tls)?;
    let transport = conn.transport();
    let conn = store.data_mut().table.push(conn)?;
    let outcome = tokio::select! {
        result = module.call_session(&mut store, conn) => result.map(|r| match r {
            Ok(()) => Outcome::Ok,
            Err(message) => Outcome::GuestError(message),
        }),
        () = idle(&activity, options.idle_timeout) => Ok(Outcome::IdleTimeout(options.idle_timeout)),
        () = wall(options.limits.wall) => Ok(Outcome::Limit(Limit::Wall, None)),
        () = version.drained() => Ok(Outcome::Drained),
    };
    stats.count_tls(transport.handshake());
    let state = store.data();
    let cpu_spent = state.cpu_ticks > state.cpu_tick_budget;
    Ok(outcome
        .map_err(anyhow::Error::from)
        .unwrap_or_else(|error| lost_to_limit(error, &hit, cpu_spent)))
}

/// A session that failed with `error`: lost to a limit if the limiter or a host call
/// recorded one, if its CPU budget ran out, or if its resource table was full; else a
/// plain trap.
fn lost_to_limit(error: anyhow::Error, hit: &LimitFlag, cpu_spent: bool) -> Outcome {
    let limit = hit.get().or_else(|| {
        let interrupted = error
            .chain()
            .any(|e| e.downcast_ref::<wasmtime::Trap>() == Some(&wasmtime::Trap::Interrupt));
        let table_full = error.chain().any(|e| {
            matches!(
                e.downcast_ref::<wasmtime::component::ResourceTableError>(),
                Some(wasmtime::component::ResourceTableError::Full)
            )
        });
        if cpu_spent && interrupted {
            Some(Limit::Cpu)
        } else if table_full {
            Some(Limit::Handles)
        } else {
            None
        }
    });
    match limit {
        Some(limit) => Outcome::Limit(limit, Some(error)),
        None => Outcome::Trap(error),
    }
}

/// Resolves when the session has lasted `limit` (never without one).
async fn wall(limit: Option<Duration>) {
    match limit {
        Some(limit) => tokio::time::sleep(limit).await,
        None => std::future::pending().await,
    }
}

/// Resolves once the connection has moved no byte for `limit`.
async fn idle(activity: &Activity, limit: Duration) {
    loop {
        let idle = activity.idle_for();
        if idle >= limit {
            return;
        }
        tokio::time::sleep(limit - idle).await;
    }
}
