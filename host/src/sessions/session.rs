//! One client session: a fresh instance of the module version current at accept time runs
//! the `session` hook on the connection, under the session's CPU budget, idle timeout and
//! the module's limits. Whatever happens inside, only this connection is affected. A
//! session past `session_wall_seconds` whose module marks its request boundaries ends at
//! its next wait between requests (within [`WALL_GRACE`]), not in the middle of an answer;
//! one the host reclaims to make room at `max_sessions` is always between requests.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Result;
use tokio::net::TcpStream;
use wasmtime::Engine;

use super::describe_failure;
use super::live::LiveSession;
use super::stats::SessionStats;
use crate::capabilities::connection::{Activity, ClientConnection};
use crate::capabilities::log::{MAX_LOG_MESSAGE_BYTES, truncate};
use crate::instance::{self, InstanceState, Phase};
use crate::meter::{CpuBudget, Limit, Refill};
use crate::modules::ModuleVersion;
use crate::options::session::SessionOptions;

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
    /// The host ended it, idle between requests, to make room for a new client.
    Reclaimed,
}

/// Longest a session past `session_wall_seconds` may still take to reach a wait between
/// requests before it is ended where it is.
pub const WALL_GRACE: Duration = Duration::from_secs(30);

/// Serves one connection to its end.
pub async fn serve(
    engine: Engine,
    version: Arc<ModuleVersion>,
    options: SessionOptions,
    stats: &SessionStats,
    (socket, peer, live): (TcpStream, SocketAddr, Arc<LiveSession>),
    (listener, tls): (u32, Option<Arc<rustls::ServerConfig>>),
) {
    SessionStats::bump(&stats.started);
    let module = version.context.name.clone();
    let outcome = run(
        &engine,
        &version,
        &options,
        stats,
        (socket, peer, &live),
        (listener, tls),
    )
    .await
    .unwrap_or_else(Outcome::Trap);
    record_end(outcome, (&module, peer), &version, stats);
}

/// Counts how a session ended and logs it.
fn record_end(
    outcome: Outcome,
    (module, peer): (&str, SocketAddr),
    version: &ModuleVersion,
    stats: &SessionStats,
) {
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
            let setting = version.context.holdings.meter.setting(limit);
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
        Outcome::Reclaimed => {
            SessionStats::bump(&stats.reclaimed);
            tracing::debug!(module, %peer, "idle keep-alive session ended to make room at max_sessions");
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
    (socket, peer, live): (TcpStream, SocketAddr, &LiveSession),
    (listener, tls): (u32, Option<Arc<rustls::ServerConfig>>),
) -> Result<Outcome> {
    let activity = live.activity.clone();
    let cpu = CpuBudget::new(options.budgets.cpu, Refill::PerWait);
    let Some(mut state) = InstanceState::new(version.context.clone(), Phase::Unprivileged, cpu)
    else {
        return Ok(Outcome::Limit(Limit::HostMemory, None));
    };
    state.peer = Some(peer);
    let verdict = state.meter.verdict();
    // Boxed: instantiation's future is about 1 KiB, and unboxed it would widen the session
    // task, which lives as long as the session, idle or not (docs/benchmarks.md).
    let created = Box::pin(instance::create(engine, version.pre(), state)).await;
    let (mut store, module) = match created {
        Ok(created) => created,
        Err(error) => {
            let limit = verdict.of(&error);
            return Ok(lost_to_limit(error, limit));
        }
    };
    let conn = ClientConnection::new(socket, peer, listener, activity.clone(), tls)?;
    let transport = conn.transport();
    let conn = store.data_mut().table.push(conn)?;
    let outcome = tokio::select! {
        result = module.call_session(&mut store, conn) => result.map(|r| match r {
            Ok(()) => Outcome::Ok,
            // Logged: only the first MAX_LOG_MESSAGE_BYTES of what the guest returned.
            Err(message) => Outcome::GuestError(truncate(&message, MAX_LOG_MESSAGE_BYTES).into()),
        }),
        () = idle(&activity, options.idle_timeout) => Ok(Outcome::IdleTimeout(options.idle_timeout)),
        () = wall(options.budgets.wall, &activity) => Ok(Outcome::Limit(Limit::Wall, None)),
        () = live.reclaimed() => Ok(Outcome::Reclaimed),
        () = version.drained() => Ok(Outcome::Drained),
    };
    stats.count_tls(transport.handshake());
    if let Ok(Outcome::Limit(limit, None)) = &outcome {
        store.data().meter.hit(*limit);
    }
    Ok(outcome
        .map_err(anyhow::Error::from)
        .unwrap_or_else(|error| {
            let limit = verdict.of(&error);
            lost_to_limit(error, limit)
        }))
}

/// A session that failed with `error`: lost to `limit` if the meter's verdict names one,
/// else a plain trap.
fn lost_to_limit(error: anyhow::Error, limit: Option<Limit>) -> Outcome {
    match limit {
        Some(limit) => Outcome::Limit(limit, Some(error)),
        None => Outcome::Trap(error),
    }
}

/// Resolves when the session has lasted `limit` (never without one); for a protocol that
/// marks its request boundaries (`connection.between-requests`), once it then reaches one,
/// or [`WALL_GRACE`] passed.
async fn wall(limit: Option<Duration>, activity: &Activity) {
    let Some(limit) = limit else {
        return std::future::pending().await;
    };
    tokio::time::sleep(limit).await;
    let grace = tokio::time::Instant::now() + WALL_GRACE;
    while activity.marks_boundaries()
        && !activity.between_requests()
        && tokio::time::Instant::now() < grace
    {
        tokio::time::sleep(Duration::from_millis(50)).await;
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
