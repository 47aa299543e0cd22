//! Logs from modules: `serverkit:module/log` calls (`host`-side below) and the guest's
//! stdout and stderr lines (`stdio`) become the host's log events, labelled with the
//! module, within one budget per instance (`max_log_events`, counted by the meter). Control
//! characters in what a module writes are escaped by the log's sinks (`crate::logging`).

pub mod stdio;

use std::net::SocketAddr;

use wasmtime::component::HasData;

use crate::contract::bindings::log::{Host, Level};
use crate::logging::owner::as_owner;
use crate::meter::{InstanceMeter, Limit, LogEvent, ModuleMeter};
pub use crate::text::truncate;

/// Longest message kept; what it defends is the log against a guest flooding it with
/// huge lines.
pub const MAX_LOG_MESSAGE_BYTES: usize = 4096;

/// What the log interface reaches of an instance.
pub struct LogView<'a> {
    /// The module's name, the label of its events.
    pub module: &'a str,
    /// The client, for a session's events.
    pub peer: Option<SocketAddr>,
    /// The instance's log budget.
    pub meter: &'a InstanceMeter,
}

/// The log interface, for `add_to_linker`.
pub struct Log;

impl HasData for Log {
    type Data<'a> = LogView<'a>;
}

impl Host for LogView<'_> {
    /// At most the module's `max_log_events` per instance are logged: what the budget
    /// defends is the host log, and the disk or syslog behind it, against a module that
    /// floods it. Further events are dropped and counted per module (the report shows
    /// them). The lines are charged to the module's share of the stderr queue.
    async fn log(&mut self, level: Level, message: String) -> wasmtime::Result<()> {
        let module = self.module;
        let meter = &self.meter.module;
        as_owner(&meter.log_queue, || {
            if !written(module, meter, self.meter.log_event()) {
                return;
            }
            let message = truncate(&message, MAX_LOG_MESSAGE_BYTES);
            let peer = self.peer.map(|p| p.to_string()).unwrap_or_default();
            match level {
                Level::Trace => tracing::trace!(module, peer, "{message}"),
                Level::Debug => tracing::debug!(module, peer, "{message}"),
                Level::Info => tracing::info!(module, peer, "{message}"),
                Level::Warn => tracing::warn!(module, peer, "{message}"),
                Level::Error => tracing::error!(module, peer, "{message}"),
            }
        });
        Ok(())
    }
}

/// Whether an event counted as `event` is written; says once that the rest are dropped.
pub(crate) fn written(module: &str, meter: &ModuleMeter, event: LogEvent) -> bool {
    match event {
        LogEvent::Write => true,
        LogEvent::DropFirst => {
            let setting = meter.setting(Limit::Log);
            tracing::warn!(
                module,
                "an instance hit limit `{setting}`: dropping the rest of its log"
            );
            false
        }
        LogEvent::Drop => false,
    }
}
