//! `serverkit:module/log`: a guest's log events become the host's tracing events.

use crate::contract::bindings::log::{Host, Level};
use crate::guest_host::state::InstanceState;
use crate::sessions::limits::Limit;

/// Longest message kept; what it defends is the log against a guest flooding it with
/// huge lines.
pub const MAX_LOG_MESSAGE_BYTES: usize = 4096;

impl Host for InstanceState {
    /// At most the module's `max_log_events` per instance are logged: what the budget
    /// defends is the host log, and the disk or syslog behind it, against a module that
    /// floods it. Further events are dropped and counted per module (the report shows
    /// them); the session goes on, since its work is not wrong for being chatty.
    async fn log(&mut self, level: Level, message: String) -> wasmtime::Result<()> {
        self.log_events = self.log_events.saturating_add(1);
        let limits = &self.module.limits;
        if self.log_events > limits.limits.log_events {
            self.module
                .log_dropped
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            if self.log_events == limits.limits.log_events + 1 {
                limits.count(Limit::Log);
                tracing::warn!(module = %self.module.name, "an instance hit limit `{}`: dropping the rest of its log", limits.setting(Limit::Log));
            }
            return Ok(());
        }
        let message = truncate(&message, MAX_LOG_MESSAGE_BYTES);
        let module = self.module.name.as_str();
        let peer = self.peer.map(|p| p.to_string()).unwrap_or_default();
        match level {
            Level::Trace => tracing::trace!(module, peer, "{message}"),
            Level::Debug => tracing::debug!(module, peer, "{message}"),
            Level::Info => tracing::info!(module, peer, "{message}"),
            Level::Warn => tracing::warn!(module, peer, "{message}"),
            Level::Error => tracing::error!(module, peer, "{message}"),
        }
        Ok(())
    }
}

/// Cuts `text` to at most `max` bytes on a character boundary.
pub fn truncate(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

#[cfg(test)]
mod tests {
    use super::truncate;

    #[test]
    fn truncates_on_char_boundaries() {
        assert_eq!(truncate("héllo", 2), "h");
        assert_eq!(truncate("hello", 10), "hello");
        assert_eq!(truncate("hello", 3), "hel");
    }
}
