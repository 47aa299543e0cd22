//! The host log: one event per line on stderr (for multilog), level from `RUST_LOG`
//! (default `info`), colour only on a terminal; or, with `bypass_libc_syslog = true`,
//! every event as a syslog datagram over UDP instead (`syslog`). Both sinks write the
//! same text for an event, with every control character escaped ([`escape`]): whatever a
//! module or a client puts in an event, it stays one line and cannot drive a terminal.
//! Stderr is written from a queue by one thread once serving ([`queue`]), so no thread
//! waits for a reader that stalls; a module's lines may hold only its share of that
//! queue, and of syslog's ([`owner`]).

mod escape;
mod event_text;
mod log_bridge;
pub mod owner;
pub mod queue;
pub mod stderr;
pub mod syslog;

use std::io::IsTerminal;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};

use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::{EnvFilter, Layer as _};

pub use escape::{escape, escape_into};
use queue::LineQueue;
pub use syslog::Syslog;

/// The queue in front of stderr ([`queue`]), made at first use (by [`init`]).
static STDERR: OnceLock<LineQueue> = OnceLock::new();

fn stderr_queue() -> &'static LineQueue {
    STDERR.get_or_init(|| LineQueue::new(Box::new(std::io::stderr())))
}

/// Starts writing stderr from its own thread, so no thread that logs waits for the pipe.
/// Call once the process may have more threads (after the privilege drop).
pub fn start_writer() -> anyhow::Result<()> {
    stderr_queue().start()
}

/// Waits until every queued stderr line is written: call before the process exits.
pub fn flush() {
    if let Some(queue) = STDERR.get() {
        queue.flush();
    }
}

/// Stderr lines dropped because its reader fell behind (the report shows them).
pub fn lines_dropped() -> u64 {
    STDERR.get().map_or(0, LineQueue::dropped)
}

/// Where events go, switchable once the configuration is read.
#[derive(Clone, Default)]
pub struct LogSwitch {
    syslog: Arc<arc_swap::ArcSwapOption<Syslog>>,
    stderr_off: Arc<AtomicBool>,
}

impl LogSwitch {
    /// Sends every event from now on to `syslog` instead of stderr.
    pub fn to_syslog(&self, syslog: Arc<Syslog>) {
        self.syslog.store(Some(syslog));
        self.stderr_off.store(true, Ordering::Relaxed);
    }

    /// The syslog sink, once configured.
    pub fn syslog(&self) -> Option<Arc<Syslog>> {
        self.syslog.load_full()
    }
}

/// Installs the log. Call once, first thing in `main`; keep the switch for later.
pub fn init() -> LogSwitch {
    let switch = LogSwitch::default();
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let stderr_off = switch.stderr_off.clone();
    let stderr = stderr::layer(stderr_queue(), std::io::stderr().is_terminal()).with_filter(
        tracing_subscriber::filter::filter_fn(move |_| !stderr_off.load(Ordering::Relaxed)),
    );
    let subscriber = tracing_subscriber::registry()
        .with(filter)
        .with(stderr)
        .with(syslog::SyslogLayer::new(switch.syslog.clone()));
    // Not `SubscriberInitExt::init`: it would install tracing-log's own bridge for the
    // `log` crate, and ours lowers rustls's warnings (`log_bridge`).
    tracing::subscriber::set_global_default(subscriber)
        .expect("init runs once, first thing in main, before any other subscriber");
    log_bridge::install().expect("no other `log` logger is installed before init");
    switch
}

/// Prints the status report: on stderr in one write (so log lines cannot interleave), and,
/// with the syslog bypass, to the collector too, one datagram per line
/// ([`Syslog::report`]). Every line is escaped, as events are: a module's `report` hook
/// writes some of them.
pub fn print_report(text: &str, syslog: Option<&Syslog>) {
    let mut escaped = String::with_capacity(text.len());
    for line in text.lines() {
        escape_into(&mut escaped, line);
        escaped.push('\n');
    }
    stderr_queue().push_always(escaped.into_bytes());
    if let Some(syslog) = syslog {
        syslog.report(text);
    }
}
