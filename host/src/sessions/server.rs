//! A module's server: its own worker pool (a tokio runtime sized by `min_threads` and
//! `max_threads`), an accept loop per listener gated by a `max_sessions` semaphore, and
//! its operator task.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use tokio::runtime::Runtime;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};
use wasmtime::component::Instance;
use wasmtime::{Engine, Store};

use super::slot::{ModuleSlot, SessionRecord};
use super::{describe_failure, operator, proxy, session};
use crate::capabilities::connection::Activity;
use crate::capabilities::listen::BoundListener;
use crate::capabilities::tls::TlsSource;
use crate::contract::bounded::BoundedLines;
use crate::instance::{self, InstanceState, Phase};
use crate::logging::owner::owned;
use crate::modules::load::hook_state;

/// Longest wait for a module's `report` hook.
const REPORT_HOOK_TIMEOUT: Duration = Duration::from_secs(1);

/// How long a module's report lines are given again before its hook runs anew. Any
/// module may ask for the report (`stats`) as often as it likes, and each asking ran
/// every module's hook in a fresh instance on that module's workers: work one module
/// could make all the others do without end.
pub const REPORT_LINES_REUSED: Duration = Duration::from_secs(1);

/// Most lines a module adds to the report: what it defends is the report (and the log)
/// against a module returning a flood.
const MAX_REPORT_LINES: usize = 100;

/// Longest line a module adds to the report, for the same reason.
const MAX_REPORT_LINE_BYTES: usize = 200;

/// Pause after an accept error such as EMFILE, so a full descriptor table does not spin.
const ACCEPT_ERROR_PAUSE: Duration = Duration::from_millis(100);

/// A running module.
pub struct ModuleServer {
    slot: Arc<ModuleSlot>,
    runtime: Runtime,
    sessions: Arc<Semaphore>,
    /// Set to stop this module's accept loops (the process's stop sets it too).
    accepting: Arc<watch::Sender<bool>>,
}

impl ModuleServer {
    /// Starts the module's pool, its accept loops and its operator. Call after the root
    /// drop: the pool's threads inherit the caller's credentials.
    pub fn start(
        engine: &Engine,
        slot: Arc<ModuleSlot>,
        listeners: Vec<BoundListener>,
        shutdown: watch::Receiver<bool>,
    ) -> Result<Self> {
        let options = &slot.options;
        let mut builder = tokio::runtime::Builder::new_multi_thread();
        slot.threads.hook(&mut builder);
        let runtime = builder
            .worker_threads(options.min_threads)
            .max_blocking_threads((options.max_threads - options.min_threads).max(1))
            .thread_name(format!("{}-worker", slot.name))
            .enable_all()
            .build()
            .with_context(|| {
                format!("failed to start the worker pool of module `{}`", slot.name)
            })?;
        let sessions = Arc::new(Semaphore::new(options.max_sessions));
        let accepting = Arc::new(watch::Sender::new(false));
        runtime.spawn(forward_stop(shutdown, accepting.clone()));
        for listener in listeners {
            let _guard = runtime.enter();
            let socket = tokio::net::TcpListener::from_std(listener.socket).with_context(|| {
                format!(
                    "failed to register listener {} with the runtime",
                    listener.local_addr
                )
            })?;
            runtime.spawn(accept_loop(
                engine.clone(),
                slot.clone(),
                sessions.clone(),
                socket,
                (listener.id, listener.tls),
                accepting.subscribe(),
            ));
        }
        runtime.spawn(owned(
            slot.log_share(),
            operator::supervise(engine.clone(), slot.clone()),
        ));
        Ok(ModuleServer {
            slot,
            runtime,
            sessions,
            accepting,
        })
    }

    /// Stops accepting and closes the module's listeners (the module was removed while
    /// serving); live sessions go on until [`ModuleServer::drain`] or `stop`.
    pub fn stop_accepting(&self) {
        self.accepting.send_replace(true);
    }

    /// Waits until every session has ended or `deadline` passes; returns how many were
    /// still live. Accept loops must have been told to stop.
    pub fn drain(&self, deadline: Instant) -> usize {
        let max = self.slot.options.max_sessions as u32;
        let sessions = self.sessions.clone();
        let timeout = deadline.saturating_duration_since(Instant::now());
        let drained = self.runtime.block_on(async move {
            tokio::time::timeout(timeout, sessions.acquire_many_owned(max)).await
        });
        match drained {
            Ok(_) => 0,
            Err(_) => self.slot.options.max_sessions - self.sessions.available_permits(),
        }
    }

    /// The module, for the report.
    pub fn slot(&self) -> &Arc<ModuleSlot> {
        &self.slot
    }

    /// A handle on the module's pool, to run its hooks there.
    pub fn handle(&self) -> tokio::runtime::Handle {
        self.runtime.handle().clone()
    }

    /// Stops the pool, abandoning any session still live.
    pub fn stop(self) {
        self.runtime.shutdown_timeout(Duration::from_millis(100));
    }
}

/// Passes the process's stop on to one module's accept loops.
async fn forward_stop(mut shutdown: watch::Receiver<bool>, accepting: Arc<watch::Sender<bool>>) {
    if shutdown.wait_for(|stop| *stop).await.is_ok() {
        accepting.send_replace(true);
    }
}

async fn accept_loop(
    engine: Engine,
    slot: Arc<ModuleSlot>,
    sessions: Arc<Semaphore>,
    socket: tokio::net::TcpListener,
    (listener, tls): (u32, Option<Arc<TlsSource>>),
    mut shutdown: watch::Receiver<bool>,
) {
    loop {
        // Back-pressure: take a session permit and the client's descriptor before
        // accepting, so beyond max_sessions (or max_descriptors) clients wait in the listen
        // backlog instead of being accepted and refused. At max_sessions a client that
        // arrives makes room by ending the longest-idle keep-alive session, if any.
        // `biased`, shutdown first: a client that connects after `stop_accepting` returned
        // must never be served, even when its connection and the stop are ready together.
        let (permit, waiting) = tokio::select! {
            biased;
            _ = shutdown.wait_for(|stop| *stop) => return,
            taken = session_permit(&slot, &sessions, &socket) => taken,
        };
        let meter = slot.current.load().context.holdings.meter.clone();
        let descriptor = tokio::select! {
            biased;
            _ = shutdown.wait_for(|stop| *stop) => return,
            descriptor = meter.descriptors.take() => descriptor,
        };
        let accepted = match waiting {
            Some(accepted) => accepted,
            None => tokio::select! {
                biased;
                _ = shutdown.wait_for(|stop| *stop) => return,
                accepted = socket.accept() => accepted,
            },
        };
        let (stream, peer) = match accepted {
            Ok(accepted) => accepted,
            Err(e) => {
                tracing::warn!(module = %slot.name, "accept failed: {e}");
                tokio::time::sleep(ACCEPT_ERROR_PAUSE).await;
                continue;
            }
        };
        let version = slot.current.load_full();
        let record = SessionRecord {
            peer,
            started: Instant::now(),
            generation: version.generation,
        };
        let record = match slot.records.alloc(record) {
            Ok(record) => record,
            Err(full) => {
                // The permit bounds live sessions to the heap's maximum, so this is a bug.
                tracing::error!(module = %slot.name, "{full}: closing the connection");
                continue;
            }
        };
        // The configuration of the moment: a reload changes it for new handshakes only.
        let tls = tls.as_ref().map(|source| source.config());
        let (engine, slot) = (engine.clone(), slot.clone());
        let (registration, live) = slot.live.register(Activity::new());
        tokio::spawn(owned(slot.log_share(), async move {
            let options = slot.options.clone();
            let mut stream = stream;
            let client =
                proxy::client_of(&mut stream, peer, &options.proxy, &slot.name, &slot.stats);
            let Some(peer) = client.await else {
                return;
            };
            record.with(|r| r.peer = peer);
            session::serve(
                engine,
                version,
                options,
                &slot.stats,
                (stream, peer, live),
                (listener, tls),
            )
            .await;
            drop((registration, record));
            drop((descriptor, permit));
        }));
    }
}

/// An accepted connection, or why accepting failed.
type Accepted = std::io::Result<(tokio::net::TcpStream, std::net::SocketAddr)>;

/// A session permit; at `max_sessions`, waits for one, and when a client arrives first,
/// accepts it and makes room by ending the longest-idle session between requests (the
/// client then waits for that session's permit, accepted). Returns the accepted client
/// if there is one.
async fn session_permit(
    slot: &ModuleSlot,
    sessions: &Arc<Semaphore>,
    socket: &tokio::net::TcpListener,
) -> (OwnedSemaphorePermit, Option<Accepted>) {
    let acquire = || async {
        // The semaphore is never closed.
        sessions
            .clone()
            .acquire_owned()
            .await
            .expect("the semaphore is never closed")
    };
    if let Ok(permit) = sessions.clone().try_acquire_owned() {
        return (permit, None);
    }
    let accepted = tokio::select! {
        permit = acquire() => return (permit, None),
        accepted = socket.accept() => accepted,
    };
    if accepted.is_err() {
        // No client came (EMFILE, say): no idle session is ended for it.
        return (acquire().await, Some(accepted));
    }
    match slot.live.reclaim_longest_idle() {
        Some(idle) => {
            tracing::debug!(module = %slot.name, idle_ms = idle.as_millis() as u64, "at max_sessions: ending the longest-idle keep-alive session")
        }
        None => {
            tracing::debug!(module = %slot.name, "at max_sessions and no session between requests: the new client waits")
        }
    }
    (acquire().await, Some(accepted))
}

/// Calls `report` and keeps the first [`MAX_REPORT_LINES`] lines, each cut to
/// [`MAX_REPORT_LINE_BYTES`]: no more of the result is ever copied out of guest memory
/// ([`BoundedLines`]).
async fn report_lines(
    store: &mut Store<InstanceState>,
    instance: &Instance,
) -> Result<Vec<String>> {
    type Lines = BoundedLines<MAX_REPORT_LINES, MAX_REPORT_LINE_BYTES>;
    let report = instance.get_typed_func::<(), (Lines,)>(&mut *store, "report")?;
    let (BoundedLines(lines),) = report.call_async(&mut *store, ()).await?;
    Ok(lines)
}

/// Runs the module's `report` hook in a fresh instance on the module's own pool (`pool`),
/// waiting at most [`REPORT_HOOK_TIMEOUT`], after which the hook is aborted and its
/// instance given back: a slow or broken hook costs its own lines only. One hook per
/// module runs at a time, whoever asks for the report (SIGUSR1, any module's `stats`), so
/// a module cannot pile up instances by making its hook slow; and its lines are given
/// again for [`REPORT_LINES_REUSED`], so no module can make the others run their hooks
/// without end by asking for the report in a loop.
pub async fn report_hook_lines(
    engine: &Engine,
    slot: &Arc<ModuleSlot>,
    pool: &tokio::runtime::Handle,
) -> Vec<String> {
    let kept = slot
        .report_lines
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .as_ref()
        .filter(|(at, _)| at.elapsed() < REPORT_LINES_REUSED)
        .map(|(_, lines)| lines.clone());
    if let Some(lines) = kept {
        return lines;
    }
    let lines = run_report_hook(engine, slot, pool).await;
    *slot.report_lines.lock().unwrap_or_else(|p| p.into_inner()) =
        Some((Instant::now(), lines.clone()));
    lines
}

/// Runs the hook (see [`report_hook_lines`]).
async fn run_report_hook(
    engine: &Engine,
    slot: &Arc<ModuleSlot>,
    pool: &tokio::runtime::Handle,
) -> Vec<String> {
    let Ok(running) = slot.report_hook.clone().try_acquire_owned() else {
        return vec!["(the report hook is still running for another caller)".into()];
    };
    let (engine, slot) = (engine.clone(), slot.clone());
    let mut hook = pool.spawn(owned(slot.log_share(), async move {
        let _running = running;
        let version = slot.current.load_full();
        let state = hook_state(version.context.clone(), Phase::Unprivileged)?;
        let (mut store, instance) = instance::create_bare(&engine, version.pre(), state).await?;
        report_lines(&mut store, &instance).await
    }));
    let answer = tokio::time::timeout(REPORT_HOOK_TIMEOUT, &mut hook).await;
    if answer.is_err() {
        hook.abort();
    }
    match answer {
        Ok(Ok(Ok(lines))) => lines,
        Ok(Ok(Err(e))) => vec![format!(
            "(the report hook failed: {})",
            describe_failure(&e)
        )],
        Ok(Err(e)) => vec![format!("(the report hook failed: {e})")],
        Err(_) => vec![format!(
            "(the report hook did not answer within {}s)",
            REPORT_HOOK_TIMEOUT.as_secs()
        )],
    }
}
