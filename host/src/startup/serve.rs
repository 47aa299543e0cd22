//! Step 9: start every module's server, wait for SIGTERM or SIGINT, drain, stop.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use arc_swap::ArcSwap;
use tokio::signal::unix::{Signal, SignalKind, signal};
use tokio::sync::watch;
use wasmtime::Engine;

use super::ConfiguredModule;
use super::prestart::Prestarted;
use crate::databases::{HostRuntime, PoolConfig};
use crate::engine::EpochTicker;
use crate::modules::{ModuleSlot, ModuleVersion};
use crate::sessions::server::ModuleServer;
use crate::sessions::stats::SessionStats;

/// Serves until a stop signal, then gives live sessions `shutdown_timeout` to finish.
pub fn serve(
    engine: &Engine,
    modules: Vec<(ConfiguredModule, Prestarted)>,
    pools: Vec<PoolConfig>,
    shutdown_timeout: Duration,
) -> Result<()> {
    // The host runtime first: it owns the pools every module's sessions query, and it
    // is stopped last.
    let host = HostRuntime::start(pools)?;
    // Watch the stop signals before serving, so an early SIGTERM still drains.
    let control = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("failed to start the control runtime")?;
    let signals = control.block_on(async { StopSignals::new() })?;
    let ticker = EpochTicker::start(engine)?;
    let (stop, stopping) = watch::channel(false);
    let mut servers = Vec::new();
    for (configured, prestarted) in modules {
        let version = ModuleVersion {
            generation: 1,
            loaded: configured.module.clone(),
            context: configured.context_with(prestarted.directories, Some(host.databases.clone())),
        };
        let listeners = prestarted.listeners;
        let slot = Arc::new(ModuleSlot {
            name: configured.module.name().to_string(),
            current: ArcSwap::from_pointee(version),
            options: configured.options,
            stats: SessionStats::default(),
        });
        servers.push(ModuleServer::start(
            engine,
            slot,
            listeners,
            stopping.clone(),
        )?);
    }
    tracing::info!("serving");

    let signal = control.block_on(signals.recv());
    tracing::info!(
        "{signal}: no longer accepting; waiting up to {}s for live sessions",
        shutdown_timeout.as_secs()
    );
    let _ = stop.send(true);
    let deadline = Instant::now() + shutdown_timeout;
    let abandoned: usize = servers.iter().map(|s| s.drain(deadline)).sum();
    if abandoned > 0 {
        tracing::warn!("{abandoned} sessions still live at the shutdown deadline: closing them");
    }
    servers.into_iter().for_each(ModuleServer::stop);
    ticker.stop();
    host.stop();
    tracing::info!("stopped");
    Ok(())
}

/// The signals the server acts on, watched from before serving starts. HUP, USR1 and ALRM
/// would kill the process by default; until configuration reload and the status report
/// exist, they are logged and otherwise ignored, so `svc -h` or a stray `kill -USR1` under
/// daemontools does not take the server down.
struct StopSignals {
    term: Signal,
    int: Signal,
    hup: Signal,
    usr1: Signal,
    alrm: Signal,
}

impl StopSignals {
    /// Starts watching; call inside a runtime.
    fn new() -> Result<Self> {
        let watch = |kind: SignalKind, name: &str| {
            signal(kind).with_context(|| format!("failed to watch {name}"))
        };
        Ok(StopSignals {
            term: watch(SignalKind::terminate(), "SIGTERM")?,
            int: watch(SignalKind::interrupt(), "SIGINT")?,
            hup: watch(SignalKind::hangup(), "SIGHUP")?,
            usr1: watch(SignalKind::user_defined1(), "SIGUSR1")?,
            alrm: watch(SignalKind::alarm(), "SIGALRM")?,
        })
    }

    /// Waits for SIGTERM or SIGINT; returns its name.
    async fn recv(mut self) -> &'static str {
        loop {
            let ignored = tokio::select! {
                _ = self.term.recv() => return "SIGTERM",
                _ = self.int.recv() => return "SIGINT",
                _ = self.hup.recv() => "SIGHUP (reload is not supported yet)",
                _ = self.usr1.recv() => "SIGUSR1 (the status report is not supported yet)",
                _ = self.alrm.recv() => "SIGALRM (the status report is not supported yet)",
            };
            tracing::warn!("ignoring {ignored}");
        }
    }
}
