//! Step 9: start every module's server and the metrics endpoint, print the status report on
//! SIGUSR1 or SIGALRM, hot-swap changed modules (file watcher) and configuration (SIGHUP),
//! and on SIGTERM or SIGINT drain and stop.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use tokio::signal::unix::{Signal, SignalKind, signal};
use tokio::sync::watch;
use wasmtime::Engine;

use super::HeldModule;
use super::membership::{Serving, launch};
use super::reload::{Reloader, Request};
use crate::capabilities::listen::BoundListener;
use crate::databases::{HostRuntime, PoolConfig};
use crate::engine::EpochTicker;
use crate::heaps::HeapRegistry;
use crate::logging::Syslog;
use crate::report::Reporter;
use crate::sessions::running::RunningServers;
use crate::sessions::server::ModuleServer;

/// Serves until a stop signal, then gives live sessions `shutdown_timeout` to finish.
/// `reloader` (whose slots are filled here) carries out hot swaps meanwhile.
pub fn serve(
    engine: &Engine,
    mut reloader: Reloader,
    (modules, metrics): (Vec<(HeldModule, Vec<BoundListener>)>, Option<BoundListener>),
    pools: Vec<PoolConfig>,
    shutdown_timeout: Duration,
    heaps: HeapRegistry,
    syslog: Option<Arc<Syslog>>,
) -> Result<()> {
    // Hot swap's tools first: a failure to make them stops startup before any client.
    let reload_tools = reloader.make_tools()?;
    // The host runtime next: it owns the pools every module's sessions query, and it is
    // stopped last.
    let host = HostRuntime::start(pools, &modules_by_pool(&modules))?;
    // Watch the stop signals before serving, so an early SIGTERM still drains.
    let control = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("failed to start the control runtime")?;
    let mut signals = control.block_on(async { Signals::new() })?;
    let ticker = EpochTicker::start(engine)?;
    let (stop, stopping) = watch::channel(false);
    let servers = Arc::new(RunningServers::default());
    let reporter = Arc::new(Reporter {
        engine: engine.clone(),
        servers: servers.clone(),
        heaps: heaps.clone(),
        syslog,
        databases: Some(host.databases.clone()),
    });
    if let Some(listener) = metrics {
        crate::metrics::serve(listener, reporter.clone(), &host.handle())?;
    }
    let serving = Serving {
        servers: servers.clone(),
        heaps,
        databases: host.databases.clone(),
        report: reporter.clone(),
        stopping,
    };
    let mut slots = Vec::new();
    for (held, listeners) in modules {
        slots.push(launch(&serving, engine, held, listeners)?);
    }
    reloader.slots = slots;
    reloader.serving = Some(serving);
    let modules_dir = reloader.personality.modules_dir();
    let baseline = std::mem::take(&mut reloader.files_at_load);
    let reload = reloader.start(reload_tools)?;
    let files_changed = reload.clone();
    crate::modules::watch::spawn(modules_dir, baseline, move || {
        files_changed.send(Request::Files).is_ok()
    })?;
    tracing::info!("serving");

    let stop_signal = loop {
        match control.block_on(signals.recv()) {
            Event::Stop(name) => break name,
            Event::Report(name) => {
                tracing::info!("{name}: status report follows");
                let text = control.block_on(reporter.render());
                crate::logging::print_report(&text, reporter.syslog.as_deref());
            }
            Event::Reload(name) => {
                tracing::info!("{name}: rechecking every module and the configuration");
                let _ = reload.send(Request::All);
                // New handshakes use re-read certificates; a bad pair keeps the old one.
                for error in crate::capabilities::tls::reload_all() {
                    tracing::warn!(
                        "{name}: a certificate was not reloaded, the old one stays: {error:#}"
                    );
                }
            }
        }
    };
    tracing::info!(
        "{stop_signal}: no longer accepting; waiting up to {}s for live sessions",
        shutdown_timeout.as_secs()
    );
    let _ = stop.send(true);
    let deadline = Instant::now() + shutdown_timeout;
    let servers = servers.take_all();
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

/// What a signal asks for.
enum Event {
    Stop(&'static str),
    Report(&'static str),
    Reload(&'static str),
}

/// The signals the server acts on. USR1 prints the report, as ServerKit's did; ALRM too,
/// because daemontools 0.76's `svc` cannot send USR1 but can send ALRM (`svc -a`). HUP
/// (`svc -h`) rereads the configuration and rechecks every module file.
struct Signals {
    term: Signal,
    int: Signal,
    hup: Signal,
    usr1: Signal,
    alrm: Signal,
}

impl Signals {
    /// Starts watching; call inside a runtime.
    fn new() -> Result<Self> {
        let watch = |kind: SignalKind, name: &str| {
            signal(kind).with_context(|| format!("failed to watch {name}"))
        };
        Ok(Signals {
            term: watch(SignalKind::terminate(), "SIGTERM")?,
            int: watch(SignalKind::interrupt(), "SIGINT")?,
            hup: watch(SignalKind::hangup(), "SIGHUP")?,
            usr1: watch(SignalKind::user_defined1(), "SIGUSR1")?,
            alrm: watch(SignalKind::alarm(), "SIGALRM")?,
        })
    }

    /// Waits for the next signal.
    async fn recv(&mut self) -> Event {
        tokio::select! {
            _ = self.term.recv() => Event::Stop("SIGTERM"),
            _ = self.int.recv() => Event::Stop("SIGINT"),
            _ = self.usr1.recv() => Event::Report("SIGUSR1"),
            _ = self.alrm.recv() => Event::Report("SIGALRM"),
            _ = self.hup.recv() => Event::Reload("SIGHUP"),
        }
    }
}

/// The modules each pool is named by, for their shares of it.
fn modules_by_pool(modules: &[(HeldModule, Vec<BoundListener>)]) -> HashMap<String, Vec<String>> {
    let mut by_pool: HashMap<String, Vec<String>> = HashMap::new();
    for (held, _) in modules {
        for pool in &held.context.holdings.grants.databases.pools {
            by_pool
                .entry(pool.clone())
                .or_default()
                .push(held.context.name.clone());
        }
    }
    by_pool
}
